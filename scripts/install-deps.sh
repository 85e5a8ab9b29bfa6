#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build and test. Works as root
# or through sudo; installs only what is missing; waits for the apt lock.
#   scripts/install-deps.sh            build dependencies (library + parley-server)
#   scripts/install-deps.sh --test     also what the end-to-end and browser tests run:
#                                      Python websockets + pytest, Chromium, Node.js + npm,
#                                      the Node binding's headers and npm packages
#                                      (iproute2 + nftables: network namespaces for e2e/chaos)
#   scripts/install-deps.sh --bench    also Google Benchmark and Mosquitto (the load baseline)
#   scripts/install-deps.sh --fuzz     also clang with libFuzzer (scripts/fuzz.sh)
set -euo pipefail

node_binding=0
packages=(g++ cmake ninja-build pkg-config git ca-certificates
          libfmt-dev doctest-dev libmsgpack-cxx-dev libsqlite3-dev sqlite3 rapidjson-dev
          libasio-dev libwebsocketpp-dev libcpp-httplib-dev libcli11-dev libssl-dev libhiredis-dev
          libutfcpp-dev libjemalloc-dev libjwt-dev)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(libbenchmark-dev mosquitto) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev llvm) ;;  # scripts/fuzz.sh: libFuzzer, llvm-symbolizer
    --test)
      node_binding=1
      packages+=(python3 python3-websockets python3-pytest python3-setuptools chromium curl
                redis-server redis-tools openssl iproute2 nftables)
      # Node.js may come from elsewhere (e.g. NodeSource, which bundles npm);
      # take Debian's only when there is none.
      command -v node >/dev/null || packages+=(nodejs)
      command -v npm >/dev/null || packages+=(npm)
      ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Node binding's build and test dependencies (Node-API headers,
# node-addon-api, the examples' npm package): see that script.
if [ "$node_binding" -eq 1 ]; then
  "$(cd "$(dirname "$0")/.." && pwd)/bindings/node/install-deps.sh"
fi
