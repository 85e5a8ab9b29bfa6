#!/usr/bin/env bash
# Builds Parley and runs its main job: three in-process nodes on the memory
# stores, two groups, a handful of users, printing every delivery.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=OFF
exec "$root/build/examples/parley_embed"
