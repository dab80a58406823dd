#!/usr/bin/python3
"""Checks the --json output of the example applications.

    check_app_output.py peer LOG SECOND_PEER_START_T
    check_app_output.py splitter LOG
    check_app_output.py rejoin LOG

peer: stats printed about once a second with a growing chunk count
(chunks-from-splitter + chunks-from-peers), the stream decoded, a
peer-added for another peer after the second peer started, no error.
splitter: a listening port, two distinct peers added, chunks-sent growing
and both peers getting chunks, a splitter-side removal with reason
"timeout" (a peer is frozen), no error. rejoin: the peer app saw its
splitter die and come back: a "rejoining" warning, the Reconnecting and
Rejoined element messages, chunks and decoded buffers growing after them. Lines that are not JSON (GStreamer
warnings on stderr) are ignored. Exit status 0 when everything holds.
"""

import json
import sys

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def events(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def growing(values, what):
    """At least 3 samples, each above the one a second before.

    The first sample may come before the join; the last one is printed at
    exit, which may be a moment after the last periodic one: it only must
    not go down."""
    check(len(values) >= 4, "%s: at least 4 samples (%d)" % (what, len(values)))
    periodic = values[1:-1]
    check(all(b > a for a, b in zip(periodic, periodic[1:])) and periodic[-1] > 0
          and values[-1] >= values[-2],
          "%s grows every second: %s" % (what, values))


def common(evs):
    errors = [e for e in evs if e["event"] == "error"]
    check(not errors, "no error event %s" % [e.get("message") for e in errors])
    exits = [e for e in evs if e["event"] == "exit"]
    check(len(exits) == 1 and exits[0]["code"] == 0, "an exit event with code 0")
    stats = [e for e in evs if e["event"] == "stats"]
    # Once a second, plus one at the end.
    if len(stats) >= 3:
        gaps = [b["t"] - a["t"] for a, b in zip(stats, stats[1:-1])]
        check(all(0.5 < g < 2.0 for g in gaps), "stats about once a second: %s" %
              ["%.2f" % g for g in gaps])
    return stats


def check_peer(evs, second_t):
    stats = common(evs)
    chunks = [s["stats"]["chunks-from-splitter"] + s["stats"]["chunks-from-peers"]
              for s in stats]
    growing(chunks, "chunks received")
    check(stats and stats[-1]["stats"]["state"] == "member", "last state is member")
    my_id = stats[-1]["stats"]["peer-id"] if stats else 0
    check(stats and stats[-1]["decoded-buffers"] > 0,
          "decoded buffers reached the sink (%s)" % (stats[-1]["decoded-buffers"] if stats else None))
    added = [e for e in evs if e["event"] == "peer-added"]
    late = [e for e in added if e["t"] >= second_t - 0.5 and e["id"] != my_id]
    check(late, "peer-added for the second peer (joined at t=%.1f): %s" %
          (second_t, [(e["t"], e["id"]) for e in added]))
    nl = stats[-1]["stats"].get("neighbours-list", []) if stats else []
    check(any(n["id"] == e["id"] for n in nl for e in late),
          "the added peer is in neighbours-list")


def check_splitter(evs):
    stats = common(evs)
    check(any(e["event"] == "listening" and e["port"] > 0 for e in evs),
          "listening event with the port")
    ids = {e["id"] for e in evs if e["event"] == "peer-added"}
    check(len(ids) == 2, "two distinct peers added: %s" % sorted(ids))
    sent = [s["stats"]["chunks-sent"] for s in stats]
    growing(sent, "chunks sent")
    full = [s for s in stats if len(s["stats"]["peers"]) == 2]
    check(full and all(p["chunks-sent"] > 0 for p in full[-1]["stats"]["peers"]),
          "both peers in stats.peers get chunks")
    # The frozen peer: removed for silence, with the signal and the message.
    msgs = [e["fields"] for e in evs if e["event"] == "message"
            and e["name"] == "GstP2pspSplitterPeerRemoved"]
    timed_out = [m["peer-id"] for m in msgs if m.get("reason") == "timeout"]
    removed = [e["id"] for e in evs if e["event"] == "peer-removed"]
    check(len(timed_out) == 1 and timed_out[0] in removed,
          "the frozen peer removed for timeout (peer-removed %s, messages %s)" % (removed, msgs))


def check_rejoin(evs):
    """The splitter was killed and restarted on the same port mid-run."""
    common(evs)
    warnings = [e for e in evs if e["event"] == "warning"]
    check(any("rejoining" in e["message"] for e in warnings),
          "a warning saying the peer is rejoining: %s" % [e["message"] for e in warnings])
    names = [e["name"] for e in evs if e["event"] == "message"]
    check("GstP2pspSrcReconnecting" in names, "a GstP2pspSrcReconnecting message")
    check("GstP2pspSrcRejoined" in names, "a GstP2pspSrcRejoined message: %s" % names)
    rejoined = [e["t"] for e in evs if e["event"] == "message"
                and e["name"] == "GstP2pspSrcRejoined"]
    after = [e for e in evs if e["event"] == "stats" and rejoined and e["t"] > rejoined[0]]
    chunks = [s["stats"]["chunks-from-splitter"] + s["stats"]["chunks-from-peers"]
              for s in after]
    check(len(chunks) >= 2 and chunks[-1] > chunks[0],
          "chunks keep coming after the rejoin: %s" % chunks)
    decoded = [s["decoded-buffers"] for s in after]
    check(len(decoded) >= 2 and decoded[-1] > decoded[0],
          "decoding goes on after the rejoin: %s" % decoded)
    check(after and after[-1]["stats"]["state"] == "member", "a member again at the end")


def main():
    mode, path = sys.argv[1], sys.argv[2]
    evs = events(path)
    check(len(evs) > 0, "JSON lines in %s" % path)
    if mode == "peer":
        check_peer(evs, float(sys.argv[3]))
    elif mode == "rejoin":
        check_rejoin(evs)
    else:
        check_splitter(evs)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
