#!/bin/bash
# e2e-team: a splitter and a team of 5 peers on loopback, all of them there
# from the first buffer (wait-for-peers=5).  The splitter sends each chunk to
# one peer only, so a peer can only rebuild the whole stream with the chunks
# the other 4 flood to it.
#
# Asserts:
#   * every peer's file is byte-identical to the splitter's input (a tee
#     writes it to source.ogg) and so to every other peer's file,
#   * every file decodes (oggdemux, theoradec, vorbisdec) with no error or
#     warning, with all the video frames of the source,
#   * the splitter saw the 5 peers (num-peers = 5 and 5 "joined" lines in its
#     log); with PyGObject, the splitter and peer5 run through e2e_launch.py
#     (same pipelines) to read the "stats" properties: no chunk dropped, all
#     cut chunks sent, ~1/5 of them to each peer (round-robin), and peer5 got
#     ~1/5 from the splitter and the rest from the 4 others, forwarded what
#     it got from the splitter to the others, and lost nothing,
#   * when the splitter's pipeline ends, every peer gets EOS and its
#     gst-launch-1.0 -e exits 0 by itself, with the stream complete: the
#     last Ogg page, sent in a burst at EOS (640x360: tens of KB), too.

. "$(dirname "$0")/lib.sh"
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
e2e_init team
e2e_need_elements videotestsrc audiotestsrc theoraenc vorbisenc oggmux tee queue \
  filesink oggdemux theoradec vorbisdec multifilesink videoconvert videoscale audioconvert

PEERS=5
FPS=25
STREAM_SECONDS=6
CHUNK=1024
SRC=$E2E_TMP/source.ogg

VIDEO="videotestsrc is-live=true num-buffers=$((FPS * STREAM_SECONDS)) pattern=smpte horizontal-speed=2 ! video/x-raw,width=640,height=360,framerate=$FPS/1"
AUDIO="audiotestsrc is-live=true num-buffers=$((STREAM_SECONDS * 44100 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! audioconvert"
DESC="$AUDIO ! vorbisenc ! queue ! mux. $VIDEO ! theoraenc ! queue ! oggmux name=mux ! tee name=t t. ! queue ! filesink location=$SRC t. ! queue"

# INFO from our elements: the splitter logs peers joining and leaving.
export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:4}

# gst-launch-1.0 cannot show the stats properties: with PyGObject, the
# splitter and the last peer run the same descriptions through e2e_launch.py,
# which prints them at EOS.
STATS_PEER=0
if e2e_pygst; then
  STATS_PEER=$PEERS
  E2E_SPLITTER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
  export E2E_STATS_INTERVAL_MS=500
else
  e2e_log "note: no PyGObject: no stats, the team is checked from num-peers and the files"
fi

# The playout window grows with the time scale (3 under the sanitizers,
# scripts/sanitize.sh), as every process is that much slower: one run of the
# sanitize stage lost 19 chunks at a peer with the default 200 ms.
LATENCY=latency=$((200 * ${P2PSP_TIME_SCALE:-1}))

t0=$(e2e_now)
e2e_start_splitter "$DESC" wait-for-peers=$PEERS chunk-size=$CHUNK
PEER_PIDS=()
for i in $(seq $PEERS); do
  if [ "$i" = "$STATS_PEER" ]; then
    E2E_PEER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py" \
      e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg" "$LATENCY"
  else
    e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg" "$LATENCY"
  fi
  PEER_PIDS+=("$E2E_LAST_PID")
done

# The stream starts once the 5 peers are in, and lasts STREAM_SECONDS.
if e2e_wait_exit "$SPLITTER_PID" $((STREAM_SECONDS + 20)); then
  src_rc=$E2E_RC
else
  e2e_show_log splitter
  e2e_stop "$SPLITTER_PID" 5
  src_rc="hung (then $E2E_RC)"
