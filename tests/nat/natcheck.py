#!/usr/bin/python3
"""Reads the runner.py logs of a NAT scenario (tests/nat/*.sh) and checks it.

  natcheck.py --splitter LOG --peer NAME:GROUP:KIND:LOG ... [options]

GROUP names the network a peer sits in ("public", or the NAT router's name),
KIND is public, cone, fullcone, symmetric (random ports) or sequential
(a symmetric NAT that allocates in sequence). Join order (for --predict)
comes from the splitter's peer-added events. Prints a table of every peer's final stats,
the splitter's upload per stream byte, and which pairs of peers exchange
chunks directly, then one "ok:" or "FAIL:" line per assertion; exits 1 if one
failed.

A pair a -> b is *direct* when b's "neighbours-list" shows the chunks it got
from a's endpoint growing during the steady part of the run (the periodic
STATS lines of the last 6 s before b played its last chunk: the final stats
come after the team started leaving, when neighbours are being removed).

Where a direct path is possible without help beyond protocol 3 (HELLO from
both sides, PROBE echo, no hairpinning, no port prediction):
  public <-> anyone, full cone <-> anyone (its NAT forwards whatever
  reaches its mapped port), cone <-> cone behind different NATs: direct
  expected;
  same NAT (no hairpinning): direct on the LAN with --ems (PEER_LOCAL,
  protocol.md 3.2), impossible without;
  cone <-> symmetric, symmetric <-> symmetric: impossible (relays and NACKs
  cover them);
  with --predict (port prediction, protocol.md 3.3): cone or full cone <->
  sequential where the sequential peer joined later: direct expected.

Options:
  --min-played-permille N  every peer: (chunks-cut - missing) / chunks-cut
                           >= N / 1000, where missing = max(lost,
                           chunks-cut - played) but a tail of at most one round
                           (PEERS chunks) never played at the very end is not
                           counted (see tests/health/loss.sh)
  --max-upload X           splitter (bytes-sent + retransmit-bytes) / bytes-in
                           in the steady part of the run: from --warmup S
                           (default 5) after the last join to the end of the
                           stream, from its periodic STATS lines (at least
                           5 s of them, else it fails); the whole run's
                           figure is printed too
  --max-wire-upload X      splitter interface tx bytes / bytes-in (with
                           --wire-tx BYTES: everything it sent, IP headers
                           and TCP control included)
  --assert-direct          every pair where a direct path is possible is
                           direct both ways
  --ems                    peers behind one NAT can reach each other on
                           their LAN (counted as possible above)
  --assert-lan             every pair behind one NAT uses its LAN endpoints
                           both ways: b lists a with path "lan" in the steady
                           part, and every peer behind a NAT with another
                           peer has chunks-from-lan > 0
  --predict                count the pairs of --predict above as possible
  --assert-predicted       every cone peer lists each sequential peer that
                           joined after it (behind another NAT) with path
                           "predicted" in the steady part, and no cone peer
                           lists a symmetric (random) peer as direct or
                           predicted: those go through relays or the splitter
  --assert-multicast       the splitter multicasts (IMS, protocol.md 8.5):
                           every public peer (on the splitter's LAN)
                           receives the group and got more than half its
                           chunks from it; no peer behind a NAT did
"""

import argparse
import json
import sys


def read_log(path, element):
    final, series, events = None, [], []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("FINAL "):
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[1] == element:
                    try:
                        final = json.loads(parts[2])
                    except ValueError:
                        pass
            elif line.startswith("STATS "):
                parts = line.split(" ", 3)
                if len(parts) == 4 and parts[2] == element:
                    try:
                        series.append((float(parts[1]), json.loads(parts[3])))
                    except ValueError:
                        pass
            elif line.startswith("EVENT "):
                events.append(line.split(" "))
    return final, series, events


EMS = False
PREDICT = False


def same_nat(a, b):
    return a["kind"] != "public" and a["group"] == b["group"]


