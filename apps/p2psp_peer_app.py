#!/usr/bin/python3
"""p2psp_peer_app: a P2PSP peer as a GStreamer application (Python, PyGObject).

    /usr/bin/python3 p2psp_peer_app.py --uri p2psp://127.0.0.1:4552 \
        [--seconds N] [--json] [--display]

Builds "p2pspsrc uri=URI ! decodebin ! fakesink" (or automatic video/audio
sinks with --display), prints every neighbour that joins or leaves
(peer-added / peer-removed), the bus's errors, warnings and the elements'
own messages (GstP2psp...), and the source's `stats` once a second.

Needs Debian's python3-gi and gir1.2-gstreamer-1.0, and GST_PLUGIN_PATH
pointing at the plugin if it is not installed. Exit status: 0 after
--seconds or at end of stream, 1 after an error, 2 on bad options.
"""

import argparse
import json
import signal
import sys
import threading
import time
import warnings

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

START = time.monotonic()
# Signals arrive on the element's network thread, the rest on the main loop.
PRINT_LOCK = threading.Lock()


def to_json(value):
    """A GstStructure (or a value in one) as plain JSON-able Python."""
    if isinstance(value, Gst.Structure):
        return {value.nth_field_name(i): to_json(value.get_value(value.nth_field_name(i)))
                for i in range(value.n_fields())}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def structure_fields(s):
    """Fields of a structure, arrays of structures included.

    PyGObject cannot read a GstValueArray with get_value(): arrays go
    through Gst.Structure.get_array()."""
    out = {}
    for i in range(s.n_fields()):
        name = s.nth_field_name(i)
        if s.get_field_type(name) == Gst.ValueArray.__gtype__:
            out[name] = array_field(s, name)
        else:
            try:
                out[name] = to_json(s.get_value(name))
            except TypeError:
                out[name] = None
    return out


def array_field(s, name):
    """An array field (e.g. neighbours-list, an array of structures)."""
    ok, arr = s.get_array(name)
    items = []
    if ok and arr is not None:
        # GValueArray is deprecated in GLib but is what gst_structure_get_array
        # returns; nothing else reads a GstValueArray from Python in 1.22.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for i in range(arr.n_values):
                v = arr.get_nth(i)
                items.append(structure_fields(v) if isinstance(v, Gst.Structure) else to_json(v))
    return items


