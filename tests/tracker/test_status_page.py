#!/usr/bin/python3
"""The tracker's status page in a real headless browser (Chromium): the
page renders, its table shows every team the status JSON lists, with the
same member counts, and each team's picture (SVG, as p2psp-teamviz draws
it) shows that team's announced members: one circle per member with its
id, an arrow from the splitter to each, the mesh between them, monitors
marked. Exit 77 (skip) without chromium."""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import urllib.request

TRACKER = sys.argv[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if os.environ.get("P2PSP_SANITIZE"):
    # The ASan runtime preloaded into every process (scripts/sanitize-wrap.sh)
    # does not suit Chromium; tracker-http covers the tracker under ASan.
    print("SKIP: under the sanitizers")
    sys.exit(77)
if not CHROMIUM:
    print("SKIP: no chromium")
    sys.exit(77)


class Rows(html.parser.HTMLParser):
    """The cells of the rows inside <tbody>."""

    def __init__(self):
        super().__init__()
        self.in_body = False
        self.rows = []
        self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


class Pictures(html.parser.HTMLParser):
    """Per team picture (channel, team id): member ids, arrows, mesh lines,
    monitor marks."""

    def __init__(self):
        super().__init__()
        self.pictures = {}
        self.current = None
        self.in_peer = None
        self.text = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "team-picture" in a.get("class", ""):
            self.current = {"ids": [], "to-peer": 0, "mesh": 0, "monitors": []}
            self.pictures[(a["data-channel"], int(a["data-team"]))] = self.current
        elif self.current is None:
            return
        elif tag == "g" and a.get("class") == "peer":
            self.in_peer = int(a["data-id"])
            self.current["ids"].append(self.in_peer)
        elif tag == "line" and a.get("class") in ("to-peer", "mesh"):
            self.current[a["class"]] += 1
        elif tag == "text" and self.in_peer is not None:
            self.text = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self.current = None
        elif tag == "g":
            self.in_peer = None
        elif tag == "text" and self.text is not None:
            if self.text == "M":
                self.current["monitors"].append(self.in_peer)
            self.text = None

    def handle_data(self, data):
        if self.text is not None:
            self.text += data


def members(team_id, count):
    """`count` members of a team, the first a monitor."""
    return [{"id": 10 * team_id + k, "endpoint": f"127.0.3.{team_id}:{5000 + k}",
             "monitor": k == 0, "chunks-sent": 100 + k, "loss": k % 2}
            for k in range(count)]


tracker = subprocess.Popen([TRACKER, "--host", "127.0.0.1", "--port", "0"],
                           stdout=subprocess.PIPE, text=True)
failures = 0
try:
    port = int(tracker.stdout.readline().rsplit(" ", 1)[1])
    base = f"http://127.0.0.1:{port}"
    teams = [("news", 1, 2), ("news", 2, 3), ("music", 3, 5)]
    for channel, team_id, peers in teams:
        body = {"channel": channel, "team-id": team_id, "port": 4552,
                "host": f"127.0.2.{team_id}", "peers": peers, "max-peers": 6,
                "members": members(team_id, peers)}
        urllib.request.urlopen(urllib.request.Request(
            base + "/v1/announce", data=json.dumps(body).encode()), timeout=5)
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--virtual-time-budget=5000", "--dump-dom", base + "/"],
        capture_output=True, text=True, timeout=60).stdout
    parser = Rows()
    parser.feed(dom)
    shown = {(r[0], int(r[1])): int(r[3]) for r in parser.rows}
    expected = {(c, t): p for c, t, p in teams}
    print("rendered rows:", parser.rows)
    if shown != expected:
        print(f"FAIL: the page shows {shown}, the teams are {expected}")
        failures += 1
    else:
        print("ok: the page shows every team with its peers")
    if "2 channels, 3 teams, 10 peers" not in dom:
        print("FAIL: no summary '2 channels, 3 teams, 10 peers' in the page")
        failures += 1
    else:
        print("ok: summary line")
    pictures = Pictures()
    pictures.feed(dom)
    for channel, team_id, peers in teams:
        got = pictures.pictures.get((channel, team_id))
        want_ids = [m["id"] for m in members(team_id, peers)]
        want = {"ids": want_ids, "to-peer": peers,
                "mesh": peers * (peers - 1) // 2, "monitors": [want_ids[0]]}
        if got != want:
            print(f"FAIL: {channel} team {team_id}: picture {got}, wanted {want}")
            failures += 1
        else:
            print(f"ok: {channel} team {team_id}: the picture draws its "
                  f"{peers} members, arrows, mesh and monitor")
    if len(pictures.pictures) != len(teams):
        print(f"FAIL: {len(pictures.pictures)} pictures for {len(teams)} teams")
        failures += 1
finally:
    tracker.terminate()
    tracker.wait()
sys.exit(1 if failures else 0)
