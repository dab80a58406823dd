#!/usr/bin/python3
"""Turn bench/bench.py's results.json into a Markdown table and gnuplot SVG plots.

  report.py RESULTS.json [--plots DIR]   (Markdown on stdout)
"""
import argparse
import json
import os
import statistics
import subprocess

ETH = 14  # veth/lo byte counters include the Ethernet header


def d(snaps, *path):
    a, b = snaps
    for k in path:
        a, b = a[k], b[k]
    return b - a


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def busy(m):
    (t0, i0), (t1, i1) = m
    return 100 * (1 - (i1 - i0) / max(1, t1 - t0))


def p2psp_rows(res):
    out = []
    for r in res["rows"]:
        n, s, m = r["n"], r["src"], r["mpeer"]
        bin_ = d(s, "bytes_in")
        chunks = d(s, "stats", "chunks-sent")
        c0, c1 = r["peer_cpu"]
        cpus = [b - a for a, b in zip(c0, c1) if a is not None and b is not None]
        lost = d(m, "stats", "lost")
        played = d(m, "stats", "played")
        cd = [x / 1000 for x in m[1]["delay_samples"]]
        out.append({
            "n": n,
            "origin_l2": d(s, "iface", "vo", "tx_bytes") / bin_,
            "origin_ip": (d(s, "iface", "vo", "tx_bytes") - ETH * d(s, "iface", "vo", "tx_packets")) / bin_,
            "splitter_stats": d(s, "stats", "bytes-sent") / max(1, d(s, "stats", "bytes-in")),
            "peer_stats": d(m, "stats", "bytes-up") / bin_,
            "peer_lo_l2": d(m, "iface", "lo", "tx_bytes") / n / bin_,
            "peer_lo_ip": (d(m, "iface", "lo", "tx_bytes") - ETH * d(m, "iface", "lo", "tx_packets")) / n / bin_,
            "peer_goal": 1.05 * (n - 1) / n,
            "cpu_us_per_copy": 1e6 * sum(cpus) / max(1, len(cpus) * chunks) if cpus else float("nan"),
            "chunks": chunks, "lost": lost, "played": played,
            "late": d(m, "stats", "late"),
            "delay_p50": pct(r["delay_ms"], 50), "delay_p99": pct(r["delay_ms"], 99),
            "delay_max": max(r["delay_ms"]) if r["delay_ms"] else float("nan"),
            "delay_n": len(r["delay_ms"]), "delay_missing": r["delay_missing"],
            "cdelay_p50": pct(cd, 50), "cdelay_p99": pct(cd, 99),
            "cdelay_max": m[1]["stats"].get("chunk-delay-max-us", 0) / 1000,
            "busy": busy(r["machine"]),
            "rss_mb": statistics.median([x for x in r["rss_kb"] if x] or [0]) / 1024,
            "seconds": (s[1]["t"] - s[0]["t"]) / 1e9,
        })
    return out


def icecast_rows(res):
    out = []
    for r in res["rows"]:
        s = r["src"]
        bin_ = d(s, "bytes_in")
        out.append({"n": r["n"], "alive": r["alive"],
                    "origin_l2": d(s, "iface", "vo", "tx_bytes") / bin_,
                    "origin_ip": (d(s, "iface", "vo", "tx_bytes") - ETH * d(s, "iface", "vo", "tx_packets")) / bin_})
    return out


def capacity_rows(res):
    out = []
    for r in res["rows"]:
        n, s, m = r["n"], r["src"], r["mpeer"]
        lost, played = d(m, "stats", "lost"), d(m, "stats", "played")
        chunks = d(s, "stats", "chunks-sent")
        rss = [x / 1024 for x in r["rss_kb"] if x]
        out.append({"n": n, "joined": r["joined"], "alive": r["alive"],
                    "clr": lost / max(1, lost + played),
                    "team_delivery": d(m, "udp", "InDatagrams") / max(1, n * chunks),
                    "rcvbuf_errors": d(m, "udp", "RcvbufErrors"),
                    "busy": busy(r["machine"]),
                    "rss_med": statistics.median(rss) if rss else float("nan"),
                    "rss_max": max(rss) if rss else float("nan")})
    return out


def startup(runs):
    v = [r["first_frame_ms"] for r in runs if r.get("first_frame_ms") is not None]
    return (statistics.median(v) if v else float("nan")), len(v), len(runs)


def gnuplot(script, data, path):
    with open(path + ".dat", "w") as f:
        f.write(data)
    subprocess.run(["gnuplot"], input=script.replace("DATA", path + ".dat").replace("OUT", path + ".svg"),
                   text=True, check=True)
    os.remove(path + ".dat")