fi
e2e_log "splitter exit $src_rc after $(e2e_elapsed "$t0")s, source $(e2e_file_size "$SRC") bytes"
[ "$src_rc" = 0 ] || e2e_fail "splitter did not finish cleanly (exit $src_rc)"
e2e_check_log splitter

# The splitter told the team it is leaving: every peer must reach EOS and
# exit 0 on its own.
peers_deadline=$(awk -v n="$(e2e_now)" 'BEGIN { printf "%.2f", n + 15 }')
for i in $(seq $PEERS); do
  pid=${PEER_PIDS[$((i - 1))]}
  if e2e_wait_exit "$pid" "$(e2e_left "$peers_deadline")"; then
    if [ "$E2E_RC" = 0 ]; then
      e2e_ok "peer$i got EOS and exited 0 after the splitter left"
    else
      e2e_show_log "peer$i"
      e2e_fail "peer$i exited $E2E_RC"
    fi
  else
    e2e_show_log "peer$i"
    e2e_stop "$pid" 5
    e2e_fail "peer$i still running 15 s after the splitter left (no EOS on the shutdown notice); SIGINT -> $E2E_RC"
  fi
  e2e_check_log "peer$i"
done

# Team membership as the splitter saw it.
max_peers=$(grep -a -o 'num-peers = [0-9]*' "$SPLITTER_LOG" | awk '$3 > m { m = $3 } END { print m + 0 }')
added=$(grep -a -c -E 'peer [0-9]+ .*(joined|added)' "$SPLITTER_LOG")
e2e_log "splitter: num-peers reached $max_peers, $added peer-joined log lines"
if [ "$max_peers" -lt $PEERS ]; then
  e2e_fail "the splitter never had $PEERS peers (num-peers max $max_peers)"
fi

# Byte-identical files.
src_size=$(e2e_file_size "$SRC")
[ "$src_size" -gt 100000 ] || e2e_fail "source.ogg is only $src_size bytes: the stream did not flow"
for i in $(seq $PEERS); do
  e2e_assert_same "$E2E_TMP/peer$i.ogg" "$SRC"
done
for i in $(seq 2 $PEERS); do
  cmp -s "$E2E_TMP/peer1.ogg" "$E2E_TMP/peer$i.ogg" ||
    e2e_fail "peer1.ogg and peer$i.ogg differ"
done

# Decoding.
if e2e_decode ogg "$SRC" source; then
  e2e_decode_report source
else
  e2e_decode_report source
  e2e_fail "source.ogg does not decode cleanly (test setup problem)"
fi
src_frames=$DEC_FRAMES
for i in $(seq $PEERS); do
  if e2e_decode ogg "$E2E_TMP/peer$i.ogg" "peer$i"; then
    if [ "$DEC_FRAMES" = "$src_frames" ] && [ "$DEC_FRAMES" -gt 0 ]; then
      e2e_ok "peer$i.ogg decodes: $DEC_FRAMES video frames, $DEC_AUDIO audio bytes"
    else
      e2e_fail "peer$i.ogg: $DEC_FRAMES video frames, the source has $src_frames"
    fi
  else
    e2e_decode_report "peer$i"
    e2e_fail "peer$i.ogg does not decode cleanly"
  fi
done

