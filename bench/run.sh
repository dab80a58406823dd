#!/usr/bin/env bash
# gst-p2psp benchmark: p2pspsplittersink/p2pspsrc against Icecast 2 and raw UDP,
# in two network namespaces joined by a veth. See docs/benchmarks.md.
#
#   bench/run.sh [--quick] [--no-deps] [--out DIR]
#
# --quick: small teams and short windows (smoke test, about 3 minutes).
# Results: DIR/results.json (default bench/out/<date>), DIR/results.md and,
# for a full run, the plots in docs/benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0 DEPS=1 OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-deps) DEPS=0 ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-deps] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
OUT=${OUT:-$ROOT/bench/out/$(date +%Y%m%d-%H%M%S)$([[ $QUICK == 1 ]] && echo -quick || true)}
mkdir -p "$OUT"

if [[ $DEPS == 1 ]]; then
  P2PSP_SKIP_DEPS=${P2PSP_SKIP_DEPS:-0} scripts/install-deps.sh
  bench/install-deps.sh >"$OUT/install-deps.log" 2>&1
fi

# Build the plugin into a directory of our own (-O2 -g: fast, and perf can
# name the functions).
BUILD=$ROOT/build-bench
[[ -f $BUILD/build.ninja ]] || meson setup "$BUILD" --buildtype=debugoptimized -Dtests=disabled >"$OUT/meson.log"
ninja -C "$BUILD" plugin/libgstp2psp.so >"$OUT/ninja.log"
export GST_PLUGIN_PATH=$BUILD/plugin GST_REGISTRY_1_0=$OUT/registry.bin
gst-inspect-1.0 p2pspsrc >/dev/null

# The media: a 1 Mb/s Ogg/Theora stream, 640x360 at 25 frame/s, one keyframe
# per second (moving SMPTE bars with a clock overlay), encoded once and cached.
SECS=$([[ $QUICK == 1 ]] && echo 90 || echo 330)
mkdir -p "$ROOT/bench/out"
MEDIA=$ROOT/bench/out/media-${SECS}s.ogg
if [[ ! -s $MEDIA ]]; then
  echo "bench: encoding $SECS s of media into $MEDIA"
  gst-launch-1.0 -q videotestsrc pattern=smpte horizontal-speed=3 num-buffers=$((SECS * 25)) \
    ! video/x-raw,width=640,height=360,framerate=25/1 ! timeoverlay font-desc="Sans 40" \
    ! theoraenc bitrate=1000 keyframe-auto=false keyframe-force=25 keyframe-freq=25 \
    ! oggmux ! filesink location="$MEDIA.tmp"
  mv "$MEDIA.tmp" "$MEDIA"
fi

# Two namespaces and a veth: origin 10.77.0.1 (vo) <-> receivers 10.77.0.2 (vr).
NO=p2bo$$ NR=p2br$$
cleanup() {
  for ns in $NO $NR; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  sleep 0.5
  for ns in $NO $NR; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
ip netns add $NO
ip netns add $NR
ip link add vo netns $NO type veth peer name vr netns $NR
# A wire's bytes: a UDP GSO send would cross the veth as one packet, its
# headers counted once in the L2 figures.
ip -n $NO link set vo gso_max_segs 1
ip -n $NR link set vr gso_max_segs 1
ip -n $NO addr add 10.77.0.1/24 dev vo
ip -n $NR addr add 10.77.0.2/24 dev vr
for ns in $NO $NR; do ip -n "$ns" link set lo up; done
ip -n $NO link set vo up
ip -n $NR link set vr up

echo "bench: results in $OUT"
timeout 2400 /usr/bin/python3 bench/bench.py --origin $NO --receivers $NR --out "$OUT" \
  --media "$MEDIA" $([[ $QUICK == 1 ]] && echo --quick)
PLOTS=$([[ $QUICK == 1 ]] && echo "$OUT" || echo "$ROOT/docs/benchmarks")
/usr/bin/python3 bench/report.py "$OUT/results.json" --plots "$PLOTS" >"$OUT/results.md"
cat "$OUT/results.md"
