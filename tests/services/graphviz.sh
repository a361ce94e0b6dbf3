#!/usr/bin/env bash
# Graphviz's `dot`, for the SVG tests of `xsgen graph`: installed from Debian when missing.
set -euo pipefail
command -v dot >/dev/null 2>&1 && exit 0
as_root=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "graphviz: not root and no sudo; install it with apt-get install graphviz" >&2; exit 1; }
    as_root=(sudo -n)
fi
"${as_root[@]}" apt-get install -y -q graphviz >/dev/null 2>&1 \
    || { "${as_root[@]}" apt-get update -q >/dev/null && "${as_root[@]}" apt-get install -y -q graphviz >/dev/null; }
command -v dot >/dev/null