def possible(a, b):
    """Whether a direct path between peers a and b can exist (see above)."""
    if a["group"] == b["group"] and a["kind"] != "public":
        return EMS
    if a["kind"] in ("public", "fullcone") or b["kind"] in ("public", "fullcone"):
        return True
    if PREDICT and predicted_pair(a, b):
        return True
    return a["kind"] == "cone" and b["kind"] == "cone"


def predicted_pair(a, b):
    """A cone peer and a sequential one that joined after it (3.3)."""
    older, newer = (a, b) if a["order"] < b["order"] else (b, a)
    return older["kind"] in ("cone", "fullcone") and newer["kind"] == "sequential"


def path_of(sample, nid):
    for n in sample.get("neighbours-list") or []:
        if n.get("id") == nid:
            return n.get("path")
    return None


def received_from(sample, nid):
    for n in sample.get("neighbours-list") or []:
        if n.get("id") == nid:
            return n.get("chunks-received", 0)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splitter", required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--min-played-permille", type=int, default=999)
    ap.add_argument("--max-upload", type=float)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--max-wire-upload", type=float)
    ap.add_argument("--wire-tx", type=int)
    ap.add_argument("--assert-direct", action="store_true")
    ap.add_argument("--ems", action="store_true")
    ap.add_argument("--assert-lan", action="store_true")
    ap.add_argument("--assert-multicast", action="store_true")
    ap.add_argument("--predict", action="store_true")
    ap.add_argument("--assert-predicted", action="store_true")
    args = ap.parse_args()
    global EMS, PREDICT
    EMS = args.ems
    PREDICT = args.predict
    failed = []

    def fail(msg):
        failed.append(msg)
        print("FAIL: " + msg)

    def ok(msg):
        print("ok: " + msg)

    sfinal, sseries, sevents = read_log(args.splitter, "splitter")
    if not sfinal:
        fail("the splitter printed no final stats")
        return 1
    cut = sfinal.get("chunks-cut", 0)
    bytes_in = max(1, sfinal.get("bytes-in", 0))
    sent = sfinal.get("bytes-sent", 0)
    rbytes = sfinal.get("retransmit-bytes", 0)
    joins = [float(e[1]) for e in sevents if len(e) > 4 and e[3] == "signal" and e[4] == "peer-added"]
    last_join = max(joins) if joins else None
    # Join order as the splitter saw it: a lost REGISTER can put a peer
    # behind the one started after it.
    added = [int(e[5]) for e in sevents if len(e) > 5 and e[3] == "signal"
             and e[4] == "peer-added" and e[5].isdigit()]

    peers = []
    for spec in args.peer:
        name, group, kind, log = spec.split(":", 3)
        final, series, _ = read_log(log, "src")
        peers.append({"name": name, "group": group, "kind": kind, "final": final or {},
                      "series": series, "id": (final or {}).get("peer-id"),
                      "order": len(peers)})
    # Ids: the final stats may come after a reconnection; the series knows too.
    for p in peers:
        ids = {s.get("peer-id") for _, s in p["series"] if s.get("peer-id")}
        if len(ids) > 1:
            print(f"note: {p['name']} had several peer ids {sorted(ids)} (rejoined)")
    by_id = {p["id"]: p for p in peers if p["id"]}
    for p in peers:
        if p["id"] in added:
            p["order"] = added.index(p["id"])

    cols = ["played", "lost", "late", "chunks-from-splitter", "chunks-from-peers", "neighbours",
            "endpoints-moved", "probes-sent", "moves-refused", "relayed", "requests-sent",
            "relays-served", "nacks-sent", "nacks-to-splitter", "recovered", "nack-answers-from-splitter", "duplicates",
            "reconnects", "bytes-up", "lan-neighbours", "chunks-from-lan", "chunks-from-multicast"]
    short = ["played", "lost", "late", "from-spl", "from-peers", "nbrs", "moved", "probes",
             "refused", "relayed", "requests", "relays", "nacks", "nacks-spl", "recov", "spl-answer", "dups", "reconn", "bytes-up", "lan-nbrs", "from-lan", "from-mcast"]
    print("peer      group    kind       id " + " ".join(f"{c:>10}" for c in short))
    for p in peers:
        f = p["final"]
        print(f"{p['name']:<9} {p['group']:<8} {p['kind']:<9} {str(p['id']):>3} "
              + " ".join(f"{str(f.get(c, '-')):>10}" for c in cols))

    # 1. Everyone plays.
    n = len(peers)
    worst = 100.0
    for p in peers:
        f = p["final"]
        played, lost = f.get("played"), f.get("lost")
        if played is None or lost is None or not cut:
            fail(f"{p['name']}: no final stats (played, lost) or no chunks cut")
            continue
        missing = max(lost, cut - played)
        tail = missing - lost
        counted = lost if tail <= n else missing
        share = 1000.0 * (cut - counted) / cut
        worst = min(worst, share / 10)
        msg = (f"{p['name']} ({p['kind']}): played {played} of {cut} chunks, lost {lost}, "
               f"tail {tail}{' (not counted)' if tail <= n else ''}: {share / 10:.2f} %")
        if counted * 1000 > cut * (1000 - args.min_played_permille):
            fail(msg + f" < {args.min_played_permille / 10:.1f} %")
        else:
            ok(msg)

    # 2. The splitter's upload: over the whole run, and in the steady part
    # (from --warmup s after the last join to the end of the stream), which
    # the bound applies to. The first seconds are not steady: the splitter
    # held the stream until the last join (wait-for-peers) and sends what
    # piled up at once, before any relay can be in place.
    whole = (sent + rbytes) / bytes_in
    ratio = whole
    steady = None
    if last_join is not None and sseries:
        top = max(st.get("bytes-in", 0) for _, st in sseries)
        end = next((t, st) for t, st in sseries if st.get("bytes-in", 0) == top)
        start = next(((t, st) for t, st in sseries if t >= last_join + args.warmup), None)
        if start and end[0] - start[0] >= 5.0:
            d = lambda k: end[1].get(k, 0) - start[1].get(k, 0)
            steady = {"seconds": end[0] - start[0], "in": max(1, d("bytes-in")),
                      "sent": d("bytes-sent"), "rbytes": d("retransmit-bytes"),
                      "retransmits": d("retransmits")}
            ratio = (steady["sent"] + steady["rbytes"]) / steady["in"]
    print(f"splitter: bytes-in {bytes_in}, chunks-cut {cut}, bytes-sent {sent}, "
          f"retransmit-bytes {rbytes} (retransmits {sfinal.get('retransmits')}, "
          f"nacks-received {sfinal.get('nacks-received')}, "
          f"limited {sfinal.get('retransmits-limited')}), probes-sent {sfinal.get('probes-sent')}, "
          f"endpoints-moved {sfinal.get('endpoints-moved')}, peers-joined {sfinal.get('peers-joined')}, "
          f"peers-left {sfinal.get('peers-left')}")
    print(f"splitter upload per stream byte, whole run: chunks {sent / bytes_in:.3f} "
          f"+ NACK answers {rbytes / bytes_in:.3f} = {whole:.3f}")
    if steady:
        print(f"splitter upload per stream byte, steady ({steady['seconds']:.1f} s from "
              f"{args.warmup:g} s after the last join): chunks {steady['sent'] / steady['in']:.3f} "
              f"+ NACK answers {steady['rbytes'] / steady['in']:.3f} ({steady['retransmits']} chunks) "
              f"= {ratio:.3f}")
    elif args.max_upload is not None:
        fail("no steady part of at least 5 s in the splitter's periodic stats: "
             "the bound is checked on the whole run")
    if args.max_upload is not None:
        msg = (f"splitter uploads {ratio:.3f} bytes per stream byte "
               f"({'steady part' if steady else 'whole run'}, stats)")
        if ratio > args.max_upload:
            fail(msg + f" > {args.max_upload}")
        else:
            ok(msg + f" <= {args.max_upload}")
    if args.wire_tx is not None:
        wire = args.wire_tx / bytes_in
        msg = f"splitter interface sent {args.wire_tx} bytes: {wire:.3f} per stream byte (IP, UDP, TCP included)"
        if args.max_wire_upload is not None and wire > args.max_wire_upload:
            fail(msg + f" > {args.max_wire_upload}")
        elif args.max_wire_upload is not None:
            ok(msg + f" <= {args.max_wire_upload}")
        else:
            print(msg)

    # 3. Direct pairs, from the steady part of the run.
    direct = {}
    lan_path = {}
    steady_paths = {}
    first_seen = {}
    for b in peers:
        if not b["series"]:
            continue
        # The end of the stream for b: when "played" reached its last value.
        top = max(s.get("played", 0) for _, s in b["series"])
        t_end = next(t for t, s in b["series"] if s.get("played", 0) == top)
        window = [(t, s) for t, s in b["series"] if t_end - 6.0 <= t <= t_end]
        for a in peers:
            if a is b or not a["id"]:
                continue
            vals = [received_from(s, a["id"]) for _, s in window]
            vals = [v for v in vals if v is not None]
            direct[(a["name"], b["name"])] = len(vals) >= 2 and vals[-1] > vals[0]
            # Samples after a left (the team leaves at the end) list no path.
            paths = [x for x in (path_of(s, a["id"]) for _, s in window) if x]
            lan_path[(a["name"], b["name"])] = bool(paths) and all(x == "lan" for x in paths)
            steady_paths[(a["name"], b["name"])] = set(paths)
            for t, s in b["series"]:
                v = received_from(s, a["id"])
                if v:
                    first_seen[(a["name"], b["name"])] = t
                    break
    print("direct a -> b (rows a, columns b; D direct, . not, - expected impossible but direct, x possible but not):")
    print("          " + " ".join(f"{p['name']:>8}" for p in peers))
    both, possible_pairs, possible_both, impossible_direct = 0, 0, 0, 0
    missing_pairs = []
    for i, a in enumerate(peers):
        row = []
        for b in peers:
            if a is b:
                row.append("")
                continue
            d = direct.get((a["name"], b["name"]), False)
            pos = possible(a, b)
            row.append("D" if d and pos else "-" if d else "x" if pos else ".")
        print(f"{a['name']:<9} " + " ".join(f"{c:>8}" for c in row))
    for i, a in enumerate(peers):
        for b in peers[i + 1:]:
            d = direct.get((a["name"], b["name"]), False) and direct.get((b["name"], a["name"]), False)
            both += d
            if possible(a, b):
                possible_pairs += 1
                possible_both += d
                if not d:
                    missing_pairs.append(f"{a['name']}-{b['name']}")
            elif d:
                impossible_direct += 1
    pairs = n * (n - 1) // 2
    print(f"pairs exchanging directly both ways: {both} of {pairs}; of the {possible_pairs} pairs "
          f"where protocol 3 can open a path: {possible_both}"
          + (f" (not: {', '.join(missing_pairs)})" if missing_pairs else "")
          + (f"; {impossible_direct} direct where no path was expected" if impossible_direct else ""))
    for kind in ("symmetric", "sequential"):
        for p in peers:
            if p["kind"] != kind:
                continue
            ds = [q["name"] for q in peers if q is not p and direct.get((q["name"], p["name"]))
                  and direct.get((p["name"], q["name"]))]
            print(f"{p['name']} ({kind}) exchanges directly with: {', '.join(ds) if ds else 'nobody'}")
    connect = "n/a"
    if last_join is not None and first_seen:
        delays = [t - last_join for k, t in first_seen.items()
                  if possible(by_id_name(peers, k[0]), by_id_name(peers, k[1]))]
        if delays:
            connect = f"{max(delays):.1f}s"
            print(f"first direct chunk of every possible pair, after the last join: "
                  f"at most {max(delays):.1f} s (stats sampled every "
                  f"{sample_period(peers):.1f} s)")
    if args.assert_direct:
        if missing_pairs:
            fail(f"{len(missing_pairs)} pairs where a direct path is possible do not exchange "
                 f"directly: {', '.join(missing_pairs)}")
        else:
            ok(f"all {possible_pairs} pairs where a direct path is possible exchange directly")

    if args.assert_lan:
        check_lan(peers, lan_path, ok, fail)
    if args.assert_predicted:
        check_predicted(peers, steady_paths, ok, fail)
    if args.assert_multicast:
        check_multicast(peers, sfinal, ok, fail)

    print(f"RESULT min_played={worst:.2f}% upload={ratio:.3f} whole_run={whole:.3f} direct={both}/{pairs} connected_after_last_join={connect} possible_direct={possible_both}/{possible_pairs} "
          f"failed={len(failed)}")
    return 1 if failed else 0


