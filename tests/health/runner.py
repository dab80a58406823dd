"""gst-launch-1.0 -e for the team-health tests, with the numbers they check.

Used through peer.py (p2pspsrc ! filesink) and splitter.py (... !
p2pspsplittersink); both take a pipeline description like gst-launch-1.0:

  peer.py p2pspsrc name=src uri=p2psp://127.0.0.1:4552 ! filesink location=x

gst-launch-1.0 cannot show the elements' "stats" (a GstStructure property) nor
say when a peer was removed; this runner prints, one line each, flushed:

  <path>: current-port = N        like gst-launch -v (tests/e2e/lib.sh parses it)
  <path>: num-peers = N
  EVENT <t> <element> signal <name> <id> <endpoint>     peer-added/-removed,
                                  stamped in the thread that emitted it
  EVENT <t> <element> message <structure as a string>   element messages
                                  (GstP2pspSrcReconnecting, ...), stamped when
                                  posted (sync handler)
  STATS <t> <element> <json>      every HEALTH_STATS_INTERVAL_MS (if set)
  FINAL <element> <json>          at EOS, ERROR or SIGTERM, before the
                                  pipeline stops (stats are reset on stop)
  ERROR: from element ...         / WARNING: ..., like gst-launch

<t> is the wall clock (time.time(), seconds) so that the shell can compare it
with `date +%s.%N`.  SIGINT sends EOS and waits for it (at most
HEALTH_EOS_WAIT_S, default 8 s); SIGTERM prints FINAL and quits.  Exit status:
0 after EOS, 1 after an ERROR message, 2 after SIGTERM or an EOS that never
came.  Needs /usr/bin/python3 with PyGObject (python3-gi, gir1.2-gstreamer-1.0).
"""

import json
import os
import signal
import sys
import threading
import time
import warnings

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, GObject, Gst  # noqa: E402

WATCHED = ("current-port", "num-peers")


_out_lock = threading.Lock()


def out(line):
    # Signals come from the elements' network threads, bus messages from the
    # main loop: print() writes the line and its newline separately, so two
    # threads could run two events into one line, which the tests' greps
    # anchored at "^EVENT" then miss.
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def now():
    return "%.3f" % time.time()


def to_json(v):
    if isinstance(v, Gst.Structure):
        return {v.nth_field_name(i): field(v, v.nth_field_name(i)) for i in range(v.n_fields())}
    if isinstance(v, (Gst.ValueArray, Gst.ValueList)):
        return [to_json(x) for x in v.array]
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def field(st, name):
    try:
        return to_json(st.get_value(name))
    except (TypeError, ValueError):
        pass
    # PyGObject cannot convert a GstValueArray field (the per-peer lists).
    ok, arr = st.get_array(name)
    if ok and arr is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return [to_json(arr.get_nth(i)) for i in range(arr.n_values)]
    return None


def elements_of(pipeline):
    found = []
    it = pipeline.iterate_recurse()
    while True:
        res, el = it.next()
        if res == Gst.IteratorResult.OK:
            found.append(el)
        elif res == Gst.IteratorResult.RESYNC:
            it.resync()
            found = []
        else:
            return found


def main():
    Gst.init(None)
    try:
        pipeline = Gst.parse_launch(" ".join(sys.argv[1:]))
    except GLib.Error as e:
        out(f"ERROR: erroneous pipeline: {e.message}")
        return 1
    for prop in WATCHED:
        pipeline.add_property_deep_notify_watch(prop, True)
    elements = elements_of(pipeline)
    with_stats = [el for el in elements if el.find_property("stats") is not None]

    def print_stats(tag):
        for el in with_stats:
            st = el.get_property("stats")
            line = json.dumps(to_json(st) if st else None, sort_keys=True)
            if tag == "FINAL":
                out(f"FINAL {el.get_name()} {line}")
            else:
                out(f"STATS {now()} {el.get_name()} {line}")

    # peer-added / peer-removed, from the element's network thread.
    for el in with_stats:
        for sig in ("peer-added", "peer-removed"):
            if GObject.signal_lookup(sig, type(el)):
                el.connect(sig, lambda e, pid, ep, sig=sig:
                           out(f"EVENT {now()} {e.get_name()} signal {sig} {pid} {ep}"))

    bus = pipeline.get_bus()

    # Element messages, stamped by the thread that posts them.
    def on_sync(bus, msg):
        st = msg.get_structure()
        if st is not None:
            out(f"EVENT {now()} {msg.src.get_name()} message {st.to_string()}")

    bus.enable_sync_message_emission()
    bus.connect("sync-message::element", on_sync)

    loop = GLib.MainLoop()
    state = {"rc": 0, "interrupted": False, "done": False}

    def finish(rc):
        if not state["done"]:
            state["done"] = True
            print_stats("FINAL")
            state["rc"] = rc
        loop.quit()

    def on_message(bus, msg):
        t = msg.type
        if t == Gst.MessageType.EOS:
            out(f'Got EOS from element "{msg.src.get_name()}".')
            finish(0)
        elif t == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            out(f"ERROR: from element {msg.src.get_path_string()}: {err.message}")
            if dbg:
                out(f"Additional debug info:\n{dbg}")
            finish(1)
        elif t == Gst.MessageType.WARNING:
            err, dbg = msg.parse_warning()
            out(f"WARNING: from element {msg.src.get_path_string()}: {err.message}")
        elif t == Gst.MessageType.PROPERTY_NOTIFY:
            obj, name, val = msg.parse_property_notify()
            if name in WATCHED and val is not None:
                out(f"{obj.get_path_string()}: {name} = {val}")
        return True

    def on_sigint():
        if state["interrupted"]:
            finish(2)
            return GLib.SOURCE_REMOVE
        state["interrupted"] = True
        out("handling interrupt. EOS on shutdown enabled -- Forcing EOS on the pipeline")
        pipeline.send_event(Gst.Event.new_eos())
        wait_s = float(os.environ.get("HEALTH_EOS_WAIT_S", "8"))
        GLib.timeout_add(int(wait_s * 1000), lambda: (out("EOS never came"), finish(2), False)[-1])
        return GLib.SOURCE_CONTINUE

    def on_sigterm():
        out("SIGTERM")
        finish(2)
        return GLib.SOURCE_REMOVE

    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_sigint)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_sigterm)
    interval = int(os.environ.get("HEALTH_STATS_INTERVAL_MS", "0") or 0)
    if interval > 0:
        GLib.timeout_add(interval, lambda: (print_stats("STATS"), True)[1])

    out("Setting pipeline to PLAYING ...")
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        out("ERROR: pipeline doesn't want to play.")
        msg = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
        if msg:
            err, _ = msg.parse_error()
            out(f"ERROR: from element {msg.src.get_path_string()}: {err.message}")
        pipeline.set_state(Gst.State.NULL)
        return 1
    loop.run()
    out("Setting pipeline to NULL ...")
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return state["rc"]
