#!/usr/bin/env bash
# Runs the Node binding's tests with node's test runner (ctest's node/*
# tests call it with one file each; without arguments it runs them all):
#   PARLEY_NODE_ADDON=build/bindings/node/parley_node.node \
#   PARLEY_SERVER=build/examples/server/parley-server bindings/node/test/run.sh [FILE.test.js...]
# First installs the examples' one npm package (ws) with `npm ci` from the
# committed package-lock.json when node_modules is missing; concurrent runs
# wait for each other on a lock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkg=$(dirname "$here")
node=${NODE:-node}
# Paths given relative to where this was started.
for var in PARLEY_NODE_ADDON PARLEY_SERVER; do
  if [ -n "${!var:-}" ]; then export "$var=$(realpath -m "${!var}")"; fi
done

if [ ! -f "$pkg/node_modules/ws/package.json" ]; then
  (
    flock 9
    if [ ! -f "$pkg/node_modules/ws/package.json" ]; then
      cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error
    fi
  ) 9>"${TMPDIR:-/tmp}/parley-node-npm-ci.lock"
fi

cd "$here"
if [ $# -eq 0 ]; then
  set -- *.test.js
fi
exec "$node" --test "$@"
