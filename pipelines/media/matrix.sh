#!/bin/bash
# One row of the media matrix (issue 13): a live encoder feeds the splitter
# over a real transport, a peer joins after JOIN s and records until the
# stream ends (about REC s), and an outside decoder (FFmpeg,
# pipelines/media/ffcheck.py) must decode the recording for >= MIN_RATIO of
# the recorded time with no error.
#
#   pipelines/media/matrix.sh ROW [OUTDIR]      (matrix.sh --list: the rows)
#
# ROW = FORMAT-FEED-PARSER:
#   FORMAT  ogg-theora-vorbis, ogg-vp8-opus, ts-h264-aac, webm-vp8-opus,
#           webm-vp9-opus, flv-h264-aac, mp3, aac (ADTS)
#   FEED    icecast  source --shout2send (or HTTP PUT)--> icecast2 -->
#                    souphttpsrc ! PARSER ! p2pspsplittersink
#           udp      source ! udpsink  -->  udpsrc ! PARSER ! splitter
#           srt      source ! srtsink (listener)  -->  srtsrc ! PARSER ! ...
#           tcp      source ! tcpserversink  -->  tcpclientsrc ! PARSER ! ...
#   PARSER  raw (no parser, no caps: the splitter typefinds), oggparse,
#           tsparse, matroskaparse
# The splitter's pipeline is what a user writes, unchanged. The source lasts
# JOIN + REC + 1 s; the recorded time is the peer's PLAYING to its end of
# stream. The row's result line (RESULT ...) is what bench/media-matrix.sh
# tabulates.
#
# Env: JOIN (3), REC (6), MIN_RATIO (0.9), ICY (extra souphttpsrc
# properties, e.g. ICY=iradio-mode=false: no ICY metadata from Icecast;
# unset, radio mounts carry it and the splitter strips it). Exit 0 pass, 1 fail, 77 when an
# element or tool it needs is missing.
set -u
ROWS="ogg-theora-vorbis-icecast-oggparse ogg-theora-vorbis-icecast-raw
ogg-vp8-opus-tcp-oggparse ogg-vp8-opus-tcp-raw
ts-h264-aac-udp-raw ts-h264-aac-udp-tsparse ts-h264-aac-srt-raw
webm-vp8-opus-icecast-matroskaparse webm-vp9-opus-icecast-raw
flv-h264-aac-tcp-raw mp3-icecast-raw aac-icecast-raw"
if [ "${1:-}" = --list ]; then echo $ROWS; exit 0; fi
ROW=${1:?usage: matrix.sh ROW [OUTDIR] (matrix.sh --list)}
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-matrix-$ROW.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../icecast/icecast-lib.sh"
FFCHECK=$(dirname "$P2PSP_DECODE")/ffcheck.py
JOIN=${JOIN:-3}
REC=${REC:-6}
MIN_RATIO=${MIN_RATIO:-0.9}
SECS=$(awk -v j="$JOIN" -v r="$REC" 'BEGIN { printf "%d", j + r + 1.5 }')
PARSER=${ROW##*-}
rest=${ROW%-*}
FEED=${rest##*-}
FORMAT=${rest%-*}
V=$(video_src "$SECS")
A=$(audio_src "$SECS")
X264="x264enc tune=zerolatency key-int-max=$FPS speed-preset=ultrafast ! h264parse"
VPX="deadline=1 cpu-used=8 keyframe-max-dist=$FPS"

skip() { log "SKIP: $*"; exit 77; }
need() { local e; for e in "$@"; do gst-inspect-1.0 "$e" >/dev/null 2>&1 || skip "no $e"; done; }
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || skip "no ffmpeg/ffprobe (apt-get install ffmpeg)"

# The encoder: MUX (what ends in the muxer), TAIL (a second branch into it).
case "$FORMAT" in
  ogg-theora-vorbis) ext=ogg ctype=application/ogg; need theoraenc vorbisenc oggmux
    # max-page-delay: one video frame per page (see late-joiner.sh).
    MUX="$V ! theoraenc keyframe-freq=$FPS keyframe-force=$FPS ! queue ! oggmux name=mux max-page-delay=40000000"
    TAIL="$A ! vorbisenc ! queue ! mux." ;;
  ogg-vp8-opus) ext=ogg ctype=application/ogg; need vp8enc opusenc oggmux
    MUX="$V ! vp8enc $VPX ! queue ! oggmux name=mux max-page-delay=40000000"
    TAIL="$A ! opusenc ! queue ! mux." ;;
  ts-h264-aac) ext=ts; need x264enc voaacenc aacparse mpegtsmux
    # alignment=7: 1316-byte buffers, one UDP datagram each.
    MUX="$V ! $X264 ! queue ! mpegtsmux name=mux alignment=7"
    TAIL="$A ! voaacenc ! aacparse ! queue ! mux." ;;
  webm-vp8-opus | webm-vp9-opus) ext=webm ctype=video/webm
    enc=${FORMAT#webm-}; enc=${enc%-opus}enc; need "$enc" opusenc webmmux
    MUX="$V ! $enc $VPX ! queue ! webmmux name=mux streamable=true"
    TAIL="$A ! opusenc ! queue ! mux." ;;
  flv-h264-aac) ext=flv; need x264enc voaacenc aacparse flvmux
    MUX="$V ! $X264 ! queue ! flvmux name=mux streamable=true"
    TAIL="$A ! voaacenc ! aacparse ! queue ! mux." ;;
  mp3) ext=mp3 ctype=audio/mpeg; need lamemp3enc mpegaudioparse
    MUX="$A ! lamemp3enc target=bitrate bitrate=128 ! mpegaudioparse"; TAIL= ;;
  aac) ext=aac ctype=audio/aac; need voaacenc aacparse
    MUX="$A ! voaacenc bitrate=128000 ! aacparse ! audio/mpeg,stream-format=adts"; TAIL= ;;
  *) echo "unknown format $FORMAT" >&2; exit 2 ;;
