#!/usr/bin/env bash
# Runs the deterministic cluster simulation on more seeds, or replays one.
#   scripts/sim.sh --seeds N [--from S]    e.g. --seeds 10000
#   scripts/sim.sh --seed S [--verbose]    replay one seed (printed by a failure)
#   scripts/sim.sh --mutant NAME --seeds N
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=ON >/dev/null
exec "$root/build/tests/sim/parley_sim" "$@"
