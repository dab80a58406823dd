#!/usr/bin/python3
"""1,000 joins against one p2psp-tracker process (issue 16's goal: p99
resolve time under 10 ms, RSS under 30 MB).

    bench/tracker-load.py [--tracker build/tools/tracker/p2psp-tracker]
                          [--joins 1000] [--channels 3] [--teams 20]
                          [--clients 8]

Starts the tracker on 127.0.0.1 (a free port), announces TEAMS teams per
channel the way splitters do (each once a second from a thread, with the
member counts the joins so far imply), then CLIENTS threads send JOINS
GET /v1/join/CHANNEL requests, each on a new connection as a joining peer
would. Prints the latency percentiles and the tracker's peak RSS.
"""
import argparse
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracker", default="build/tools/tracker/p2psp-tracker")
    ap.add_argument("--joins", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--teams", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    tracker = subprocess.Popen([args.tracker, "--host", "127.0.0.1", "--port",
                                "0"], stdout=subprocess.PIPE, text=True)
    port = int(tracker.stdout.readline().rsplit(" ", 1)[1])
    stop = threading.Event()

    def post(path, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", path, json.dumps(body))
        c.getresponse().read()
        c.close()

    def announcer():
        while not stop.is_set():
            for ch in range(args.channels):
                for t in range(args.teams):
                    post("/v1/announce", {
                        "channel": f"ch{ch}", "team-id": t + 1,
                        "host": f"10.{ch}.{t // 250}.{t % 250 + 1}",
                        "port": 4552, "max-peers": 0, "peers": 0})
            stop.wait(1)

    a = threading.Thread(target=announcer)
    a.start()
    time.sleep(0.5)
    latencies = []
    lock = threading.Lock()
    per_client = args.joins // args.clients

    def client(k):
        mine = []
        for i in range(per_client):
            t0 = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", f"/v1/join/ch{(k + i) % args.channels}")
            r = c.getresponse()
            r.read()
            c.close()
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                print("join failed:", r.status, file=sys.stderr)
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,))
               for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    stop.set()
    a.join()
    peak = rss_kb(tracker.pid)
    tracker.terminate()
    tracker.wait()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    result = {"joins": len(latencies), "clients": args.clients,
              "teams": args.channels * args.teams,
              "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2),
              "max_ms": round(latencies[-1], 2),
              "joins_per_s": round(len(latencies) / elapsed),
              "tracker_peak_rss_mb": round(peak / 1024, 1)}
    print(json.dumps(result))
    ok = result["p99_ms"] < 10 and result["tracker_peak_rss_mb"] < 30
    print("goal (p99 < 10 ms, RSS < 30 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