esac
case "$PARSER" in
  raw) PARSE=identity ;;
  oggparse | matroskaparse) PARSE=$PARSER; need "$PARSER" ;;
  # tsparse reports a latency (100 ms), and in one thread with udpsrc the
  # splitter (a sink that syncs, like udpsink or tcpserversink) then waits
  # that long for every datagram: 10 datagrams a second get through, the
  # socket overflows, and GStreamer warns "Pipeline construction is invalid,
  # please add queues". The queue it asks for is part of this pipeline.
  tsparse) PARSE="tsparse ! queue"; need "$PARSER" ;;
  *) echo "unknown parser $PARSER" >&2; exit 2 ;;
esac

# put.py PORT MOUNT TYPE: stdin to Icecast as a source (HTTP PUT, as
# Icecast 2.4 takes it from ffmpeg or curl): shout2send takes no AAC.
cat >"$OUT/put.py" <<'PY'
import base64, os, socket, sys
port, mount, ctype = int(sys.argv[1]), sys.argv[2], sys.argv[3]
auth = base64.b64encode(b"source:" + os.environ["ICECAST_PASSWORD"].encode()).decode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"PUT {mount} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
          f"Content-Type: {ctype}\r\nIce-Public: 0\r\n\r\n".encode())
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    s.sendall(b)
s.close()
PY
export ICECAST_PASSWORD

