#!/bin/sh
# Runs the browser test of the web client against a parley-server binary.
# Usage: tests/browser/run.sh PATH/TO/parley-server
# Installs playwright-core (npm ci from package-lock.json; no browser is
# downloaded: the test drives the system Chromium, env CHROMIUM, default
# /usr/bin/chromium) when node_modules is missing, then runs chat.test.mjs.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/parley-server" >&2
  exit 2
fi
server=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool is not installed (apt-get install nodejs npm)" >&2; exit 1; }
done

if [ ! -d node_modules/playwright-core ]; then
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
  else
    npm install --no-audit --no-fund
  fi
fi

PARLEY_SERVER=$server exec node --test chat.test.mjs
