#!/bin/bash
# Generic players on a p2psp:// URI: gst-play-1.0, playbin and uridecodebin.
#
#   source ! p2pspsplittersink  <--- gst-play-1.0 "p2psp://127.0.0.1:PORT?latency=300"
#                               <--- playbin uri=p2psp://...       (p2psp-play.py)
#                               <--- uridecodebin uri=p2psp://...  (p2psp-play.py)
#
# Nothing names p2pspsrc: the players pick it for the p2psp scheme through its
# URI handler, and the URI's query keys set its properties (latency=300 here,
# reported back by the players).  The three join a live Theora + Vorbis team
# (the splitter waits for all three), play the whole stream in sync on the
# clock, and stop at the splitter's end of stream; each must have rendered
# about SECS x 25 frames and SECS x 48000 samples.  Then p2psp-play.py
# uri-check checks the URI handler: query keys, get_uri round trip, bad URIs.
#
#   pipelines/playback/play-uri.sh [OUTDIR]
# Env: SECS (stream length, 6), WIDTH x HEIGHT (320x240).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-play.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
PLAY=$(cd "$(dirname "$0")" && pwd)/p2psp-play.py
SECS=${SECS:-6}

run_bg splitter gst-launch-1.0 -e -v \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux ! \
  p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers=3 \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
URI="p2psp://127.0.0.1:$PORT?latency=300"
log "splitter on 127.0.0.1:$PORT; players on $URI"

# gst-play-1.0: each decoded picture, 8x8 grey, to a file (64 bytes each).
run_bg gst-play timeout $((SECS + 30)) gst-play-1.0 --no-interactive \
  --videosink "videoconvert ! videoscale ! video/x-raw,format=GRAY8,width=8,height=8 ! filesink location=$OUT/gst-play.gray" \
  --audiosink "fakesink sync=true" "$URI"
GSTPLAY=$LAST_PID
run_bg playbin /usr/bin/python3 "$PLAY" playbin "$URI" --seconds $((SECS + 30))
PLAYBIN=$LAST_PID
run_bg uridecodebin /usr/bin/python3 "$PLAY" uridecodebin "$URI" --seconds $((SECS + 30))
URIDEC=$LAST_PID

rc=0
wait_exit "$SPLITTER" $((SECS + 30)) || { log "the splitter did not finish (players did not join?)"; exit 1; }
log "splitter finished (exit $RC)"
[ "$RC" = 0 ] || rc=1
wait_exit "$GSTPLAY" 20 || rc=1
frames=$(($(stat -c %s "$OUT/gst-play.gray" 2>/dev/null || echo 0) / 64))
log "gst-play-1.0: exit $RC, $frames frames; $(grep -a -c -i error "$OUT/gst-play.log") lines with 'error'"
[ "$RC" = 0 ] || rc=1
grep -a -q -i 'error' "$OUT/gst-play.log" && { sed 's/^/    /' "$OUT/gst-play.log" | tail -5; rc=1; }
# Everyone joined before the first byte: all but a few frames must be there.
WANT_FRAMES=$((SECS * FPS * 95 / 100))
WANT_SAMPLES=$((SECS * 48000 * 95 / 100))
[ "$frames" -ge "$WANT_FRAMES" ] || { log "gst-play-1.0: $frames frames, want >= $WANT_FRAMES"; rc=1; }
for p in playbin:$PLAYBIN uridecodebin:$URIDEC; do
  wait_exit "${p#*:}" 20 || rc=1
  log "${p%%:*}: exit $RC"
  [ "$RC" = 0 ] || rc=1
  grep -a "^${p%%:*}:" "$OUT/${p%%:*}.log" | sed 's/^/    /'
  read -r f a < <(sed -n 's/.*: \([0-9]*\) video frames, \([0-9]*\) audio samples.*/\1 \2/p' "$OUT/${p%%:*}.log")
  if [ "${f:-0}" -lt "$WANT_FRAMES" ] || [ "${a:-0}" -lt "$WANT_SAMPLES" ]; then
    log "${p%%:*}: ${f:-0} frames, ${a:-0} samples; want >= $WANT_FRAMES and >= $WANT_SAMPLES"
    rc=1
  fi
done
log "URI handler:"
/usr/bin/python3 "$PLAY" uri-check >"$OUT/uri-check.log" 2>&1 || rc=1
sed 's/^/    /' "$OUT/uri-check.log"
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
