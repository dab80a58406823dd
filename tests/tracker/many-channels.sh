#!/bin/bash
# tracker-many-channels: issue 16's goal scenario, through p2psp-channels.
# 3 channels (raw audio: a 300 Hz tone, a 600 Hz tone, silence), each
# starting with one team of max-peers=MAX (default 6); PER peers per channel
# (default 4 here; bench/channels.sh runs 10, the issue's 30 peers) join by
# channel URI, a few at a time.
#
# Asserts:
#   * every peer plays its own channel (the tone's period, or silence),
#   * the teams of a channel differ by at most one member,
#   * the tracker's counts add up: members over all teams = peers + the
#     cascade teams' feeding peers.
. "$(dirname "$0")/../e2e/lib.sh"
e2e_init tracker-many-channels
e2e_need_elements audiotestsrc filesink
TRACKER=${P2PSP_BUILD_DIR:?}/tools/tracker/p2psp-tracker
LAUNCHER=${P2PSP_SOURCE_DIR:?}/tools/channels/p2psp-channels
PY=/usr/bin/python3
PER=${P2PSP_CHANNEL_PEERS:-4}
MAX=${P2PSP_CHANNEL_MAX_PEERS:-6}

e2e_spawn tracker "$TRACKER" --host 127.0.0.1 --port 0
for _ in $(seq 100); do
  TP=$(grep -o 'port [0-9]*' "$E2E_TMP/tracker.log" | cut -d' ' -f2)
  [ -n "$TP" ] && break
  sleep 0.05
done
[ -n "$TP" ] || e2e_die "the tracker did not start"

CAPS="audio/x-raw,format=S16LE,rate=8000,channels=1"
{
  echo "[launcher]"
  echo "tracker = http://127.0.0.1:$TP"
  echo "host = 127.0.0.1"
  for ch in low:sine:300 high:sine:600 hush:silence:300; do
    IFS=: read -r name wave freq <<<"$ch"
    echo "[channel $name]"
    echo "pipeline = audiotestsrc is-live=true wave=$wave freq=$freq samplesperbuffer=160 ! $CAPS"
    echo "max-peers = $MAX"
    echo "max-teams = 8"
    echo "spare = 1"
  done
} >"$E2E_TMP/channels.ini"
e2e_spawn launcher "$PY" "$LAUNCHER" --config "$E2E_TMP/channels.ini"
sleep 2

for i in $(seq "$PER"); do
  for name in low high hush; do
    e2e_spawn "$name-$i" gst-launch-1.0 -e p2pspsrc "uri=p2psp://127.0.0.1:$TP/$name" \
      auto-reconnect=true timeout=30 ! filesink "location=$E2E_TMP/$name-$i.raw"
  done
  sleep 0.7
done
sleep 6

status=$($PY -c "import json,urllib.request;print(json.dumps(json.load(urllib.request.urlopen('http://127.0.0.1:$TP/status-json'))))")
cascades=$(grep -c "cascade team started" "$E2E_TMP/launcher.log")
$PY - "$status" "$PER" "$cascades" <<'PY' >"$E2E_TMP/check.txt"
import json, sys
s = json.loads(sys.argv[1]); per = int(sys.argv[2]); cascades = int(sys.argv[3])
total = 0
for c in s["channels"]:
    sizes = [t["peers"] for t in c["teams"]]
    total += sum(sizes)
    ok = max(sizes) - min(sizes) <= 1
    print(("ok" if ok else "FAIL"), f"{c['name']}: teams {sizes}")
want = 3 * per + cascades
print(("ok" if total == want else "FAIL"),
      f"members over all teams {total} = {3 * per} peers + {cascades} cascades")
PY
while read -r verdict rest; do
  if [ "$verdict" = ok ]; then e2e_ok "$rest"; else e2e_fail "$rest"; fi
done <"$E2E_TMP/check.txt"

# The channel each peer plays: the dominant period of its last second.
wrong=0
for name in low high hush; do
  for i in $(seq "$PER"); do
    got=$($PY - "$E2E_TMP/$name-$i.raw" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()[-16000:]
if len(d) < 8000:
    print("empty"); sys.exit()
x = struct.unpack("<%dh" % (len(d) // 2), d)
if not any(x):
    print("hush"); sys.exit()
crossings = sum(1 for a, b in zip(x, x[1:]) if a < 0 <= b)
hz = crossings * 8000 / len(x)
print("low" if 250 < hz < 350 else "high" if 550 < hz < 650 else f"{hz:.0f}Hz")
PY
)
    [ "$got" = "$name" ] || { e2e_log "$name-$i plays $got"; wrong=$((wrong + 1)); }
  done
done
[ "$wrong" -eq 0 ] && e2e_ok "all $((3 * PER)) peers play their own channel" ||
  e2e_fail "$wrong peers do not play their channel"
e2e_finish
