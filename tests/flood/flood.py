#!/usr/bin/python3
"""Floods P2PSP processes with garbage, for tests/flood/flood.sh.

  flood.py --udp-of-pid PID ... --tcp HOST:PORT --duration S
           --datagrams N --connections M --watch PID ... --report FILE

UDP: N datagrams to every UDP port each --udp-of-pid process has open (found
through /proc/PID/fd and /proc/net/udp{,6}, so no port is guessed), and to
every --udp HOST:PORT, spread evenly over --duration seconds. Half are
random bytes (1..1500 bytes, a few up to 60000); half look like P2PSP: the
right magic and version, a random type (mostly 1..9), a random team id and
random fields, cut at a random length; a quarter of these are whole chunks
with small chunk numbers and origins, as a young stream has.

TCP: M connections to --tcp, spread over --duration, taking turns at:
random bytes; a length prefix far too long (or zero) with some bytes after;
a JOIN frame with junk (other magic, other versions, random flags, trailing
bytes, random types); a connection that says nothing and stays open; the
first MiB of a message of the longest legal length, never finished.
After sending, each connection waits for the other side to close it.

While it runs it samples VmRSS of every --watch process. The report (JSON)
has what was sent, how many TCP connections the other side closed, and the
RSS of each watched process at the start, at its highest and at the end.
"""

import argparse
import errno
import json
import os
import random
import selectors
import socket
import struct
import sys
import time

# Keep in step with gst/p2psp/wire.h (docs/protocol.md): the UDP header is
# u8 magic, u8 flags, u8 version, u8 type, u32 team id; a CHUNK goes on with
# u32 number, u16 first frame offset, u16 send time, [u32 origin if flag 1].
MAGIC = 0x50
VERSION = 2
FLAG_ORIGIN = 1
JOIN_MAGIC = b"P2PSP"


def udp_header(kind, flags=0, team=None, rng=None):
    team = rng.getrandbits(32) if team is None else team
    return struct.pack(">BBBBI", MAGIC, flags, VERSION, kind, team)


