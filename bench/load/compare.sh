#!/usr/bin/env bash
# parley-server against Mosquitto, side by side, with the same generator
# (parley-load; --mqtt for Mosquitto) in the same run: for each workload and
# each step of deliveries per second, a fresh parley-server (its defaults:
# SQLite, --sync full, group commit on the store executor; pull mode held
# off) and a fresh Mosquitto 2 (MQTT over WebSocket, no persistence, QoS 1
# publish / QoS 0 subscription), each pinned to CPU 0 with the generator on
# CPU 1. Prints one table row per step: p50 / p99 / p99.9 latency (scheduled
# send -> receipt), server CPU per delivery from /proc, KB per connection.
#
# usage: bench/load/compare.sh PATH/TO/parley-server [extra server args...]
# Environment:
#   STEPS       deliveries/s per step (default "10000 60000 100000 140000 180000")
#   WORKLOADS   "A" (200 groups of 10), "B" (20 groups of 100) (default "A B")
#   CLIENTS     (default 2000)   DURATION WARMUP (s, default 10 and 3)
#   SYSTEMS     "parley mosquitto" (default both)
#   PARLEY_LOAD the generator (default build-load/bench/parley-load)
#   MOSQUITTO   the broker binary (default: mosquitto on PATH; apt-get install mosquitto)
#   THREADS     parley-server's --threads (default 1: the one pinned core)
#   SERVER_CPUS the CPUs the servers are pinned to (default 0; the generator gets 1)
#   PIN=0       do not pin
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
load=${PARLEY_LOAD:-$repo/build-load/bench/parley-load}
mosquitto=${MOSQUITTO:-$(command -v mosquitto || true)}
steps=${STEPS:-10000 60000 100000 140000 180000}
workloads=${WORKLOADS:-A B}
systems=${SYSTEMS:-parley mosquitto}
clients=${CLIENTS:-2000}
duration=${DURATION:-10}
warmup=${WARMUP:-3}
[[ -x "$load" ]] || { echo "parley-load not found at $load (cmake -DPARLEY_BUILD_BENCHMARKS=ON, target parley-load)" >&2; exit 2; }
if [[ " $systems " == *" mosquitto "* && -z "$mosquitto" ]]; then
  echo "mosquitto not found (apt-get install mosquitto) or set SYSTEMS=parley" >&2
  exit 2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pin_server=() pin_load=()
if [[ "${PIN:-1}" == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  pin_server=(taskset -c "${SERVER_CPUS:-0}") pin_load=(taskset -c 1)
fi
work=$(mktemp -d /tmp/parley-compare.XXXXXX)
pid=
stop() {
  [[ -z "$pid" ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap 'stop; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_parley NAME -> pid, url
start_parley() {
  local dir="$work/$1" log="$work/$1.log"
  mkdir -p "$dir"
  "${pin_server[@]}" "$server" --listen 127.0.0.1:0 --dev --data-dir "$dir" --pull-min-members 1000000 \
    --threads "${THREADS:-1}" "${server_args[@]}" >"$log" 2>&1 &
  pid=$!
  url=
  for _ in $(seq 100); do
    url=$(grep -o -m1 'listening on http://[0-9.]*:[0-9]*' "$log" | sed 's/listening on //' || true)
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  [[ -n "$url" ]] || { echo "parley-server did not start:" >&2; tail -n 20 "$log" >&2; exit 1; }
}

# start_mosquitto NAME -> pid, url. The WebSocket listener binds to the
# loopback interface ("lo"); Mosquitto 2.0.11 also needs a plain listener to
# start at all.
start_mosquitto() {
  local conf="$work/$1.conf" log="$work/$1.log" port plain
  port=$(free_port)
  plain=$(free_port)
  printf 'listener %s 127.0.0.1\nlistener %s lo\nprotocol websockets\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 0\n' \
    "$plain" "$port" >"$conf"
  "${pin_server[@]}" "$mosquitto" -c "$conf" >"$log" 2>&1 &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 50); do
    grep -q running "$log" && return 0
    sleep 0.1
  done
  echo "mosquitto did not start:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

rows="$work/rows.jsonl"
for w in $workloads; do
  case $w in
    A) groups=$((clients / 10)) ;;
    B) groups=$((clients / 100)) ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
  members=$((clients / groups))
  for step in $steps; do
    rate=$(python3 -c "print($step / ($clients * $members))")
    for sys in $systems; do
      name="$sys-$w-$step"
      if [[ $sys == parley ]]; then start_parley "$name"; extra=(); else start_mosquitto "$name"; extra=(--mqtt); fi
      echo "== $w ($groups groups of $members) step $step deliveries/s ($rate msg/s per client): $sys" >&2
      out=$("${pin_load[@]}" "$load" "${extra[@]}" --url "$url" --clients "$clients" --groups "$groups" \
        --rate "$rate" --duration "$duration" --warmup "$warmup" --server-pid "$pid" --json 2>"$work/$name.err" || true)
      stop
      if [[ -z "$out" ]]; then
        echo "   no result; generator said:" >&2
        tail -n 5 "$work/$name.err" >&2
        out='{}'
      fi
      python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(system=sys.argv[2], workload=sys.argv[3], step=int(sys.argv[4])); print(json.dumps(d))' \
        "$out" "$sys" "$w" "$step" >>"$rows"
    done
  done
done

python3 - "$rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["workload"], r["step"]), {})[r["system"]] = r
def cell(r):
    if not r or "p50_ms" not in r:
        return "-", "-", "-", "-"
    lat = f'{r["p50_ms"]:.1f} / {r["p99_ms"]:.1f} / {r["p999_ms"]:.1f}'
    us = r.get("server_us_per_delivery")
    kb = r.get("server_kb_per_connection")
    got = f'{r.get("delivered_per_s", 0):,.0f}' + ("" if r.get("loss", 0) == 0 else f' (loss {r["loss"]})')
    return got, lat, "-" if us is None else f"{us:.2f}", "-" if kb is None else f"{kb:.1f}"
print("| workload | step (deliveries/s) | parley delivered/s | parley p50 / p99 / p99.9 ms | parley µs/delivery | parley KB/conn "
      "| Mosquitto delivered/s | Mosquitto p50 / p99 / p99.9 ms | Mosquitto µs/delivery | Mosquitto KB/conn | CPU ratio |")
print("|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|")
for (w, step), s in sorted(by.items()):
    p, m = s.get("parley"), s.get("mosquitto")
    pc, mc = cell(p), cell(m)
    ratio = "-"
    if p and m and p.get("server_us_per_delivery") and m.get("server_us_per_delivery"):
        ratio = f'{p["server_us_per_delivery"] / m["server_us_per_delivery"]:.2f}'
    print(f"| {w} | {step:,} | {pc[0]} | {pc[1]} | {pc[2]} | {pc[3]} | {mc[0]} | {mc[1]} | {mc[2]} | {mc[3]} | {ratio} |")
PY
