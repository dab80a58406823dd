#!/bin/bash
# Scaling out past one team: one Icecast server feeds several splitters, one
# team each.
#
#                                  +--> souphttpsrc ! oggparse ! p2pspsplittersink --> team 1 (PEERS peers)
#   source --> Icecast (/live.ogg) +--> souphttpsrc ! oggparse ! p2pspsplittersink --> team 2
#                                  +--> souphttpsrc ! oggparse ! p2pspsplittersink --> team 3
#
# A team's size is bounded by what its peers can upload (each peer sends
# (N-1)/N of the stream) and by the latency of a round; to serve more people,
# add teams: each splitter is one more Icecast listener (one copy of the
# stream out of Icecast) and uploads one copy to its team.  Icecast serves
# TEAMS copies instead of TEAMS x PEERS.  Each team's splitter holds the
# stream until its PEERS peers are in and records what it got from Icecast;
# every peer's recording must be byte-identical to its splitter's and decode
# (pipelines/media/p2psp-decode.py).  Icecast's listener count is read from
# its status page while the teams run.
#
#   pipelines/icecast/icecast-many-teams.sh [OUTDIR]
# Env: TEAMS (3), PEERS (2), SECS (stream length, 8), WIDTH x HEIGHT (320x240).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-teams.XXXXXX")}
mkdir -p "$OUT"
. "$(dirname "$0")/../media/lib.sh"
. "$(dirname "$0")/icecast-lib.sh"
TEAMS=${TEAMS:-3}
PEERS=${PEERS:-2}
SECS=${SECS:-8}

icecast_start origin "$OUT/icecast" || exit 1
ICE=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
run_bg source gst-launch-1.0 -e \
  $(video_src "$SECS") ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux ! \
  shout2send ip=127.0.0.1 port="$ICE" password="$ICECAST_PASSWORD" mount=/live.ogg \
  $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
SOURCE=$LAST_PID
icecast_wait_mount "$ICE" /live.ogg 10 || { cat "$OUT/source.log"; log "no source"; exit 1; }
log "Icecast on 127.0.0.1:$ICE, source on /live.ogg; $TEAMS teams of $PEERS peers"

SPL=() PEER_PIDS=()
for t in $(seq "$TEAMS"); do
  run_bg "splitter$t" gst-launch-1.0 -e -v \
    souphttpsrc location="http://127.0.0.1:$ICE/live.ogg" ! oggparse ! tee name=t \
    t. ! queue ! filesink location="$OUT/team$t-in.ogg" \
    t. ! queue ! p2pspsplittersink host=127.0.0.1 port=0 wait-for-peers="$PEERS"
  SPL+=("$LAST_PID")
  port=$(wait_port "splitter$t" "$LAST_PID") || exit 1
  for i in $(seq "$PEERS"); do
    run_bg "team$t-peer$i" gst-launch-1.0 -e p2pspsrc uri="p2psp://127.0.0.1:$port" ! \
      filesink location="$OUT/team$t-peer$i.ogg"
    PEER_PIDS+=("$LAST_PID")
  done
  log "team $t: splitter on 127.0.0.1:$port"
done
sleep 2
listeners=$(_icecast_get "$ICE" /status-json.xsl | grep -o '"listeners":[0-9]*' | head -1)
log "Icecast status while the teams run: ${listeners:-?} (one per team)"

rc=0
wait_exit "$SOURCE" $((SECS + 20)) || { log "the source did not finish"; exit 1; }
k=0
for t in $(seq "$TEAMS"); do
  wait_exit "${SPL[$((t - 1))]}" 15 || rc=1
  log "team $t: splitter exit $RC, $(stat -c %s "$OUT/team$t-in.ogg") bytes from Icecast"
  [ "$RC" = 0 ] || rc=1
  for i in $(seq "$PEERS"); do
    wait_exit "${PEER_PIDS[$k]}" 15 || rc=1
    k=$((k + 1))
    prc=$RC
    if cmp -s "$OUT/team$t-in.ogg" "$OUT/team$t-peer$i.ogg"; then
      same="identical to team$t-in.ogg"
    else
      same="DIFFERS from team$t-in.ogg"
      rc=1
    fi
    [ "$prc" = 0 ] || rc=1
    log "  peer $i: exit $prc, $(stat -c %s "$OUT/team$t-peer$i.ogg" 2>/dev/null || echo 0) bytes, $same"
    "$P2PSP_DECODE" "$OUT/team$t-peer$i.ogg" --expect-seconds "$SECS" --min-ratio 0.5 | sed 's/^/      /'
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
  done
done
[ "$listeners" = '"listeners":'"$TEAMS" ] || { log "expected $TEAMS Icecast listeners, saw ${listeners:-none}"; rc=1; }
log "$([ $rc = 0 ] && echo PASS || echo FAIL) (files in $OUT)"
exit $rc
