#!/usr/bin/env bash
# System packages the tests need: Debian's chromium and chromium-driver for the browser
# tests (installed as root when missing; otherwise says how).
set -euo pipefail
if ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "browser tests need chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2
  fi
fi
