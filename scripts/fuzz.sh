#!/usr/bin/env bash
# Fuzzes the decoders with libFuzzer under ASan+UBSan (tests/fuzz,
# docs/reliability.md): every target in turn, one process each, from its
# committed corpus tests/fuzz/corpus/<target>.
#   scripts/fuzz.sh --seconds N [--runs N] [--target T] [--merge]
#     --seconds N   fuzz each target for N seconds
#     --runs N      ... or for N inputs (with both, whichever comes first)
#     --target T    only T (json_frame, msgpack_frame, peer_batch, capi_bytes, http_route)
#     --merge       afterwards add to tests/fuzz/corpus/<target> the new inputs
#                   that reach new edges (libFuzzer -merge=1 -use_counters=0:
#                   hit counts do not count, so the addition stays a few
#                   hundred inputs), to be committed
# Installs clang with libFuzzer (install-deps.sh --fuzz), configures and
# builds build-fuzz with it. New inputs go to build-fuzz/corpus/<target>,
# crashes to build-fuzz/crashes/<target>/. Prints per target execs, time,
# exec/s, coverage, new inputs, corpus (inputs/bytes) and crashes; exits 1 if any target crashed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=0 runs=-1 only="" merge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --target) only=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$seconds" -eq 0 ] && [ "$runs" -lt 0 ]; then
  echo "usage: scripts/fuzz.sh --seconds N [--runs N] [--target T] [--merge]" >&2
  exit 2
fi

# name and -max_len: a frame, a batch, a request, a sequence of frames.
targets=(json_frame:4096 msgpack_frame:4096 peer_batch:8192 capi_bytes:8192 http_route:4096)

"$root/scripts/install-deps.sh" --fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPARLEY_FUZZ=ON -DPARLEY_BUILD_TESTS=ON -DPARLEY_WITH_REDIS=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target parley_fuzzers

# A 16 MB quarantine instead of 256: about 1.5x the execs per second (fewer
# fresh pages); a use after free is still caught within the last 16 MB freed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
command -v llvm-symbolizer >/dev/null || export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14

summary=() failed=0 found=0
for entry in "${targets[@]}"; do
  name=${entry%%:*} max_len=${entry##*:}
  [ -n "$only" ] && [ "$only" != "$name" ] && continue
  found=1
  fuzzer="$build/tests/fuzz/${name}_fuzz"
  seeds="$root/tests/fuzz/corpus/$name"
  work="$build/corpus/$name" crashes="$build/crashes/$name"
  mkdir -p "$work" "$crashes"
  log="$build/fuzz-$name.log"
  args=(-max_len="$max_len" -timeout=25 -print_final_stats=1 -artifact_prefix="$crashes/")
  [ "$seconds" -gt 0 ] && args+=(-max_total_time="$seconds")
  [ "$runs" -ge 0 ] && args+=(-runs="$runs")
  echo "== $name (${args[*]})"
  start=$(date +%s.%N)
  rc=0
  "$fuzzer" "${args[@]}" "$work" "$seeds" >"$log" 2>&1 || rc=$?
  elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crash_files=$(find "$crashes" -type f -newermt "@${start%.*}" | tr '\n' ' ')
  if [ "$rc" -ne 0 ] || [ -n "$crash_files" ]; then
    failed=1
    tail -n 60 "$log"
    crash="exit $rc: ${crash_files:-see $log}"
  else
    crash=0
  fi
  if [ "$merge" -eq 1 ] && [ "$rc" -eq 0 ]; then
    "$fuzzer" -merge=1 -use_counters=0 -max_len="$max_len" "$seeds" "$work" >"$build/merge-$name.log" 2>&1
  fi
  summary+=("$(printf '%-14s %12s %8s %8s %6s %6s %12s  %s' "$name" "${execs:-?}" "$elapsed" "${rate:-?}" \
    "${cov:-?}" "${new:-?}" "${corpus:-?}" "$crash")")
done
[ "$found" -eq 1 ] || { echo "no target named $only" >&2; exit 2; }

printf '\n%-14s %12s %8s %8s %6s %6s %12s  %s\n' target execs seconds exec/s cov new corpus crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