def plots(dirname, pr, ir, cr):
    os.makedirs(dirname, exist_ok=True)
    head = "set terminal svg size 640,400 font 'sans,12' background '#ffffff'\nset output 'OUT'\nset key top left\nset grid\n"
    data = "".join(f"{a['n']} {a['origin_l2']} {b['origin_l2']}\n" for a, b in zip(pr, ir))
    gnuplot(head + "set xlabel 'receivers N'\nset ylabel 'origin upload / stream bytes'\n"
            "plot 'DATA' u 1:3 w lp t 'Icecast 2', 'DATA' u 1:2 w lp t 'p2pspsplittersink', 1.05 w l dt 2 t 'goal 1.05'\n",
            data, os.path.join(dirname, "origin-upload"))
    data = "".join(f"{a['n']} {a['delay_p50']} {a['delay_p99']} {a['cdelay_p50']} {a['cdelay_p99']}\n" for a in pr)
    gnuplot(head + "set xlabel 'team size N'\nset ylabel 'ms'\n"
            "plot 'DATA' u 1:2 w lp t 'buffer delay p50', 'DATA' u 1:3 w lp t 'buffer delay p99', "
            "'DATA' u 1:4 w lp t 'chunk-delay-us p50', 'DATA' u 1:5 w lp t 'chunk-delay-us p99', 250 w l dt 2 t 'goal p99 (N=20)'\n",
            data, os.path.join(dirname, "delay"))
    if cr:
        data = "".join(f"{c['n']} {100 * c['clr']} {c['busy']} {c['rss_med']}\n" for c in cr)
        gnuplot(head + "set xlabel 'team size N (one process per peer)'\nset ylabel 'machine CPU busy %'\n"
                "set y2label 'chunk loss %'\nset y2tics\nset ytics nomirror\n"
                "plot 'DATA' u 1:3 w lp t 'CPU busy %', 'DATA' u 1:2 axes x1y2 w lp t 'CLR % (measuring peer)'\n",
                data, os.path.join(dirname, "capacity"))


