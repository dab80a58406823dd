#!/usr/bin/python3
"""Reads what runner.py printed (stdlib only).

  hcheck.py final LOG ELEMENT FIELD...
      The fields of ELEMENT's last FINAL stats line in LOG (the last STATS
      line if the process never printed FINAL), space separated; a missing
      field prints "none", and no stats at all prints nothing (exit 1).
      FIELD may be "peers.N" (length of an array field).

  hcheck.py ogglinks FILE PREFIX
      Splits an Ogg file into its links: a new link starts at a BOS page
      that follows a non-BOS page (a new stream, e.g. after the splitter
      restarted, with its headers).  Writes PREFIX.1.ogg, PREFIX.2.ogg, ...
      (byte ranges of FILE) and prints one line per link: "N OFFSET SIZE".
      Bytes that are not part of a page stay with the link they are in.

  hcheck.py udpblast PORT COUNT
      Sends COUNT 64-byte datagrams to 127.0.0.1:PORT from one socket while
      another socket bound there counts them; prints "sent N received M".
      (Run inside the test's network namespace to measure its nft loss.)
"""

import json
import socket
import sys
import time


def last_stats(log, element):
    final = stats = None
    with open(log, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("FINAL "):
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[1] == element:
                    final = parts[2]
            elif line.startswith("STATS "):
                parts = line.split(" ", 3)
                if len(parts) == 4 and parts[2] == element:
                    stats = parts[3]
    text = final if final is not None else stats
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def cmd_final(args):
    log, element, fields = args[0], args[1], args[2:]
    st = last_stats(log, element)
    if not isinstance(st, dict):
        return 1
    vals = []
    for f in fields:
        if f.endswith(".N"):
            v = st.get(f[:-2])
            vals.append(str(len(v)) if isinstance(v, list) else "none")
        else:
            v = st.get(f)
            vals.append("none" if v is None else str(v))
    print(" ".join(vals))
    return 0


def cmd_ogglinks(args):
    data = open(args[0], "rb").read()
    starts = [0]
    pos = 0
    prev_bos = True
    while True:
        pos = data.find(b"OggS", pos)
        if pos < 0 or pos + 27 > len(data):
            break
        nseg = data[pos + 26]
        end = pos + 27 + nseg + sum(data[pos + 27:pos + 27 + nseg])
        if end > len(data):
            break
        bos = bool(data[pos + 5] & 0x02)
        if bos and not prev_bos and pos > 0:
            starts.append(pos)
        prev_bos = bos
        pos = end
    bounds = starts + [len(data)]
    for i in range(len(starts)):
        with open(f"{args[1]}.{i + 1}.ogg", "wb") as f:
            f.write(data[bounds[i]:bounds[i + 1]])
        print(f"{i + 1} {bounds[i]} {bounds[i + 1] - bounds[i]}")
    return 0


def cmd_udpblast(args):
    port, count = int(args[0]), int(args[1])
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", port))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received = 0
    payload = b"x" * 64
    for i in range(count):
        tx.sendto(payload, ("127.0.0.1", port))
        # Drain as we go so the receive buffer never overflows (an overflow
        # would pass for an nft drop).
        if i % 64 == 63:
            try:
                while True:
                    rx.recv(2048)
                    received += 1
            except (BlockingIOError, socket.timeout):
                pass
    rx.settimeout(0.5)
    deadline = time.time() + 1.0
    while time.time() < deadline:
        try:
            rx.recv(2048)
            received += 1
        except socket.timeout:
            break
    print(f"sent {count} received {received}")
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "final" and len(args) >= 3:
        return cmd_final(args)
    if cmd == "ogglinks" and len(args) == 2:
        return cmd_ogglinks(args)
    if cmd == "udpblast" and len(args) == 2:
        return cmd_udpblast(args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
