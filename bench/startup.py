#!/usr/bin/python3
"""Start-up of late joiners, p2pspsrc against tcpserversink, in one run.

One live encoder feeds both a p2pspsplittersink (with a team of two peers
already streaming) and a tcpserversink sync-method=burst-keyframe
(time-min = a GOP + 1 s, as in issue 13). Joiners start at several phases
of the GOP: at each join a p2pspsrc, a tcpclientsrc and, as the control, a
p2pspsrc join-burst=false pipeline start at the same moment, each `SRC ! decodebin ! fakesink`, and start-up is the time
from set_state(PLAYING) to the first decoded picture reaching the fakesink.

    bench/startup.py [--gops 1,4,10] [--joins 5] [--formats ts-h264,ogg-theora]
                     [--json FILE]

Needs GST_PLUGIN_PATH to hold the plugin (bench/startup.sh sets it up).
"""
import argparse
import json
import statistics
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

FPS = 25
ENCODERS = {
    # Live H.264 as encoders for live streams are often set: zerolatency,
    # a keyframe every `k` frames only.
    "ts-h264": "x264enc name=enc tune=zerolatency speed-preset=ultrafast "
    "bitrate=1000 key-int-max={k} ! video/x-h264,profile=baseline "
    "! h264parse config-interval=-1 ! mpegtsmux",
    "ogg-theora": "theoraenc name=enc bitrate=1000 keyframe-auto=false "
    "keyframe-force={k} keyframe-freq={k} ! oggmux",
}


def origin_pipeline(fmt, gop_s):
    enc = ENCODERS[fmt].format(k=gop_s * FPS)
    return Gst.parse_launch(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=3 "
        f"! video/x-raw,width=640,height=360,framerate={FPS}/1 "
        f"! timeoverlay ! {enc} ! tee name=t "
        "t. ! queue ! p2pspsplittersink name=split host=127.0.0.1 port=0 "
        "t. ! queue ! tcpserversink name=tcp host=127.0.0.1 port=0 "
        f"sync-method=burst-keyframe time-min={(gop_s + 1) * Gst.SECOND}")


class Joiner:
    """A pipeline whose first decoded picture is timed."""

    def __init__(self, description):
        self.pipeline = Gst.parse_launch(
            f"{description} ! decodebin ! fakesink name=sink sync=false")
        self.first = threading.Event()
        self.first_at = None
        pad = self.pipeline.get_by_name("sink").get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.BUFFER, self._on_buffer)

    def _on_buffer(self, pad, info):
        if not self.first.is_set():
            self.first_at = time.monotonic()
            self.first.set()
        return Gst.PadProbeReturn.REMOVE

    def start(self):
        self.started_at = time.monotonic()
        self.pipeline.set_state(Gst.State.PLAYING)

    def startup_ms(self, timeout_s):
        if not self.first.wait(timeout_s):
            return None
        return (self.first_at - self.started_at) * 1000

    def error(self):
        msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        return msg.parse_error()[0].message if msg else None

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)


def keyframe_clock(origin):
    """Times of the keyframes the encoder gives the tee (for the phase)."""
    times = []
    pad = origin.get_by_name("enc").get_static_pad("src")

    def probe(pad, info):
        buf = info.get_buffer()
        if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT) and not buf.has_flags(
                Gst.BufferFlags.HEADER):
            times.append(time.monotonic())
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.BUFFER, probe)
    return times


