#!/bin/bash
# A late joiner decodes whatever feeds the splitter: a file through a parser,
# or raw bytes with no caps and no buffer flags (issue 13).
#
#   pipelines/media/late-joiner-feed.sh FEED [OUTDIR]
#
# FEED (the splitter's pipeline, unchanged from what a user writes):
#   ogg-oggparse  filesrc ! oggparse ! p2pspsplittersink   (Theora + Vorbis)
#   ogg-raw       filesrc ! identity ! p2pspsplittersink   (no parser, no caps)
#   ts-raw        filesrc ! identity ! p2pspsplittersink   (H.264 MPEG-TS)
#   webm-raw      filesrc ! identity ! p2pspsplittersink   (VP8 + Vorbis WebM)
#   webm-matroskaparse  filesrc ! matroskaparse ! p2pspsplittersink
#   flv-raw       filesrc ! identity ! p2pspsplittersink   (H.264 FLV)
# In the raw feeds `identity sleep-time` only paces the file like a network
# source would (a file has no clock): it adds no caps and no flags, so the
# splitter typefinds the stream and finds its start points and headers in
# the bytes (docs/protocol.md 7.3).
#
# A source file of SECS s (keyframe every second) is made first; the splitter
# streams it in real time; a peer joins after JOIN s and records until the
# splitter's end of stream reaches it. Its recording must decode from its
# first byte (pipelines/media/p2psp-decode.py: no demuxer/decoder warning,
# every frame decoded, no hole) for >= MIN_RATIO of the recorded time, and
# its p2pspsrc must have posted GstP2pspSrcStart started-at=keyframe.
#
# Env: JOIN (2.5), SECS (8), MIN_RATIO (0.5). Exit 0 pass, 1 fail.
set -u
FEED=${1:?usage: late-joiner-feed.sh FEED [OUTDIR]}
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-feed-$FEED.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
JOIN=${JOIN:-2.5}
SECS=${SECS:-8}
MIN_RATIO=${MIN_RATIO:-0.5}
FPS=25
V="videotestsrc num-buffers=$((SECS * FPS)) pattern=ball ! video/x-raw,width=160,height=120,framerate=$FPS/1"
A="audiotestsrc num-buffers=$((SECS * 22050 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=22050,channels=1"

case "$FEED" in
  ogg-*) ext=ogg
    # max-page-delay: one video frame per page (see late-joiner.sh).
    make="$V ! theoraenc keyframe-freq=$FPS keyframe-force=$FPS ! queue ! oggmux name=mux max-page-delay=40000000 $A ! vorbisenc ! queue ! mux. mux." ;;
  ts-*) ext=ts
    # pcr-interval: a PCR in every video PES, the keyframes' included. With
    # the default (40 ms) some keyframe packets carry none, and tsdemux
    # warns ("Not enough information to calculate proper timestamp") for
    # the joiner's first PES, though every frame still decodes.
    make="$V ! x264enc key-int-max=$FPS speed-preset=ultrafast tune=zerolatency ! h264parse ! queue ! mpegtsmux pcr-interval=900" ;;
  webm-*) ext=webm
    make="$V ! vp8enc keyframe-max-dist=$FPS deadline=1 cpu-used=8 ! queue ! webmmux streamable=true name=mux $A ! vorbisenc ! queue ! mux. mux." ;;
  flv-*) ext=flv
    make="$V ! x264enc key-int-max=$FPS speed-preset=ultrafast tune=zerolatency ! h264parse ! queue ! flvmux streamable=true" ;;
  *) echo "unknown feed $FEED" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086  # word-split on purpose
gst-launch-1.0 -q $make ! filesink location="$OUT/source.$ext" >"$OUT/make.log" 2>&1 ||
  { log "could not make the source file"; cat "$OUT/make.log"; exit 1; }
if [ "$ext" = flv ]; then
  # flvmux ends the file with an AVC end-of-sequence tag that flvdemux warns
  # about ("invalid video packet type 2"), in the source as in any copy:
  # drop it, so the check judges the join only.
  /usr/bin/python3 - "$OUT/source.flv" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, "rb").read())
n = int.from_bytes(d[-4:], "big")
tag = len(d) - 4 - n
if n >= 13 and tag > 0 and d[tag] == 9 and d[tag + 11] & 0x0F == 7 and d[tag + 12] == 2:
    open(path, "wb").write(d[:tag])
PY
fi
size=$(stat -c %s "$OUT/source.$ext")
case "$FEED" in
  *-oggparse) feed="filesrc location=$OUT/source.$ext ! oggparse" ;;
  *-matroskaparse) feed="filesrc location=$OUT/source.$ext ! matroskaparse" ;;
  *-raw)
    # 1 KiB buffers spread over SECS seconds.
    sleep_us=$((SECS * 1000000 / (size / 1024 + 1)))
    feed="filesrc location=$OUT/source.$ext blocksize=1024 ! identity sleep-time=$sleep_us" ;;
esac

# shellcheck disable=SC2086
run_bg splitter gst-launch-1.0 -e -v $feed ! p2pspsplittersink host=127.0.0.1 port=0
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
log "$FEED: splitter on 127.0.0.1:$PORT, $size bytes over ${SECS}s; a peer joins after ${JOIN}s"
sleep "$JOIN"
run_bg peer gst-launch-1.0 -e -m p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! \
  filesink location="$OUT/peer.$ext"
PEER=$LAST_PID
rc=0
T0=$(wait_playing peer 20) || { log "the peer never went to PLAYING"; exit 1; }
wait_exit "$SPLITTER" $((SECS + 15)) || {
  log "the splitter did not finish"
  dump_stuck splitter "$SPLITTER"
  rc=1
}
[ "$RC" = 0 ] || { log "splitter exit $RC"; rc=1; }
# PLAYING to end of stream: the splitter exits its linger after the end.
T1=$(date +%s.%N)
RECORDED=$(awk -v a="$T0" -v b="$T1" -v l="$SPLITTER_LINGER_S" 'BEGIN { printf "%.2f", b - l - a }')
wait_exit "$PEER" 10 || { log "the peer did not get EOS"; rc=1; }
log "peer recorded ${RECORDED}s: exit $RC, $(stat -c %s "$OUT/peer.$ext" 2>/dev/null || echo 0) bytes"
[ "$RC" = 0 ] || rc=1
start=$(grep -a -o 'GstP2pspSrcStart, status=(string)started[^;]*' "$OUT/peer.log" | head -1)
log "start: ${start:-none}"
case "$start" in
  *started-at=\(string\)keyframe*) ;;
  *) log "the peer did not start at a keyframe"; rc=1 ;;
esac
# --max-extra: the join burst (docs/protocol.md 7.4) starts the recording
# at the latest keyframe, a GOP (1 s) at most before the join in media
# time; more in wall-clock time, as identity paces the raw feeds by bytes
# and keyframes are the big frames.
"$P2PSP_DECODE" "$OUT/peer.$ext" --expect-seconds "$RECORDED" --min-ratio "$MIN_RATIO" --max-extra 2.5 | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
log "$FEED: $([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
