#!/usr/bin/python3
"""A minimal gst-launch-1.0 -e that also prints the elements' "stats".

  e2e_launch.py PIPELINE-DESCRIPTION...

Runs the description (Gst.parse_launch) like `gst-launch-1.0 -e`: SIGINT
sends EOS and waits for it; exit 0 after EOS, 1 after an ERROR message.
Like -v it prints the notified properties the tests parse (current-port,
num-peers), in gst-launch's format:
  /GstPipeline:pipeline0/GstP2pspSplitterSink:splitter: current-port = 4242
At EOS or ERROR, before the pipeline stops (stats are reset on stop), and
every E2E_STATS_INTERVAL_MS milliseconds if set, it prints one line per
element that has a "stats" property:
  STATS <element name>: <GstStructure as a string>
Needs PyGObject (Debian: python3-gi, gir1.2-gstreamer-1.0).
"""

import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

WATCHED = ("current-port", "num-peers")


def print_stats(pipeline):
    it = pipeline.iterate_recurse()
    elements = []
    while True:
        res, el = it.next()
        if res == Gst.IteratorResult.OK:
            elements.append(el)
        elif res == Gst.IteratorResult.RESYNC:
            it.resync()
            elements = []
        else:
            break
    for el in elements:
        if el.find_property("stats") is None:
            continue
        st = el.get_property("stats")
        print(f"STATS {el.get_name()}: {st.to_string() if st else '(none)'}", flush=True)


def main():
    Gst.init(None)
    desc = " ".join(sys.argv[1:])
    try:
        pipeline = Gst.parse_launch(desc)
    except GLib.Error as e:
        print(f"WARNING: erroneous pipeline: {e.message}", flush=True)
        return 1
    for prop in WATCHED:
        pipeline.add_property_deep_notify_watch(prop, True)
    loop = GLib.MainLoop()
    result = {"rc": 0, "interrupted": False}

    def on_message(bus, msg):
        t = msg.type
        if t == Gst.MessageType.EOS:
            print('Got EOS from element "%s".' % msg.src.get_name(), flush=True)
            print_stats(pipeline)
            loop.quit()
        elif t == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"ERROR: from element {msg.src.get_path_string()}: {err.message}", flush=True)
            if dbg:
                print(f"Additional debug info:\n{dbg}", flush=True)
            print_stats(pipeline)
            result["rc"] = 1
            loop.quit()
        elif t == Gst.MessageType.WARNING:
            err, dbg = msg.parse_warning()
            print(f"WARNING: from element {msg.src.get_path_string()}: {err.message}", flush=True)
        elif t == Gst.MessageType.PROPERTY_NOTIFY:
            obj, name, val = msg.parse_property_notify()
            if name in WATCHED and val is not None:
                print(f"{obj.get_path_string()}: {name} = {val}", flush=True)
        return True

    def on_sigint():
        if result["interrupted"]:
            loop.quit()
            return GLib.SOURCE_REMOVE
        result["interrupted"] = True
        print("handling interrupt. EOS on shutdown enabled -- Forcing EOS on the pipeline", flush=True)
        pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_sigint)

    # E2E_STATS_INTERVAL_MS: also print the stats periodically (some
    # counters, like the splitter's per-peer list, are gone at EOS).
    interval = int(os.environ.get("E2E_STATS_INTERVAL_MS", "0") or 0)
    if interval > 0:
        GLib.timeout_add(interval, lambda: (print_stats(pipeline), True)[1])

    print("Setting pipeline to PLAYING ...", flush=True)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        print("ERROR: pipeline doesn't want to play.", flush=True)
        # The bus may still have the reason.
        msg = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
        if msg:
            err, dbg = msg.parse_error()
            print(f"ERROR: from element {msg.src.get_path_string()}: {err.message}", flush=True)
        pipeline.set_state(Gst.State.NULL)
        return 1
    loop.run()
    print("Setting pipeline to NULL ...", flush=True)
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return result["rc"]


if __name__ == "__main__":
    sys.exit(main())
