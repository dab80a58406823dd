#!/usr/bin/python3
"""A channel's tracker names a team that filled since its last announcement
(a race of the tracker's counts, docs/tracker.md): p2pspsrc, refused with
"team full" before it ever joined, asks the tracker again, avoiding that
team, and plays from the team it names next.

A stand-in tracker (http.server on 127.0.0.1:0) answers every join with
team A (max-peers=1, already full) unless the request avoids A, then with
team B. Everything binds to 127.0.0.1:0 and stops at the end. Needs the
plugin in P2PSP_PLUGIN_DIR and PyGObject."""
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse

os.environ["GST_PLUGIN_PATH"] = os.environ.get("P2PSP_PLUGIN_DIR", "")
os.environ["GST_REGISTRY"] = os.path.join(
    tempfile.mkdtemp(prefix="p2psp-stale-"), "registry.bin")

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures += 1


def splitter(max_peers):
    p = Gst.parse_launch(
        "audiotestsrc is-live=true samplesperbuffer=400 ! "
        "audio/x-raw,rate=8000,channels=1 ! "
        f"p2pspsplittersink name=s host=127.0.0.1 port=0 max-peers={max_peers}")
    p.set_state(Gst.State.PLAYING)
    s = p.get_by_name("s")
    for _ in range(100):
        if s.get_property("current-port"):
            return p, s.get_property("current-port")
        time.sleep(0.05)
    raise SystemExit("FAIL the splitter published no port")


def peer(uri):
    p = Gst.parse_launch(
        f"p2pspsrc name=src uri={uri} ! fakesink name=f signal-handoffs=true")
    got = [0]
    p.get_by_name("f").connect("handoff", lambda *a: got.__setitem__(0, got[0] + 1))
    p.set_state(Gst.State.PLAYING)
    return p, got


class Tracker(http.server.BaseHTTPRequestHandler):
    full = free = ""
    asked = []

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        avoid = urllib.parse.parse_qs(url.query).get("avoid", [""])[0]
        Tracker.asked.append((url.path, avoid))
        team = Tracker.free if avoid == Tracker.full else Tracker.full
        body = json.dumps({"uri": "p2psp://" + team}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def errors_of(pipeline):
    bus = pipeline.get_bus()
    out = []
    while True:
        m = bus.pop_filtered(Gst.MessageType.ERROR)
        if m is None:
            return out
        out.append(m.parse_error()[0].message)


def main():
    Gst.init(None)
    a, port_a = splitter(1)
    b, port_b = splitter(20)
    member, member_got = peer(f"p2psp://127.0.0.1:{port_a}")
    for _ in range(100):
        if a.get_by_name("s").get_property("num-peers") == 1:
            break
        time.sleep(0.05)
    check(a.get_by_name("s").get_property("num-peers") == 1,
          "team A is full (max-peers=1, one member)")
    Tracker.full = f"127.0.0.1:{port_a}"
    Tracker.free = f"127.0.0.1:{port_b}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tracker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    joiner, got = peer(f"p2psp://127.0.0.1:{server.server_address[1]}/radio")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and got[0] < 20:
        time.sleep(0.1)
    errors = errors_of(joiner)
    check(not errors, f"the joiner posted no error {errors}")
    check(got[0] >= 20, f"the joiner played ({got[0]} buffers in 15 s)")
    check(any(avoid == Tracker.full for _, avoid in Tracker.asked),
          f"it asked again, avoiding team A ({Tracker.asked})")
    check(b.get_by_name("s").get_property("num-peers") == 1,
          "it is a member of team B")
    check(member_got[0] > 0, "team A's member still plays")
    for p in (joiner, member, a, b):
        p.set_state(Gst.State.NULL)
    server.shutdown()
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
