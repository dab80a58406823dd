#!/usr/bin/python3
"""p2psp-tracker over HTTP (tools/tracker, docs/tracker.md): announce,
balance, status, authentication, bad input. Starts its own tracker on
127.0.0.1 with a free port and stops it."""
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

TRACKER = sys.argv[1]
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def start(*args):
    p = subprocess.Popen([TRACKER, "--host", "127.0.0.1", "--port", "0", *args],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    port = int(line.rsplit(" ", 1)[1])
    return p, f"http://127.0.0.1:{port}"


def request(url, body=None, key=None, raw=None):
    data = raw if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {}


def announce(base, channel, team, peers, key=None, port=4552):
    return request(base + "/v1/announce",
                   {"channel": channel, "team-id": team, "port": port,
                    "host": f"127.0.1.{team}", "peers": peers,
                    "max-peers": 6, "bitrate": 1000000}, key)


tracker, base = start("--team-timeout-ms", "1500")
try:
    # 3 channels of 2 teams; 30 joiners spread evenly, never to a full team.
    for c in range(3):
        for t in range(2):
            status, _ = announce(base, f"ch{c}", 10 * c + t + 1, 0)
            check(status == 200, f"announce ch{c} team {10 * c + t + 1}")
    sent = {}
    for i in range(30):
        status, body = request(f"{base}/v1/join/ch{i % 3}")
        sent[body.get("team-id")] = sent.get(body.get("team-id"), 0) + 1
    check(sorted(sent.values()) == [5] * 6, f"30 joiners spread 5 a team: {sent}")
    status, body = request(base + "/v1/join/ch0")
    check(status == 200 and body["uri"].startswith("p2psp://127.0.1."),
          f"join answer names a team URI: {body}")
    # Status JSON counts what the splitters announced.
    announce(base, "ch0", 1, 4)
    status, st = request(base + "/status-json")
    ch0 = [c for c in st["channels"] if c["name"] == "ch0"][0]
    check(status == 200 and len(st["channels"]) == 3 and ch0["peers"] == 4,
          "status-json: 3 channels, ch0 has 4 peers")
    # Unknown channel, bad names, bad bodies, oversized bodies.
    check(request(base + "/v1/join/nothing")[0] == 404, "unknown channel: 404")
    check(request(base + "/v1/join/..%2Fetc")[0] == 400, "bad channel name: 400")
    check(request(base + "/v1/announce", raw=b"{nope")[0] == 400, "not JSON: 400")
    check(request(base + "/v1/announce",
                  {"channel": "x", "team-id": 1, "port": 70000})[0] == 400,
          "port out of range: 400")
    check(request(base + "/v1/announce", raw=b" " * 20000)[0] == 413,
          "20 kB body: 413")
    # The member summary: kept for the status page, bounded.
    ms = [{"id": k, "endpoint": f"127.0.0.1:{6000 + k}", "monitor": k == 0,
           "chunks-sent": 7 * k, "loss": k} for k in range(64)]
    body = {"channel": "pic", "team-id": 5, "port": 4600, "peers": 64,
            "members": ms}
    check(request(base + "/v1/announce", body)[0] == 200,
          "64 members (%d bytes): accepted" % len(json.dumps(body)))
    _, st = request(base + "/status-json")
    pic = [c for c in st["channels"] if c["name"] == "pic"][0]["teams"][0]
    check(pic["members"] == ms, "status-json gives the members announced")
    body["members"] = ms + [{"id": 99, "endpoint": "127.0.0.1:7000"}]
    check(request(base + "/v1/announce", body)[0] == 400, "65 members: 400")
    body["members"] = [{"id": 1, "endpoint": "nowhere"}]
    check(request(base + "/v1/announce", body)[0] == 400,
          "a member without an IP endpoint: 400")
    # Rebalancing: a full team beside an empty one is asked to move one.
    status, reply = announce(base, "grow", 61, 6)
    check(status == 200 and reply.get("move") == 0, f"alone: no move {reply}")
    announce(base, "grow", 62, 0)
    status, reply = announce(base, "grow", 61, 6)
    check(reply.get("move") == 1, f"6 beside 0: move one {reply}")
    status, reply = announce(base, "grow", 61, 6)
    check(reply.get("move") == 0, f"not again at once {reply}")
    check(announce(base, "ch0", 99, 0, port=4552)[0] == 200,
          "another endpoint, same channel: accepted")
    status, _ = request(base + "/v1/announce",
                        {"channel": "ch0", "team-id": 98, "host": "127.0.1.1",
                         "port": 4552})
    check(status == 409, "a second team on a team's endpoint: 409")
    # A channel whose teams are all full: 503, try again.
    announce(base, "full", 7, 6)
    check(request(base + "/v1/join/full")[0] == 503, "all teams full: 503")
    # Withdrawn and silent teams are forgotten.
    request(base + "/v1/withdraw", {"channel": "ch1", "team-id": 11})
    time.sleep(2.0)
    announce(base, "ch2", 21, 0)
    status, st = request(base + "/status-json")
    names = [c["name"] for c in st["channels"]]
    check(names == ["ch2"], f"only the team still announcing is left: {names}")
    status, page = 0, b""
    with urllib.request.urlopen(base + "/", timeout=5) as r:
        status, page = r.status, r.read()
    check(status == 200 and b"/status-json" in page, "status page served")
finally:
    tracker.terminate()
    tracker.wait()

# --no-rebalance: never a move.
tracker, base = start("--no-rebalance")
try:
    announce(base, "grow", 61, 6)
    announce(base, "grow", 62, 0)
    check(announce(base, "grow", 61, 6)[1].get("move") == 0,
          "--no-rebalance: 6 beside 0, no move")
finally:
    tracker.terminate()
    tracker.wait()

# With an announce key, strangers cannot announce or withdraw.
tracker, base = start("--announce-key", "s3cret-key")
try:
    check(announce(base, "live", 1, 0)[0] == 401, "no key: 401")
    check(announce(base, "live", 1, 0, key="wrong-key!")[0] == 401,
          "wrong key: 401")
    check(announce(base, "live", 1, 0, key="s3cret-key")[0] == 200,
          "right key: 200")
    check(request(base + "/v1/withdraw", {"channel": "live", "team-id": 1})[0]
          == 401, "withdraw without key: 401")
    check(request(base + "/v1/join/live")[0] == 200, "joining needs no key")
finally:
    tracker.terminate()
    tracker.wait()

print(f"{failures} failures")
sys.exit(1 if failures else 0)
