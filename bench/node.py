#!/usr/bin/python3
"""One measured node of the benchmark, driven over stdin by bench/bench.py.

  node.py source --sink p2psp|shout --media FILE [--port P] [--icecast HOST:PORT] [--iface IF]
  node.py peer --uri p2psp://HOST:PORT [--latency MS] [--decode]
  node.py listener --url http://HOST:PORT/MOUNT          (Icecast listener, decodes)

Commands on stdin, one per line; each answers one JSON line on stdout:
  snap        counters now: t (CLOCK_MONOTONIC ns), cpu (s, this process),
              bytes_in (source), stats (the element's stats), iface and
              UDP counters of this network namespace, start-up times
  keys PATH   write [key, t_ns] of every buffer seen so far to PATH
  quit        stop the pipeline and exit

Buffers are matched across processes by their first 32 bytes (an Ogg page
header: serial, sequence number, CRC) and timestamped with CLOCK_MONOTONIC,
which every network namespace of the machine shares: the source stamps a
buffer entering the splitter's sink pad, a peer stamps it leaving p2pspsrc.
"""
import argparse
import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)

# The media file played in real time: clocksync releases each Ogg page at its
# time, and the sink (sync=false) takes it at once, so the probe on the sink's
# pad stamps the moment the page enters the splitter (or shout2send).
OGG = ("filesrc location={media} ! oggdemux ! theoraparse ! "
       "oggmux max-delay=40000000 max-page-delay=40000000 ! clocksync ! ")


def iface_counters(names):
    out = {}
    for name in names:
        d = f"/sys/class/net/{name}/statistics/"
        try:
            out[name] = {k: int(open(d + k).read()) for k in
                         ("tx_bytes", "tx_packets", "rx_bytes", "rx_packets")}
        except OSError:
            pass
    return out


def udp_counters():
    lines = [line.split() for line in open("/proc/net/snmp") if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def structure_to_dict(st):
    out = {}
    if st is None:
        return out
    for i in range(st.n_fields()):
        name = st.nth_field_name(i)
        try:
            v = st.get_value(name)
        except TypeError:
            continue
        if isinstance(v, (int, float, str, bool)):
            out[name] = v
    return out


class Node:
    def __init__(self, args):
        self.args = args
        self.keys = []
        self.bytes_in = 0
        self.t_play = None
        self.t_first_out = None
        self.t_first_frame = None
        self.delay_samples = []  # chunk-delay-us samples of a peer
        self.element = None
        if args.role == "source":
            pipe = OGG.format(media=args.media)
            if args.sink == "p2psp":
                size = f"chunk-size={args.chunk_size} " if args.chunk_size else ""
                pipe += (f"p2pspsplittersink name=sink host={args.host} port={args.port} "
                         f"{size}sync=false")
            else:
                ip, port = args.icecast.split(":")
                pipe += (f"shout2send name=sink ip={ip} port={port} password=bench "
                         "mount=/live.ogg sync=false")
            self.pipeline = Gst.parse_launch(pipe)
            sink = self.pipeline.get_by_name("sink")
            self.element = sink if args.sink == "p2psp" else None
            sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)
        elif args.role == "peer":
            tail = " ! oggdemux ! theoradec name=dec ! fakesink" if args.decode else " ! fakesink"
            self.pipeline = Gst.parse_launch(
                f"p2pspsrc name=src uri={args.uri} latency={args.latency}" + tail)
            self.element = self.pipeline.get_by_name("src")
            self.element.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)
            GLib.timeout_add(50, self.sample_delay)
        else:
            self.pipeline = Gst.parse_launch(
                f"souphttpsrc name=src location={args.url} ! oggdemux ! theoradec name=dec ! fakesink")
            self.pipeline.get_by_name("src").get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER, self.on_first_out)
        dec = self.pipeline.get_by_name("dec")
        if dec is not None:
            dec.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_frame)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        bus.connect("message::eos", lambda *a: self.reply({"eos": True}))
        self.loop = GLib.MainLoop()
        GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                          GLib.IO_IN | GLib.IO_HUP, self.on_stdin)

    def on_buffer(self, pad, info):
        buf = info.get_buffer()
        t = time.monotonic_ns()
        if self.t_first_out is None:
            self.t_first_out = t
        self.bytes_in += buf.get_size()
        self.keys.append((buf.extract_dup(0, min(32, buf.get_size())).hex(), t))
        return Gst.PadProbeReturn.OK

    def on_first_out(self, pad, info):
        if self.t_first_out is None:
            self.t_first_out = time.monotonic_ns()
        return Gst.PadProbeReturn.OK

    def on_frame(self, pad, info):
        if self.t_first_frame is None:
            self.t_first_frame = time.monotonic_ns()
        return Gst.PadProbeReturn.OK

    def sample_delay(self):
        st = structure_to_dict(self.element.get_property("stats"))
        if st.get("state") == "member" and "chunk-delay-us" in st:
            self.delay_samples.append(st["chunk-delay-us"])
        return True

    def on_error(self, bus, msg):
        err, dbg = msg.parse_error()
        self.reply({"error": err.message, "debug": dbg})

    def reply(self, obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def snap(self):
        times = os.times()
        out = {"t": time.monotonic_ns(), "cpu": times.user + times.system,
               "bytes_in": self.bytes_in, "nkeys": len(self.keys),
               "iface": iface_counters(os.listdir("/sys/class/net")), "udp": udp_counters()}
        if self.element is not None:
            out["stats"] = structure_to_dict(self.element.get_property("stats"))
            if self.args.role == "source":
                out["chunk_size"] = self.element.get_property("chunk-size")
        for k in ("t_play", "t_first_out", "t_first_frame"):
            out[k] = getattr(self, k)
        out["delay_samples"] = self.delay_samples
        self.delay_samples = []
        return out

    def on_stdin(self, chan, cond):
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            self.pipeline.set_state(Gst.State.NULL)
            self.reply({"quit": True})
            self.loop.quit()
            return False
        cmd = line.split()
        if cmd[0] == "snap":
            self.reply(self.snap())
        elif cmd[0] == "keys":
            with open(cmd[1], "w") as f:
                json.dump(self.keys, f)
            self.reply({"keys": len(self.keys)})
        return True

    def run(self):
        self.t_play = time.monotonic_ns()
        self.pipeline.set_state(Gst.State.PLAYING)
        self.reply({"started": True, "pid": os.getpid()})
        self.loop.run()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=("source", "peer", "listener"))
    p.add_argument("--sink", choices=("p2psp", "shout"), default="p2psp")
    p.add_argument("--media")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=4552)
    p.add_argument("--chunk-size", type=int, default=0, help="0: the element's default")
    p.add_argument("--icecast", default="127.0.0.1:8000")
    p.add_argument("--uri")
    p.add_argument("--latency", type=int, default=200)
    p.add_argument("--decode", action="store_true")
    p.add_argument("--url")
    Node(p.parse_args()).run()


if __name__ == "__main__":
    main()
