#!/bin/bash
# health-churn: a splitter (Ogg Theora + Vorbis, ~28 s, wait-for-peers=3)
# and 3 stable peers on loopback; for 20 s, every second a new churn peer
# joins (gst-launch-1.0 p2pspsrc ! fakesink) and the churn peer that joined
# two seconds before leaves, alternately with SIGINT (a clean leave: GOODBYE
# to its neighbours, LEAVE to the splitter) and SIGKILL (its sockets just
# close).  The team keeps changing: 20 joins, 20 departures.
#
# Asserts:
#   * the churn happened: the splitter saw >= 3 + CHURN peers join and
#     >= CHURN - 2 leave,
#   * the 3 stable peers exit 0 at the end of the stream, each misses at
#     most MAX_MISSING chunks (from its stats and the splitter's chunks-cut),
#     and their outputs hold only source pages, in order, and decode.

. "$(dirname "$0")/hlib.sh"
health_init churn

STABLE=3
CHURN=20
# The churn paces itself on the joins (a churn peer leaves once it has
# joined), so on a slow build (P2PSP_TIME_SCALE, 3 under the sanitizers)
# it takes longer, and the stream must outlast it.
STREAM_SECONDS=$((28 * ${P2PSP_TIME_SCALE:-1}))
# A killed churn peer takes with it the chunks it got from the splitter and
# had not flooded yet (a few ms worth); NACKs to the splitter bring them
# back, so only a handful may be missed over the whole run.
MAX_MISSING=10
SRC=$E2E_TMP/source.ogg

health_media $STREAM_SECONDS "$SRC"
e2e_start_splitter "$HEALTH_DESC" wait-for-peers=$STABLE
PEER_PIDS=()
for i in $(seq $STABLE); do
  e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg"
  PEER_PIDS+=("$E2E_LAST_PID")
done
health_wait_flowing "$SRC" 30 || e2e_log "note: source.ogg still empty after 30 s"
sleep 1

# churn_wait_joined K: waits (up to 20 s) until churn peer K logged its join.
churn_wait_joined() {
  local i
  for i in $(seq 200); do
    grep -a -q "joined the team as peer" "$E2E_TMP/churn$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  e2e_log "churn peer $1 did not join within 20 s"
}

# Churn peers: plain gst-launch-1.0 (lighter than the Python runner).
CHURN_PIDS=()
for k in $(seq $CHURN); do
  GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2},p2pspsrc:4 setsid gst-launch-1.0 p2pspsrc \
    "uri=p2psp://127.0.0.1:$SPLITTER_PORT" ! fakesink >"$E2E_TMP/churn$k.log" 2>&1 </dev/null &
  CHURN_PIDS+=($!)
  E2E_PIDS+=($!)
  if [ "$k" -gt 2 ]; then
    old=${CHURN_PIDS[$((k - 3))]}
    # A peer leaves only once it has joined (a sanitizer build takes seconds
    # to start): the count of joins below must not depend on CPU speed.
    churn_wait_joined $((k - 2))
    if [ $((k % 2)) = 1 ]; then
      kill -INT "$old" 2>/dev/null
    else
      kill -KILL -- "-$old" 2>/dev/null
    fi
    # Reap it here, quietly (bash would report "Killed" later).
    e2e_wait_exit "$old" 5 2>/dev/null
  fi
  sleep 1
done
for k in $(seq $((CHURN - 1)) $CHURN); do
  churn_wait_joined "$k"
  kill -INT "${CHURN_PIDS[$((k - 1))]}" 2>/dev/null
done
e2e_log "$CHURN churn peers came and went"

if e2e_wait_exit "$SPLITTER_PID" $((STREAM_SECONDS + 30)); then
  src_rc=$E2E_RC
else
  health_show_log splitter
  e2e_stop "$SPLITTER_PID" 5
  src_rc="hung (then $E2E_RC)"
fi
e2e_log "splitter exit $src_rc, source $(e2e_file_size "$SRC") bytes"
[ "$src_rc" = 0 ] || e2e_fail "splitter did not finish cleanly (exit $src_rc)"
e2e_check_log splitter
health_wait_peers PEER_PIDS "$(awk -v n="$(e2e_now)" 'BEGIN { printf "%.2f", n + 20 }')"

added=$(grep -a -c -E '^EVENT [0-9.]+ splitter signal peer-added ' "$SPLITTER_LOG")
removed=$(grep -a -c -E '^EVENT [0-9.]+ splitter signal peer-removed ' "$SPLITTER_LOG")
e2e_log "splitter: $added peers joined, $removed left or were removed"
[ "$added" -ge $((STABLE + CHURN)) ] || e2e_fail "only $added peers joined (want $((STABLE + CHURN)))"
[ "$removed" -ge $((CHURN - 2)) ] || e2e_fail "only $removed peers left (want >= $((CHURN - 2)))"

read -r cut <<<"$(health_stats "$SPLITTER_LOG" splitter chunks-cut)"
if e2e_decode ogg "$SRC" source; then
  e2e_decode_report source
else
  e2e_decode_report source
  e2e_fail "source.ogg does not decode cleanly (test setup problem)"
fi
src_frames=$DEC_FRAMES
for i in $(seq $STABLE); do
  name=peer$i
  out=$E2E_TMP/$name.ogg
  rc=${PEER_RC[$((i - 1))]}
  [ "$rc" = 0 ] || { health_show_log "$name"; e2e_fail "$name exited $rc"; }
  e2e_check_log "$name"
  read -r played lost recovered <<<"$(health_stats "$E2E_TMP/$name.log" src played lost recovered)"
  if [ -z "$played" ] || [ "$played" = none ] || [ "$lost" = none ] || [ "${cut:-none}" = none ]; then
    health_show_log "$name"
    e2e_fail "$name or the splitter printed no final stats (played, lost, chunks-cut)"
    missing=$MAX_MISSING
  else
    missing=$((cut - played))
    [ "$lost" -gt "$missing" ] && missing=$lost
    e2e_log "$name: played $played of $cut chunks, lost $lost, recovered ${recovered:-?}"
    if [ "$missing" -gt $MAX_MISSING ]; then
      e2e_fail "$name missed $missing chunks ($lost declared lost) through the churn (max $MAX_MISSING)"
    else
      e2e_ok "$name missed $missing chunks ($lost declared lost) through the churn"
    fi
  fi
  "$HEALTH_PY" "$HEALTH_DIR/../e2e/e2e_check.py" oggpages "$SRC" "$out" \
    --max-missing-pages $((1 + missing * 3)) ||
    e2e_fail "$name: output is not the source minus a few pages"
  health_check_decode "$name" "$out" "$src_frames" "$missing" $((src_frames - missing * 3))
done
e2e_finish
