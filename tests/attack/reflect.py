#!/usr/bin/python3
"""A stranger who tries to aim a team's stream at a third party, for
tests/attack/reflect.sh (issue 11; docs/security.md, "Address validation").

  reflect.py --splitter HOST:PORT --victim-address 127.0.0.2 --duration S
             --report FILE

Written from docs/protocol.md, not from the implementation. A UDP socket
bound to --victim-address stands in for the victim: the attacker sends
"spoofed" datagrams from it, and never reads it; a counter thread tallies
what arrives there (bytes, and datagrams by type byte).

Attacks, all at once, for --duration seconds:
  register-redirect  a JOIN over TCP, then REGISTERs with its id and token
                     sent from the victim's address, without cookie and
                     with guessed cookies; a new JOIN every 3 s (the
                     handshake times out at 5 s).
  member             a second JOIN that registers honestly from the
                     attacker's own socket (echoing the PROBE it gets
                     there) to learn the members from TEAM, then from the
                     victim's address:
    hello            HELLOs with unknown ids and with members' ids, cookie
                     0 or guessed, to every member;
    nack             NACKs in members' names for recent chunk numbers, to
                     every member and to the splitter;
    move             HEARTBEATs and REGISTERs (guessed cookies) in its own
                     name, to move its endpoint to the victim;
    probe            PROBEs, which make each member answer with a HELLO.
The report (JSON) has the bytes sent from the victim's address and those
that reached it, by type, and what the attacker learnt.
"""

import argparse
import json
import random
import socket
import struct
import threading
import time

VERSION = 4
MAGIC = 0x50
CHUNK, HELLO, REGISTER, GOODBYE, LOST, NACK, REQUEST, PRUNE, HEARTBEAT, PROBE = range(1, 11)
T_JOIN, T_WELCOME, T_TEAM = 1, 2, 3


def udp_header(kind, team):
    return struct.pack(">BBBBI", MAGIC, 0, VERSION, kind, team)


def register(team, peer, token, cookie):
    return udp_header(REGISTER, team) + struct.pack(">IQQ", peer, token, cookie)


def hello(team, peer, cookie):
    return udp_header(HELLO, team) + struct.pack(">IQ", peer, cookie)


def heartbeat(team, peer, token):
    return udp_header(HEARTBEAT, team) + struct.pack(">IQ", peer, token)


def nack(team, peer, numbers):
    return udp_header(NACK, team) + struct.pack(">IH", peer, len(numbers)) + \
        b"".join(struct.pack(">I", n & 0xFFFFFFFF) for n in numbers)


def probe(team, cookie, peer):
    return udp_header(PROBE, team) + struct.pack(">QII", cookie, peer, 0)


def tcp_frame(kind, body):
    return struct.pack(">IB", len(body) + 1, kind) + body


def join_frame():
    return tcp_frame(T_JOIN, b"P2PSP" + struct.pack(">BI", VERSION, 0))


def read_endpoint(body, at):
    family = body[at]
    size = 4 if family == 4 else 16
    addr = body[at + 1:at + 1 + size]
    port, = struct.unpack_from(">H", body, at + 1 + size)
    host = socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, addr)
    return (host, port), at + 1 + size + 2


