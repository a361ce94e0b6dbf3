#!/usr/bin/env bash
# What `make demo` shows: the toolchain on a real service model.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CORE=../shared/corpus/xproto/core.xproto
SERVICE=examples/hello/hello.xproto
echo "== xsgen deps $SERVICE"
$BIN/xsgen deps "$SERVICE"
echo
echo "== xsgen lint $SERVICE"
$BIN/xsgen lint "$SERVICE" && echo "(clean)"
exit 0