class PeerApp:
    def __init__(self, args):
        self.args = args
        self.failed = False
        self.decoded = 0
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.Pipeline.new("peer")
        self.src = Gst.ElementFactory.make("p2pspsrc", "src")
        decode = Gst.ElementFactory.make("decodebin", "decode")
        if self.src is None or decode is None:
            sys.exit("p2pspsrc or decodebin not found (is GST_PLUGIN_PATH set?)")
        self.src.set_property("uri", args.uri)
        self.pipeline.add(self.src)
        self.pipeline.add(decode)
        self.src.link(decode)
        decode.connect("pad-added", self.on_pad_added)
        self.src.connect("peer-added", self.on_neighbour, "peer-added")
        self.src.connect("peer-removed", self.on_neighbour, "peer-removed")
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    # ---- output -------------------------------------------------------
    def emit(self, event, text="", **fields):
        t = time.monotonic() - START
        if self.args.json:
            line = json.dumps({"t": round(t, 3), "event": event, **fields})
        else:
            line = "[%7.3fs] %s %s" % (t, event, text)
        with PRINT_LOCK:
            print(line, flush=True)

    # ---- element signals (network thread) -----------------------------
    def on_neighbour(self, _src, peer_id, endpoint, event):
        self.emit(event, "neighbour %d (%s)" % (peer_id, endpoint),
                  id=peer_id, endpoint=endpoint)

    # ---- decoding -----------------------------------------------------
    def count(self, _pad, _info):
        self.decoded += 1
        return Gst.PadProbeReturn.OK

    def on_pad_added(self, _decode, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_name()
        self.emit("stream", media, caps=media)
        kind = media.split("/")[0]
        if self.args.display and kind in ("video", "audio"):
            sink = Gst.parse_bin_from_description(
                "%sconvert ! auto%ssink" % (kind, kind), True)
        else:
            sink = Gst.ElementFactory.make("fakesink")
            sink.set_property("sync", True)  # a live stream, played in time
        queue = Gst.ElementFactory.make("queue")
        self.pipeline.add(queue)
        self.pipeline.add(sink)
        queue.link(sink)
        sink.sync_state_with_parent()
        queue.sync_state_with_parent()
        qpad = queue.get_static_pad("sink")
        qpad.add_probe(Gst.PadProbeType.BUFFER, self.count)
        pad.link(qpad)

    # ---- stats and bus (main loop) ------------------------------------
    def print_stats(self):
        s = self.src.get_property("stats")
        if s is None:
            return True
        fields = structure_fields(s)
        if self.args.json:
            self.emit("stats", **{"decoded-buffers": self.decoded, "stats": fields})
        else:
            g = lambda k: fields.get(k) or 0  # noqa: E731
            self.emit("stats",
                      "peer %d %s: chunks %d (splitter %d, peers %d), forwarded %d, "
                      "lost %d, played %d, neighbours %d, decoded buffers %d" % (
                          g("peer-id"), fields.get("state"),
                          g("chunks-from-splitter") + g("chunks-from-peers"),
                          g("chunks-from-splitter"), g("chunks-from-peers"),
                          g("chunks-forwarded"), g("lost"), g("played"),
                          g("neighbours"), self.decoded))
        return True

    def on_message(self, _bus, msg):
        src = msg.src.get_name() if msg.src else ""
        if msg.type in (Gst.MessageType.ERROR, Gst.MessageType.WARNING):
            error = msg.type == Gst.MessageType.ERROR
            err, debug = msg.parse_error() if error else msg.parse_warning()
            # PyGObject gives the domain as its name already (a str).
            domain = err.domain if isinstance(err.domain, str) else GLib.quark_to_string(err.domain)
            self.emit("error" if error else "warning",
                      "%s: %s (%s)" % (src, err.message, debug),
                      src=src, domain=domain,
                      code=err.code, message=err.message, debug=debug or "")
            if error:
                self.failed = True
                self.loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            self.emit("eos", "end of stream")
            self.loop.quit()
        elif msg.type == Gst.MessageType.ELEMENT:
            # The elements' news: losses, removal, reconnection (GstP2psp...).
            s = msg.get_structure()
            if s is not None and s.get_name().startswith("GstP2psp"):
                self.emit("message", "%s: %s" % (src, s.to_string()),
                          src=src, name=s.get_name(), fields=structure_fields(s))

    def stop(self):
        self.print_stats()
        self.loop.quit()
        return False

    def run(self):
        self.emit("started", "joining " + self.src.get_property("uri"),
                  uri=self.src.get_property("uri"))
        GLib.timeout_add_seconds(1, self.print_stats)
        if self.args.seconds > 0:
            GLib.timeout_add(self.args.seconds * 1000, self.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            if msg:
                self.on_message(None, msg)
            self.failed = True
        else:
            self.loop.run()
        # Going to NULL makes the peer leave the team politely (GOODBYE).
        self.pipeline.set_state(Gst.State.NULL)
        rc = 1 if self.failed else 0
        self.emit("exit", "code %d" % rc, code=rc)
        return rc


def main():
    parser = argparse.ArgumentParser(description="A P2PSP peer (PyGObject).")
    parser.add_argument("--uri", default="p2psp://127.0.0.1:4552",
                        help="splitter to join (default %(default)s)")
    parser.add_argument("--seconds", type=int, default=0,
                        help="stop after this many seconds (0: until EOS or Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line")
    parser.add_argument("--display", action="store_true",
                        help="show the video / play the audio instead of discarding it")
    args = parser.parse_args()
    Gst.init(None)
    return PeerApp(args).run()


if __name__ == "__main__":
    sys.exit(main())
