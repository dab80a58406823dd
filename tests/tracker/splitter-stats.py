#!/usr/bin/python3
"""A gst-launch-1.0 stand-in for p2psp-channels (its `gst-launch` setting)
that also writes the splitter's own `stats`, so a test can compare them
with the tracker's status (tests/tracker/many-channels.sh):

    splitter-stats.py DIR [-e] PIPELINE-DESCRIPTION...

Every quarter second DIR/splitter-PID.json gets {"port", "num-peers",
"peer-ids"} of the pipeline's p2pspsinksplitter (written whole, then
renamed). SIGINT or SIGTERM: EOS, then exit, as gst-launch-1.0 -e does."""
import json
import os
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def splitter_of(pipeline):
    it = pipeline.iterate_recurse()
    while True:
        ok, element = it.next()
        if ok != Gst.IteratorResult.OK:
            return None
        if element.get_factory().get_name() == "p2pspsplittersink":
            return element


def main():
    out_dir = sys.argv[1]
    words = [w for w in sys.argv[2:] if w != "-e"]
    Gst.init(None)
    pipeline = Gst.parse_launchv(words)
    sink = splitter_of(pipeline)
    path = os.path.join(out_dir, "splitter-%d.json" % os.getpid())
    loop = GLib.MainLoop()
    rc = {"code": 0}

    def dump():
        stats = sink.get_property("stats")
        # PyGObject cannot read the GstValueArray of "peers": take the
        # members' ids from its text.
        ids = [int(i) for i in re.findall(r"\bid=\(uint\)(\d+)",
                                           stats.to_string())]
        record = {"port": sink.get_property("current-port"),
                  "num-peers": stats.get_value("num-peers"), "peer-ids": ids}
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return True

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            print("error:", msg.parse_error()[0].message, file=sys.stderr)
            rc["code"] = 1
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()

    def stop():
        pipeline.send_event(Gst.Event.new_eos())
        GLib.timeout_add(2000, loop.quit)
        return False

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    GLib.timeout_add(250, dump)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, stop)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return rc["code"]


if __name__ == "__main__":
    sys.exit(main())
