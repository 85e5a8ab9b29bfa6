#!/usr/bin/env bash
# Builds parley-server and runs it on its embedded default: one node on
# 127.0.0.1:8080, SQLite under ./parley-data (of the directory you run it
# from; its first line says where), development login (any user name). Open
# the printed URL in a browser. Extra arguments go to the server (see
# `parley-server --help`; --data-dir DIR moves the data); Ctrl-C stops it
# cleanly. It builds in build-run/, apart from the tests' build/, so the two
# never reconfigure each other's tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$PWD/parley-data"
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --data-dir) j=$((i + 1)); if [[ -n "${!j:-}" ]]; then data=$(readlink -m "${!j}"); fi ;;
    --data-dir=*) data=$(readlink -m "${!i#--data-dir=}") ;;
  esac
done
echo "parley: data in $data (the SQLite file and the token secret; --data-dir DIR to move it)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build-run" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=OFF
exec "$root/build-run/examples/server/parley-server" --dev "$@"
