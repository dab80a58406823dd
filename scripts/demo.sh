#!/usr/bin/env bash
# Build gst-p2psp, then run a demo team on 127.0.0.1: one splitter pipeline
# and N peer pipelines (default 3). Arguments go to scripts/demo.py, e.g.
#   scripts/demo.sh --peers 5 --seconds 20
#   scripts/demo.sh --help
# Peer 1 opens a video window when $DISPLAY or $WAYLAND_DISPLAY is set.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash "$ROOT/scripts/build.sh" >&2
# Debian's interpreter: python3-gi is installed for it (a python3 earlier on
# PATH, e.g. pyenv's, usually has no gi module).
exec /usr/bin/python3 "$ROOT/scripts/demo.py" "$@"
