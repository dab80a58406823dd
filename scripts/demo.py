#!/usr/bin/python3
"""A P2PSP team on loopback: one splitter and N peers, each its own pipeline.

The splitter pipeline encodes a test video (Theora in Ogg) and hands it to
p2pspsplittersink, which cuts it into chunks and sends every chunk to ONE peer
(round-robin).  Each peer pipeline (p2pspsrc ! oggdemux ! theoradec ! ...)
joins the team, relays the chunks it got from the splitter to every other
peer, and plays the rebuilt stream.  After --seconds the demo stops and prints
what every peer received, relayed and decoded, and how much the splitter
uploaded per byte of stream: about 1.0x, whatever the team size.

Run it through scripts/demo.sh (which builds first), or directly with Debian's
interpreter:  /usr/bin/python3 scripts/demo.py --peers 5 --seconds 20

Exit status: 0 when every peer decoded video, 1 otherwise (so the demo doubles
as a smoke test), 2 for a setup problem (plugin not built, ...).
"""

import argparse
import os
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    p = argparse.ArgumentParser(
        description="Run a P2PSP demo team (1 splitter + N peers) on 127.0.0.1.")
    p.add_argument("--peers", type=int, default=3, metavar="N",
                   help="number of peers in the team (default: 3)")
    p.add_argument("--seconds", type=float, default=10, metavar="S",
                   help="how long to stream once the team is up (default: 10)")
    p.add_argument("--build-dir", default=os.environ.get("P2PSP_BUILDDIR", "build"),
                   help="meson build directory holding plugin/libgstp2psp.so "
                        "(default: build, relative to the repository)")
    p.add_argument("--chunk-size", type=int, default=0, metavar="BYTES",
                   help="splitter chunk-size (default: the element's default)")
    p.add_argument("--latency", type=int, default=-1, metavar="MS",
                   help="p2pspsrc latency in ms (default: the element's default)")
    p.add_argument("--no-wait", action="store_true",
                   help="start streaming at once instead of waiting until all "
                        "peers joined (peers then join a running stream)")
    p.add_argument("--no-display", action="store_true",
                   help="never open a video window (peer 1 uses fakesink)")
    p.add_argument("--quiet", action="store_true",
                   help="no per-second status line")
    a = p.parse_args()
    if a.peers < 1:
        p.error("--peers must be at least 1")
    if a.seconds <= 0:
        p.error("--seconds must be positive")
    return a


ARGS = parse_args()

# The environment must be set before GStreamer initialises: load the plugin
# from the build directory, with a registry of our own (a temporary file) so
# that the user's registry cache is neither used nor touched.
BUILD_DIR = ARGS.build_dir
if not os.path.isabs(BUILD_DIR):
    BUILD_DIR = os.path.join(ROOT, BUILD_DIR)
PLUGIN_DIR = os.path.join(BUILD_DIR, "plugin")
if not os.path.exists(os.path.join(PLUGIN_DIR, "libgstp2psp.so")):
    sys.stderr.write("demo: %s/libgstp2psp.so not found; run scripts/build.sh "
                     "(or scripts/demo.sh) first\n" % PLUGIN_DIR)
    sys.exit(2)
_old = os.environ.get("GST_PLUGIN_PATH_1_0", os.environ.get("GST_PLUGIN_PATH", ""))
os.environ["GST_PLUGIN_PATH_1_0"] = PLUGIN_DIR + (os.pathsep + _old if _old else "")
_reg_fd, REGISTRY = tempfile.mkstemp(prefix="p2psp-demo-registry-", suffix=".bin")
os.close(_reg_fd)
os.unlink(REGISTRY)  # GStreamer writes it anew
os.environ["GST_REGISTRY_1_0"] = REGISTRY
os.environ.setdefault("GST_REGISTRY_FORK", "no")

try:
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
except (ImportError, ValueError) as e:
    sys.stderr.write("demo: PyGObject with GStreamer is needed (%s); on Debian: "
                     "apt-get install python3-gi gir1.2-gstreamer-1.0, and run "
                     "with /usr/bin/python3\n" % e)
    sys.exit(2)


def _quiet_known_noise():
    """oggdemux of GStreamer 1.22 logs a harmless
    "gst_event_set_seqnum: assertion 'seqnum != GST_SEQNUM_INVALID' failed"
    critical in push mode (with any live source, p2psp or not): hide that one
    message, let everything else through."""
    def handler(domain, level, message, data):
        if "gst_event_set_seqnum" in (message or ""):
            return
        GLib.log_default_handler(domain, level, message, data)
    try:
        GLib.log_set_handler("GStreamer", GLib.LogLevelFlags.LEVEL_CRITICAL,
                             handler, None)
    except (AttributeError, TypeError):
        pass


def cleanup_registry():
    try:
        os.unlink(REGISTRY)
    except OSError:
        pass


def sval(st, name, default=0):
    """A field of a GstStructure, or default when missing."""
    if st is None or not st.has_field(name):
        return default
    return st.get_value(name)


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


