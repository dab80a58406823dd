#!/usr/bin/env bash
# p2psp-teamviz --live with a real team: a splitter run by the tool on
# 127.0.0.1, 4 gst-launch peers. The last SVG must be well-formed XML with
# the splitter, exactly 4 peer nodes, 4 splitter->peer arrows, the 6 lines
# of the full mesh and 1 monitor; the PNG must be a PNG when rsvg-convert is
# there; the same stats, read back from their GstStructure string and from
# JSON (static mode), must draw the same 4 peers. The peers are
# p2psp-peer-app --json (its path: the first argument): with their last
# stats (--peer-stats) every line of the mesh is drawn as two halves, all
# 12 `direct` on loopback, and one neighbour's path changed to `relayed` in
# a copy shows as one relayed half.
set -u
peer_app=${1:?usage: test-teamviz.sh PATH-TO-p2psp-peer-app}
here=$(cd "$(dirname "$0")" && pwd)
src_dir=${P2PSP_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
. "$src_dir/tests/e2e/lib.sh"
e2e_init teamviz
e2e_need_elements videotestsrc theoraenc oggmux fakesink
/usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2>/dev/null ||
  e2e_skip "no PyGObject with Gst 1.0 on /usr/bin/python3"
TOOL=$here/p2psp-teamviz

e2e_spawn teamviz /usr/bin/python3 "$TOOL" --live --host 127.0.0.1 --port 0 --seconds 8 \
  --set monitors=1 --pipeline "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! theoraenc ! oggmux" \
  -o "$E2E_TMP/team.svg" --dump-stats "$E2E_TMP/last-stats.txt"
tool_pid=$E2E_LAST_PID
port=
for _ in $(seq 100); do
  port=$(grep -a -o 'listening on port [0-9]*' "$E2E_TMP/teamviz.log" | awk '{ print $4 }')
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { e2e_show_log teamviz; e2e_die "the tool printed no port"; }
peer_pids=()
for i in 1 2 3 4; do
  e2e_spawn "peer$i" "$peer_app" --uri "p2psp://127.0.0.1:$port" --seconds 10 --json
  peer_pids+=("$E2E_LAST_PID")
done
e2e_wait_exit "$tool_pid" 25 || e2e_fail "the tool did not stop after --seconds"
[ "$E2E_RC" = 0 ] || e2e_fail "the tool exited with $E2E_RC"
grep -q 'drew 4 peers' "$E2E_TMP/teamviz.log" || e2e_fail "the tool never drew 4 peers"

/usr/bin/python3 "$TOOL" -o "$E2E_TMP/static.svg" --no-png "$E2E_TMP/last-stats.txt" ||
  e2e_fail "static mode on the dumped stats"

# The same stats as JSON, made with GStreamer's own parser (not the tool's):
# the JSON input path, and a cross-check of the tool's GstStructure reader.
/usr/bin/python3 - "$E2E_TMP/last-stats.txt" "$E2E_TMP/last-stats.json" <<'PY' || e2e_fail "GstStructure -> JSON with Gst"
import json, sys, warnings
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
s = Gst.Structure.from_string(open(sys.argv[1]).read().strip())[0]
def fields(st):
    out = {}
    for i in range(st.n_fields()):
        k = st.nth_field_name(i)
        if k == "peers":
            continue
        out[k] = st.get_value(k)
    return out
d = fields(s)
ok, arr = s.get_array("peers")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    d["peers"] = [fields(arr.get_nth(i)) for i in range(arr.n_values)]
json.dump(d, open(sys.argv[2], "w"))
PY
/usr/bin/python3 "$TOOL" -o "$E2E_TMP/json.svg" --no-png "$E2E_TMP/last-stats.json" ||
  e2e_fail "static mode on JSON stats"

check_svg() {
  /usr/bin/python3 - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()  # raises on malformed XML
groups = list(root.iter(ns + "g"))
peers = [g for g in groups if g.get("class") == "peer"]
splitters = [g for g in groups if g.get("class") == "splitter"]
mesh = [l for l in root.iter(ns + "line") if l.get("class") == "mesh"]
arrows = [l for l in root.iter(ns + "line") if l.get("class") == "to-peer"]
monitors = [g for g in peers if any(t.text == "M" for t in g.iter(ns + "text"))]
ids = {g.get("id") for g in peers}
print("peers %d %s, splitter %d, arrows %d, mesh %d, monitors %d" %
      (len(peers), sorted(ids), len(splitters), len(arrows), len(mesh), len(monitors)))
ok = (len(peers) == 4 and len(ids) == 4 and len(splitters) == 1 and len(arrows) == 4
      and len(mesh) == 6 and len(monitors) == 1)
sys.exit(0 if ok else 1)
PY
}
for svg in team.svg static.svg json.svg; do
  if out=$(check_svg "$E2E_TMP/$svg" 2>&1); then
    e2e_ok "$svg: $out"
  else
    e2e_fail "$svg: $out"
  fi
done
if command -v rsvg-convert >/dev/null; then
  if [ "$(head -c 8 "$E2E_TMP/team.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    e2e_ok "team.png is a PNG ($(e2e_file_size "$E2E_TMP/team.png") bytes)"
  else
    e2e_fail "no PNG although rsvg-convert is present"
  fi
fi

# How each pair exchanges, from the peers' own stats.
for pid in "${peer_pids[@]}"; do
  e2e_wait_exit "$pid" 15 || e2e_fail "peer (pid $pid) did not stop after --seconds"
done
peer_args=()
for i in 1 2 3 4; do peer_args+=(--peer-stats "$E2E_TMP/peer$i.log"); done
/usr/bin/python3 "$TOOL" -o "$E2E_TMP/paths.svg" --no-png "${peer_args[@]}" "$E2E_TMP/last-stats.txt" ||
  e2e_fail "static mode with --peer-stats"
# The same, with peer1's view of one neighbour made `relayed`.
/usr/bin/python3 - "$E2E_TMP/peer1.log" "$E2E_TMP/peer1-relayed.json" <<'PY' || e2e_fail "no stats line with neighbours in peer1's output"
import json, sys
last = None
for line in open(sys.argv[1]):
    if line.startswith("{"):
        o = json.loads(line)
        if o.get("event") == "stats" and o["stats"].get("neighbours-list"):
            last = o["stats"]
last["neighbours-list"][0]["path"] = "relayed"
json.dump(last, open(sys.argv[2], "w"))
PY
peer_args[1]=$E2E_TMP/peer1-relayed.json
/usr/bin/python3 "$TOOL" -o "$E2E_TMP/relayed.svg" --no-png "${peer_args[@]}" "$E2E_TMP/last-stats.txt" ||
  e2e_fail "static mode with an edited peer's stats"
count_halves() {
  /usr/bin/python3 - "$1" <<'PY'
import collections, sys
import xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
kinds = collections.Counter(l.get("class") for l in root.iter(ns + "line")
                            if (l.get("class") or "").startswith("half"))
print(" ".join("%s=%d" % kv for kv in sorted(kinds.items())))
PY
}
# A peer the splitter measures as forwarding 30 % of its chunks, and one
# with a stated upload limit, are marked.
/usr/bin/python3 - "$E2E_TMP/last-stats.json" "$E2E_TMP/weak.json" <<'PY' || e2e_fail "no peers in the JSON stats"
import json, sys
s = json.load(open(sys.argv[1]))
s["peers"][0]["forwarding"] = 0.3
s["peers"][1]["upload-limit"] = 1000000
json.dump(s, open(sys.argv[2], "w"))
PY
/usr/bin/python3 "$TOOL" -o "$E2E_TMP/weak.svg" --no-png "$E2E_TMP/weak.json" ||
  e2e_fail "static mode on edited JSON stats"
grep -q "forwards 30 %" "$E2E_TMP/weak.svg" && e2e_ok "weak.svg marks the peer forwarding 30 %" ||
  e2e_fail "weak.svg does not mark the peer forwarding 30 %"
grep -q "limit 1 Mb/s" "$E2E_TMP/weak.svg" && e2e_ok "weak.svg marks the stated upload limit" ||
  e2e_fail "weak.svg does not mark the stated upload limit"
want_direct="half path-direct=12"
want_relayed="half path-direct=11 half path-relayed=1"
got=$(count_halves "$E2E_TMP/paths.svg")
[ "$got" = "$want_direct" ] && e2e_ok "paths.svg: $got" || e2e_fail "paths.svg: '$got', want '$want_direct'"
got=$(count_halves "$E2E_TMP/relayed.svg")
[ "$got" = "$want_relayed" ] && e2e_ok "relayed.svg: $got" || e2e_fail "relayed.svg: '$got', want '$want_relayed'"
[ "$E2E_FAILED" = 0 ] || e2e_show_log teamviz
e2e_finish
