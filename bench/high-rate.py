#!/usr/bin/env python3
"""High-rate teams (issue 17) side by side with raw UDP, in one run.

For each team size N and stream rate R: a splitter fed raw audio in real
time (audiotestsrc is-live, S32LE at 48 kHz, C channels: 1.536 Mb/s each;
`wait-for-peers=N`, so the team is complete from the first buffer) and N
peers, each its own `gst-launch-1.0 -m p2pspsrc ! fakesink` process, on the
loopback of a private network namespace, started a second after the
splitter (--peer-delay), as people would start them: the live source has
that second of stream waiting when the team is complete. After the team is
complete and a warm-up, a window of W seconds is measured from /proc:

  * CPU per delivered chunk copy: the peers' CPU time (utime + stime) over
    the window / the chunk copies the window delivered (N x the splitter's
    chunks cut a second of stream x the window: each peer receives every
    chunk once). Udp InDatagrams over the window is kept beside it
    (`us_per_datagram_in`): it also counts control traffic and duplicates,
    and with UDP GRO a joined run counts once;
  * wake-ups a second a peer: the voluntary context switches of every
    thread of the peers over the window (each is a sleep, so a wake-up),
    over the window and N;
  * RSS per peer (VmRSS at the end of the window, the largest of the team);
  * kernel drops (Udp RcvbufErrors) in the window.

At the end of the stream: the chunk loss ratio (CLR) of the worst peer, from
the last GstP2pspSrcLoss message each peer posts (`lost` / chunks cut; no
message: nothing lost), and the splitter's retransmissions (its `stats`, via
tests/e2e/e2e_launch.py) as a share of the chunks it cut.

Raw UDP in the same namespace and run: `iperf3 -u -l 1448 -b 0` before and
after the teams (the ceiling: datagrams/s from the first; CPU per datagram,
client + server, the mean of both, which `/ iperf3 -b 0` compares with), and, for the
1 Mb/s row, iperf3 paced at one peer's datagram rate (`--pacing-timer`), as
in docs/benchmarks.md. A team of N at R chunks/s needs about 2 N R datagram
operations a second (every copy is sent once and received once); `of the
ceiling` is that over iperf3's unlimited datagram operations a second (its
datagrams sent plus received a second).

  sudo bench/high-rate.py [--sizes 5,10] [--rates 10,25,50] [--window 6]
                          [--out bench/out/high-rate] [--one-mbps]
                          [--label NAME] [--compare OTHER/results.json]

Writes OUT/results.json, OUT/table.md and OUT/high-rate.svg (gnuplot).
Needs root (ip netns), the plugin built (GST_PLUGIN_PATH, default build/),
iperf3, PyGObject (for the splitter's stats) and gnuplot for the plot.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = f"p2hr{os.getpid()}"
X = ["ip", "netns", "exec", NS]
CHUNK_BYTES = 1430  # the default chunk size (one 1452-byte datagram, wire version 4)
HZ = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def spawn(argv, logfile):
    f = open(logfile, "w")
    return subprocess.Popen(X + argv, stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(procs, sig=signal.SIGINT, wait=10):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, sig)
    end = time.time() + wait
    for p in procs:
        try:
            p.wait(max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def udp_counters():
    out = subprocess.run(X + ["cat", "/proc/net/snmp"], capture_output=True,
                         text=True).stdout
    rows = [l.split()[1:] for l in out.splitlines() if l.startswith("Udp:")]
    return dict(zip(rows[0], map(int, rows[1])))


def machine_busy():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return sum(v) - v[3] - v[4], sum(v)


def child_pid(p):
    """The gst-launch process under `ip netns exec` (it execs, same pid)."""
    return p.pid


def cpu_ticks(pids):
    t = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t


def wakeups(pids):
    """Voluntary context switches of every thread of `pids`: each one is a
    sleep, so the next run is a wake-up."""
    n = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            n += int(line.split()[1])
            except OSError:
                pass
    return n


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def stat_value(line, field):
    m = re.search(r"(?:^|[ ,])" + re.escape(field) + r"=\([a-z0-9]*\)(\d+)", line)
    return int(m.group(1)) if m else None


def caps_for(mbps):
    """Raw audio of about `mbps` Mb/s, and its exact rate."""
    if mbps < 1.5:  # 1 Mb/s: one channel at 32 kHz
        return "format=S32LE,rate=32000,channels=1", 1.024
    channels = max(1, round(mbps / 1.536))
    return f"format=S32LE,rate=48000,channels={channels}", channels * 1.536


def wait_for_port(logfile, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        with open(logfile, errors="replace") as f:
            m = re.findall(r"current-port = (\d+)", f.read())
        if m and m[-1] != "0":
            return int(m[-1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"splitter did not start, see {logfile}")


def wait_for_team(logfile, n, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        with open(logfile, errors="replace") as f:
            m = re.findall(r"num-peers = (\d+)", f.read())
        if m and int(m[-1]) >= n:
            return True
        time.sleep(0.1)
    return False


def run_team(a, n, mbps):
    caps, exact = caps_for(mbps)
    tag = f"n{n}-r{mbps:g}"
    out = os.path.join(a.out, tag)
    os.makedirs(out, exist_ok=True)
    # The stream outlasts the window by a few seconds (the backlog leaves
    # faster than real time, so it ends early).
    seconds = int(a.peer_delay + a.warmup + a.window + 4)
    # Buffers of 10 ms (480 samples at 48 kHz, 320 at 32 kHz).
    spb = 320 if "32000" in caps else 480
    splitter_log = os.path.join(out, "splitter.log")
    run0 = udp_counters()
    splitter = spawn(
        ["/usr/bin/python3", os.path.join(ROOT, "tests/e2e/e2e_launch.py"),
         "audiotestsrc", "is-live=true", f"samplesperbuffer={spb}",
         f"num-buffers={seconds * 100}", "!", f"audio/x-raw,{caps}", "!",
         "p2pspsplittersink", "name=splitter", "host=127.0.0.1", "port=0",
         f"wait-for-peers={n}"], splitter_log)
    port = wait_for_port(splitter_log, splitter)
    # As people starting peers by hand would: the live source has that much
    # stream waiting for the team when it is complete (issue 17's case).
    time.sleep(a.peer_delay)
    peers = [spawn(["gst-launch-1.0", "-m", "p2pspsrc",
                    f"uri=p2psp://127.0.0.1:{port}", "latency=200"] + a.peer_props + ["!",
                    "fakesink"], os.path.join(out, f"peer{i}.log"))
             for i in range(n)]
    pids = [child_pid(p) for p in peers]
    if not wait_for_team(splitter_log, n):
        stop(peers + [splitter], signal.SIGKILL)
        raise RuntimeError(f"{tag}: the team never reached {n} peers")
    time.sleep(a.warmup)
    u0, c0, m0, w0 = udp_counters(), cpu_ticks(pids), machine_busy(), wakeups(pids)
    time.sleep(a.window)
    u1, c1, m1, w1 = udp_counters(), cpu_ticks(pids), machine_busy(), wakeups(pids)
    rss = max(rss_kb(p) for p in pids)
    splitter.wait(timeout=seconds + 60)
    time.sleep(1)
    stop(peers, wait=15)
    # The start-up burst of issue 17 came before any window: whole run too.
    run_drops = udp_counters()["RcvbufErrors"] - run0["RcvbufErrors"]
    with open(splitter_log, errors="replace") as f:
        sst = [l.replace("\\", "") for l in f if l.startswith("STATS splitter:")]
    sst = sst[-1] if sst else ""
    cut = stat_value(sst, "chunks-cut") or 0
    lost = []
    for i in range(n):
        with open(os.path.join(out, f"peer{i}.log"), errors="replace") as f:
            m = re.findall(r"GstP2pspSrcLoss.*?[ ,]lost=\(guint64\)(\d+)", f.read())
        lost.append(int(m[-1]) if m else 0)
    got = u1["InDatagrams"] - u0["InDatagrams"]
    cpu_s = (c1 - c0) / HZ
    # The stream is `seconds` long at the live source's pace.
    copies = n * cut / seconds * a.window
    return {
        "n": n, "mbps": exact, "chunks_cut": cut,
        "chunks_per_s": exact * 1e6 / 8 / CHUNK_BYTES,
        "clr_worst": max(lost) / cut if cut else None,
        "lost": lost,
        "retransmits": stat_value(sst, "retransmits"),
        "retransmit_pct": 100.0 * (stat_value(sst, "retransmits") or 0) / cut if cut else None,
        "nacks_received": stat_value(sst, "nacks-received"),
        "buffers_paced": stat_value(sst, "buffers-paced"),
        "window_datagrams_in": got,
        "window_rcvbuf_errors": u1["RcvbufErrors"] - u0["RcvbufErrors"],
        "run_rcvbuf_errors": run_drops,
        "window_copies": copies,
        "us_per_copy": cpu_s / copies * 1e6 if copies else None,
        "us_per_datagram_in": cpu_s / got * 1e6 if got else None,
        "wakeups_per_s": (w1 - w0) / a.window / n,
        "copies_per_wakeup": copies / (w1 - w0) if w1 > w0 else None,
        "peer_cpu_pct": 100.0 * cpu_s / a.window / n,
        "rss_mb_max": rss / 1024.0,
        "machine_busy_pct": 100.0 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
    }


def iperf(pps=0, seconds=5, size=1448):
    srv = spawn(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "5201"], "/dev/null")
    time.sleep(0.5)
    bits = int(pps * size * 8)
    argv = ["iperf3", "-c", "127.0.0.1", "-p", "5201", "-u", "-l", str(size),
            "-b", str(bits), "-t", str(seconds), "-J"]
    if pps:
        argv += ["--pacing-timer", str(int(1e6 / pps))]
    r = subprocess.run(X + argv, capture_output=True, text=True, timeout=seconds + 30)
    stop([srv])
    j = json.loads(r.stdout)
    s, cpu = j["end"]["sum"], j["end"]["cpu_utilization_percent"]
    sent = s["packets"]
    got = max(1, sent - (s.get("lost_packets") or 0))
    send_s = cpu["host_total"] / 100 * s["seconds"]
    recv_s = cpu["remote_total"] / 100 * s["seconds"]
    return {"pps": sent / s["seconds"], "received_pps": got / s["seconds"],
            "us_per_datagram": (send_s / sent + recv_s / got) * 1e6}


def write_plot_data(path, rows):
    """One gnuplot index per team size: Mb/s, % delivered, us per copy."""
    sizes = sorted({r["n"] for r in rows})
    with open(path, "w") as f:
        for n in sizes:
            for r in sorted((r for r in rows if r["n"] == n), key=lambda r: r["mbps"]):
                f.write(f"{r['mbps']:.2f} {100 * (1 - (r['clr_worst'] or 0)):.4f} "
                        f"{r['us_per_copy'] or 0:.2f}\n")
            f.write("\n\n")
    return sizes


def plot(a, rows):
    """Delivery and CPU per copy against the stream's rate; with --compare,
    that run's teams too, dashed (e.g. the code before a change)."""
    if not shutil.which("gnuplot"):
        log("no gnuplot: no plot")
        return
    data = os.path.join(a.out, "plot.dat")
    sizes = write_plot_data(data, rows)
    left = [f"'{data}' index {i} using 1:2 with linespoints lw 2 title 'N = {n}'"
            for i, n in enumerate(sizes)]
    right = [f"'{data}' index {i} using 1:3 with linespoints lw 2 title 'N = {n}'"
             for i, n in enumerate(sizes)]
    if a.compare:
        with open(a.compare) as f:
            other = json.load(f)
        odata = os.path.join(a.out, "plot-compare.dat")
        osizes = write_plot_data(odata, other["teams"])
        name = other.get("label") or "compared"
        left += [f"'{odata}' index {i} using 1:2 with linespoints dt 2 title 'N = {n}, {name}'"
                 for i, n in enumerate(osizes)]
        right += [f"'{odata}' index {i} using 1:3 with linespoints dt 2 title 'N = {n}, {name}'"
                  for i, n in enumerate(osizes)]
    script = f"""
set terminal svg size 960,420
set output '{os.path.join(a.out, "high-rate.svg")}'
set multiplot layout 1,2
set xlabel 'stream Mb/s'
set ylabel 'stream delivered to the worst peer, %'
set yrange [0:105]
set key bottom left
plot {", ".join(left)}
set ylabel 'CPU per delivered chunk copy, us'
set yrange [1:*]
set logscale y
set key top right
plot {", ".join(right)}, {a.iperf_us:.2f} title 'iperf3 -b 0, per datagram' with lines dt 3
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=False)


def table(a, rows, ceiling):
    lines = [
        "| N | stream Mb/s | chunks/s | CLR (worst peer) | splitter retransmits % | "
        "datagram ops/s needed (2 N R) | of the ceiling | µs per copy | / iperf3 -b 0 | "
        "wake-ups/s a peer | peer CPU % | RSS per peer MB | kernel drops in window | in the run | "
        "machine busy % |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |"]
    for r in rows:
        need = 2 * r["n"] * r["chunks_per_s"]
        lines.append(
            f"| {r['n']} | {r['mbps']:.1f} | {r['chunks_per_s']:.0f} | {r['clr_worst']:.5f} | "
            f"{r['retransmit_pct']:.2f} | {need:.0f} | {need / ceiling:.2f} | "
            f"{r['us_per_copy']:.1f} | {r['us_per_copy'] / a.iperf_us:.2f} | "
            f"{r['wakeups_per_s']:.0f} | {r['peer_cpu_pct']:.1f} | {r['rss_mb_max']:.1f} | {r['window_rcvbuf_errors']} | "
            f"{r['run_rcvbuf_errors']} | "
            f"{r['machine_busy_pct']:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="5,10")
    ap.add_argument("--rates", default="10,25,50")
    ap.add_argument("--window", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--one-mbps", action="store_true",
                    help="also a 1 Mb/s team, against iperf3 paced at one peer's rate")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/out/high-rate"))
    ap.add_argument("--label", default="", help="a name for this run in results.json")
    ap.add_argument("--compare", help="another run's results.json, plotted dashed")
    ap.add_argument("--peer-delay", type=float, default=1.0,
                    help="seconds between the splitter's start and the peers'")
    ap.add_argument("--peer-props", default="",
                    help="extra p2pspsrc properties, space-separated (e.g. io-interval=5)")
    a = ap.parse_args()
    a.peer_props = a.peer_props.split()
    os.makedirs(a.out, exist_ok=True)
    os.environ.setdefault("GST_PLUGIN_PATH", os.path.join(ROOT, "build/plugin"))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(X + ["ip", "link", "set", "lo", "up"], check=True)
        with open("/proc/loadavg") as f:
            load0 = f.read().split()[:3]
        unl = iperf()
        a.iperf_us = unl["us_per_datagram"]
        # Datagram operations a second: each datagram iperf3 sent is one
        # (it crossed the whole send path, loopback included, even when the
        # receiver's buffer then dropped it), each it received another. Its
        # server falls behind its client on a loaded machine, so the sum is
        # steadier than either.
        ceiling = unl["pps"] + unl["received_pps"]
        log(f"iperf3 -b 0: {unl['pps']:.0f} datagrams/s sent, {unl['received_pps']:.0f} received, "
            f"{unl['us_per_datagram']:.2f} us per datagram")
        rows = []
        rates = [float(r) for r in a.rates.split(",")]
        if a.one_mbps:
            rates = [1.0] + rates
        for n in [int(s) for s in a.sizes.split(",")]:
            for mbps in rates:
                r = run_team(a, n, mbps)
                rows.append(r)
                log(f"N={n} {r['mbps']:.1f} Mb/s: CLR {r['clr_worst']:.5f}, retransmits "
                    f"{r['retransmit_pct']:.2f} %, {r['us_per_copy']:.1f} us per copy, "
                    f"{r['wakeups_per_s']:.0f} wake-ups/s a peer, "
                    f"RSS {r['rss_mb_max']:.1f} MB, kernel drops {r['window_rcvbuf_errors']} "
                    f"in the window, {r['run_rcvbuf_errors']} in the run")
        paced = None
        if a.one_mbps:
            paced = iperf(pps=caps_for(1.0)[1] * 1e6 / 8 / CHUNK_BYTES, seconds=10)
            log(f"iperf3 paced at one peer's rate: {paced['us_per_datagram']:.1f} us per datagram")
        unl2 = iperf()
        log(f"iperf3 -b 0 again: {unl2['received_pps']:.0f} datagrams/s received, "
            f"{unl2['us_per_datagram']:.2f} us per datagram")
        # The teams ran between the two: their mean is the comparison (one
        # iperf3 run alone varied 5.6 - 9.6 us on this VM within minutes).
        a.iperf_us = (unl["us_per_datagram"] + unl2["us_per_datagram"]) / 2
        with open("/proc/loadavg") as f:
            load1 = f.read().split()[:3]
        res = {"label": a.label, "peer_props": a.peer_props, "peer_delay_s": a.peer_delay,
               "ceiling_ops_per_s": ceiling, "iperf_unlimited": unl,
               "iperf_unlimited_after": unl2, "iperf_us_compared": a.iperf_us,
               "iperf_paced_one_peer": paced,
               "loadavg_start": load0, "loadavg_end": load1, "teams": rows,
               "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
        md = table(a, rows, ceiling)
        with open(os.path.join(a.out, "table.md"), "w") as f:
            f.write(md + "\n")
        print(md)
        print(f"load average {' '.join(load0)} at the start, {' '.join(load1)} at the end")
        plot(a, rows)
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", NS], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", NS], check=False)


if __name__ == "__main__":
    sys.exit(main())
