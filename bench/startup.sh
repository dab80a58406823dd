#!/usr/bin/env bash
# Late joiners' start-up, p2pspsrc (join burst) against tcpserversink
# sync-method=burst-keyframe, fed by one live encoder, in one run
# (bench/startup.py; docs/benchmarks.md, "Start-up of late joiners").
#
#   bench/startup.sh [--quick] [startup.py options]
#
# --quick: GOP 4 s only, 3 joins, MPEG-TS (about 40 s).
# Results: bench/out/startup-<date>.json and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARGS=()
if [[ ${1:-} == --quick ]]; then
  shift
  ARGS=(--gops 4 --joins 3 --formats ts-h264)
fi
BUILD=$ROOT/build-bench
[[ -f $BUILD/build.ninja ]] || meson setup "$BUILD" --buildtype=debugoptimized -Dtests=disabled >/dev/null
ninja -C "$BUILD" plugin/libgstp2psp.so >/dev/null
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/startup-$(date +%Y%m%d-%H%M%S).json
export GST_PLUGIN_PATH=$BUILD/plugin GST_REGISTRY_1_0=$ROOT/bench/out/startup-registry.bin
/usr/bin/python3 "$ROOT/bench/startup.py" --json "$OUT" "${ARGS[@]}" "$@"
