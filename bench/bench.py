#!/usr/bin/python3
"""The benchmark phases; bench/run.sh sets up the namespaces and calls this.

  bench.py --origin NS --receivers NS --out DIR --media FILE [--quick]

Origin namespace (10.77.0.1, veth "vo"): the splitter, or icecast2 + shout2send.
Receivers namespace (10.77.0.2, veth "vr"): the peers, or the HTTP listeners.
Writes DIR/results.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = [sys.executable, os.path.join(HERE, "node.py")]
O_IP, R_IP = "10.77.0.1", "10.77.0.2"
TICK = os.sysconf("SC_CLK_TCK")
CHUNK_HEADER = 16  # CHUNK header without an origin (docs/protocol.md 4.1)


IO_INTERVAL_MS = 40


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


class Node:
    """A bench/node.py process in a namespace, spoken to over its stdin/stdout."""

    def __init__(self, ns, args, logfile):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + NODE + args, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(logfile, "w"))
        self.events = []
        self.pid = self._read()["pid"]

    def _read(self):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("node exited")
            msg = json.loads(line)
            if "error" in msg or "eos" in msg:
                log("node event:", msg)
                self.events.append(msg)
                continue
            return msg

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self._read()

    def quit(self):
        try:
            self.cmd("quit")
        except (RuntimeError, BrokenPipeError):
            pass
        self.p.wait(timeout=10)


def spawn(ns, argv, logfile):
    return subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(logfile, "a"))


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def proc_cpu(pid):
    """User + system CPU seconds of a process (all threads)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except OSError:
        return None


def proc_rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None


