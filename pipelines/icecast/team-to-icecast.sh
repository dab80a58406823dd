#!/bin/bash
# A P2PSP team replaces the relay hop between two Icecast servers.
#
#   source --shout2send--> Icecast A --HTTP--> souphttpsrc ! oggparse ! p2pspsplittersink
#                                                                     | (team)
#                        p2pspsrc ! shout2send (a peer) <-------------+
#                              |
#                              v
#                          Icecast B --HTTP--> LISTENERS x souphttpsrc (plain listeners)
#
# Two real Icecast 2 servers run on loopback (generated configs, temp dirs,
# stopped at the end).  The source sends a live Theora + Vorbis test stream in
# Ogg to A's /live.ogg; the splitter listens to it; one peer of the team
# sends what it rebuilds to B's /relay.ogg with shout2send (where Icecast
# would have used a <relay> from A).  Plain HTTP listeners of B's mount -
# they know nothing of P2PSP - record it; one of them decodes it live
# (souphttpsrc ! oggdemux ! theoradec).  When the source ends, the end travels
# down the chain: A closes the mount, the splitter and the team get EOS, the
# relaying peer leaves B, B closes its mount, the listeners get EOS.  Each
# listener's recording is then decoded (pipelines/media/p2psp-decode.py).
#
#   pipelines/icecast/team-to-icecast.sh [OUTDIR]
# Env: LISTENERS (2), SECS (stream length in s, 10), WIDTH x HEIGHT (320x240).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-relay.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
. "$(dirname "$0")/icecast-lib.sh"
LISTENERS=${LISTENERS:-2}
SECS=${SECS:-10}

icecast_start a "$OUT/icecast-a" || exit 1
ICE_A=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
icecast_start b "$OUT/icecast-b" || exit 1
ICE_B=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
log "Icecast A on 127.0.0.1:$ICE_A, Icecast B on 127.0.0.1:$ICE_B"

run_bg source gst-launch-1.0 -e \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux ! \
  shout2send ip=127.0.0.1 port="$ICE_A" password="$ICECAST_PASSWORD" mount=/live.ogg \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SOURCE=$LAST_PID
icecast_wait_mount "$ICE_A" /live.ogg 10 || { cat "$OUT/source.log"; log "no source on A"; exit 1; }

# The splitter waits for 2 peers: the relaying peer and a watching one.
run_bg splitter gst-launch-1.0 -e -v \
  souphttpsrc location="http://127.0.0.1:$ICE_A/live.ogg" ! oggparse ! \
  p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers=2
SPLITTER=$LAST_PID
PORT=$(wait_port splitter "$SPLITTER") || exit 1
log "splitter on 127.0.0.1:$PORT takes http://127.0.0.1:$ICE_A/live.ogg"

run_bg relay gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! \
  shout2send ip=127.0.0.1 port="$ICE_B" password="$ICECAST_PASSWORD" mount=/relay.ogg
RELAY=$LAST_PID
run_bg peer gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT" ! \
  filesink location="$OUT/peer.ogg"
PEER=$LAST_PID
icecast_wait_mount "$ICE_B" /relay.ogg 15 || { tail "$OUT/relay.log"; log "the peer did not reach B"; exit 1; }
log "a peer of the team streams to http://127.0.0.1:$ICE_B/relay.ogg"

LPIDS=()
for i in $(seq "$LISTENERS"); do
  run_bg "listener$i" gst-launch-1.0 -e \
    souphttpsrc location="http://127.0.0.1:$ICE_B/relay.ogg" ! filesink location="$OUT/listener$i.ogg"
  LPIDS+=("$LAST_PID")
done
run_bg player gst-launch-1.0 \
  souphttpsrc location="http://127.0.0.1:$ICE_B/relay.ogg" ! oggdemux ! theoradec ! \
  videoconvert ! fakesink sync=true
PLAYER=$LAST_PID

rc=0
wait_exit "$SOURCE" $((SECS + 20)) || { log "the source did not finish"; exit 1; }
log "source finished (exit $RC)"
[ "$RC" = 0 ] || rc=1
for p in splitter:$SPLITTER relay:$RELAY peer:$PEER player:$PLAYER; do
  wait_exit "${p#*:}" 15 || rc=1
  log "${p%%:*} finished (exit $RC)"
  [ "$RC" = 0 ] || rc=1
done
for i in $(seq "$LISTENERS"); do
  wait_exit "${LPIDS[$((i - 1))]}" 10 || rc=1
  log "listener$i: exit $RC, $(stat -c %s "$OUT/listener$i.ogg" 2>/dev/null || echo 0) bytes"
  [ "$RC" = 0 ] || rc=1
  # Plain listeners join B mid-stream: expect at least half the stream.
  "$P2PSP_DECODE" "$OUT/listener$i.ogg" --expect-seconds "$SECS" --min-ratio 0.5 | sed 's/^/    /'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
