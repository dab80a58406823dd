#!/bin/bash
# reflect: a splitter and 3 peers on loopback stream a live Ogg (Theora +
# Vorbis) while tests/attack/reflect.py, a client written from
# docs/protocol.md, tries to aim the team's stream at a stand-in victim
# (a socket on 127.0.0.2 that the attacker sends "spoofed" datagrams from
# and never reads): a joiner registering from the victim's address, a
# member's HELLOs, NACKs, HEARTBEATs and REGISTERs in others' names or its
# own from there, and PROBEs (issue 11; docs/security.md, "Address
# validation").
#
# Asserts:
#   * the bytes that reached the victim are at most 3x the bytes sent from
#     its address, and not one of them is a CHUNK,
#   * the honest peers keep decoding: every peer's file is byte-identical
#     to the splitter's input and decodes with all its video frames, and
#     every process exits 0 by itself at the end of the stream,
#   * the splitter sent PROBEs (probes-sent > 0) and nobody joined but the
#     3 peers and the attacker's own member.
#
#   meson test -C build --suite attack -v        (about 25 s)

. "$(dirname "$0")/../e2e/lib.sh"
ATTACK_DIR=$(cd "$(dirname "$0")" && pwd)
E2E_DIR=$(cd "$ATTACK_DIR/../e2e" && pwd)
e2e_init reflect
e2e_need_elements videotestsrc audiotestsrc theoraenc vorbisenc oggmux tee queue \
  filesink oggdemux theoradec vorbisdec multifilesink videoconvert videoscale audioconvert
e2e_pygst || e2e_skip "PyGObject (python3-gi) needed for the stats"

PEERS=3
FPS=25
STREAM_SECONDS=${REFLECT_STREAM_SECONDS:-14}
ATTACK_SECONDS=${REFLECT_SECONDS:-7}
SRC=$E2E_TMP/source.ogg

VIDEO="videotestsrc is-live=true num-buffers=$((FPS * STREAM_SECONDS)) pattern=smpte horizontal-speed=2 ! video/x-raw,width=320,height=240,framerate=$FPS/1"
AUDIO="audiotestsrc is-live=true num-buffers=$((STREAM_SECONDS * 44100 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! audioconvert"
DESC="$AUDIO ! vorbisenc ! queue ! mux. $VIDEO ! theoraenc ! queue ! oggmux name=mux ! tee name=t t. ! queue ! filesink location=$SRC t. ! queue"

export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:4}
E2E_SPLITTER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
E2E_PEER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
export E2E_STATS_INTERVAL_MS=1000

e2e_start_splitter "$DESC" wait-for-peers=$PEERS
PEER_PIDS=()
for i in $(seq $PEERS); do
  e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg"
  PEER_PIDS+=("$E2E_LAST_PID")
done
for _ in $(seq 200); do
  grep -a -q 'num-peers = 3' "$SPLITTER_LOG" && break
  sleep 0.05
done
grep -a -q 'num-peers = 3' "$SPLITTER_LOG" || e2e_die "the team never had $PEERS peers"
sleep 1

REPORT=$E2E_TMP/reflect.json
e2e_log "attacks for ${ATTACK_SECONDS}s from a stand-in victim on 127.0.0.2"
if ! "$E2E_PYGST" "$ATTACK_DIR/reflect.py" --splitter "127.0.0.1:$SPLITTER_PORT" \
  --victim-address 127.0.0.2 --duration "$ATTACK_SECONDS" --report "$REPORT" \
  >"$E2E_TMP/reflect.log" 2>&1; then
  cat "$E2E_TMP/reflect.log"
  e2e_die "reflect.py failed"
fi

e2e_wait_team_exit $((STREAM_SECONDS + 20))

e2e_decode ogg "$SRC" source || { e2e_decode_report source; e2e_fail "source.ogg does not decode (setup problem)"; }
src_frames=$DEC_FRAMES
for i in $(seq $PEERS); do
  e2e_assert_same "$E2E_TMP/peer$i.ogg" "$SRC"
  if e2e_decode ogg "$E2E_TMP/peer$i.ogg" "peer$i" && [ "$DEC_FRAMES" = "$src_frames" ]; then
    e2e_ok "peer$i.ogg decodes: $DEC_FRAMES video frames"
  else
    e2e_decode_report "peer$i"
    e2e_fail "peer$i.ogg: $DEC_FRAMES video frames (source $src_frames) or decode errors"
  fi
done

stats=$(grep -a "^STATS splitter:" "$E2E_TMP/splitter.log" | tr -d '\\' | tail -n 1)
if ! "$E2E_PYGST" - "$REPORT" "$stats" "$PEERS" <<'PY'; then
import json, re, sys
report = json.load(open(sys.argv[1]))
line, peers = sys.argv[2], int(sys.argv[3])
failed = False
def fail(text):
    global failed
    failed = True
    print("FAIL:", text)
def stat(field):
    m = re.search(r"(?:^|[ ,])%s=\([a-z0-9]+\)(\d+)" % re.escape(field), line)
    return int(m.group(1)) if m else None
sent, got = report["victim_bytes_sent"], report["victim_bytes_received"]
types = report["victim_datagrams_by_type"]
print(f"reflect: {report['datagrams_sent']} datagrams; from the victim's address "
      f"{sent} bytes, to it {got} bytes ({got / max(sent, 1):.3f}x), by type {types}")
if report["members"] < peers:
    fail(f"the attacker saw {report['members']} members, want {peers}")
if sent == 0:
    fail("nothing was sent from the victim's address")
if got > 3 * sent:
    fail(f"the victim got {got} bytes for {sent} sent: more than 3x")
if types.get("1", 0):
    fail(f"{types['1']} chunks reached the victim")
probes, joined = stat("probes-sent"), stat("peers-joined")
print(f"splitter: probes-sent={probes} peers-joined={joined}")
if not probes:
    fail("the splitter sent no PROBE")
if joined != peers + 1:
    fail(f"peers-joined={joined}: want the {peers} peers and the attacker's member")
sys.exit(1 if failed else 0)
PY
  e2e_fail "reflection figures (above)"
else
  e2e_ok "the victim got at most 3x what came from its address, and no chunk"
fi
e2e_finish