def machine_cpu():
    f = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(f), f[3] + f[4]  # total, idle + iowait (ticks)


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def wait_team(source, n, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        s = source.cmd("snap")
        if s["stats"].get("num-peers", 0) >= n:
            return True
        time.sleep(0.2)
    log(f"team did not reach {n} peers (has {s['stats'].get('num-peers')})")
    return False


def delays(src_keys, peer_keys, t0, t1):
    """Per-buffer delay in ms, splitter sink pad -> peer src pad, for buffers that
    entered the splitter in [t0, t1]."""
    seen = {}
    for k, t in peer_keys:
        seen.setdefault(k, t)
    out, missing = [], 0
    for k, t in src_keys:
        if t0 <= t <= t1:
            if k in seen:
                out.append((seen[k] - t) / 1e6)
            else:
                missing += 1
    return out, missing


def chunk_rate(row):
    """Chunks per second the splitter sent during a p2psp row's window."""
    s0, s1 = row["src"]
    return (s1["stats"]["chunks-sent"] - s0["stats"]["chunks-sent"]) / ((s1["t"] - s0["t"]) / 1e9)


def peer_uri(io_interval=0):
    return f"p2psp://{O_IP}:4552" + (f"?io-interval={io_interval}" if io_interval else "")


def gst_peer_argv(latency, io_interval=0):
    return ["gst-launch-1.0", "-q", "p2pspsrc", f"uri={peer_uri(io_interval)}", f"latency={latency}",
            "!", "fakesink"]


def startup_runs(a, kind, count):
    """Time from PLAYING to the first decoded frame, for `count` new receivers in turn."""
    out = []
    for i in range(count):
        if kind == "p2psp":
            args = ["peer", "--uri", f"p2psp://{O_IP}:4552", "--decode"]
        else:
            args = ["listener", "--url", f"http://{O_IP}:8000/live.ogg"]
        n = Node(a.receivers, args, f"{a.out}/startup-{kind}-{i}.log")
        end = time.time() + 10
        s = n.cmd("snap")
        while s["t_first_frame"] is None and time.time() < end:
            time.sleep(0.05)
            s = n.cmd("snap")
        n.quit()
        if s["t_first_frame"]:
            out.append({"first_frame_ms": (s["t_first_frame"] - s["t_play"]) / 1e6,
                        "first_out_ms": (s["t_first_out"] - s["t_play"]) / 1e6
                        if s["t_first_out"] else None})
        else:
            out.append({"first_frame_ms": None})
        time.sleep(0.5)
    return out


def phase_p2psp(a, sizes, window, chunk_size=0, decode=True, tag="p2psp", io_interval=0):
    log(f"{tag}: team sizes {sizes}, chunk-size {chunk_size or 'default'}, io-interval {io_interval}")
    src = Node(a.origin, ["source", "--sink", "p2psp", "--media", a.media, "--host", O_IP,
                          "--chunk-size", str(chunk_size)], f"{a.out}/{tag}-source.log")
    time.sleep(1)
    margs = ["peer", "--uri", peer_uri(io_interval), "--latency", "200"]
    # the measuring peer does not decode (a starved decoder would hold back its
    # src pad and show up as delay); the start-up runs decode
    mpeer = Node(a.receivers, margs, f"{a.out}/{tag}-mpeer.log")
    peers, rows = [], []
    try:
        for n in sizes:
            while len(peers) < n - 1:
                peers.append(spawn(a.receivers, gst_peer_argv(200, io_interval),
                                   f"{a.out}/{tag}-peers.log"))
            ok = wait_team(src, n)
            time.sleep(a.settle)
            c0 = [proc_cpu(p.pid) for p in peers]
            m0, s0 = machine_cpu(), src.cmd("snap")
            p0 = mpeer.cmd("snap")
            time.sleep(window)
            s1 = src.cmd("snap")
            p1 = mpeer.cmd("snap")
            c1 = [proc_cpu(p.pid) for p in peers]
            m1 = machine_cpu()
            rows.append({"n": n, "joined": ok, "src": [s0, s1], "mpeer": [p0, p1],
                         "peer_cpu": [c0, c1], "machine": [m0, m1],
                         "rss_kb": [proc_rss_kb(p.pid) for p in peers],
                         "alive": sum(p.poll() is None for p in peers) + 1})
            log(f"{tag}: N={n} done, splitter {s1['stats'].get('num-peers')} peers")
        time.sleep(1)  # let the last buffers of the window reach the peer
        src.cmd(f"keys {a.out}/{tag}-source.keys")
        mpeer.cmd(f"keys {a.out}/{tag}-mpeer.keys")
        src_keys = json.load(open(f"{a.out}/{tag}-source.keys"))
        peer_keys = json.load(open(f"{a.out}/{tag}-mpeer.keys"))
        for r in rows:
            d, miss = delays(src_keys, peer_keys, r["src"][0]["t"], r["src"][1]["t"])
            r["delay_ms"], r["delay_missing"] = d, miss
        startup = startup_runs(a, "p2psp", a.startups) if decode else []
    finally:
        stop(peers)
        mpeer.quit()
        src.quit()
    return {"rows": rows, "startup": startup, "io_interval": io_interval,
            "chunk_size": rows[-1]["src"][1].get("chunk_size", chunk_size)}


ICECAST_XML = """<icecast>
  <limits><clients>200</clients><sources>2</sources><burst-size>65536</burst-size></limits>
  <authentication><source-password>bench</source-password><admin-password>bench</admin-password></authentication>
  <hostname>{ip}</hostname>
  <listen-socket><port>8000</port><bind-address>{ip}</bind-address></listen-socket>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{dir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot><changeowner><user>icecast2</user><group>icecast</group></changeowner></security>
</icecast>
"""


def phase_icecast(a, sizes, window):
    log(f"icecast: listeners {sizes}")
    d = f"{a.out}/icecast"
    os.makedirs(d, exist_ok=True)
    open(f"{d}/icecast.xml", "w").write(ICECAST_XML.format(ip=O_IP, dir=d))
    subprocess.run(["chown", "-R", "icecast2", d], check=False)
    server = spawn(a.origin, ["icecast2", "-c", f"{d}/icecast.xml"], f"{d}/stderr.log")
    time.sleep(1)
    src = Node(a.origin, ["source", "--sink", "shout", "--media", a.media,
                          "--icecast", f"{O_IP}:8000"], f"{a.out}/icecast-source.log")
    time.sleep(2)
    listeners, rows = [], []
    try:
        for n in sizes:
            while len(listeners) < n:
                listeners.append(spawn(a.receivers, ["curl", "-s", "-o", "/dev/null",
                                                     f"http://{O_IP}:8000/live.ogg"],
                                       f"{d}/curl.log"))
            time.sleep(a.settle + 1)
            c0 = [proc_cpu(p.pid) for p in listeners] + [proc_cpu(server.pid)]
            s0 = src.cmd("snap")
            time.sleep(window)
            s1 = src.cmd("snap")
            c1 = [proc_cpu(p.pid) for p in listeners] + [proc_cpu(server.pid)]
            rows.append({"n": n, "src": [s0, s1], "cpu": [c0, c1],
                         "alive": sum(p.poll() is None for p in listeners)})
            log(f"icecast: N={n} done")
        startup = startup_runs(a, "icecast", a.startups)
    finally:
        stop(listeners)
        src.quit()
        stop([server])
    return {"rows": rows, "startup": startup}


def phase_iperf(a, pps, seconds, size, paced=False):
    """Raw UDP over the receivers' loopback: CPU seconds (client + server) per
    datagram, at `pps` datagrams/s (0: as fast as it goes). paced: iperf3's
    pacing timer set to the datagram interval, so that it sends each datagram
    when it is due and sleeps in between, as a peer does (its default 1 ms
    timer would wake it more often than it sends at low rates)."""
    srv = spawn(a.receivers, ["iperf3", "-s", "-1", "-B", R_IP, "-p", "5201"], f"{a.out}/iperf.log")
    time.sleep(0.5)
    bits = int(pps * size * 8)  # iperf3 -b 0: unlimited
    r = subprocess.run(["ip", "netns", "exec", a.receivers, "iperf3", "-c", R_IP, "-p", "5201",
                        "-u", "-l", str(size), "-b", str(bits), "-t", str(seconds), "-J"]
                       + (["--pacing-timer", str(int(1e6 / pps))] if paced else []),
                       capture_output=True, text=True, timeout=seconds + 30)
    stop([srv])
    j = json.loads(r.stdout)
    s, cpu = j["end"]["sum"], j["end"]["cpu_utilization_percent"]
    sent = s["packets"]
    got = sent - (s.get("lost_packets") or 0)
    send_s = cpu["host_total"] / 100 * s["seconds"]
    recv_s = cpu["remote_total"] / 100 * s["seconds"]
    # one send (client) plus one receive (server), whatever the loss
    return {"pps": pps or sent / s["seconds"], "size": size, "sent": sent, "received": got,
            "send_us": send_s / sent * 1e6, "recv_us": recv_s / max(1, got) * 1e6,
            "us_per_datagram": (send_s / sent + recv_s / max(1, got)) * 1e6}


def phase_capacity(a, sizes, window):
    log(f"capacity: team sizes {sizes}")
    src = Node(a.origin, ["source", "--sink", "p2psp", "--media", a.media, "--host", O_IP],
               f"{a.out}/cap-source.log")
    time.sleep(1)
    mpeer = Node(a.receivers, ["peer", "--uri", f"p2psp://{O_IP}:4552"], f"{a.out}/cap-mpeer.log")
    peers, rows = [], []
    try:
        for n in sizes:
            while len(peers) < n - 1:
                peers.append(spawn(a.receivers, gst_peer_argv(200), f"{a.out}/cap-peers.log"))
            ok = wait_team(src, n, timeout=60)
            time.sleep(a.settle + 2)
            m0, s0, p0 = machine_cpu(), src.cmd("snap"), mpeer.cmd("snap")
            time.sleep(window)
            m1, s1, p1 = machine_cpu(), src.cmd("snap"), mpeer.cmd("snap")
            row = {"n": n, "joined": ok, "src": [s0, s1], "mpeer": [p0, p1], "machine": [m0, m1],
                   "rss_kb": [proc_rss_kb(p.pid) for p in peers],
                   "alive": sum(p.poll() is None for p in peers) + 1}
            rows.append(row)
            lost = p1["stats"]["lost"] - p0["stats"]["lost"]
            played = p1["stats"]["played"] - p0["stats"]["played"]
            clr = lost / max(1, lost + played)
            log(f"capacity: N={n} joined={ok} CLR={clr:.5f}")
            if not ok or clr >= 0.001 or s1["stats"].get("num-peers", 0) < n:
                break
    finally:
        stop(peers)
        mpeer.quit()
        src.quit()
    return {"rows": rows}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--origin", required=True)
    p.add_argument("--receivers", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--media", required=True)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.quick:
        sizes, window, a.settle, a.startups = [3, 5], 4, 2, 1
        cap_sizes, cap_window = [8, 12], 4
    else:
        sizes, window, a.settle, a.startups = [5, 10, 20, 30], 10, 3, 3
        cap_sizes, cap_window = [32, 48, 64, 80, 96, 128], 15
    res = {"quick": a.quick, "sizes": sizes, "window_s": window, "media": a.media,
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    res["p2psp"] = phase_p2psp(a, sizes, window)
    # The same teams with the peers' io-interval (fewer wake-ups, more delay).
    res["p2psp_io"] = phase_p2psp(a, sizes, window, decode=False, tag="p2psp-io",
                                  io_interval=IO_INTERVAL_MS)
    res["icecast"] = phase_icecast(a, sizes, window)
    # Raw UDP with datagrams of a chunk's size (payload + the 16-byte header the
    # splitter sends), at the rate the whole team of each N delivers chunk
    # copies (N x chunks/s: the same datagrams per second through the machine
    # as the peers' CPU is divided by), and unlimited (the machine's floor).
    dgram = res["p2psp"]["chunk_size"] + CHUNK_HEADER
    res["iperf_size"] = dgram
    res["iperf"] = []
    for row in res["p2psp"]["rows"]:
        res["iperf"].append(dict(phase_iperf(a, chunk_rate(row) * row["n"], window, dgram), n=row["n"]))
    res["iperf"].append(phase_iperf(a, 0, window, dgram))
    # And at the rate one peer handles (the stream's chunks/s, the same for
    # every N): the datagrams per second of one process, which is what sets
    # how many datagrams each wake-up serves.
    rates = [chunk_rate(r) for r in res["p2psp"]["rows"]]
    res["iperf_peer_rate"] = phase_iperf(a, sum(rates) / len(rates), window, dgram, paced=True)
    res["capacity"] = phase_capacity(a, cap_sizes, cap_window)
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    json.dump(res, open(f"{a.out}/results.json", "w"))
    log(f"wrote {a.out}/results.json")


if __name__ == "__main__":
    main()
