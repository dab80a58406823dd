#!/bin/bash
# e2e-peer-killed: a team of 5 peers (Ogg Theora, ~12 s, wait-for-peers=5);
# one peer is SIGKILLed ~4 s into the stream.  The 4 others must go on
# almost unharmed: only the chunks in flight to (or held by) the dead peer
# may be lost.
#
# Asserts, for each surviving peer:
#   * its gst-launch-1.0 -e exits 0 on its own after the splitter leaves,
#   * its file decodes (oggdemux ! theoradec) with exit 0 and no ERROR (a
#     decoder warning is tolerated only if pages were actually lost),
#   * compared page by page with the splitter's input (tee -> source.ogg):
#     no byte that is not part of a source page (no garbage), pages in order,
#     at most MAX_LOST_PAGES source pages missing and at most
#     LOST_CHUNKS x (chunk-size + 2 x largest page) bytes missing (each lost
#     chunk drops the buffers = pages it touched), nothing missing at the end.
# The splitter must also see the peer go (num-peers drops to 4).

. "$(dirname "$0")/lib.sh"
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
e2e_init peer-killed
e2e_need_python
e2e_need_elements videotestsrc theoraenc oggmux tee queue filesink oggdemux theoradec \
  multifilesink videoconvert videoscale

PEERS=5
VICTIM=3
FPS=25
STREAM_SECONDS=12
KILL_AFTER=4
CHUNK=1024
# Chunks that may be lost: the ones the splitter sent the dead peer before it
# noticed (about one round) and the ones the dead peer had not forwarded yet.
LOST_CHUNKS=4
# A lost chunk touches at most 3 pages here (one page per video frame: small
# pages, max-page-delay 40 ms).
MAX_LOST_PAGES=$((LOST_CHUNKS * 3))
SRC=$E2E_TMP/source.ogg

VIDEO="videotestsrc is-live=true num-buffers=$((FPS * STREAM_SECONDS)) pattern=smpte horizontal-speed=2 ! video/x-raw,width=320,height=240,framerate=$FPS/1"
DESC="$VIDEO ! theoraenc keyframe-freq=25 ! queue ! oggmux max-page-delay=40000000 ! tee name=t t. ! queue ! filesink location=$SRC t. ! queue"

export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:4}

e2e_start_splitter "$DESC" wait-for-peers=$PEERS chunk-size=$CHUNK
PEER_PIDS=()
for i in $(seq $PEERS); do
  e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg"
  PEER_PIDS+=("$E2E_LAST_PID")
done

# Wait until the stream flows (the splitter's tee has written something),
# then let it run KILL_AFTER seconds.
for _ in $(seq 200); do
  [ "$(e2e_file_size "$SRC")" -gt 0 ] && break
  e2e_alive "$SPLITTER_PID" || break
  sleep 0.05
done
[ "$(e2e_file_size "$SRC")" -gt 0 ] || e2e_log "note: source.ogg still empty 10 s after the peers started"
sleep "$KILL_AFTER"
victim_pid=${PEER_PIDS[$((VICTIM - 1))]}
victim_bytes=$(e2e_file_size "$E2E_TMP/peer$VICTIM.ogg")
kill -KILL -- "-$victim_pid"
wait "$victim_pid" 2>/dev/null
e2e_log "SIGKILLed peer$VICTIM (pid $victim_pid) with $victim_bytes bytes written"

# The stream must go on: watch the splitter's input grow until it ends.
deadline=$(awk -v n="$(e2e_now)" -v s=$((STREAM_SECONDS + 20)) 'BEGIN { printf "%.2f", n + s }')
last_size=-1
still=0
stalled=0
while e2e_alive "$SPLITTER_PID" && [ "$(e2e_left "$deadline")" != 0.5 ]; do
  sleep 1
  size=$(e2e_file_size "$SRC")
  if [ "$size" = "$last_size" ]; then still=$((still + 1)); else still=0; fi
  last_size=$size
  if [ $still -ge 4 ]; then
    stalled=1
    break
  fi
done
if [ $stalled = 1 ]; then
  e2e_fail "the splitter's stream stalled after peer$VICTIM died (source.ogg stuck at $last_size bytes for 4 s; num-peers: $(grep -a -o 'num-peers = [0-9]*' "$SPLITTER_LOG" | awk '{ printf "%s ", $3 }')): does wait-for-peers=$PEERS hold render again once the team is down to $((PEERS - 1))?"
