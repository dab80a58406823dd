#!/bin/bash
# flood: a splitter and 3 peers on loopback stream a live Ogg (Theora +
# Vorbis) while tests/flood/flood.py throws garbage at all of them: tens of
# thousands of datagrams (random bytes, and P2PSP-looking headers with a
# random team id, cut at random lengths) at the splitter's UDP port and at
# every peer's, and hundreds of garbage TCP connections at the splitter
# (random bytes, huge or zero length prefixes, JOINs with junk, connections
# that say nothing).  See docs/security.md, "Limits" and "Flood test".
#
# Asserts:
#   * no process crashed: the splitter and every peer exit 0 by themselves
#     at the end of the stream, with no ERROR/CRITICAL in their logs,
#   * every peer's file is byte-identical to the splitter's input (a tee
#     writes it to source.ogg, as in tests/e2e/team.sh) and decodes with all
#     the video frames of the source,
#   * VmRSS of every process grew by less than FLOOD_RSS_LIMIT_KIB from the
#     start of the flood to its highest point,
#   * the rejects are in the stats: the splitter's and each peer's
#     rejected-datagrams account for at least 90 % of the datagrams sent to
#     it, the splitter's rejected-connections for at least 90 % of the
#     connections, some of them as joins-limited and handshake-timeouts,
#     and the splitter closed every garbage connection itself (silent ones
#     by the handshake timeout),
#   * the splitter's peers-joined is 3: nobody joined besides the peers.
#
# flood.sh --auth (meson test flood-auth): the same against a team with a
# passphrase, where flood.py also sends datagrams that look sealed (flag
# SEALED, the team's id read from the splitter's log, random sender, counter
# and tag) and TCP connections that ask for the authenticated join and then
# send a wrong AUTH (a guess of the right size, a wrong size, another
# message, or nothing).  On top of the above it asserts:
#   * unauthenticated-datagrams of every process account for at least 90 %
#     of the datagrams sent to it (nothing unsealed or forged is opened),
#   * every guessed AUTH that got a CHALLENGE got a REJECT "auth" next, no
#     garbage connection ever got a PROOF, WELCOME or a sealed message, and
#     the splitter's auth-failures cover the REJECTs "auth" seen.
#
#   meson test -C build --suite flood -v        (about 25 s each)

. "$(dirname "$0")/../e2e/lib.sh"
FLOOD_DIR=$(cd "$(dirname "$0")" && pwd)
E2E_DIR=$(cd "$FLOOD_DIR/../e2e" && pwd)
AUTH=0
[ "${1:-}" = --auth ] && AUTH=1
if [ $AUTH = 1 ]; then e2e_init flood-auth; else e2e_init flood; fi
e2e_need_elements videotestsrc audiotestsrc theoraenc vorbisenc oggmux tee queue \
  filesink oggdemux theoradec vorbisdec multifilesink videoconvert videoscale audioconvert
e2e_pygst || e2e_skip "PyGObject (python3-gi) needed for the stats"
E2E_PY_FLOOD=$E2E_PYGST

PEERS=3
FPS=25
STREAM_SECONDS=${FLOOD_STREAM_SECONDS:-14}
DATAGRAMS=${FLOOD_DATAGRAMS:-12000}      # per target: 4 targets
CONNECTIONS=${FLOOD_CONNECTIONS:-400}
FLOOD_SECONDS=${FLOOD_SECONDS:-6}
FLOOD_RSS_LIMIT_KIB=${FLOOD_RSS_LIMIT_KIB:-32768}
HANDSHAKE_TIMEOUT_MS=1500
SRC=$E2E_TMP/source.ogg

VIDEO="videotestsrc is-live=true num-buffers=$((FPS * STREAM_SECONDS)) pattern=smpte horizontal-speed=2 ! video/x-raw,width=320,height=240,framerate=$FPS/1"
AUDIO="audiotestsrc is-live=true num-buffers=$((STREAM_SECONDS * 44100 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! audioconvert"
DESC="$AUDIO ! vorbisenc ! queue ! mux. $VIDEO ! theoraenc ! queue ! oggmux name=mux ! tee name=t t. ! queue ! filesink location=$SRC t. ! queue"