def udp_ports_of(pid):
    """(family, port) of the UDP sockets process pid has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table, family in (("/proc/net/udp", socket.AF_INET), ("/proc/net/udp6", socket.AF_INET6)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[9] in inodes:
                found.append((family, int(cols[1].split(":")[1], 16)))
    return found


def vm_rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def random_datagram(rng):
    if rng.random() < 0.5:
        size = rng.randint(1, 1500) if rng.random() < 0.99 else rng.randint(1500, 60000)
        return rng.randbytes(size)
    if rng.random() < 0.25:
        # A whole chunk of a young stream (numbers from 0, origins from 1):
        # only the team id (and who sends it) tells it from a real one.
        explicit = rng.random() < 0.5
        header = udp_header(1, FLAG_ORIGIN if explicit else 0, rng=rng)
        fields = struct.pack(">IHH", rng.randint(0, 4095), rng.choice((0, 0xFFFF)),
                             rng.getrandbits(16))
        if explicit:
            fields += struct.pack(">I", rng.randint(1, 4))
        return header + fields + rng.randbytes(rng.choice((200, 1024, 1432)))
    kind = rng.randint(1, 9) if rng.random() < 0.9 else rng.randint(0, 255)
    flags = 0 if rng.random() < 0.8 else rng.getrandbits(8)
    header = udp_header(kind, flags, rng=rng)
    body = rng.randbytes(rng.choice((8, 16, 24, 64, 300, 1100)))
    whole = header + body
    return whole[: rng.randint(1, len(whole))]


def frame(kind, body):
    return struct.pack(">IB", 1 + len(body), kind) + body


def tcp_payload(turn, rng):
    """Bytes to send on connection number `turn`; None: stay silent."""
    kind = turn % 5
    if kind == 0:
        return rng.randbytes(rng.randint(1, 2048))
    if kind == 1:
        length = rng.choice((0xFFFFFFFF, 0x80000000, (1 << 20) + 1, 1 << 20, 65536, 8193, 0))
        return struct.pack(">I", length) + rng.randbytes(rng.randint(0, 200))
    if kind == 2:
        choice = rng.randint(0, 4)
        if choice == 0:  # other magic
            return frame(1, b"P2PSQ" + bytes([VERSION]) + rng.randbytes(4))
        if choice == 1:  # another version
            other = rng.choice([v for v in range(256) if v != VERSION])
            return frame(1, JOIN_MAGIC + bytes([other]) + rng.randbytes(4))
        if choice == 2:  # a body too short or too long
            return frame(1, JOIN_MAGIC + bytes([VERSION]) + rng.randbytes(rng.choice((0, 2, 9, 400))))
        if choice == 3:  # a message only the splitter sends, or no type at all
            return frame(rng.choice((2, 3, 6, 8, 0, 200)), rng.randbytes(rng.randint(0, 64)))
        # A valid JOIN then junk: WELCOME, then closed for the junk.
        return frame(1, JOIN_MAGIC + bytes([VERSION]) + b"\0\0\0\0") + rng.randbytes(64)
    if kind == 3:
        return None
    # Almost all of the longest legal message, never finished: whoever
    # buffers it keeps a MiB per connection.
    return struct.pack(">IB", 1 << 20, 1) + rng.randbytes((1 << 20) - 2)


class TcpFlood:
    def __init__(self, host, port, rng):
        self.addr = (host, port)
        self.rng = rng
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.connect_failed = 0
        self.reset_while_sending = 0
        self.closed_by_peer = 0
        self.silent = 0

    def open_one(self):
        turn = self.opened
        self.opened += 1
        payload = tcp_payload(turn, self.rng)
        s = socket.socket(socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET)
        s.settimeout(2)
        try:
            s.connect(self.addr)
        except OSError:
            self.connect_failed += 1
            s.close()
            return
        try:
            if payload:
                s.sendall(payload)
        except socket.timeout:
            pass  # not reading, not closing: still_open tells
        except OSError:
            # Reset while sending (or a send that timed out): the other side
            # closed it, or stopped reading.
            self.reset_while_sending += 1
            s.close()
            return
        if payload is None:
            self.silent += 1
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ)

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # EOF or reset: the other side closed it
                self.closed_by_peer += 1
                self.sel.unregister(s)
                s.close()

    def still_open(self):
        return len(self.sel.get_map())

    def close_all(self):
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fileobj)
            key.fileobj.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--udp-of-pid", type=int, action="append", default=[])
    ap.add_argument("--udp", action="append", default=[], help="HOST:PORT")
    ap.add_argument("--udp-host", default="127.0.0.1")
    ap.add_argument("--tcp", help="HOST:PORT")
    ap.add_argument("--datagrams", type=int, default=10000, help="per UDP target")
    ap.add_argument("--connections", type=int, default=300)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--linger", type=float, default=4.0,
                    help="seconds to wait for the other side to close connections")
    ap.add_argument("--watch", type=int, action="append", default=[])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report", required=True)
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    targets = []
    for pid in args.udp_of_pid:
        ports = udp_ports_of(pid)
        if not ports:
            print(f"flood: process {pid} has no UDP socket", file=sys.stderr)
            return 2
        for family, port in ports:
            host = args.udp_host if family == socket.AF_INET else "::1"
            targets.append({"pid": pid, "host": host, "port": port, "sent": 0, "errors": 0})
    for spec in args.udp:
        host, port = spec.rsplit(":", 1)
        targets.append({"pid": None, "host": host, "port": int(port), "sent": 0, "errors": 0})
    udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp4.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    udp6 = None

    tcp = None
    if args.tcp:
        host, port = args.tcp.rsplit(":", 1)
        tcp = TcpFlood(host, int(port), rng)

    rss = {pid: {"start": vm_rss_kib(pid)} for pid in args.watch}
    for r in rss.values():
        r["max"] = r["start"]

    def sample():
        for pid, r in rss.items():
            v = vm_rss_kib(pid)
            if v is not None:
                r["max"] = max(r["max"] or 0, v)
                r["end"] = v

    start = time.monotonic()
    step = 0.01
    steps = max(1, int(args.duration / step))
    last_sample = 0.0
    for i in range(steps):
        due = start + i * step
        now = time.monotonic()
        if due > now:
            if tcp:
                tcp.poll(due - now)
            else:
                time.sleep(due - now)
        for t in targets:
            want = args.datagrams * (i + 1) // steps
            while t["sent"] + t["errors"] < want:
                sock = udp4
                if ":" in t["host"]:
                    udp6 = udp6 or socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                    sock = udp6
                try:
                    sock.sendto(random_datagram(rng), (t["host"], t["port"]))
                    t["sent"] += 1
                except OSError as e:
                    # ENOBUFS/EAGAIN: our own buffer; ECONNREFUSED: ICMP from
                    # an earlier datagram. Counted, never retried.
                    if e.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED):
                        raise
                    t["errors"] += 1
        if tcp:
            while tcp.opened < args.connections * (i + 1) // steps:
                tcp.open_one()
        if time.monotonic() - last_sample > 0.2:
            sample()
            last_sample = time.monotonic()
    flood_seconds = time.monotonic() - start

    # Let the other side close what it is going to close.
    deadline = time.monotonic() + args.linger
    while tcp and time.monotonic() < deadline and tcp.still_open() > tcp.silent:
        tcp.poll(0.1)
        sample()
    if tcp:
        # Silent connections: the handshake timeout must close them too.
        while time.monotonic() < deadline and tcp.still_open() > 0:
            tcp.poll(0.1)
            sample()
    sample()

    report = {
        "seed": seed,
        "flood_seconds": round(flood_seconds, 2),
        "udp": targets,
        "datagrams_sent": sum(t["sent"] for t in targets),
        "tcp": None if not tcp else {
            "opened": tcp.opened,
            "connect_failed": tcp.connect_failed,
            "reset_while_sending": tcp.reset_while_sending,
            "closed_by_peer": tcp.closed_by_peer,
            "silent": tcp.silent,
            "still_open": tcp.still_open(),
        },
        "rss_kib": {str(pid): r for pid, r in rss.items()},
    }
    if tcp:
        tcp.close_all()
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
