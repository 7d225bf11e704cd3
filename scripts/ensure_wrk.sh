#!/usr/bin/env bash
# The web-tier, scale-out and memory benchmarks drive load with wrk (Debian's package).
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's wrk for the benchmarks…"
  (apt-get install -y -q wrk >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null)
fi
command -v wrk >/dev/null 2>&1 || { echo "ERROR: wrk is missing (apt-get install wrk)." >&2; exit 1; }
