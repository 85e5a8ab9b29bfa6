#!/usr/bin/env bash
# The mutation campaign (tests/mutation/): applies each mutant of
# tests/mutation/mutants.txt, rebuilds build-mutate/ incrementally, runs the
# test command's unit, Redis store and simulation tests, and prints a table of
# mutant, guarantee and the test that caught it. Not part of scripts/test.sh
# (it takes most of an hour); run it before each issue's closing note.
#   scripts/mutate.sh [--only ID,...] [--list] [--markdown FILE] [--build DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test >/dev/null
exec python3 "$root/tests/mutation/mutate.py" "$@"
