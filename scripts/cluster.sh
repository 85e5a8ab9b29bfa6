#!/usr/bin/env bash
# Starts a three-node parley-server cluster on one Redis, on this machine:
# redis-server on 127.0.0.1:REDIS_PORT (scripts/redis.conf: appendonly,
# fsync per write), then nodes node-1..node-3 on 127.0.0.1:BASE_PORT..BASE_PORT+2
# (development login: any user name), with peer listeners on
# 127.0.0.1:BASE_PORT+100..BASE_PORT+102, each naming the other two as peers. Ctrl-C (or TERM) stops
# everything cleanly.
#
#   scripts/cluster.sh [--build] [--base-port 8081] [--redis-port 6390] [--data DIR] [-- NODE ARGS...]
#
#   --build        (re)build parley-server first (as scripts/run.sh does); also done
#                  when the binary is missing or was built without Redis
#   --base-port    HTTP port of node-1 (default 8081)
#   --redis-port   Redis port (default 6390)
#   --data DIR     Redis files, node data, logs and the generated secrets
#                  (default ./parley-cluster); kept between runs, so messages and
#                  tokens survive a restart of the cluster
#   -- ARGS        extra parley-server flags for every node (see parley-server --help)
#
# PARLEY_SERVER=/path/to/parley-server uses that binary instead of build/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build=0
base_port=8081
redis_port=6390
data=$PWD/parley-cluster
node_args=()
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
need_value() { [ $# -ge 2 ] || { echo "cluster.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=1; shift ;;
    --base-port) need_value "$@"; base_port=$2; shift 2 ;;
    --redis-port) need_value "$@"; redis_port=$2; shift 2 ;;
    --data) need_value "$@"; data=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; node_args=("$@"); break ;;
    *) echo "cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for p in "$base_port" "$redis_port"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65430 ]; then
    echo "cluster.sh: bad port $p" >&2; exit 2
  fi
done

# ---- parley-server
server=${PARLEY_SERVER:-$root/build/examples/server/parley-server}
has_redis() { [ -x "$server" ] && "$server" --help 2>/dev/null | grep -q -- '--redis '; }
if [ -n "${PARLEY_SERVER:-}" ]; then
  has_redis || { echo "cluster.sh: $server is not a parley-server with --store redis" >&2; exit 1; }
elif [ "$build" -eq 1 ] || ! has_redis; then
  # As scripts/run.sh, so both use (and keep) the same build tree and options.
  "$root/scripts/install-deps.sh"
  "$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_TESTS=OFF
  has_redis || { echo "cluster.sh: $server was built without Redis (is libhiredis-dev installed?)" >&2; exit 1; }
fi
redis_server=$(command -v redis-server || true)
[ -n "$redis_server" ] || { echo "cluster.sh: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }

# ---- data dir and secrets (made once, kept: tokens stay good across restarts)
mkdir -p "$data/redis"
data=$(cd "$data" && pwd)
umask 077
for f in secret cluster-secret; do
  [ -s "$data/$f" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/$f"
done
secret=$(cat "$data/secret")
cluster_secret=$(cat "$data/cluster-secret")
umask 022

# A port somebody answers on (bash's /dev/tcp; no curl or redis-cli needed).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
redis_ping() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$redis_port" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 1 line <&3 || exit 1
    [ "${line%$'\r'}" = "+PONG" ]
  ) 2>/dev/null
}
for i in 0 1 2; do
  for p in $((base_port + i)) $((base_port + 100 + i)); do
    if port_open "$p"; then echo "cluster.sh: port $p is in use" >&2; exit 1; fi
  done
done
if port_open "$redis_port"; then echo "cluster.sh: port $redis_port (Redis) is in use" >&2; exit 1; fi

# ---- stop everything on exit, Ctrl-C or TERM
pids=()
names=()
redis_pid=""
stopping=0
stop_all() {
  [ "$stopping" -eq 0 ] || return 0
  stopping=1
  trap '' INT TERM
  echo
  echo "stopping..."
  local i pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "${names[$i]} did not stop within 15 s: killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  # Redis last: the nodes use it until they are gone. SIGTERM: it fsyncs and exits.
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  echo "stopped (data in $data)"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# ---- Redis
conf=$root/scripts/redis.conf
if [ -f "$conf" ]; then
  redis_cmd=("$redis_server" "$conf")
else
  redis_cmd=("$redis_server" --appendonly yes --appendfsync always)
fi
redis_cmd+=(--bind 127.0.0.1 --port "$redis_port" --dir "$data/redis" --daemonize no
            --logfile "$data/redis.log")
"${redis_cmd[@]}" </dev/null >/dev/null 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  redis_ping && break
  kill -0 "$redis_pid" 2>/dev/null || break
  sleep 0.1
done
if ! redis_ping; then
  echo "cluster.sh: redis-server did not answer PING on 127.0.0.1:$redis_port within 10 s" >&2
  tail -n 20 "$data/redis.log" >&2 || true
  exit 1
fi
echo "redis    redis://127.0.0.1:$redis_port  (log $data/redis.log)"

# ---- three nodes
for i in 1 2 3; do
  args=(--node-id "node-$i" --dev --listen "127.0.0.1:$((base_port + i - 1))"
        --store redis --redis "redis://127.0.0.1:$redis_port"
        --data-dir "$data/node-$i" --secret "$secret" --cluster-secret "$cluster_secret"
        --peer-listen "127.0.0.1:$((base_port + 99 + i))")
  for j in 1 2 3; do
    [ "$j" -eq "$i" ] || args+=(--peer "node-$j=127.0.0.1:$((base_port + 99 + j))")
  done
  mkdir -p "$data/node-$i"
  log=$data/node-$i.log
  echo "==== $(date -u +%FT%TZ) start" >> "$log"
  "$server" "${args[@]}" "${node_args[@]}" </dev/null >>"$log" 2>&1 &
  pids+=($!)
  names+=("node-$i")
done
for i in 0 1 2; do
  port=$((base_port + i))
  for _ in $(seq 150); do
    port_open "$port" && break
    kill -0 "${pids[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  if ! port_open "$port"; then
    echo "cluster.sh: ${names[$i]} is not listening on 127.0.0.1:$port" >&2
    tail -n 20 "$data/${names[$i]}.log" >&2 || true
    exit 1
  fi
done
for i in 1 2 3; do
  echo "node-$i   http://127.0.0.1:$((base_port + i - 1))/  (peer 127.0.0.1:$((base_port + 99 + i)), log $data/node-$i.log)"
done
echo "development login: any user name. Ctrl-C stops the cluster."

# ---- until Ctrl-C / TERM, or until one of them exits on its own
set +e
wait -n "${pids[@]}" "$redis_pid"
rc=$?
if [ "$stopping" -eq 0 ]; then
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || echo "cluster.sh: ${names[$i]} exited; see $data/${names[$i]}.log" >&2
  done
  kill -0 "$redis_pid" 2>/dev/null || echo "cluster.sh: redis-server exited; see $data/redis.log" >&2
  exit $((rc == 0 ? 1 : rc))
fi
