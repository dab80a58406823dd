#!/bin/bash
# health-freeze: a splitter and 5 peers on loopback (Ogg Theora + Vorbis,
# ~14 s, wait-for-peers=5); ~4 s into the stream one peer is frozen with
# SIGSTOP (its sockets stay open: only silence tells), and SIGCONT'd 3.5 s
# later.
#
# Asserts:
#   * the splitter removes the frozen peer within 2 s of the SIGSTOP (the
#     splitter runner stamps its peer-removed signal and its
#     GstP2pspSplitterPeerRemoved message, whose reason must be a timeout),
#     and not before it,
#   * the 4 others exit 0 at the end of the stream, lose at most
#     MAX_MISSING chunks (from their stats and the splitter's chunks-cut),
#     and their outputs hold only source pages, in order, and decode,
#   * once thawed, the frozen peer notices it was removed: it rejoins (the
#     splitter sees a new peer join after the SIGCONT) or it stops with an
#     error; either way it ends (by itself, or on SIGINT at the end) and
#     leaves nothing behind.

. "$(dirname "$0")/hlib.sh"
health_init freeze

PEERS=5
VICTIM=3
STREAM_SECONDS=14
FREEZE_AFTER=4
THAW_AFTER=3.5
# The frozen peer's chunks from the splitter go nowhere until it is removed;
# NACKs to the splitter recover them, so only a handful may be missed.
MAX_MISSING=5
SRC=$E2E_TMP/source.ogg
export HEALTH_STATS_INTERVAL_MS=250

health_media $STREAM_SECONDS "$SRC"
e2e_start_splitter "$HEALTH_DESC" wait-for-peers=$PEERS
PEER_PIDS=()
for i in $(seq $PEERS); do
  e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg"
  PEER_PIDS+=("$E2E_LAST_PID")
done
health_wait_flowing "$SRC" 30 || e2e_log "note: source.ogg still empty after 30 s"
sleep $FREEZE_AFTER

victim=peer$VICTIM
victim_pid=${PEER_PIDS[$((VICTIM - 1))]}
vid=$(health_stats "$E2E_TMP/$victim.log" src peer-id)
[ -n "$vid" ] && [ "$vid" != none ] && [ "$vid" != 0 ] ||
  e2e_die "$victim has no peer-id in its stats 4 s into the stream"
# Stamped before the signal: the removal delay measured is never too short,
# and a rejoin right after SIGCONT is never taken for one before it.
t_stop=$(e2e_now)
kill -STOP -- "-$victim_pid"
e2e_log "SIGSTOP $victim (pid $victim_pid, peer id $vid) at $t_stop"
sleep $THAW_AFTER
t_cont=$(e2e_now)
kill -CONT -- "-$victim_pid"
e2e_log "SIGCONT $victim at $t_cont"

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

# 1. Removed within 2 s, for a timeout.
t_sig=$(grep -a -E "^EVENT [0-9.]+ splitter signal peer-removed $vid " "$SPLITTER_LOG" | head -n 1 | awk '{ print $2 }')
msg=$(grep -a -E "^EVENT [0-9.]+ splitter message GstP2pspSplitterPeerRemoved.*peer-id=\(uint\)$vid[,;]" "$SPLITTER_LOG" | head -n 1)
t_msg=$(echo "$msg" | awk '{ print $2 }')
e2e_log "splitter: peer $vid removed (signal) at ${t_sig:-never}; message: ${msg:-none}"
t_removed=${t_msg:-$t_sig}
if [ -z "$t_removed" ]; then
  health_show_events splitter
  e2e_fail "the splitter never removed the frozen peer $vid"
else
  after=$(awk -v a="$t_stop" -v b="$t_removed" 'BEGIN { printf "%.3f", b - a }')
  if awk -v d="$after" 'BEGIN { exit !(d >= 0 && d <= 2.0) }'; then
    e2e_ok "the splitter removed the frozen peer $after s after SIGSTOP"
  else
    e2e_fail "the splitter removed the frozen peer $after s after SIGSTOP (want 0..2 s)"
  fi
fi
if [ -z "$msg" ]; then
  e2e_fail "no GstP2pspSplitterPeerRemoved element message for peer $vid on the splitter's bus"
elif ! echo "$msg" | grep -q -i -E 'reason=[^,;]*time'; then
  e2e_fail "GstP2pspSplitterPeerRemoved for peer $vid does not give a timeout as the reason"
fi

# 2. The others played on.
read -r cut <<<"$(health_stats "$SPLITTER_LOG" splitter chunks-cut)"
if e2e_decode ogg "$SRC" source; then
  e2e_decode_report source
else
  e2e_decode_report source
  e2e_fail "source.ogg does not decode cleanly (test setup problem)"
fi
src_frames=$DEC_FRAMES
for i in $(seq $PEERS); do
  [ "$i" = $VICTIM ] && continue
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
      e2e_fail "$name missed $missing chunks ($lost declared lost) while a peer was frozen (max $MAX_MISSING)"
    else
      e2e_ok "$name missed $missing chunks ($lost declared lost)"
    fi
  fi
  "$HEALTH_PY" "$HEALTH_DIR/../e2e/e2e_check.py" oggpages "$SRC" "$out" \
    --max-missing-pages $((1 + missing * 3)) ||
    e2e_fail "$name: output is not the source minus a few pages"
  health_check_decode "$name" "$out" "$src_frames" "$missing" $((src_frames - missing * 3))
done

# 3. The thawed peer found out.
rc=${PEER_RC[$((VICTIM - 1))]}
rejoined=$(awk -v t="$t_cont" '$1 == "EVENT" && $2 > t && $3 == "splitter" && $5 == "peer-added" { print $6 }' "$SPLITTER_LOG" | head -n 1)
vevents=$(grep -a -E '^EVENT .* message GstP2pspSrc' "$E2E_TMP/$victim.log" | cut -c1-200)
e2e_log "$victim after SIGCONT: exit '$rc', rejoined as ${rejoined:-nothing}"
[ -n "$vevents" ] && echo "$vevents" | sed 's/^/    /'
if [ -n "$rejoined" ]; then
  e2e_ok "$victim rejoined the team as peer $rejoined after it was thawed"
elif grep -a -q -E '^ERROR: .*(removed|Removed|timed out|Timed out)' "$E2E_TMP/$victim.log"; then
  e2e_ok "$victim stopped with an error after it was thawed: $(grep -a -m1 '^ERROR: ' "$E2E_TMP/$victim.log" | cut -c1-200)"
else
  health_show_log "$victim"
  e2e_fail "$victim neither rejoined nor reported its removal after it was thawed"
fi
e2e_finish
