#!/bin/bash
# tracker-launcher: p2psp-channels runs a channel's teams (docs/tracker.md).
# A tracker, a launcher with one channel (raw audio, max-peers=3, up to 3
# teams, spare=1) and 5 peers joining by channel URI, a second apart.
#
# Asserts:
#   * the launcher adds teams as the channel fills (cascades): at least 2,
#     at most max-teams, every team announced to the tracker,
#   * every peer plays (its file grows),
#   * a team killed by hand is restarted by the launcher, and every peer is
#     playing again a few seconds later,
#   * SIGTERM to the launcher stops every team it started.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/lib.sh"
e2e_init tracker-launcher
# Teams must start and announce within seconds: not under ASan
# (scripts/sanitize.sh); tracker-channels covers the elements' side there.
[ -n "${P2PSP_SANITIZE:-}" ] && e2e_skip "too slow under the sanitizers"
e2e_need_elements audiotestsrc filesink
LAUNCHER=${P2PSP_SOURCE_DIR:?}/tools/channels/p2psp-channels
PY=/usr/bin/python3

tracker_start tracker 127.0.0.1 0 --team-timeout-ms 3000

cat >"$E2E_TMP/channels.ini" <<INI
[launcher]
tracker = http://127.0.0.1:$TP
host = 127.0.0.1

[channel tone]
pipeline = audiotestsrc is-live=true wave=sine samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=2
max-peers = 3
max-teams = 3
spare = 1
INI
e2e_spawn launcher "$PY" "$LAUNCHER" --config "$E2E_TMP/channels.ini"
LAUNCHER_PID=$E2E_LAST_PID

teams() { $PY -c "import json,urllib.request
s=json.load(urllib.request.urlopen('http://127.0.0.1:$TP/status-json'))
print(' '.join(str(t['peers']) for c in s['channels'] for t in c['teams']))"; }
for _ in $(seq 50); do [ -n "$(teams)" ] && break; sleep 0.2; done
e2e_log "teams at start: $(teams)"

for i in 1 2 3 4 5; do
  e2e_spawn "peer$i" gst-launch-1.0 -e p2pspsrc "uri=p2psp://127.0.0.1:$TP/tone" \
    auto-reconnect=true timeout=20 ! filesink "location=$E2E_TMP/peer$i.raw"
  sleep 1
done
sleep 5
t=$(teams)
n=$(wc -w <<<"$t")
e2e_log "teams (peers each): $t"
if [ "$n" -ge 2 ] && [ "$n" -le 3 ]; then
  e2e_ok "the launcher grew the channel to $n teams"
else
  e2e_fail "wanted 2 to 3 teams, the tracker lists $n"
  e2e_show_log launcher
fi
grep -q "adding a team" "$E2E_TMP/launcher.log" && e2e_ok "launcher: adding a team (logged)" ||
  e2e_fail "the launcher never added a team"

playing() { # all peers' files grow over a second
  local i a b ok=0
  declare -A before
  for i in 1 2 3 4 5; do before[$i]=$(e2e_file_size "$E2E_TMP/peer$i.raw"); done
  sleep 1
  for i in 1 2 3 4 5; do
    b=$(e2e_file_size "$E2E_TMP/peer$i.raw")
    [ "$b" -gt "${before[$i]}" ] || { e2e_log "peer$i is not playing"; ok=1; }
  done
  return $ok
}
playing && e2e_ok "all 5 peers play" || e2e_fail "not every peer plays"

# Kill the origin team: the launcher restarts it; everyone plays again.
origin=$(grep -o 'origin team started (pid [0-9]*' "$E2E_TMP/launcher.log" | head -1 | grep -o '[0-9]*$')
kill -9 "$origin"
e2e_log "killed the origin team (pid $origin)"
sleep 6
if [ "$(grep -c 'origin team started' "$E2E_TMP/launcher.log")" -ge 2 ]; then
  e2e_ok "the launcher restarted the origin team"
else
  e2e_fail "the origin team was not restarted"
fi
playing && e2e_ok "all 5 peers play again after the origin restarted" ||
  { e2e_fail "not every peer plays after the restart"; e2e_show_log launcher; }

kill -TERM "$LAUNCHER_PID"
e2e_wait_exit "$LAUNCHER_PID" 10 || e2e_fail "the launcher did not stop"
sleep 0.5
left=$(pgrep -f "channel=tone" | wc -l)
[ "$left" -eq 0 ] && e2e_ok "SIGTERM stopped every team" || e2e_fail "$left team processes left"
e2e_finish
