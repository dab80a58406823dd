#!/usr/bin/env bash
# Where a peer's time goes: a team of N gst-launch peers (default 20) and a
# splitter at 1 Mb/s in a private network namespace; perf samples 4 of the
# peers for S seconds (default 20). Prints the flat profile by shared object
# and by symbol. Needs the plugin built (bench/run.sh builds build-bench/).
#
#   bench/profile.sh [N] [S] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20} S=${2:-20} OUT=${3:-bench/out/profile}
mkdir -p "$OUT"
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$PWD/build-bench/plugin}
MEDIA=$(ls -S bench/out/media-*.ogg | head -1)
NS=p2bp$$
cleanup() {
  for pid in $(ip netns pids $NS 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in $(ip netns pids $NS 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del $NS 2>/dev/null || true
}
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
X="ip netns exec $NS"
$X gst-launch-1.0 -q filesrc location="$MEDIA" ! oggdemux ! theoraparse \
  ! oggmux max-delay=40000000 max-page-delay=40000000 \
  ! p2pspsplittersink host=127.0.0.1 port=4552 >"$OUT/splitter.log" 2>&1 &
sleep 1
PIDS=()
for i in $(seq "$N"); do
  $X gst-launch-1.0 -q p2pspsrc uri=p2psp://127.0.0.1:4552 ! fakesink >>"$OUT/peers.log" 2>&1 &
  PIDS+=($!)
done
sleep 5
SAMPLED=$(IFS=,; echo "${PIDS[*]:0:4}")
perf record -q -F 1999 --call-graph dwarf,8192 -o "$OUT/perf.data" -p "$SAMPLED" -- sleep "$S" 2>/dev/null
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
echo
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