class Peer:
    def __init__(self, index, port, sink_desc, latency):
        self.index = index
        lat = " latency=%d" % latency if latency >= 0 else ""
        self.desc = ("p2pspsrc name=src uri=p2psp://127.0.0.1:%d%s ! oggdemux ! "
                     "theoradec name=dec ! videoconvert ! %s" % (port, lat, sink_desc))
        self.pipeline = Gst.parse_launch(self.desc)
        self.pipeline.set_name("peer%d" % index)
        self.src = self.pipeline.get_by_name("src")
        self.frames = 0
        self.eos = False
        self.error = None
        self.final_stats = None
        dec = self.pipeline.get_by_name("dec")
        dec.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._on_frame)

    def _on_frame(self, pad, info):
        self.frames += 1
        return Gst.PadProbeReturn.OK

    def stats(self):
        if self.final_stats is not None:
            return self.final_stats
        return self.src.get_property("stats")


class Demo:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.peers = []
        self.port = 0
        self.failure = None
        self.t_stream = None        # when the team was complete / streaming began
        self.splitter_final = None
        self.stopping = False
        self.t_stop = None
        have_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        self.display = have_display and not args.no_display

        for name in ("p2pspsplittersink", "p2pspsrc"):
            f = Gst.ElementFactory.find(name)
            if f is None:
                raise SystemExit("demo: element %s not found in %s (is the plugin built?)"
                                 % (name, PLUGIN_DIR))
            fname = f.get_plugin().get_filename() or ""
            if not fname.startswith(PLUGIN_DIR):
                print("demo: warning: %s comes from %s, not from the build dir"
                      % (name, fname))

        opts = ""
        if args.chunk_size > 0:
            opts += " chunk-size=%d" % args.chunk_size
        if not args.no_wait:
            opts += " wait-for-peers=%d" % args.peers
        self.splitter_desc = (
            "videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,width=320,height=240,framerate=25/1 ! timeoverlay ! "
            "theoraenc ! oggmux ! "
            "p2pspsplittersink name=splitter host=127.0.0.1 port=0" + opts)
        self.splitter = Gst.parse_launch(self.splitter_desc)
        self.splitter.set_name("splitter")
        self.sink = self.splitter.get_by_name("splitter")
        self.sink.connect("notify::current-port", self._on_port)
        self._watch(self.splitter, None)

    # -- bus ---------------------------------------------------------------
    def _watch(self, pipeline, peer):
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message, peer)

    def _on_message(self, bus, msg, peer):
        who = "splitter" if peer is None else "peer %d" % peer.index
        t = msg.type
        if t == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            text = "%s: error from %s: %s" % (who, msg.src.get_name(), err.message)
            print("demo: " + text)
            if dbg:
                print("demo:   (%s)" % dbg)
            if peer is not None:
                peer.error = err.message
            if not self.stopping:
                self.fail(text)
        elif t == Gst.MessageType.WARNING:
            err, dbg = msg.parse_warning()
            print("demo: %s: warning from %s: %s" % (who, msg.src.get_name(), err.message))
        elif t == Gst.MessageType.EOS:
            if peer is not None:
                peer.eos = True
                if not self.stopping:
                    print("demo: peer %d reached end of stream" % peer.index)
            elif not self.stopping:
                self.fail("splitter pipeline reached end of stream")
        return True

    # -- start -------------------------------------------------------------
    def _on_port(self, sink, pspec):
        port = sink.get_property("current-port")
        if port > 0 and not self.port:  # -1 while not listening
            # Notified from a streaming/application thread: continue in the loop.
            GLib.idle_add(self._got_port, port)

    def _got_port(self, port):
        if self.port or self.stopping:
            return False
        self.port = port
        print("demo: splitter listening on 127.0.0.1:%d" % port)
        print("demo:   %s" % self.splitter_desc)
        for i in range(1, self.args.peers + 1):
            if i == 1 and self.display:
                sink = "autovideosink"
            else:
                sink = "fakesink sync=true"
            peer = Peer(i, port, sink, self.args.latency)
            self._watch(peer.pipeline, peer)
            self.peers.append(peer)
            if i == 1:
                print("demo: peer pipeline: %s" % peer.desc)
            if peer.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                self.fail("peer %d pipeline failed to start" % i)
                return False
        print("demo: started %d peer(s)%s" % (
            self.args.peers, "" if self.args.no_wait else
            "; the splitter holds the stream until all have joined"))
        self.t_join = time.monotonic()
        GLib.timeout_add(1000, self._tick)
        return False

    def _poll_port(self):
        if self.port or self.stopping:
            return False
        port = self.sink.get_property("current-port")
        if port > 0:
            self._got_port(port)
            return False
        if time.monotonic() - self.t_start > 10:
            self.fail("the splitter did not report a current-port within 10 s")
            return False
        return True

    # -- run ---------------------------------------------------------------
    def team_size(self):
        return self.sink.get_property("num-peers")

    def _tick(self):
        if self.stopping:
            return False
        now = time.monotonic()
        team = self.team_size()
        if self.t_stream is None:
            if self.args.no_wait or team >= self.args.peers:
                self.t_stream = now
                print("demo: team complete (%d peer(s)), streaming for %g s"
                      % (team, self.args.seconds))
            elif now - self.t_join > 20:
                self.fail("only %d of %d peers joined within 20 s" % (team, self.args.peers))
                return False
        if not self.args.quiet:
            parts = []
            for p in self.peers:
                st = p.stats()
                parts.append("p%d %d+%d ch %df" % (
                    p.index, sval(st, "chunks-from-splitter"),
                    sval(st, "chunks-from-peers"), p.frames))
            sst = self.sink.get_property("stats")
            elapsed = 0 if self.t_stream is None else now - self.t_stream
            print("[%5.1fs] team=%d sent=%d | %s" % (
                elapsed, team, sval(sst, "chunks-sent"), " | ".join(parts)), flush=True)
        if self.t_stream is not None and now - self.t_stream >= self.args.seconds:
            self.stop()
            return False
        return True

    def fail(self, why):
        if self.failure is None:
            self.failure = why
        print("demo: FAILED: %s" % why)
        self.stop()

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.t_stop = time.monotonic()
        # Snapshot the counters first: going to NULL may reset them.
        self.splitter_final = self.sink.get_property("stats")
        for p in self.peers:
            p.final_stats = p.src.get_property("stats")
        GLib.idle_add(self._shutdown)

    def _shutdown(self):
        for p in self.peers:
            p.pipeline.set_state(Gst.State.NULL)
        self.splitter.set_state(Gst.State.NULL)
        self.loop.quit()
        return False

    def run(self):
        self.t_start = time.monotonic()
        if self.splitter.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.fail("the splitter pipeline failed to start")
            self._shutdown()
            return
        GLib.timeout_add(100, self._poll_port)
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self._on_signal)
        self.loop.run()

    def _on_signal(self):
        print("\ndemo: interrupted, stopping")
        self.stop()
        return False

    # -- report ------------------------------------------------------------
    def report(self):
        sst = self.splitter_final
        n = len(self.peers)
        bytes_in = sval(sst, "bytes-in")
        bytes_sent = sval(sst, "bytes-sent")
        elapsed = 0 if self.t_stream is None else self.t_stop - self.t_stream
        print()
        print("=== P2PSP demo summary ===")
        print("team size: %d peer(s) (splitter saw %d at the end), streamed %.1f s"
              % (n, sval(sst, "num-peers"), elapsed))
        print("splitter: %d buffers / %s in, %d chunks cut, %d sent (%s), %d dropped"
              % (sval(sst, "buffers-in"), human(bytes_in), sval(sst, "chunks-cut"),
                 sval(sst, "chunks-sent"), human(bytes_sent), sval(sst, "chunks-dropped")))
        if bytes_in:
            print("splitter upload per stream byte: %.2fx (bytes-sent / bytes-in: one "
                  "copy plus chunk/framing headers and the in-band caps, whatever the "
                  "team size)" % (bytes_sent / bytes_in))
        print()
        hdr = ("peer", "id", "from splitter", "from peers", "forwarded", "lost",
               "duplicates", "frames", "upload/stream byte")
        rows = []
        for p in self.peers:
            st = p.stats()
            up = sval(st, "bytes-up")
            rows.append((
                "%d" % p.index, "%s" % sval(st, "peer-id", "-"),
                "%d" % sval(st, "chunks-from-splitter"),
                "%d" % sval(st, "chunks-from-peers"),
                "%d" % sval(st, "chunks-forwarded"),
                "%d" % sval(st, "lost"), "%d" % sval(st, "duplicates"),
                "%d" % p.frames,
                ("%.2fx" % (up / bytes_in)) if bytes_in else "-"))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
        fmt = "  ".join("%%%ds" % w for w in widths)
        print(fmt % hdr)
        print("  ".join("-" * w for w in widths))
        for r in rows:
            print(fmt % r)
        if n > 1 and bytes_in:
            print("(each peer relays the chunks it got from the splitter to the %d "
                  "other peer(s): about (N-1)/N = %.2f of the splitter's output, "
                  "i.e. ~%.2fx of the stream)"
                  % (n - 1, (n - 1) / n, (n - 1) / n * bytes_sent / bytes_in))
        print()

        status = 0
        if self.failure:
            print("demo: FAILED: %s" % self.failure)
            status = 1
        dead = [p.index for p in self.peers if p.frames == 0]
        if not self.peers:
            print("demo: FAILED: no peer was started")
            status = 1
        elif dead:
            print("demo: FAILED: peer(s) %s decoded no frames"
                  % ", ".join(str(i) for i in dead))
            status = 1
        elif status == 0:
            print("demo: OK: all %d peer(s) decoded video" % n)
        return status


def main():
    _quiet_known_noise()
    Gst.init(None)
    try:
        demo = Demo(ARGS)
        demo.run()
        return demo.report()
    finally:
        cleanup_registry()


if __name__ == "__main__":
    sys.exit(main())
