#!/usr/bin/env bash
# Arrival delay of a team at a high rate, for io-interval A/B runs: a
# splitter fed raw audio in real time (16 channels of S32LE at 48 kHz:
# 24.6 Mb/s, 20 s), N-1 gst-launch peers and one observing peer whose stats
# are printed every 250 ms (tests/e2e/e2e_launch.py). Prints the median,
# 90th percentile and largest `chunk-delay-us` (the latest chunk's arrival
# delay above the smallest seen, 1 ms resolution) over the steady part of
# the stream (after 5 s, before its last second), and the chunks it lost.
#
#   bench/high-rate-delay.sh [N] [p2pspsrc property=value...]
#   bench/high-rate-delay.sh 5 io-interval=0      # a round per datagram
#   bench/high-rate-delay.sh 5                    # the default (automatic)
#
# Loopback only, no root; needs the plugin built (GST_PLUGIN_PATH, default
# build/plugin) and PyGObject. Cleans up its processes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-5}
shift || true
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugin}
OUT=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

/usr/bin/python3 "$ROOT/tests/e2e/e2e_launch.py" audiotestsrc is-live=true \
  samplesperbuffer=480 num-buffers=2000 ! \
  audio/x-raw,format=S32LE,rate=48000,channels=16 ! \
  p2pspsplittersink name=splitter host=127.0.0.1 port=0 \
  wait-for-peers="$N" >"$OUT/splitter.log" 2>&1 &
SPLITTER=$!
PIDS+=("$SPLITTER")
PORT=""
for _ in $(seq 100); do
  PORT=$(grep -oE "current-port = [1-9][0-9]*" "$OUT/splitter.log" |
    tail -1 | awk '{print $3}' || true)
  [[ -n "$PORT" ]] && break
  sleep 0.1
done
[[ -n "$PORT" ]] || { echo "the splitter did not start" >&2; exit 1; }
URI="p2psp://127.0.0.1:$PORT"
for _ in $(seq $((N - 1))); do
  gst-launch-1.0 -q p2pspsrc uri="$URI" latency=200 "$@" ! fakesink \
    >/dev/null 2>&1 &
  PIDS+=($!)
done
E2E_STATS_INTERVAL_MS=250 /usr/bin/python3 "$ROOT/tests/e2e/e2e_launch.py" \
  p2pspsrc name=src uri="$URI" latency=200 "$@" ! fakesink \
  >"$OUT/observer.log" 2>&1 &
OBSERVER=$!
PIDS+=("$OBSERVER")
wait "$SPLITTER" || true
sleep 2
kill -INT "$OBSERVER" 2>/dev/null || true
wait "$OBSERVER" 2>/dev/null || true

/usr/bin/python3 - "$OUT/observer.log" <<'PY'
import re, statistics, sys
lines = [l.replace("\\", "") for l in open(sys.argv[1]) if l.startswith("STATS src")]
if len(lines) < 30:
    sys.exit(f"only {len(lines)} stats lines from the observer")
delays = sorted(int(m.group(1)) / 1000 for l in lines[20:-4]
                for m in [re.search(r"chunk-delay-us=\(guint64\)(\d+)", l)] if m)
lost = re.search(r"[ ,]lost=\(guint64\)(\d+)", lines[-1])
print(f"chunk-delay-us over {len(delays)} samples: median {statistics.median(delays):.0f} ms, "
      f"p90 {delays[int(0.9 * len(delays))]:.0f} ms, max {delays[-1]:.0f} ms; "
      f"lost {lost.group(1) if lost else '?'}")
PY