def f(x, p=3):
    return "n/a" if x != x else f"{x:.{p}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--plots")
    a = ap.parse_args()
    res = json.load(open(a.results))
    pr, ir = p2psp_rows(res["p2psp"]), icecast_rows(res["icecast"])
    cr = capacity_rows(res["capacity"])
    iperf_at = {i["n"]: i for i in res["iperf"] if "n" in i}
    iperf_raw = res["iperf"][-1]["us_per_datagram"]
    size = res.get("iperf_size", 0)
    P = print
    P(f"Run: {'quick' if res['quick'] else 'full'}, windows of {res['window_s']} s, "
      f"chunk-size {res['p2psp'].get('chunk_size')}, "
      f"load average at start {' '.join(res['loadavg_start'])}, at end {' '.join(res['loadavg_end'])}.\n")
    P("### 1. Origin upload per stream byte (veth `vo` tx_bytes / bytes into the sink)\n")
    P("| N | splitter (L2) | splitter (IP) | splitter stats | Icecast 2 (L2) | Icecast 2 (IP) | Icecast / splitter |")
    P("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for a_, b in zip(pr, ir):
        P(f"| {a_['n']} | {f(a_['origin_l2'])} | {f(a_['origin_ip'])} | {f(a_['splitter_stats'])} | "
          f"{f(b['origin_l2'])} | {f(b['origin_ip'])} | {f(b['origin_l2'] / a_['origin_l2'], 1)} |")
    P("\n### 2. Upload per peer per stream byte\n")
    P("| N | stats bytes-up (measuring peer) | lo tx / N (L2) | lo tx / N (IP) | goal 1.05 (N-1)/N |")
    P("| ---: | ---: | ---: | ---: | ---: |")
    for r in pr:
        P(f"| {r['n']} | {f(r['peer_stats'])} | {f(r['peer_lo_l2'])} | {f(r['peer_lo_ip'])} | {f(r['peer_goal'])} |")
    P(f"\n### 3. CPU per delivered chunk copy (gst-launch peers) against raw UDP (iperf3, {size}-byte datagrams)\n")
    P(f"iperf3 -u -l {size} over the receivers' loopback, CPU of client + server per datagram (iperf3's "
      "cpu_utilization_percent), at the rate the team of N delivers chunk copies (N x chunks/s) "
      "and unlimited (-b 0, the machine's floor):\n")
    peer_rate = res.get("iperf_peer_rate")
    P("| iperf3 rate | datagram/s | µs per datagram |")
    P("| --- | ---: | ---: |")
    for i in res["iperf"]:
        name = f"team of N = {i['n']}" if "n" in i else "unlimited (-b 0)"
        P(f"| {name} | {f(i['pps'], 0)} | {f(i['us_per_datagram'], 1)} |")
    if peer_rate:
        P(f"| one peer's rate, --pacing-timer {int(1e6 / peer_rate['pps'])} µs | "
          f"{f(peer_rate['pps'], 0)} | {f(peer_rate['us_per_datagram'], 1)} |")
    P("\nA peer's CPU time per chunk of the stream (it receives each chunk once and sends (N-1)/N "
      "copies on average), against iperf3 unlimited (the floor), at the team's aggregate datagram "
      "rate, and at one peer's datagram rate:\n")
    P("| N | µs per chunk per peer | / unlimited iperf3 | iperf3 team rate µs | / iperf3 team rate "
      "| / iperf3 one peer's rate | machine CPU busy |")
    P("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    per_peer = peer_rate["us_per_datagram"] if peer_rate else float("nan")

    def cpu_cells(r):
        """A row's CPU per copy and its ratios to the floor, the team rate and one peer's rate."""
        same = iperf_at.get(r["n"], {}).get("us_per_datagram", float("nan"))
        cpu = r["cpu_us_per_copy"]
        return (f"{f(cpu, 1)} | {f(cpu / iperf_raw, 1)} | ", f"{f(same, 1)} | ",
                f"{f(cpu / same, 2)} | {f(cpu / per_peer, 2)} | ")

    for r in pr:
        head, same, tail = cpu_cells(r)
        P(f"| {r['n']} | {head}{same}{tail}{f(r['busy'], 0)} % |")
    if res.get("p2psp_io"):
        io = res["p2psp_io"].get("io_interval")
        P(f"\n### 3b. The same teams with the peers' `io-interval={io}`: CPU and delay\n")
        P("| N | µs per chunk per peer | / unlimited iperf3 | / iperf3 team rate | / iperf3 one peer's rate "
          "| delay p50 ms | p99 ms | max ms | chunk-delay p99 ms | max ms | chunks lost | machine CPU busy |")
        P("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in p2psp_rows(res["p2psp_io"]):
            head, _, tail = cpu_cells(r)
            P(f"| {r['n']} | {head}{tail}"
              f"{f(r['delay_p50'], 1)} | {f(r['delay_p99'], 1)} | {f(r['delay_max'], 1)} | "
              f"{f(r['cdelay_p99'], 1)} | {f(r['cdelay_max'], 1)} | {r['lost']} / {r['lost'] + r['played']} | "
              f"{f(r['busy'], 0)} % |")
    P("\n### 4. Delay, splitter sink pad -> measuring peer's src pad (latency=200)\n")
    P("| N | buffers | p50 ms | p99 ms | max ms | chunk-delay p50 ms | chunk-delay p99 ms | chunk-delay max ms | chunks lost | late | buffers missing |")
    P("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in pr:
        P(f"| {r['n']} | {r['delay_n']} | {f(r['delay_p50'], 1)} | {f(r['delay_p99'], 1)} | {f(r['delay_max'], 1)} | "
          f"{f(r['cdelay_p50'], 1)} | {f(r['cdelay_p99'], 1)} | {f(r['cdelay_max'], 1)} | {r['lost']} / {r['lost'] + r['played']} | "
          f"{r['late']} | {r['delay_missing']} |")
    sp, ic = startup(res["p2psp"]["startup"]), startup(res["icecast"]["startup"])
    P("\n### 5. Start-up: PLAYING -> first decoded frame (median)\n")
    P("| receiver | ms | runs |")
    P("| --- | ---: | ---: |")
    P(f"| p2pspsrc ! oggdemux ! theoradec (joins the team of N={pr[-1]['n']}) | {f(sp[0], 0)} | {sp[1]}/{sp[2]} |")
    P(f"| souphttpsrc ! oggdemux ! theoradec (Icecast, {ir[-1]['n']} listeners) | {f(ic[0], 0)} | {ic[1]}/{ic[2]} |")
    P("\n### 6. Capacity: one gst-launch process per peer, 1 Mb/s\n")
    P("| N | joined | CLR (measuring peer) | UDP datagrams in / (N x chunks) | socket overflows | machine CPU busy | RSS median MB | RSS max MB |")
    P("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cr:
        P(f"| {c['n']} | {'yes' if c['joined'] else 'NO'} | {100 * c['clr']:.3f} % | {f(c['team_delivery'], 4)} | "
          f"{c['rcvbuf_errors']} | {f(c['busy'], 0)} % | {f(c['rss_med'], 1)} | {f(c['rss_max'], 1)} |")
    if a.plots:
        plots(a.plots, pr, ir, cr)


if __name__ == "__main__":
    main()
