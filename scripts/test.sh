#!/usr/bin/env bash
# Runs every test: unit tests (doctest), the store conformance suite, the
# cluster simulation (500 seeds on the memory stores, 40 on SQLite) and its
# mutants, the kill -9 and simulated power-loss durability tests, the install
# check, the Redis client and stores (conformance on one redis-server and on a
# three-master Redis Cluster, all started by the tests), parley-server's unit,
# end-to-end (tests/e2e, three nodes on Redis among them) and browser
# (tests/browser) tests; then the unit tests, 24 simulation seeds and the
# end-to-end tests again with everything built under ASan+UBSan (one shard
# per server: e2e/shards runs four, and the four-shard variants run under
# TSan; the durability programs are not built there); then the
# threaded parts (the store executor, parley-server's adapter threads, the C
# API's posting) under ThreadSanitizer.
#   scripts/test.sh [--no-sanitizers]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
for arg in "$@"; do
  case "$arg" in
    --no-sanitizers) sanitize=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
"$root/scripts/install-deps.sh" --test

echo "== build (RelWithDebInfo)"
# -g1 (line tables: enough for a failure's backtrace) builds faster than -g.
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=ON -DPARLEY_WITH_REDIS=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
echo "== tests"
ctest --test-dir "$root/build" -j "$(nproc)" --output-on-failure --timeout 900

# The sanitizer builds use -O1 -g1 (line tables only: enough for symbolized
# reports): server.cpp compiles in 80 s instead of 207 s under ASan.
san_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")
if [ "$sanitize" -eq 1 ]; then
  echo "== build (ASan+UBSan)"
  "$root/scripts/build.sh" "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${san_flags[@]}" -DPARLEY_SANITIZE=ON \
    -DPARLEY_WITH_REDIS=ON -DPARLEY_BUILD_TESTS=ON -DPARLEY_BUILD_EXAMPLES=ON -DPARLEY_SIM_SEEDS=24 -DPARLEY_SIM_SHARDS=2 -DPARLEY_SIM_SQLITE_SEEDS=6 -DPARLEY_SIM_READ_SEEDS=8
  echo "== tests under ASan+UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$root/build-asan" -j "$(nproc)" --output-on-failure --timeout 1200 -E '^((durability|install|browser|e2e4)/.*|sim/mutant_.*)$'
fi

if [ "$sanitize" -eq 1 ]; then
  echo "== build (TSan: the server and the C API)"
  cmake -S "$root" -B "$root/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${san_flags[@]}" -DPARLEY_TSAN=ON \
    -DPARLEY_BUILD_TESTS=ON -DPARLEY_BUILD_EXAMPLES=ON >/dev/null
  cmake --build "$root/build-tsan" -j "$(nproc)" --target parley-server parley_server_unit_tests parley_capi_test \
    parley_threaded_tests
  echo "== threaded tests under TSan"
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
    PARLEY_E2E_CHURN_CYCLES=3000 ctest --test-dir "$root/build-tsan" -j "$(nproc)" --output-on-failure --timeout 900 \
    -R '^(threaded/.*|server/unit|capi/c_test|e2e/(cluster|failover|webhook|shutdown|slow_consumer|resources)|e2e4/(cluster|failover|shutdown|slow_consumer))$'
fi