export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:4}
E2E_SPLITTER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
E2E_PEER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
export E2E_STATS_INTERVAL_MS=1000

# No spaces: e2e_launch.py joins its arguments into one description.
TEAM_ARGS=()
[ $AUTH = 1 ] && TEAM_ARGS=(passphrase=flood-test-passphrase)

t0=$(e2e_now)
e2e_start_splitter "$DESC" wait-for-peers=$PEERS handshake-timeout=$HANDSHAKE_TIMEOUT_MS "${TEAM_ARGS[@]}"
PEER_PIDS=()
for i in $(seq $PEERS); do
  e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.ogg" "${TEAM_ARGS[@]}"
  PEER_PIDS+=("$E2E_LAST_PID")
done

# The flood starts once the team streams.
for _ in $(seq 200); do
  grep -a -q 'num-peers = 3' "$SPLITTER_LOG" && break
  sleep 0.05
done
grep -a -q 'num-peers = 3' "$SPLITTER_LOG" || e2e_die "the team never had $PEERS peers"
sleep 1
for pid in "$SPLITTER_PID" "${PEER_PIDS[@]}"; do
  e2e_alive "$pid" || e2e_die "process $pid died before the flood"
done

REPORT=$E2E_TMP/flood.json
udp_args=()
for pid in "$SPLITTER_PID" "${PEER_PIDS[@]}"; do udp_args+=(--udp-of-pid "$pid" --watch "$pid"); done
if [ $AUTH = 1 ]; then
  udp_args+=(--auth)
  # The team id is in every datagram's clear header, so an attacker on the
  # path knows it; the splitter logs it at INFO.
  team=$(grep -a -o -m 1 'team [0-9a-f]\{8\} on' "$SPLITTER_LOG" | awk '{ print $2 }')
  if [ -n "$team" ]; then udp_args+=(--team "$team"); else e2e_log "team id not in the log: random ones"; fi
fi
e2e_log "flood${TEAM_ARGS:+ (passphrase)}: $DATAGRAMS datagrams to each of $((PEERS + 1)) processes, $CONNECTIONS TCP connections, over ${FLOOD_SECONDS}s"
if ! "$E2E_PY_FLOOD" "$FLOOD_DIR/flood.py" "${udp_args[@]}" --tcp "127.0.0.1:$SPLITTER_PORT" \
  --datagrams "$DATAGRAMS" --connections "$CONNECTIONS" --duration "$FLOOD_SECONDS" \
  --linger $((HANDSHAKE_TIMEOUT_MS / 1000 + 3)) --report "$REPORT" >"$E2E_TMP/flood.log" 2>&1; then
  cat "$E2E_TMP/flood.log"
  e2e_die "flood.py failed"
fi
e2e_log "flood done after $(e2e_elapsed "$t0")s"

# Everything must still be running, and finish the stream by itself.
e2e_wait_team_exit $((STREAM_SECONDS + 20))

# Byte-identical and decodable.
src_size=$(e2e_file_size "$SRC")
[ "$src_size" -gt 100000 ] || e2e_fail "source.ogg is only $src_size bytes: the stream did not flow"
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

# Memory, rejects, connections: the report against the stats.
last_stats() { grep -a "^STATS $2:" "$E2E_TMP/$1.log" | tr -d '\\' | tail -n 1; }
names=(splitter)
for i in $(seq $PEERS); do names+=("peer$i"); done
pids=("$SPLITTER_PID" "${PEER_PIDS[@]}")
args=()
for k in "${!names[@]}"; do
  el=src
  [ "${names[$k]}" = splitter ] && el=splitter
  args+=("${names[$k]}" "${pids[$k]}" "$(last_stats "${names[$k]}" "$el")")
done
if ! "$E2E_PY_FLOOD" - "$REPORT" "$FLOOD_RSS_LIMIT_KIB" "$CONNECTIONS" "$PEERS" "$AUTH" "${args[@]}" <<'PY'; then
import json, re, sys
report = json.load(open(sys.argv[1]))
rss_limit, connections, peers, auth = (int(a) for a in sys.argv[2:6])
rest = sys.argv[6:]
failed = False

