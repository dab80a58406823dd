#!/usr/bin/python3
"""Floods P2PSP processes with garbage, for tests/flood/flood.sh.

  flood.py --udp-of-pid PID ... --tcp HOST:PORT --duration S
           --datagrams N --connections M --watch PID ... --report FILE
           [--auth [--team HEX]]

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
After sending, each connection waits for the other side to close it; what
the other side wrote before closing is parsed and tallied by message type.

--auth (a team with a passphrase): half the datagrams look sealed instead
(flag SEALED, the team id --team if given, a sender id that is 0 or a small
peer id or random, a counter near 0, random or huge, a random body and tag,
sometimes cut), and the TCP connections also take turns at: a JOIN with the
auth flag and an AUTH of the right size but random nonce and proof (a
guess); a JOIN with the auth flag then an AUTH of the wrong size, another
message, or silence.

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
# u32 number, u16 first frame offset, u16 send time, u16 previous,
# [u32 origin if flag 1].
MAGIC = 0x50
VERSION = 4
FLAG_ORIGIN = 1
FLAG_SEALED = 0x80
JOIN_MAGIC = b"P2PSP"
JOIN_FLAG_AUTH = 2
# TCP types (wire.h TcpType) and the REJECT reason of a refused passphrase.
TCP_TYPES = {1: "join", 2: "welcome", 3: "team", 4: "peer_joined", 5: "peer_left",
             6: "removed", 7: "goodbye", 8: "reject", 9: "role", 10: "challenge",
             11: "auth", 12: "proof", 13: "chunk_key", 14: "polluted", 15: "sealed"}
TCP_AUTH = 11
REASON_AUTH = 7
# Sealed datagram (auth.h): header, u32 sender, u64 counter, body, 16-byte tag.
SEALED_MIN = 8 + 4 + 8 + 16


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
        fields = struct.pack(">IHHH", rng.randint(0, 4095), rng.choice((0, 0xFFFF)),
                             rng.getrandbits(16), rng.getrandbits(16))
        if explicit:
            fields += struct.pack(">I", rng.randint(1, 4))
        return header + fields + rng.randbytes(rng.choice((200, 1024, 1430)))
    kind = rng.randint(1, 9) if rng.random() < 0.9 else rng.randint(0, 255)
    flags = 0 if rng.random() < 0.8 else rng.getrandbits(8)
    header = udp_header(kind, flags, rng=rng)
    body = rng.randbytes(rng.choice((8, 16, 24, 64, 300, 1100)))
    whole = header + body
    return whole[: rng.randint(1, len(whole))]


def sealed_datagram(rng, team):
    """What a sealed datagram looks like, without the key: it must never open."""
    flags = FLAG_SEALED | (rng.getrandbits(2) if rng.random() < 0.2 else 0)
    kind = rng.randint(1, 9)
    sender = rng.choice((0, 1, 2, 3, rng.getrandbits(32)))
    # Counters near the real ones (which start at 0), or far ahead: a forged
    # one must not move a receiver's replay window.
    counter = rng.choice((rng.randint(0, 20000), rng.getrandbits(64), (1 << 64) - 1))
    body = rng.randbytes(rng.choice((4, 12, 16, 200, 1024, 1432)))
    whole = (udp_header(kind, flags, team, rng) + struct.pack(">IQ", sender, counter)
             + body + rng.randbytes(16))
    if rng.random() < 0.1:
        whole = whole[: rng.randint(1, SEALED_MIN)]
    return whole


def frame(kind, body):
    return struct.pack(">IB", 1 + len(body), kind) + body


AUTH_JOIN = frame(1, JOIN_MAGIC + bytes([VERSION]) + struct.pack(">I", JOIN_FLAG_AUTH))


def auth_payload(kind, rng):
    """A JOIN asking for the authenticated join, then a wrong AUTH."""
    join = AUTH_JOIN
    if kind == 5:  # the right size: a guess of the proof
        return join + frame(TCP_AUTH, rng.randbytes(64))
    choice = rng.randint(0, 2)
    if choice == 0:  # an AUTH too short or too long
        return join + frame(TCP_AUTH, rng.randbytes(rng.choice((0, 32, 63, 65, 400))))
    if choice == 1:  # anything but AUTH after the CHALLENGE
        return join + frame(rng.choice((1, 7, 12, 15)), rng.randbytes(rng.randint(0, 80)))
    return join  # then nothing: the handshake timeout


def tcp_payload(turn, rng, auth=False):
    """Bytes to send on connection number `turn`; None: stay silent."""
    kind = turn % (7 if auth else 5)
    if kind >= 5:
        return auth_payload(kind, rng)
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


def tcp_frames(data):
    """(type, body) of the whole frames in data."""
    frames = []
    while len(data) >= 5:
        length = struct.unpack(">I", data[:4])[0]
        if length == 0 or len(data) < 4 + length:
            break
        frames.append((data[4], data[5:4 + length]))
        data = data[4 + length:]
    return frames


class TcpFlood:
    # What is kept of a connection's replies (a few control messages).
    REPLY_LIMIT = 65536

    def __init__(self, host, port, rng, auth=False):
        self.addr = (host, port)
        self.rng = rng
        self.auth = auth
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.connect_failed = 0
        self.reset_while_sending = 0
        self.closed_by_peer = 0
        self.silent = 0
        # Messages received on all connections, by type; REJECTs by reason.
        self.replies = {}
        self.rejects = {}
        # Connections that sent a proof guess: answered with a CHALLENGE,
        # and of those, then refused with REJECT reason auth.
        self.guesses = {"sent": 0, "challenged": 0, "refused": 0}

    def open_one(self):
        turn = self.opened
        self.opened += 1
        payload = tcp_payload(turn, self.rng, self.auth)
        # A JOIN with nothing after it waits for the handshake timeout too.
        silent = payload is None or payload == AUTH_JOIN
        guess = self.auth and turn % 7 == 5
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
        if silent:
            self.silent += 1
        self.guesses["sent"] += guess
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, {"got": b"", "guess": guess})

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            state = key.data
            if len(state["got"]) < self.REPLY_LIMIT:
                state["got"] += data
            if not data:  # EOF or reset: the other side closed it
                self.closed_by_peer += 1
                self.tally(state)
                self.sel.unregister(s)
                s.close()

    def tally(self, state):
        frames = tcp_frames(state["got"])
        names = [TCP_TYPES.get(kind, "unknown") for kind, _ in frames]
        for name, (_, body) in zip(names, frames):
            self.replies[name] = self.replies.get(name, 0) + 1
            if name == "reject" and body:
                self.rejects[str(body[0])] = self.rejects.get(str(body[0]), 0) + 1
        if state["guess"] and "challenge" in names:
            # A guess is refused by the very next message.
            self.guesses["challenged"] += 1
            after = names.index("challenge") + 1
            if (after < len(frames) and names[after] == "reject"
                    and frames[after][1][:1] == bytes([REASON_AUTH])):
                self.guesses["refused"] += 1

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
    ap.add_argument("--auth", action="store_true",
                    help="the team has a passphrase: also sealed-looking datagrams and wrong AUTHs")
    ap.add_argument("--team", help="team id (hex) for the sealed-looking datagrams")
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
            targets.append({"pid": pid, "host": host, "port": port, "sent": 0, "errors": 0,
                            "sealed": 0})
    for spec in args.udp:
        host, port = spec.rsplit(":", 1)
        targets.append({"pid": None, "host": host, "port": int(port), "sent": 0, "errors": 0,
                        "sealed": 0})
    udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp4.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    udp6 = None

    tcp = None
    if args.tcp:
        host, port = args.tcp.rsplit(":", 1)
        tcp = TcpFlood(host, int(port), rng, args.auth)
    team = int(args.team, 16) if args.team else None

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
        # poll() returns as soon as a connection is readable: wait on until
        # due, or replies would compress the flood into less than --duration.
        while (now := time.monotonic()) < due:
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
                sealed = args.auth and rng.random() < 0.5
                datagram = sealed_datagram(rng, team) if sealed else random_datagram(rng)
                try:
                    sock.sendto(datagram, (t["host"], t["port"]))
                    t["sent"] += 1
                    t["sealed"] += sealed
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
        "team": args.team,
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
            "replies": tcp.replies,
            "rejects_by_reason": tcp.rejects,
            "guesses": tcp.guesses,
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
