#!/bin/bash
# A late joiner of a team that an Icecast mount feeds.
#
#   source --shout2send--> Icecast --> souphttpsrc ! oggparse ! p2pspsplittersink
#                                                         ^
#                          p2pspsrc (joins after JOIN s) -+
#
# As icecast-to-team.sh, but the peer joins the running stream after JOIN
# seconds and records REC seconds: it must start with the stream headers and
# a keyframe, and decode about REC seconds (>= 60 %), like the late joiners
# of pipelines/media/late-joiner.sh.  What differs from those is the
# splitter's input: oggparse, which flags an Ogg page as a keyframe only
# when the page ends with a keyframe packet (rare); the splitter finds the
# keyframe pages itself (docs/protocol.md 7.3), so the cookbook's recipe 1
# pipeline needs no remux.
#
#   pipelines/icecast/icecast-late-joiner.sh [OUTDIR]
# Env: JOIN (3), REC (4), WIDTH x HEIGHT (320x240); PARSE: what sits
#      between souphttpsrc and the splitter (default oggparse; PARSE=identity
#      feeds the raw HTTP bytes, no parser).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-icecast-late.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
. "$(dirname "$0")/icecast-lib.sh"
# max-page-delay (the source's oggmux): one video frame per page whatever the
# CPU speed (see pipelines/media/late-joiner.sh: a joiner's first page
# holding many frames makes oggdemux and theoradec complain).
PARSE=${PARSE:-oggparse}
JOIN=${JOIN:-3}
REC=${REC:-4}
SECS=$((JOIN + REC + 3))

icecast_start origin "$OUT/icecast-origin" || exit 1
ICE=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
run_bg source gst-launch-1.0 -e \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux max-page-delay=40000000 ! \
  shout2send ip=127.0.0.1 port="$ICE" password="$ICECAST_PASSWORD" mount=/live.ogg \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SOURCE=$LAST_PID
icecast_wait_mount "$ICE" /live.ogg 10 || { cat "$OUT/source.log"; log "no source"; exit 1; }
run_bg splitter gst-launch-1.0 -e -v \
  souphttpsrc location="http://127.0.0.1:$ICE/live.ogg" ! $PARSE ! \
  p2pspsplittersink host=127.0.0.1 port=0
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
log "Icecast on 127.0.0.1:$ICE, splitter on 127.0.0.1:$PORT; a peer joins after ${JOIN}s"
sleep "$JOIN"
run_bg peer gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! filesink location="$OUT/peer.ogg"
PEER=$LAST_PID
T0=$(wait_playing peer 20) || { log "the peer never went to PLAYING"; exit 1; }
sleep "$REC"
kill -INT "$PEER"
RECORDED=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
rc=0
wait_exit "$PEER" 10 || rc=1
log "peer recorded ${RECORDED}s: exit $RC, $(stat -c %s "$OUT/peer.ogg") bytes"
[ "$RC" = 0 ] || rc=1
wait_exit "$SOURCE" $((SECS + 20)) || rc=1
wait_exit "$SPLITTER" 15 || rc=1
"$P2PSP_DECODE" "$OUT/peer.ogg" --expect-seconds "$RECORDED" --min-ratio 0.6 | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
