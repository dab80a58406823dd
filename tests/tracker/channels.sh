#!/bin/bash
# tracker-channels: channels through p2psp-tracker (issue 16, docs/tracker.md).
# One tracker; channels "tone" and "hush" of two teams each (splitters that
# announce themselves with tracker=... channel=..., max-peers=4); 4 peers
# per channel join with p2psp://127.0.0.1:TRACKER/CHANNEL.
#
# Asserts:
#   * every peer plays its own channel: "tone" is a sine, "hush" silence
#     (raw audio, so a wrong team shows in the bytes),
#   * the teams of a channel differ by at most one peer, and the tracker's
#     status JSON counts every peer,
#   * killing one "tone" splitter (SIGKILL: no withdrawal) leaves all 4 tone
#     peers playing again, in the other team, within 3 s,
#   * playbin plays a channel URI,
#   * a channel the tracker does not know is an element error, at once.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/lib.sh"
e2e_init tracker-channels
e2e_need_elements audiotestsrc filesink
PY=/usr/bin/python3

tracker_start tracker 127.0.0.1 0 --team-timeout-ms 5000
e2e_log "tracker on 127.0.0.1:$TP"

# team_sizes CHANNEL -> "2 2"
team_sizes() {
  tracker_status | $PY -c "import json,sys
s=json.load(sys.stdin)
print(' '.join(str(t['peers']) for c in s['channels'] if c['name']=='$1' for t in c['teams']))"
}

declare -A SPLITTER
for ch in tone hush; do
  wave=sine
  [ $ch = hush ] && wave=silence
  for t in 1 2; do
    E2E_SPLITTER_NAME=$ch$t e2e_start_splitter \
      "audiotestsrc is-live=true wave=$wave samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=2" \
      max-peers=4 "tracker=http://127.0.0.1:$TP" channel=$ch
    SPLITTER[$ch$t]=$SPLITTER_PID
  done
done
sleep 1.5  # every splitter announced

for ch in tone hush; do
  for i in 1 2 3 4; do
    e2e_spawn "$ch-peer$i" gst-launch-1.0 -e p2pspsrc name=src \
      "uri=p2psp://127.0.0.1:$TP/$ch" auto-reconnect=true timeout=20 \
      ! filesink "location=$E2E_TMP/$ch-peer$i.raw"
  done
done
sleep 4

for ch in tone hush; do
  sizes=$(team_sizes $ch)
  e2e_log "$ch: team sizes $sizes"
  read -r a b <<<"$sizes"
  if [ -n "$a" ] && [ -n "$b" ] && [ $((a + b)) -eq 4 ] && [ $((a - b)) -le 1 ] && [ $((b - a)) -le 1 ]; then
    e2e_ok "$ch: 4 peers over its 2 teams ($a + $b)"
  else
    e2e_fail "$ch: teams $sizes, wanted 4 peers within one of each other"
  fi
done

# What each peer wrote: tone must hold signal, hush only zeros.
plays() { # FILE -> "nonzero" or "zeros" or "empty"
  $PY -c "import sys
d=open(sys.argv[1],'rb').read()[-96000:]
print('empty' if len(d) < 9600 else ('zeros' if not any(d) else 'nonzero'))" "$1"
}
for i in 1 2 3 4; do
  [ "$(plays "$E2E_TMP/tone-peer$i.raw")" = nonzero ] &&
    e2e_ok "tone-peer$i plays the tone" || e2e_fail "tone-peer$i: $(plays "$E2E_TMP/tone-peer$i.raw")"
  [ "$(plays "$E2E_TMP/hush-peer$i.raw")" = zeros ] &&
    e2e_ok "hush-peer$i plays silence" || e2e_fail "hush-peer$i: $(plays "$E2E_TMP/hush-peer$i.raw")"
done

# Kill tone1 without a withdrawal: its peers rejoin tone2 through the tracker.
kill -9 "${SPLITTER[tone1]}"
e2e_log "killed tone1"
sleep 3
declare -A AT3
for i in 1 2 3 4; do AT3[$i]=$(e2e_file_size "$E2E_TMP/tone-peer$i.raw"); done
sleep 1
for i in 1 2 3 4; do
  now=$(e2e_file_size "$E2E_TMP/tone-peer$i.raw")
  if [ "$now" -gt "${AT3[$i]}" ]; then
    e2e_ok "tone-peer$i plays 3 s after its splitter died ($((now - AT3[$i])) bytes in 1 s)"
  else
    e2e_fail "tone-peer$i is not playing 3 s after the kill"
    e2e_show_log "tone-peer$i"
  fi
done
sizes=$(team_sizes tone)
e2e_log "tone after the kill: $sizes"

# playbin takes channel URIs (the URI handler): it plays "hush" for 3 s.
timeout 4 gst-launch-1.0 -m playbin "uri=p2psp://127.0.0.1:$TP/hush" \
  audio-sink="fakesink sync=true" video-sink=fakesink >"$E2E_TMP/playbin.log" 2>&1
rc=$?
if [ $rc -eq 124 ] && grep -q "GstP2pspSrcStart.*started" "$E2E_TMP/playbin.log" &&
    ! grep -q "ERROR" "$E2E_TMP/playbin.log"; then
  e2e_ok "playbin uri=p2psp://127.0.0.1:$TP/hush plays"
else
  e2e_fail "playbin with a channel URI (exit $rc)"
  sed 's/^/    /' "$E2E_TMP/playbin.log" | grep -v "^    Got message" | head -8
fi

# An unknown channel: an element error naming the channel, not a hang.
start=$(e2e_now)
if timeout 10 gst-launch-1.0 p2pspsrc "uri=p2psp://127.0.0.1:$TP/nothing" ! fakesink \
    >"$E2E_TMP/nothing.log" 2>&1; then
  e2e_fail "joining an unknown channel succeeded"
elif grep -q 'No team of P2PSP channel "nothing"' "$E2E_TMP/nothing.log"; then
  e2e_ok "unknown channel: element error in $(e2e_elapsed "$start") s"
else
  e2e_fail "unknown channel: no clear error"
  sed 's/^/    /' "$E2E_TMP/nothing.log" | head -5
fi
e2e_finish
