#!/usr/bin/env bash
# The README's test command: system packages for the browser tests (Debian's chromium and
# chromium-driver, as root), a venv with every extra, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "browser tests need chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install -q -e ".[train,serve,scale,dev]"
.venv/bin/python -m pytest -q "$@"