def check_lan(peers, lan_path, ok, fail):
    """Peers behind one NAT: LAN paths both ways, LAN chunks counted."""
    pairs = [(a, b) for i, a in enumerate(peers) for b in peers[i + 1:] if same_nat(a, b)]
    if not pairs:
        fail("--assert-lan: no two peers behind one NAT")
        return
    bad = [f"{a['name']}-{b['name']}" for a, b in pairs
           if not (lan_path.get((a["name"], b["name"])) and lan_path.get((b["name"], a["name"])))]
    if bad:
        fail(f"pairs behind one NAT not on their LAN path both ways: {', '.join(bad)}")
    else:
        ok(f"all {len(pairs)} pairs behind one NAT exchange on their LAN both ways")
    for p in {x["name"]: x for pair in pairs for x in pair}.values():
        n = p["final"].get("chunks-from-lan", 0)
        if n > 0:
            ok(f"{p['name']}: chunks-from-lan {n}")
        else:
            fail(f"{p['name']}: chunks-from-lan {n}, no chunk came over the LAN")


def check_predicted(peers, steady_paths, ok, fail):
    """Port prediction: cone -> later sequential "predicted", random not."""
    print("predict-probes-sent / predicted-neighbours / paths-predicted: " + ", ".join(
        f"{p['name']} {p['final'].get('predict-probes-sent', '-')}/"
        f"{p['final'].get('predicted-neighbours', '-')}/{p['final'].get('paths-predicted', '-')}"
        for p in peers))
    cones = [p for p in peers if p["kind"] == "cone"]
    pairs = [(c, q) for c in cones for q in peers
             if q["kind"] == "sequential" and q["order"] > c["order"]]
    if not pairs:
        fail("--assert-predicted: no cone peer with a later sequential one")
    for c, q in pairs:
        paths = steady_paths.get((q["name"], c["name"]), set())
        msg = f"{c['name']} lists {q['name']} with paths {sorted(paths) or 'none'} in the steady part"
        if paths == {"predicted"}:
            ok(msg)
        else:
            fail(msg + ', expected "predicted"')
    for c in cones:
        for r in peers:
            if r["kind"] != "symmetric":
                continue
            paths = steady_paths.get((r["name"], c["name"]), set())
            msg = f"{c['name']} lists {r['name']} (random ports) with paths {sorted(paths) or 'none'}"
            if paths & {"direct", "predicted"}:
                fail(msg + ": a random symmetric NAT cannot be predicted")
            else:
                ok(msg)


def check_multicast(peers, sfinal, ok, fail):
    """IMS: LAN peers take most chunks from the group, NAT peers none."""
    print(f"splitter: multicast-chunks {sfinal.get('multicast-chunks')}, "
          f"multicast-members {sfinal.get('multicast-members')}")
    for p in peers:
        f = p["final"]
        got = f.get("chunks-from-multicast", 0)
        played = max(1, f.get("played", 0))
        msg = (f"{p['name']} ({p['kind']}): multicast {f.get('multicast')}, "
               f"chunks-from-multicast {got} of {played} played")
        if p["kind"] == "public":
            if f.get("multicast") and got * 2 > played:
                ok(msg)
            else:
                fail(msg + ": expected the group, and most chunks from it")
        elif got:
            fail(msg + ": a peer behind a NAT got chunks from the group")
        else:
            ok(msg)


def by_id_name(peers, name):
    return next(p for p in peers if p["name"] == name)


def sample_period(peers):
    for p in peers:
        s = p["series"]
        if len(s) > 2:
            return (s[-1][0] - s[0][0]) / (len(s) - 1)
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