def fail(text):
    global failed
    failed = True
    print("FAIL:", text)

def stat(line, field):
    m = re.search(r"(?:^|[ ,])%s=\([a-z0-9]+\)(\d+)" % re.escape(field), line)
    return int(m.group(1)) if m else None

sent_to, sealed_to = {}, {}
for t in report["udp"]:
    sent_to[str(t["pid"])] = sent_to.get(str(t["pid"]), 0) + t["sent"]
    sealed_to[str(t["pid"])] = sealed_to.get(str(t["pid"]), 0) + t["sealed"]
print(f"flood: {report['datagrams_sent']} datagrams in {report['flood_seconds']} s (seed {report['seed']}, team {report['team']}); tcp {report['tcp']}")
for k in range(0, len(rest), 3):
    name, pid, line = rest[k:k + 3]
    r = report["rss_kib"][pid]
    growth = (r["max"] or 0) - (r["start"] or 0)
    rejected = stat(line, "rejected-datagrams") if line else None
    sent = sent_to.get(pid, 0)
    print(f"{name}: VmRSS {r['start']} -> max {r['max']} KiB (+{growth}), "
          f"{sent} datagrams sent to it, rejected-datagrams={rejected}")
    if growth > rss_limit:
        fail(f"{name}: VmRSS grew by {growth} KiB during the flood (limit {rss_limit})")
    if rejected is None:
        fail(f"{name}: no rejected-datagrams in its last stats")
    elif rejected < sent * 0.9:
        fail(f"{name}: rejected-datagrams={rejected}, but {sent} were sent to it")
    if auth:
        # Unsealed or forged, every one of them fails to open.
        unauth = stat(line, "unauthenticated-datagrams") if line else None
        print(f"{name}: {sealed_to.get(pid, 0)} of them sealed-looking, "
              f"unauthenticated-datagrams={unauth}")
        if not sealed_to.get(pid):
            fail(f"{name}: no sealed-looking datagram was sent to it")
        if unauth is None or unauth < sent * 0.9:
            fail(f"{name}: unauthenticated-datagrams={unauth}, but {sent} were sent to it")
    if name == "splitter" and line:
        rc, lim, to = (stat(line, f) for f in ("rejected-connections", "joins-limited", "handshake-timeouts"))
        print(f"splitter: rejected-connections={rc} joins-limited={lim} handshake-timeouts={to}")
        if rc is None or rc < connections * 0.9:
            fail(f"splitter: rejected-connections={rc} for {connections} garbage connections")
        if not lim or not to:
            fail(f"splitter: joins-limited={lim}, handshake-timeouts={to}: want both > 0")
        joined = stat(line, "peers-joined")
        print(f"splitter: peers-joined={joined}")
        if joined != peers:
            fail(f"splitter: peers-joined={joined}: someone besides the {peers} peers joined")
        if auth:
            auth_failures = stat(line, "auth-failures")
            refused = report["tcp"]["rejects_by_reason"].get("7", 0)
            print(f"splitter: auth-failures={auth_failures}, REJECT auth seen by the flood {refused}")
            if not refused or auth_failures is None or auth_failures < refused:
                fail(f"splitter: auth-failures={auth_failures} for {refused} REJECTs auth")
tcp = report["tcp"]
if tcp["still_open"] != 0:
    fail(f"{tcp['still_open']} garbage TCP connections were still open at the end (silent ones: {tcp['silent']})")
if auth:
    got_in = {k: tcp["replies"].get(k, 0) for k in ("proof", "welcome", "team", "sealed")}
    if any(got_in.values()):
        fail(f"garbage connections got in: {got_in}")
    g = tcp["guesses"]
    if not g["challenged"] or g["refused"] != g["challenged"]:
        fail(f"proof guesses: {g}: want every challenged one refused with REJECT auth")
sys.exit(1 if failed else 0)
PY
  e2e_fail "flood figures (above)"
else
  e2e_ok "memory bounded, rejects counted, every garbage connection closed"
fi
e2e_finish