fi
if [ $stalled = 0 ] && e2e_wait_exit "$SPLITTER_PID" "$(e2e_left "$deadline")"; then
  src_rc=$E2E_RC
else
  e2e_show_log splitter
  e2e_stop "$SPLITTER_PID" 5
  src_rc="hung (then $E2E_RC)"
fi
e2e_log "splitter exit $src_rc, source $(e2e_file_size "$SRC") bytes"
[ "$src_rc" = 0 ] || e2e_fail "splitter did not finish cleanly (exit $src_rc)"
e2e_check_log splitter

nums=$(grep -a -o 'num-peers = [0-9]*' "$SPLITTER_LOG" | awk '{ printf "%s ", $3 }')
e2e_log "splitter num-peers over time: $nums"
if ! echo " $nums" | grep -q " $PEERS .*$((PEERS - 1)) "; then
  e2e_fail "the splitter did not go from $PEERS to $((PEERS - 1)) peers when peer$VICTIM died"
fi

# Bounds from the source itself.
"$E2E_PY" "$E2E_DIR/e2e_check.py" oggpages "$SRC" "$SRC" >/dev/null ||
  e2e_fail "source.ogg does not parse as Ogg pages (test setup problem)"
maxpage=$("$E2E_PY" "$E2E_DIR/e2e_check.py" oggpages "$SRC" "$SRC" | grep -o 'largest [0-9]*' | grep -o '[0-9]*')
max_bytes=$((LOST_CHUNKS * (CHUNK + 2 * ${maxpage:-0})))
e2e_log "loss bound: $MAX_LOST_PAGES pages, $max_bytes bytes (largest page $maxpage B)"

if e2e_decode ogg-video "$SRC" source; then
  e2e_decode_report source
else
  e2e_decode_report source
  e2e_fail "source.ogg does not decode cleanly (test setup problem)"
fi
src_frames=$DEC_FRAMES

peers_deadline=$(awk -v n="$(e2e_now)" 'BEGIN { printf "%.2f", n + 15 }')
for i in $(seq $PEERS); do
  [ "$i" = $VICTIM ] && continue
  pid=${PEER_PIDS[$((i - 1))]}
  if e2e_wait_exit "$pid" "$(e2e_left "$peers_deadline")"; then
    [ "$E2E_RC" = 0 ] || { e2e_show_log "peer$i"; e2e_fail "peer$i exited $E2E_RC"; }
  else
    e2e_show_log "peer$i"
    e2e_stop "$pid" 5
    e2e_fail "peer$i still running 15 s after the splitter left; SIGINT -> $E2E_RC"
  fi
  e2e_check_log "peer$i"

  out=$E2E_TMP/peer$i.ogg
  e2e_log "peer$i: $(e2e_file_size "$out") bytes (source $(e2e_file_size "$SRC")), $(cmp -l "$out" "$SRC" 2>/dev/null | wc -l) bytes differ by cmp -l"
  if "$E2E_PY" "$E2E_DIR/e2e_check.py" oggpages "$SRC" "$out" \
      --max-missing-pages "$MAX_LOST_PAGES" --max-missing-bytes "$max_bytes"; then
    e2e_ok "peer$i: only source pages, in order, losses within bounds"
    lost=$("$E2E_PY" "$E2E_DIR/e2e_check.py" oggpages "$SRC" "$out" | grep -o 'missing [0-9]* pages' | grep -o '[0-9]*')
  else
    e2e_fail "peer$i: output is not the source minus a few pages"
    lost=unknown
  fi

  e2e_decode ogg-video "$out" "peer$i"
  errors=$(echo "$DEC_ISSUES" | grep -a -E 'ERROR|CRITICAL')
  if [ "$DEC_RC" != 0 ] || [ -n "$errors" ]; then
    e2e_decode_report "peer$i"
    e2e_fail "peer$i.ogg does not decode (rc $DEC_RC)"
  elif [ -n "$DEC_ISSUES" ] && [ "$lost" = 0 ]; then
    e2e_decode_report "peer$i"
    e2e_fail "peer$i.ogg: decoder warnings although no page is missing"
  elif [ $((src_frames - DEC_FRAMES)) -gt $((MAX_LOST_PAGES + 25)) ]; then
    e2e_decode_report "peer$i"
    e2e_fail "peer$i.ogg: $DEC_FRAMES frames decoded, the source has $src_frames"
  else
    e2e_ok "peer$i.ogg decodes: $DEC_FRAMES of $src_frames frames${DEC_ISSUES:+ (with decoder warnings after the loss)}"
  fi
done
e2e_finish
