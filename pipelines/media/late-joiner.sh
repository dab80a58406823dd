#!/bin/bash
# A late joiner decodes from its first buffer, whatever the container.
#
#   pipelines/media/late-joiner.sh FORMAT [OUTDIR]
#
# FORMAT (what the live splitter sends; test sources, WIDTH x HEIGHT at 25 fps):
#   ogg-theora   Ogg: Theora + Vorbis
#   ogg-opus     Ogg: Opus, audio only
#   webm-vp8     WebM: VP8 + Opus
#   mkv-vp9      Matroska: VP9 + Vorbis
#   ts-h264      MPEG-TS: H.264 (x264enc, gstreamer1.0-plugins-ugly)
#
# The splitter streams live for JOIN + REC s (and records what it sends,
# source.*); a peer joins after JOIN s, in the middle of the stream, and
# records until the splitter's end of stream reaches it.  (Stopping the peer
# with SIGINT instead would cut the last MPEG-TS frame in the middle, and the
# decoder would rightly complain about it.)  Its recording must decode from its first byte: the peer
# starts with the caps' streamheader (Ogg/Matroska headers, or nothing for
# TS) and then the first keyframe.  It is checked with real decoders
# (pipelines/media/p2psp-decode.py): no error or warning from the demuxer,
# parser or decoder, every encoded frame decoded, no hole, and the decoded
# duration (frames / 25 fps, samples / rate) close to the recorded time.
# As a control, the same check must reject the source's second half (cut
# with tail -c: mid-stream bytes without headers, not at a keyframe).
#
# Env: JOIN (3), REC (about 3.5: the stream lasts JOIN + REC s, whole
#      seconds), WIDTH x HEIGHT (320x240).
# Exit 0 when the peer's file passes and the control fails.
set -u
FORMAT=${1:?usage: late-joiner.sh FORMAT [OUTDIR]}
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-late-$FORMAT.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
JOIN=${JOIN:-3}
REC=${REC:-3.5}
SECS=$(awk -v j="$JOIN" -v r="$REC" 'BEGIN { printf "%d", j + r + 0.5 }')
V=$(video_src "$SECS")
A=$(audio_src "$SECS")

case "$FORMAT" in
  # max-page-delay: one video frame per Ogg page whatever the CPU speed. With
  # the default 0.5 s, a slow machine (ASan) packs up to 12 frames in a page;
  # a file that starts with such a page (as any joiner's or Icecast
  # listener's does) makes oggdemux put the frames before the page's granule
  # ahead of the segment and theoradec warn of decreasing timestamps.
  ogg-theora) ext=ogg
    desc="$V ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux max-page-delay=40000000 $A ! vorbisenc ! queue ! mux. mux." ;;
  ogg-opus) ext=opus
    desc="$A ! opusenc ! oggmux" ;;
  webm-vp8) ext=webm
    desc="$V ! vp8enc keyframe-max-dist=10 deadline=1 cpu-used=8 ! queue ! webmmux streamable=true name=mux $A ! opusenc ! queue ! mux. mux." ;;
  mkv-vp9) ext=mkv
    desc="$V ! vp9enc keyframe-max-dist=10 deadline=1 cpu-used=8 ! queue ! matroskamux streamable=true name=mux $A ! vorbisenc ! queue ! mux. mux." ;;
  ts-h264) ext=ts
    desc="$V ! x264enc tune=zerolatency key-int-max=10 speed-preset=ultrafast ! h264parse config-interval=-1 ! queue ! mpegtsmux" ;;
  *) echo "unknown format $FORMAT" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086  # the description is word-split on purpose
run_bg splitter gst-launch-1.0 -e -v $desc ! tee name=t \
  t. ! queue ! filesink location="$OUT/source.$ext" \
  t. ! queue ! p2pspsplittersink host=127.0.0.1 port=0
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
log "$FORMAT: splitter on 127.0.0.1:$PORT, ${SECS}s live; a peer joins after ${JOIN}s"
sleep "$JOIN"
run_bg peer gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! \
  filesink location="$OUT/peer.$ext"
PEER=$LAST_PID
rc=0
T0=$(wait_playing peer 20) || { log "the peer never went to PLAYING"; exit 1; }
wait_exit "$SPLITTER" $((SECS + 15)) || { log "the splitter did not finish"; rc=1; }
log "splitter finished (exit $RC), source.$ext $(stat -c %s "$OUT/source.$ext") bytes"
[ "$RC" = 0 ] || rc=1
# The peer's time in the team, PLAYING to end of stream: the splitter
# exits its linger (p2pspsplittersink's default, 500 ms) after the end.
T1=$(date +%s.%N)
RECORDED=$(awk -v a="$T0" -v b="$T1" -v l="$SPLITTER_LINGER_S" 'BEGIN { printf "%.2f", b - l - a }')
wait_exit "$PEER" 10 || { log "the peer did not get EOS"; rc=1; }
log "peer recorded ${RECORDED}s: exit $RC, $(stat -c %s "$OUT/peer.$ext" 2>/dev/null || echo 0) bytes"
[ "$RC" = 0 ] || rc=1

# The recording starts at most a GOP (0.4 s) plus the joining time after
# the peer's pipeline went to PLAYING: expect >= 60 % of the recorded time.
"$P2PSP_DECODE" "$OUT/peer.$ext" --expect-seconds "$RECORDED" --min-ratio 0.6 | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
size=$(stat -c %s "$OUT/source.$ext")
tail -c $((size / 2)) "$OUT/source.$ext" >"$OUT/control.$ext"
if "$P2PSP_DECODE" "$OUT/control.$ext" --expect-seconds "$RECORDED" --min-ratio 0.6 >"$OUT/control.txt"; then
  log "control: the check ACCEPTS the source's raw second half: too weak"
  rc=1
else
  log "control: the check rejects the source's raw second half ($(grep -c '^  ' "$OUT/control.txt") problems)"
fi
log "$FORMAT: $([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
