#!/bin/bash
# A splitter joins an Icecast tree as a plain listener and feeds a P2PSP team.
#
#   source --shout2send--> Icecast 2 --HTTP--> souphttpsrc ! oggparse ! p2pspsplittersink
#                                                                   |
#                                          PEERS x p2pspsrc <-------+ (team)
#
# A real Icecast 2 server is started on loopback with a generated config (its
# own temp directory, logs and pid file) and stopped at the end.  The source
# is a live test picture and tone, Theora + Vorbis in Ogg, sent to the mount
# /live.ogg by shout2send.  The splitter takes the mount with souphttpsrc;
# oggparse puts the Ogg headers in the caps' streamheader, which the splitter
# hands to every peer that joins.  The splitter holds the stream until all
# PEERS peers are in (wait-for-peers), and also records what it got from
# Icecast (splitter-in.ogg): every peer's recording must be byte-identical to
# it.  When the source ends, Icecast closes the mount, the splitter gets EOS
# and the peers follow.  Every recording is then decoded (theoradec,
# vorbisdec) and checked (pipelines/media/p2psp-decode.py).
#
#   pipelines/icecast/icecast-to-team.sh [OUTDIR]
# Env: PEERS (2), SECS (stream length in s, 8), WIDTH x HEIGHT (320x240).
# Exit 0 when every peer's file is identical to splitter-in.ogg and decodes.
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-icecast.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
. "$(dirname "$0")/icecast-lib.sh"
PEERS=${PEERS:-2}
SECS=${SECS:-8}
MOUNT=/live.ogg

icecast_start origin "$OUT/icecast-origin" || exit 1
ICE=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
log "Icecast on 127.0.0.1:$ICE (pid $ICECAST_PID, files in $OUT/icecast-origin)"

run_bg source gst-launch-1.0 -e \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux ! \
  shout2send ip=127.0.0.1 port="$ICE" password="$ICECAST_PASSWORD" mount="$MOUNT" \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SOURCE=$LAST_PID
icecast_wait_mount "$ICE" "$MOUNT" 10 || { cat "$OUT/source.log"; log "no source on $MOUNT"; exit 1; }
log "source streaming to http://127.0.0.1:$ICE$MOUNT"

run_bg splitter gst-launch-1.0 -e -v \
  souphttpsrc location="http://127.0.0.1:$ICE$MOUNT" ! oggparse ! tee name=t \
  t. ! queue ! filesink location="$OUT/splitter-in.ogg" \
  t. ! queue ! p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers="$PEERS"
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
log "splitter on 127.0.0.1:$PORT, listening to the mount"

PEER_PIDS=()
for i in $(seq "$PEERS"); do
  run_bg "peer$i" gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! \
    filesink location="$OUT/peer$i.ogg"
  PEER_PIDS+=("$LAST_PID")
done

wait_exit "$SOURCE" $((SECS + 20)) || { log "the source did not finish"; exit 1; }
log "source finished (exit $RC)"
rc=0
[ "$RC" = 0 ] || rc=1
wait_exit "$SPLITTER" 15 || { log "the splitter did not get EOS from Icecast"; rc=1; }
log "splitter finished (exit $RC), $(stat -c %s "$OUT/splitter-in.ogg") bytes from Icecast"
[ "$RC" = 0 ] || rc=1
for i in $(seq "$PEERS"); do
  wait_exit "${PEER_PIDS[$((i - 1))]}" 15 || rc=1
  prc=$RC
  if cmp -s "$OUT/splitter-in.ogg" "$OUT/peer$i.ogg"; then
    same="identical to splitter-in.ogg"
  else
    same="DIFFERS from splitter-in.ogg"
    rc=1
  fi
  [ "$prc" = 0 ] || rc=1
  log "peer$i: exit $prc, $(stat -c %s "$OUT/peer$i.ogg" 2>/dev/null || echo 0) bytes, $same"
  "$P2PSP_DECODE" "$OUT/peer$i.ogg" --expect-seconds "$SECS" --min-ratio 0.5 | sed 's/^/    /'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