case "$FEED" in
  icecast)
    need shout2send souphttpsrc
    [ -n "$ICECAST_BIN" ] || skip "no icecast2"
    icecast_start origin "$OUT/icecast" || exit 1
    ICE=$ICECAST_PORT
    on_exit icecast_stop "$ICECAST_PID"
    MOUNT=/live.$ext
    if [ "$FORMAT" = aac ]; then
      # shellcheck disable=SC2086
      run_bg source bash -c "gst-launch-1.0 -q -e $MUX ! fdsink fd=1 $TAIL | /usr/bin/python3 $OUT/put.py $ICE $MOUNT $ctype"
    else
      # shellcheck disable=SC2086
      run_bg source gst-launch-1.0 -e $MUX ! shout2send ip=127.0.0.1 port="$ICE" \
        password="$ICECAST_PASSWORD" mount="$MOUNT" $TAIL
    fi
    SOURCE=$LAST_PID
    icecast_wait_mount "$ICE" "$MOUNT" 10 || { cat "$OUT/source.log"; log "no source on $MOUNT"; exit 1; }
    SRC="souphttpsrc location=http://127.0.0.1:$ICE$MOUNT ${ICY:-}" ;;
  udp)
    need udpsink udpsrc
    P=$(icecast_free_port)
    SRC="udpsrc address=127.0.0.1 port=$P" ;;
  srt)
    need srtsink srtsrc
    P=$(icecast_free_port)
    # An SRT sender must stay connected after its last packet for longer
    # than the link's latency (125 ms): the receiver holds every packet that
    # long before it hands it on, and srtsrc (1.22) drops what it still
    # holds when the sender closes, which cut the stream's last PES. A
    # gst-launch pipeline ends at its last sink's EOS, so a silent branch
    # that ends 0.5 s after the stream keeps srtsink connected (cookbook
    # recipe 6c); the 0.5 s are those the other feeds get between the
    # source's end and the splitter's. The tee keeps a copy of what the
    # source sent, to check the recording's tail against.
    SOURCE_COPY=$OUT/source.$ext
    # shellcheck disable=SC2086
    run_bg source gst-launch-1.0 -e $MUX ! tee name=feed ! queue ! \
      srtsink uri="srt://127.0.0.1:$P?mode=listener" feed. ! queue ! filesink location="$SOURCE_COPY" $TAIL \
      audiotestsrc is-live=true wave=silence samplesperbuffer=4800 num-buffers=$((SECS * 10 + 5)) ! \
      audio/x-raw,rate=48000 ! fakesink sync=true
    SOURCE=$LAST_PID
    SRC="srtsrc uri=srt://127.0.0.1:$P?mode=caller" ;;
  tcp)
    need tcpserversink tcpclientsrc
    P=$(icecast_free_port)
    # shellcheck disable=SC2086
    run_bg source gst-launch-1.0 -e $MUX ! tcpserversink host=127.0.0.1 port="$P" $TAIL
    SOURCE=$LAST_PID
    wait_playing source 20 >/dev/null || { log "the source never went to PLAYING"; exit 1; }
    SRC="tcpclientsrc host=127.0.0.1 port=$P" ;;
  *) echo "unknown feed $FEED" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086
run_bg splitter gst-launch-1.0 -e -v $SRC ! $PARSE ! p2pspsplittersink host=127.0.0.1 port=0
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
if [ "$FEED" = udp ]; then
  # UDP: the receiver first, else the stream's head is lost.
  # shellcheck disable=SC2086
  run_bg source gst-launch-1.0 -e $MUX ! udpsink host=127.0.0.1 port="$P" $TAIL
  SOURCE=$LAST_PID
fi
log "$ROW: splitter on 127.0.0.1:$PORT ($SRC ! $PARSE), ${SECS}s live; a peer joins after ${JOIN}s"
sleep "$JOIN"
# Unbuffered: the file's mtime is when the stream's last bytes came.
run_bg peer gst-launch-1.0 -e -m p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! filesink buffer-mode=unbuffered location="$OUT/peer.$ext"
PEER=$LAST_PID
rc=0
T0=$(wait_playing peer 20) || { log "the peer never went to PLAYING"; exit 1; }
wait_exit "$SOURCE" $((SECS + 20)) || { log "the source did not finish"; rc=1; }
SOURCE_END=$(date +%s.%N)
[ "$RC" = 0 ] || { log "source exit $RC"; tail -5 "$OUT/source.log"; rc=1; }
# Icecast and TCP feeds end with the source; UDP and SRT need an EOS
# (gst-launch -e on SIGINT), which the splitter passes on to the peer. The
# SRT source has held its link for 0.5 s after the stream already.
case "$FEED" in
  udp) sleep 0.5; stop_proc "$SPLITTER" 10 ;;
  srt) stop_proc "$SPLITTER" 10 ;;
  *) wait_exit "$SPLITTER" 5 || stop_proc "$SPLITTER" 10 ;;
