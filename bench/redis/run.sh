#!/usr/bin/env bash
# Appends on Redis: Parley's RedisStore against redis-benchmark, same server,
# same run. Starts its own redis-server (scripts/redis.conf, so
# appendfsync always: every answer waited for an fsync) on a free loopback
# port in a temporary directory, and stops it at the end.
#
#   bench/redis/run.sh [BENCH_BINARY] [--reps 3] [--seconds 3] [--fsync always|everysec]
#
# BENCH_BINARY defaults to build/bench/parley_bench_redis
# (cmake -S . -B build -DPARLEY_BUILD_BENCHMARKS=ON && cmake --build build --target parley_bench_redis).
#
# Rows (medians of the repetitions; throughput in messages/s, latency per call):
#   parley single      RedisStore::append of 1 message, 1 connection, no pipelining
#   redis EVALSHA c1   the same append script, 1 message, by redis-benchmark -c 1
#   redis XADD c1      a bare XADD of the same entry (no sequencing, no dedup) -c 1
#   parley turn        one call = 100 messages over 10 groups: 10 scripts pipelined
#   redis EVALSHA P10  redis-benchmark -c 1 -P 10, each script appending 10 messages
#   parley nodes       4 stores in 4 threads (4 nodes) doing `turn` calls
#   redis EVALSHA c4   redis-benchmark -c 4 -P 10, 10 messages per script
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin="$here/build/bench/parley_bench_redis"
reps=3
seconds=3
fsync=always
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --fsync) fsync=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) bin=$1; shift ;;
  esac
done
[ -x "$bin" ] || { echo "no benchmark binary at $bin" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not installed (apt-get install redis-server)" >&2; exit 2; }

tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server "$here/scripts/redis.conf" --port "$port" --bind 127.0.0.1 --dir "$tmp" \
  --appendfsync "$fsync" --save "" --daemonize no >"$tmp/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null

# The store's own append script, loaded for redis-benchmark.
sed -n '/kAppendLua = R"lua(/,/^)lua";/p' "$here/src/store/redis_scripts.hpp" | sed '1d;$d' >"$tmp/append.lua"
sha=$(redis-cli -p "$port" -x SCRIPT LOAD <"$tmp/append.lua")
body=$(head -c 128 /dev/zero | tr '\0' x)
n_single=$(/usr/bin/python3 -c "print(int(3000*$seconds))")
n_batch=$(/usr/bin/python3 -c "print(int(3000*$seconds))")

# ARGV of one script call appending k messages (unique cids from -r).
script_args() {
  local k=$1 args=()
  for i in $(seq "$k"); do args+=(4 user$i "c${i}__rand_int__" 1 "$body"); done  # 4 fields: a plain message
  echo "${args[@]}"
}
rb() {  # redis-benchmark ... -> "msgs_per_s p50 p99" for k messages per request
  local k=$1; shift
  redis-benchmark -p "$port" --csv -r 1000000000 "$@" | tail -1 | tr -d '"' |
    awk -F, -v k="$k" '{ printf "%.0f %.3f %.3f\n", $2 * k, $5, $7 }'
}
results="$tmp/results"
: >"$results"
for rep in $(seq "$reps"); do
  "$bin" --redis "127.0.0.1:$port" --seconds "$seconds" --batch 100 --groups 10 --nodes 4 |
    awk -F, 'NR > 1 { printf "parley_%s %s %s %s\n", $1, $3, $4, $5 }' >>"$results"
  # shellcheck disable=SC2046
  echo "redis_evalsha_c1 $(rb 1 -c 1 -n "$n_single" EVALSHA "$sha" 8 'b:g:{s}:meta' 'b:g:{s}:log' 'b:g:{s}:tomb' 'b:g:{s}:rx' 'b:g:{s}:edits' 'b:g:{s}:skip' 'b:g:{s}:own' 'b:g:{s}:mn' 'b:g:{s}:d:' 86400 0 0 1 $(script_args 1))" >>"$results"
  echo "redis_xadd_c1 $(rb 1 -c 1 -n "$n_single" XADD 'b:g:{x}:log' '*' u user c 'c__rand_int__' t 1 b "$body")" >>"$results"
  # shellcheck disable=SC2046
  echo "redis_evalsha_p10 $(rb 10 -c 1 -P 10 -n "$n_batch" EVALSHA "$sha" 8 'b:g:{p}:meta' 'b:g:{p}:log' 'b:g:{p}:tomb' 'b:g:{p}:rx' 'b:g:{p}:edits' 'b:g:{p}:skip' 'b:g:{p}:own' 'b:g:{p}:mn' 'b:g:{p}:d:' 86400 0 0 10 $(script_args 10))" >>"$results"
  # shellcheck disable=SC2046
  echo "redis_evalsha_c4 $(rb 10 -c 4 -P 10 -n "$n_batch" EVALSHA "$sha" 8 'b:g:{q}:meta' 'b:g:{q}:log' 'b:g:{q}:tomb' 'b:g:{q}:rx' 'b:g:{q}:edits' 'b:g:{q}:skip' 'b:g:{q}:own' 'b:g:{q}:mn' 'b:g:{q}:d:' 86400 0 0 10 $(script_args 10))" >>"$results"
done

echo "Redis $(redis-server --version | awk '{print $3}'), appendfsync $fsync, $reps repetitions, medians"
printf '%-20s %14s %10s %10s\n' row "messages/s" "p50 ms" "p99 ms"
for row in parley_single redis_evalsha_c1 redis_xadd_c1 parley_turn redis_evalsha_p10 parley_nodes redis_evalsha_c4; do
  grep "^$row " "$results" | /usr/bin/python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(float(r[i]) for r in rows)
print("%-20s %14.0f %10.3f %10.3f" % (rows[0][0], med(1), med(2), med(3)))'
done