class Control:
    """One TCP control channel: JOIN, then messages as they come."""

    def __init__(self, splitter):
        self.sock = socket.create_connection(splitter, timeout=5)
        self.sock.sendall(join_frame())
        self.buf = b""
        self.welcome = None
        self.team = None

    def poll(self, timeout=0.0):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
            if not data:
                return False
            self.buf += data
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            return False
        while len(self.buf) >= 5:
            length, = struct.unpack_from(">I", self.buf)
            if len(self.buf) < 4 + length:
                break
            kind, body = self.buf[4], self.buf[5:4 + length]
            self.buf = self.buf[4 + length:]
            if kind == T_WELCOME:
                _, team, peer, token, _, udp_port = struct.unpack_from(">BIIQIH", body)
                self.welcome = dict(team=team, peer=peer, token=token, udp_port=udp_port)
            elif kind == T_TEAM:
                _, at = read_endpoint(body, 0)
                at += 4
                count, = struct.unpack_from(">I", body, at)
                at += 4
                members = []
                for _ in range(count):
                    pid, = struct.unpack_from(">I", body, at)
                    ep, at = read_endpoint(body, at + 4)
                    members.append((pid, ep))
                self.team = members
        return True

    def wait_welcome(self, deadline):
        while self.welcome is None and time.monotonic() < deadline:
            if not self.poll(0.1):
                break
        return self.welcome

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Victim:
    """Counts what reaches the victim's address; nobody reads it otherwise."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.2)
        self.sent = 0
        self.received = 0
        self.by_type = {}
        self.stop = False
        self.thread = threading.Thread(target=self.count, daemon=True)
        self.thread.start()

    def count(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            self.received += len(data)
            kind = data[3] if len(data) >= 4 else -1
            self.by_type[kind] = self.by_type.get(kind, 0) + 1

    def send(self, data, to):
        self.sock.sendto(data, to)
        self.sent += len(data)


def honest_member(splitter, deadline):
    """A member registered from its own socket: its TEAM lists the others."""
    ctl = Control(splitter)
    w = ctl.wait_welcome(deadline)
    if not w:
        raise SystemExit("no WELCOME for the member connection")
    own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own.bind(("127.0.0.1", 0))
    own.settimeout(0.1)
    udp = (splitter[0], w["udp_port"])
    cookie = 0
    while ctl.team is None and time.monotonic() < deadline:
        own.sendto(register(w["team"], w["peer"], w["token"], cookie), udp)
        try:
            data, src = own.recvfrom(70000)
            if src == udp and len(data) == 24 and data[3] == PROBE:
                cookie, = struct.unpack_from(">Q", data, 8)
        except socket.timeout:
            pass
        ctl.poll(0.0)
    if ctl.team is None:
        raise SystemExit("the member connection never got TEAM")
    return ctl, own, w, udp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splitter", required=True)
    ap.add_argument("--victim-address", default="127.0.0.2")
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--report", required=True)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    host, port = args.splitter.rsplit(":", 1)
    splitter = (host, int(port))
    rng = random.Random(args.seed)

    victim = Victim(args.victim_address)
    ctl, own, me, splitter_udp = honest_member(splitter, time.monotonic() + 10)
    members = [(pid, ep) for pid, ep in ctl.team]
    team = me["team"]
    own.setblocking(False)

    redirect = None
    redirect_started = 0.0
    sent = {"register-redirect": 0, "hello": 0, "nack": 0, "move": 0, "probe": 0}
    newest_chunk = 0
    end = time.monotonic() + args.duration
    next_beat = 0.0
    while time.monotonic() < end:
        now = time.monotonic()
        # The honest member stays a member in good standing: heartbeats from
        # its own socket, and its chunks flooded to the team (DBS), so the
        # honest peers' streams show what the attacks alone do.
        if now >= next_beat:
            own.sendto(heartbeat(team, me["peer"], me["token"]), splitter_udp)
            next_beat = now + 0.2
        try:
            while True:
                data, src = own.recvfrom(70000)
                if len(data) >= 16 and data[3] == CHUNK:
                    newest_chunk = max(newest_chunk, struct.unpack_from(">I", data, 8)[0])
                    if src == splitter_udp:
                        for _, ep in members:
                            own.sendto(data, ep)
        except (BlockingIOError, socket.timeout):
            pass
        ctl.poll(0.0)

        # register-redirect: a fresh joiner every 3 s.
        if redirect is None or now - redirect_started > 3.0:
            if redirect:
                redirect.close()
            redirect = Control(splitter)
            redirect.wait_welcome(now + 2)
            redirect_started = time.monotonic()
        w = redirect.welcome
        if w:
            for cookie in (0, rng.getrandbits(64)):
                victim.send(register(w["team"], w["peer"], w["token"], cookie), splitter_udp)
                sent["register-redirect"] += 1
        redirect.poll(0.0)

        for pid, ep in members:
            victim.send(hello(team, rng.randrange(1000, 1 << 31), 0), ep)
            victim.send(hello(team, pid, rng.getrandbits(64)), ep)
            for other, _ in members:
                if other != pid:
                    victim.send(hello(team, other, 0), ep)
                    sent["hello"] += 1
            sent["hello"] += 2
            numbers = [newest_chunk - k for k in range(1, 9)]
            for other, _ in members:
                if other != pid:
                    victim.send(nack(team, other, numbers), ep)
                    sent["nack"] += 1
            victim.send(probe(team, rng.getrandbits(63) + 1, pid), ep)
            sent["probe"] += 1
        victim.send(nack(team, me["peer"], [newest_chunk - k for k in range(1, 9)]), splitter_udp)
        victim.send(heartbeat(team, me["peer"], me["token"]), splitter_udp)
        victim.send(register(team, me["peer"], me["token"], rng.getrandbits(64)), splitter_udp)
        sent["nack"] += 1
        sent["move"] += 2
        time.sleep(0.05)

    time.sleep(1.0)  # anything still on its way
    victim.stop = True
    victim.thread.join()
    if redirect:
        redirect.close()
    ctl.close()
    report = {
        "members": len(members),
        "attacker_id": me["peer"],
        "datagrams_sent": sent,
        "victim_bytes_sent": victim.sent,
        "victim_bytes_received": victim.received,
        "victim_datagrams_by_type": {str(k): v for k, v in sorted(victim.by_type.items())},
        "newest_chunk_seen_by_member": newest_chunk,
    }
    json.dump(report, open(args.report, "w"), indent=1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
