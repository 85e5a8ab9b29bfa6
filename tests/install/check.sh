#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds and runs a
# program that finds it with find_package(parley) and pkg-config.
#   tests/install/check.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$here/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer"
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --exists parley
echo "pkg-config finds parley $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --modversion parley)"
