#!/usr/bin/env bash
# The long versions of the hardening tests that scripts/test.sh runs short:
#   - durability/power_loss   1000 rounds per mode       (test command: 200)
#   - e2e/storm               50,000 malformed inputs    (10,000)
#   - e2e/resources           100,000 connect/disconnect cycles (10,000)
#   - e2e/chaos               3 runs, 20 % drop, 3x the traffic between faults (1 run, 10 %)
# against the RelWithDebInfo build, then the e2e ones again against the
# ASan+UBSan server (LeakSanitizer checks every server's exit). Prints each
# test's figures. Fuzzing has its own script: scripts/fuzz.sh.
#   scripts/soak.sh [--no-sanitizers] [--chaos-runs N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
chaos_runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sanitizers) sanitize=0 ;;
    --chaos-runs) chaos_runs=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
"$root/scripts/install-deps.sh" --test

export PARLEY_POWER_ROUNDS=1000 PARLEY_STORM_INPUTS=50000 PARLEY_E2E_CHURN_CYCLES=100000
export PARLEY_E2E_CHAOS_DROP_PERCENT=20 PARLEY_E2E_CHAOS_GAP_ACKS=900
run() {  # build dir, test regex, extra ctest arguments...
  local dir=$1 regex=$2 log rc=0
  shift 2
  log=$(mktemp)
  # -V keeps the tests' own output, whose indented lines are their figures.
  ctest --test-dir "$dir" -V --timeout 3600 -R "$regex" "$@" >"$log" 2>&1 || rc=$?
  grep -E '^[0-9]+:   +[^ ]|Test +#[0-9]+:' "$log" | grep -vE '^[0-9]+:   +(File|Traceback|\^)' || true
  if [ "$rc" -ne 0 ]; then
    tail -n 80 "$log"
    echo "FAILED: $regex in $dir (log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
}

echo "== build (RelWithDebInfo)"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=ON -DPARLEY_WITH_REDIS=ON
echo "== long runs"
run "$root/build" '^(durability/power_loss|e2e/(storm|resources))$'
run "$root/build" '^e2e/chaos$' --repeat "until-fail:$chaos_runs"

if [ "$sanitize" -eq 1 ]; then
  echo "== build (ASan+UBSan)"
  "$root/scripts/build.sh" "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_SANITIZE=ON \
    -DPARLEY_WITH_REDIS=ON -DPARLEY_BUILD_TESTS=ON -DPARLEY_BUILD_EXAMPLES=ON
  echo "== long runs against the ASan+UBSan server"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run "$root/build-asan" '^e2e/(storm|resources|chaos)$'
fi
echo "== soak passed"
