#!/usr/bin/env bash
# Installs what the Node binding needs to build and test, from the package
# registries only: Node.js with its Node-API headers, node-addon-api's
# headers (Debian's node-addon-api) and the examples' one npm package (`npm
# ci`, from the committed package-lock.json). The build itself never
# downloads anything. Works as root or through sudo; installs only what is
# missing.
#
# Debian's node-addon-api depends on Debian's own nodejs; when Node comes
# from another repository (NodeSource's, say) apt refuses it, so the
# header-only package is unpacked into /usr/local/share/nodejs/ instead.
#   bindings/node/install-deps.sh [--no-npm]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
npm=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) npm=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600)
updated=0
apt_install() {
  [ "$updated" -eq 1 ] || { "${apt[@]}" update -qq; updated=1; }
  "${apt[@]}" install -y -qq --no-install-recommends "$@"
}

have_napi() {
  local d
  for d in /usr/share/nodejs/node-addon-api /usr/include/node-addon-api /usr/local/share/nodejs/node-addon-api; do
    [ -f "$d/napi.h" ] && return 0
  done
  return 1
}

command -v node >/dev/null || apt_install nodejs
[ -f /usr/include/node/node_api.h ] || apt_install libnode-dev  # Debian's nodejs ships no headers
command -v npm >/dev/null || apt_install npm

if ! have_napi && ! apt_install node-addon-api; then
  echo "unpacking node-addon-api's headers into /usr/local/share/nodejs/ (apt refuses it beside this nodejs)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chown _apt "$tmp" 2>/dev/null || true  # apt downloads as _apt
  (cd "$tmp" && "${apt[@]}" download node-addon-api)
  dpkg-deb -x "$tmp"/node-addon-api_*.deb "$tmp/root"
  "${sudo[@]}" mkdir -p /usr/local/share/nodejs
  "${sudo[@]}" rm -rf /usr/local/share/nodejs/node-addon-api
  "${sudo[@]}" cp -r "$tmp/root/usr/share/nodejs/node-addon-api" /usr/local/share/nodejs/
fi

if [ "$npm" -eq 1 ] && [ ! -f "$here/node_modules/ws/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
