#!/bin/bash
# Cascaded teams: one pipeline is a peer of team A and the splitter of team B.
#
#   source ! p2pspsplittersink (A) --> team A: p2pspsrc ! filesink (a watching peer)
#                                             p2pspsrc uri=p2psp://A ! p2pspsplittersink port=0 (B)
#                                                                        |
#                                    team B: PEERS_B x p2pspsrc <-------+
#
# The relay is a single gst-launch-1.0: what it rebuilds as a member of team
# A (caps and streamheader included) is cut again into chunks for team B, so
# an audience can grow by teams of teams, each splitter uploading about one
# copy of the stream.  The order of start makes every member of both teams
# join before the first byte (splitter A waits for the relay and the watching
# peer, which starts only once team B is complete; the relay's splitter waits
# for team B), so every recording must be byte-identical to the source; each
# is also decoded (pipelines/media/p2psp-decode.py).
#
#   pipelines/cascade/two-teams.sh [OUTDIR]
# Env: PEERS_B (2), SECS (stream length in s, 6), WIDTH x HEIGHT (320x240).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-cascade.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
PEERS_B=${PEERS_B:-2}
SECS=${SECS:-6}

run_bg splitter-a gst-launch-1.0 -e -v \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux ! \
  tee name=t t. ! queue ! filesink location="$OUT/source.ogg" \
  t. ! queue ! p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers=2 \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SPLITTER_A=$LAST_PID
PORT_A=$(wait_port splitter-a "$SPLITTER_A") || exit 1
log "team A: splitter on 127.0.0.1:$PORT_A"

run_bg relay gst-launch-1.0 -e -v \
  p2pspsrc uri="p2psp://127.0.0.1:$PORT_A" ! \
  p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers="$PEERS_B"
RELAY=$LAST_PID
PORT_B=$(wait_port relay "$RELAY") || exit 1
log "team B: the relay (a peer of A) is its splitter on 127.0.0.1:$PORT_B"

BPIDS=()
for i in $(seq "$PEERS_B"); do
  run_bg "b-peer$i" gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT_B" ! \
    filesink location="$OUT/b-peer$i.ogg"
  BPIDS+=("$LAST_PID")
done
wait_log relay "num-peers = $PEERS_B" 15 || { log "team B did not fill up"; exit 1; }
run_bg a-peer gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$PORT_A" ! \
  filesink location="$OUT/a-peer.ogg"
A_PEER=$LAST_PID
log "team A: relay + a-peer; team B: $PEERS_B peers; streaming ${SECS}s"

rc=0
wait_exit "$SPLITTER_A" $((SECS + 20)) || { log "splitter A did not finish"; exit 1; }
log "splitter A finished (exit $RC)"
[ "$RC" = 0 ] || rc=1
wait_exit "$RELAY" 15 || rc=1
log "relay finished (exit $RC)"
[ "$RC" = 0 ] || rc=1
names=(a-peer) pids=("$A_PEER")
for i in $(seq "$PEERS_B"); do names+=("b-peer$i"); pids+=("${BPIDS[$((i - 1))]}"); done
for k in "${!names[@]}"; do
  n=${names[$k]}
  wait_exit "${pids[$k]}" 15 || rc=1
  prc=$RC
  if cmp -s "$OUT/source.ogg" "$OUT/$n.ogg"; then
    same="identical to source.ogg"
  else
    same="DIFFERS from source.ogg"
    rc=1
  fi
  [ "$prc" = 0 ] || rc=1
  log "$n: exit $prc, $(stat -c %s "$OUT/$n.ogg" 2>/dev/null || echo 0) bytes, $same"
  "$P2PSP_DECODE" "$OUT/$n.ogg" --expect-seconds "$SECS" --min-ratio 0.9 | sed 's/^/    /'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
