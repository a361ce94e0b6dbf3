#!/usr/bin/env bash
# Debian's Chromium and its driver for the status-page browser tests (tests/test_ui_browser.py).
# Installs them only when /usr/bin/chromium is missing, and only as root; exits 1 otherwise.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium.sh: /usr/bin/chromium or /usr/bin/chromedriver is missing; as root run: apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium.sh: no apt-get here; install Chromium and chromedriver at /usr/bin yourself" >&2
  exit 1
fi
echo "chromium.sh: installing chromium and chromium-driver with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q chromium chromium-driver >/dev/null
