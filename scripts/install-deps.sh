#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build and test. Works as root
# or through sudo; installs only what is missing; waits for the apt lock.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --bench    also Google Benchmark
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config git ca-certificates
          libfmt-dev doctest-dev libmsgpack-cxx-dev libsqlite3-dev sqlite3)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(libbenchmark-dev) ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