# Did the team really share the work?  Stats (see docs/elements.md).
stval() { # stval FIELD STRUCTURE-LINE -> number
  echo "$2" | grep -o -E "(^|[ ,])$1=\([a-z0-9]*\)[0-9]+" | head -n 1 | grep -o -E '[0-9]+$'
}
if [ "$STATS_PEER" != 0 ]; then
  # (Nested structures come escaped: drop the backslashes.)
  sst=$(grep -a '^STATS splitter:' "$SPLITTER_LOG" | tr -d '\\' | tail -n 1)
  # The last periodic sample that still lists the team.
  sst_team=$(grep -a '^STATS splitter:' "$SPLITTER_LOG" | tr -d '\\' |
    grep 'chunks-sent=.*peers=.*chunks-sent=' | tail -n 1)
  pst=$(grep -a '^STATS src:' "$E2E_TMP/peer$STATS_PEER.log" | tr -d '\\' | tail -n 1)
  if [ -z "$sst" ] || [ -z "$pst" ]; then
    e2e_fail "no stats printed at EOS (splitter: ${sst:+yes}${sst:-no}, peer$STATS_PEER: ${pst:+yes}${pst:-no})"
  else
    sent=$(stval chunks-sent "$sst")
    cut=$(stval chunks-cut "$sst")
    dropped=$(stval chunks-dropped "$sst")
    joined=$(stval peers-joined "$sst")
    e2e_log "splitter stats: $cut chunks cut, $sent sent, $dropped dropped, $joined peers joined, $(stval bytes-in "$sst") bytes in, $(stval bytes-sent "$sst") bytes sent"
    # Per-peer counters: chunks-sent of each peer structure in "peers".
    per_peer=$(echo "$sst_team" | sed -n 's/.*peers=\(.*\)/\1/p' | grep -o -E 'chunks-sent=\([a-z0-9]*\)[0-9]+' | grep -o -E '[0-9]+$' | tr '\n' ' ')
    e2e_log "splitter: chunks sent to each peer: $per_peer"
    [ "${joined:-0}" -ge $PEERS ] || e2e_fail "splitter stats: peers-joined=$joined, want $PEERS"
    [ "${dropped:-1}" = 0 ] || e2e_fail "splitter stats: $dropped chunks dropped although the team was there from the start"
    [ "${sent:-0}" -gt 0 ] && [ "$sent" = "$cut" ] || e2e_fail "splitter stats: $sent of $cut chunks sent"
    n=0
    for c in $per_peer; do
      n=$((n + 1))
      # Round-robin: each peer gets about 1/PEERS of the chunks.
      if [ $((c * PEERS * 2)) -lt "${sent:-0}" ] || [ $((c * PEERS)) -gt $((sent * 2)) ]; then
        e2e_fail "splitter sent $c of $sent chunks to one peer: not round-robin over $PEERS"
      fi
    done
    [ $n = $PEERS ] || e2e_fail "the splitter's stats never listed $PEERS peers (last list: $n)"
    from_s=$(stval chunks-from-splitter "$pst")
    from_p=$(stval chunks-from-peers "$pst")
    fwd=$(stval chunks-forwarded "$pst")
    played=$(stval played "$pst")
    lost=$(stval lost "$pst")
    e2e_log "peer$STATS_PEER stats: $from_s chunks from the splitter, $from_p from peers, $fwd forwarded, $played played, $lost lost, neighbours $(stval neighbours "$pst")"
    if [ "${from_s:-0}" -eq 0 ] || [ "${from_p:-0}" -eq 0 ]; then
      e2e_fail "peer$STATS_PEER did not get chunks from both the splitter and the team"
    elif [ $((from_p * 2)) -lt $((from_s * (PEERS - 1))) ]; then
      e2e_fail "peer$STATS_PEER got $from_s chunks from the splitter and only $from_p from the $((PEERS - 1)) others (want about $((PEERS - 1))x)"
    else
      e2e_ok "peer$STATS_PEER got ~1/$PEERS of the chunks from the splitter and the rest from the team"
    fi
    [ "${fwd:-0}" -ge $(((PEERS - 1) * from_s / 2)) ] ||
      e2e_fail "peer$STATS_PEER forwarded $fwd chunk datagrams for $from_s chunks from the splitter (want ~$((PEERS - 1))x)"
    [ "${lost:-1}" = 0 ] || e2e_fail "peer$STATS_PEER declared $lost chunks lost"
  fi
fi

chunks=$(((src_size + CHUNK - 1) / CHUNK))
e2e_log "team of $max_peers peers; stream $src_size bytes (~$chunks chunks of $CHUNK, ~$((chunks / PEERS)) sent to each peer); peer files: $(for i in $(seq $PEERS); do printf '%s ' "$(e2e_file_size "$E2E_TMP/peer$i.ogg")"; done)"
e2e_finish
