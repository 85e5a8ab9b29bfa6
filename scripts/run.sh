#!/usr/bin/env bash
# Builds parley-server and runs it on its embedded default: one node on
# 127.0.0.1:8080, SQLite under ./parley-data, development login (any user
# name). Open the printed URL in a browser. Extra arguments go to the server
# (see `parley-server --help`); Ctrl-C stops it cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=OFF
exec "$root/build/examples/server/parley-server" --dev "$@"
