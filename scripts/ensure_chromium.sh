#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests…"
  (apt-get install -y -q chromium >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
fi
[ -x /usr/bin/chromium ] || { echo "ERROR: /usr/bin/chromium is missing (apt-get install chromium)." >&2; exit 1; }
