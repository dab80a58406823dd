#!/usr/bin/python3
"""The tracker's status page in a real headless browser (Chromium): the
page renders, and its table shows every team the status JSON lists, with
the same member counts. Exit 77 (skip) without chromium."""
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


tracker = subprocess.Popen([TRACKER, "--host", "127.0.0.1", "--port", "0"],
                           stdout=subprocess.PIPE, text=True)
failures = 0
try:
    port = int(tracker.stdout.readline().rsplit(" ", 1)[1])
    base = f"http://127.0.0.1:{port}"
    teams = [("news", 1, 2), ("news", 2, 3), ("music", 3, 5)]
    for channel, team_id, peers in teams:
        body = {"channel": channel, "team-id": team_id, "port": 4552,
                "host": f"127.0.2.{team_id}", "peers": peers, "max-peers": 6}
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
finally:
    tracker.terminate()
    tracker.wait()
sys.exit(1 if failures else 0)
