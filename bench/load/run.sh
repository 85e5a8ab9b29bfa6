#!/usr/bin/env bash
# Runs the two load scenarios against a fresh parley-server each:
#   A: 2,000 clients in 200 groups of 10,  RATE_A msg/s per client (default 1)
#   B: 2,000 clients in 20 groups of 100,  RATE_B msg/s per client (default 0.15)
# each WARMUP s (default 5) then DURATION s (default 20) measured, with the
# server's CPU and memory read from /proc.
#
# usage: bench/load/run.sh PATH/TO/parley-server [extra server args...]
#
# The server runs with its defaults (store, --sync) plus --dev, a temporary
# --data-dir and --listen 127.0.0.1:0; extra arguments are passed on.
# Environment:
#   PARLEY_LOAD   parley-load binary (default: found next to the server's build,
#                 in build-load/, or on PATH)
#   RATE_A RATE_B DURATION WARMUP CLIENTS   scenario knobs
#   SCENARIOS     which to run, e.g. "A" or "A B" (default "A B")
#   PIN=0         do not pin (default: server on CPU 0, parley-load on CPU 1)
#   JSON=1        one JSON line per scenario instead of the tables
#   LOAD_ARGS     extra parley-load arguments (e.g. "--threads 2")
# Groups of 100 switch to pull mode when they reach 20 msgs/s (the core's
# default DeliveryPolicy): RATE_B=0.2 sits exactly there, hence 0.15.
set -euo pipefail

if [[ $# -lt 1 || ! -x "$1" ]]; then
  echo "usage: $0 PATH/TO/parley-server [extra server args...]" >&2
  exit 2
fi
server=$(readlink -f "$1")
shift
server_args=("$@")

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
load=${PARLEY_LOAD:-}
if [[ -z "$load" ]]; then
  for candidate in "$(dirname "$(dirname "$(dirname "$server")")")/bench/parley-load" \
                   "$repo/build-load/bench/parley-load" "$(command -v parley-load || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then load=$candidate; break; fi
  done
fi
if [[ -z "$load" || ! -x "$load" ]]; then
  echo "parley-load not found: build it (cmake -DPARLEY_BUILD_BENCHMARKS=ON, target parley-load) or set PARLEY_LOAD" >&2
  exit 2
fi

clients=${CLIENTS:-2000}
duration=${DURATION:-20}
warmup=${WARMUP:-5}
rate_a=${RATE_A:-1}
rate_b=${RATE_B:-0.15}
scenarios=${SCENARIOS:-A B}
read -r -a load_args <<< "${LOAD_ARGS:-}"
[[ "${JSON:-0}" == 1 ]] && load_args+=(--json)

# 2,000 WebSockets on loopback: both ends of each in this machine's table,
# one socket per client in each process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < clients + 500 )); then
  echo "open-files limit $(ulimit -n) is below $((clients + 500)); raise it (ulimit -Hn)" >&2
  exit 2
fi

pin_server=() pin_load=()
if [[ "${PIN:-1}" == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

work=$(mktemp -d /tmp/parley-load.XXXXXX)
server_pid=
stop_server() {
  [[ -z "$server_pid" ]] && return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && { echo "server $server_pid ignored SIGTERM for 10 s: killing" >&2; kill -KILL "$server_pid"; }
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT

# start_server NAME: a fresh server with its own data dir; sets server_pid, url.
start_server() {
  local dir="$work/$1" log="$work/$1.log"
  mkdir -p "$dir/data"
  "${pin_server[@]}" "$server" --listen 127.0.0.1:0 --dev --data-dir "$dir/data" "${server_args[@]}" >"$log" 2>&1 &
  server_pid=$!
  url=
  for _ in $(seq 100); do
    url=$(grep -o -m1 'listening on http://[0-9.]*:[0-9]*' "$log" | sed 's/listening on //' || true)
    [[ -n "$url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "server did not start; its log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# scenario NAME GROUPS RATE
scenario() {
  local name=$1 groups=$2 rate=$3 log="$work/$1.log"
  start_server "$name"
  echo "== scenario $name: $clients clients in $groups groups of $((clients / groups)) at $rate msg/s per client;" \
       "server pid $server_pid at $url${pin_server[*]:+ (server on CPU 0, load on CPU 1)}"
  local rc=0
  "${pin_load[@]}" "$load" --url "$url" --clients "$clients" --groups "$groups" --rate "$rate" \
    --duration "$duration" --warmup "$warmup" --server-pid "$server_pid" "${load_args[@]}" || rc=$?
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid" && status=0 || status=$?
    echo "!! server exited during scenario $name (status $status); last lines of its log:"
    tail -n 30 "$log"
    server_pid=
    rc=1
  elif grep -qiE 'error|fatal|abort|sanitizer' "$log"; then
    echo "-- server log lines mentioning errors (scenario $name):"
    grep -iE 'error|fatal|abort|sanitizer' "$log" | head -n 20
  fi
  stop_server
  return $rc
}

status=0
for s in $scenarios; do
  case $s in
    A) scenario A $((clients / 10)) "$rate_a" || status=1 ;;
    B) scenario B $((clients / 100)) "$rate_b" || status=1 ;;
    *) echo "unknown scenario $s" >&2; status=2 ;;
  esac
done
exit $status