esac
[ "$RC" = 0 ] || { log "splitter exit $RC"; rc=1; }
# The recorded time: the peer's PLAYING to the last bytes it wrote (a feed
# that runs behind the source, as through Icecast, ends later than the
# source), and never before the source's end: a recording that stops early
# counts the time it missed. Not to the peer's EOS: the splitter holds the
# end of stream for its linger (500 ms), when there is nothing to record.
wait_exit "$PEER" 10 || { log "the peer did not get EOS"; stop_proc "$PEER" 5; rc=1; }
[ "$RC" = 0 ] || { log "peer exit $RC"; rc=1; }
T1=$(awk -v a="$(stat -c %.9Y "$OUT/peer.$ext" 2>/dev/null || echo 0)" -v b="$SOURCE_END" \
  'BEGIN { x = a + 0; y = b + 0; printf "%.9f", (x > y) ? x : y }')
RECORDED=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
size=$(stat -c %s "$OUT/peer.$ext" 2>/dev/null || echo 0)
start=$(grep -a -o 'GstP2pspSrcStart, status=(string)started[^;]*started-at=(string)[a-z-]*' "$OUT/peer.log" | head -1)
log "peer recorded ${RECORDED}s, $size bytes; ${start:-no GstP2pspSrcStart started}"
# --max-extra: the join burst starts the recording at the latest keyframe,
# up to a GOP (1 s) before the join.
"$FFCHECK" "$OUT/peer.$ext" --expect-seconds "$RECORDED" --min-ratio "$MIN_RATIO" --max-extra 2.5 --json "$OUT/ffcheck.json" |
  sed 's/^/    /' | tee "$OUT/ffcheck.txt"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
ratio=$(sed -n 's/.*"ratio": \([0-9.]*\).*/\1/p' "$OUT/ffcheck.json" | head -1)
errs=$(grep -c '^      ffmpeg: ' "$OUT/ffcheck.txt" | head -1)
if [ "$ext" = ts ] && [ "$errs" != 0 ]; then
  # Where an FFmpeg error comes from: a recording made of whole packets
  # with no continuity-counter gap holds what the splitter received, in
  # order, up to its end (an error then is in the feed, as when TS over SRT
  # ended inside a PES, cookbook recipe 6c). Informative only.
  /usr/bin/python3 - "$OUT/peer.$ext" <<'PY' | sed 's/^/    /'
import sys
d = open(sys.argv[1], "rb").read()
cc, gaps, bad, seen_gap = {}, 0, 0, set()
header_pids = {((d[i + 1] & 0x1F) << 8) | d[i + 2] for i in (0, 188) if len(d) >= i + 188}
for i in range(0, len(d) - 187, 188):
    p = d[i:i + 188]
    if p[0] != 0x47:
        bad += 1
        continue
    pid = ((p[1] & 0x1F) << 8) | p[2]
    if p[3] & 0x10:
        c = p[3] & 15
        # The join's PAT/PMT come first, copies whose counters need not
        # run on into the stream's next ones: a PID's first jump is allowed.
        if pid in cc and (cc[pid] + 1) % 16 != c:
            if pid in seen_gap or pid not in header_pids:
                gaps += 1
            seen_gap.add(pid)
        cc[pid] = c
print(f"peer TS: {len(d)} bytes ({len(d) % 188} past whole packets), "
      f"{bad} packets out of sync, {gaps} continuity gaps after the headers")
PY
fi
if [ -n "${SOURCE_COPY:-}" ]; then
  # Whatever the decoder says, the team must deliver the feed to its very
  # end: the recording's tail must be the source's tail, byte for byte.
  /usr/bin/python3 - "$SOURCE_COPY" "$OUT/peer.$ext" <<'PY' | sed 's/^/    /'
import sys
src, rec = (open(f, "rb").read() for f in sys.argv[1:3])
n = min(len(rec) // 2, 65536)
if n and src.endswith(rec[-n:]):
    print(f"tail: the recording ends with the source's last {n} bytes")
    sys.exit(0)
at = src.rfind(rec[-1316:]) if len(rec) >= 1316 else -1
print("tail: the recording does not end with the source's end"
      + (f" ({len(src) - at - 1316} bytes of the source's tail missing)" if at >= 0 else ""))
sys.exit(1)
PY
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
echo "RESULT $ROW recorded=$RECORDED ratio=${ratio:-0} ffmpeg_errors=$((errs)) started_at=${start##*started-at=(string)} $([ $rc = 0 ] && echo PASS || echo FAIL)"
log "$ROW: $([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