def measure(fmt, gop_s, joins):
    origin = origin_pipeline(fmt, gop_s)
    keyframes = keyframe_clock(origin)
    origin.set_state(Gst.State.PLAYING)
    time.sleep(0.5)
    p2p_port = origin.get_by_name("split").get_property("current-port")
    tcp_port = origin.get_by_name("tcp").get_property("current-port")
    team = [Joiner(f"p2pspsrc host=127.0.0.1 port={p2p_port}")
            for _ in range(2)]
    for member in team:
        member.start()
    # The splitter and tcpserversink hold a whole GOP or more by then.
    time.sleep(2 * gop_s + 2)
    rows = []
    timeout = gop_s + 5
    for i in range(joins):
        # Aim at phase (i + 0.5) / joins of the GOP.
        if keyframes:
            target = keyframes[-1] + gop_s * (i + 0.5) / joins
            while target < time.monotonic() + 0.05:
                target += gop_s
            time.sleep(target - time.monotonic())
        phase = (time.monotonic() - keyframes[-1]) if keyframes else None
        p2p = Joiner(f"p2pspsrc host=127.0.0.1 port={p2p_port}")
        tcp = Joiner(f"tcpclientsrc host=127.0.0.1 port={tcp_port}")
        # The control: what a joiner without the burst waits (issue 13).
        plain = Joiner(f"p2pspsrc host=127.0.0.1 port={p2p_port} "
                       "join-burst=false")
        for joiner in (p2p, tcp, plain):
            joiner.start()
        row = {"format": fmt, "gop_s": gop_s, "join": i,
               "phase_ms": round(phase * 1000) if phase is not None else None,
               "p2psp_ms": p2p.startup_ms(timeout),
               "tcp_ms": tcp.startup_ms(timeout),
               "p2psp_no_burst_ms": plain.startup_ms(timeout)}
        row["p2psp_error"] = p2p.error()
        row["tcp_error"] = tcp.error()
        for joiner in (p2p, tcp, plain):
            joiner.stop()
        rows.append(row)
        print(json.dumps(row), flush=True)
    for member in team:
        member.stop()
    origin.set_state(Gst.State.NULL)
    return rows


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(rows):
    out = []
    keys = sorted({(r["format"], r["gop_s"]) for r in rows})
    for fmt, gop in keys:
        sel = [r for r in rows if r["format"] == fmt and r["gop_s"] == gop]
        p2p = median([r["p2psp_ms"] for r in sel])
        tcp = median([r["tcp_ms"] for r in sel])
        plain = median([r["p2psp_no_burst_ms"] for r in sel])
        worst = max((r["p2psp_ms"] or float("inf")) for r in sel)
        goal = None if tcp is None else min(1.2 * tcp + 200, 1000)
        out.append({"format": fmt, "gop_s": gop, "joins": len(sel),
                    "p2psp_median_ms": p2p, "tcp_median_ms": tcp,
                    "p2psp_worst_ms": worst, "goal_ms": goal,
                    "p2psp_no_burst_median_ms": plain,
                    "met": p2p is not None and goal is not None
                    and p2p <= goal and worst <= 1000})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gops", default="1,4,10")
    parser.add_argument("--joins", type=int, default=5)
    parser.add_argument("--formats", default="ts-h264,ogg-theora")
    parser.add_argument("--json")
    args = parser.parse_args()
    Gst.init(None)
    rows = []
    for fmt in args.formats.split(","):
        for gop in [int(g) for g in args.gops.split(",")]:
            rows += measure(fmt, gop, args.joins)
    result = {"rows": rows, "summary": summary(rows)}
    print("format      GOP  p2psp median  tcpserversink median  "
          "p2psp worst  goal   met  (no burst median)")
    for s in result["summary"]:
        fmt_ms = lambda v: "-" if v is None else f"{v:.0f} ms"  # noqa: E731
        print(f"{s['format']:<11} {s['gop_s']:>2} s {fmt_ms(s['p2psp_median_ms']):>13} "
              f"{fmt_ms(s['tcp_median_ms']):>21} {fmt_ms(s['p2psp_worst_ms']):>12} "
              f"{fmt_ms(s['goal_ms']):>6}  {'yes' if s['met'] else 'NO '}  "
              f"{fmt_ms(s['p2psp_no_burst_median_ms'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if all(s["met"] for s in result["summary"]) else 1


if __name__ == "__main__":
    sys.exit(main())
