#!/usr/bin/python3
"""Play a p2psp:// URI with GStreamer's generic players, or check the URI handler.

    p2psp-play.py playbin URI        playbin, counting what it renders
    p2psp-play.py uridecodebin URI   uridecodebin ! fakesinks, counting
    p2psp-play.py uri-check          URI <-> properties, without a network

playbin and uridecodebin find the p2pspsrc element through its URI handler
(rank primary, scheme p2psp): nothing in the pipeline names it.  Both modes
play until EOS (the splitter ending the stream) or --seconds, then print

    playbin: source p2pspsrc latency=300 timeout=10
    playbin: 150 video frames, 288000 audio samples (6.00 s at 48000 Hz)

and exit 0 when the source was a p2pspsrc, the pipeline ended in EOS with no
ERROR, and at least one frame (and one sample, when there is audio) was
rendered.  The caller compares the counts with the length of the stream.

uri-check creates elements from URIs (Gst.Element.make_from_uri) and checks
that the query keys set the properties, that get_uri round-trips, and that
bad URIs are refused; it prints one line per check and exits 1 on a failure.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def counting_bin(counts, key):
    """A bin ending in a synchronised fakesink (as a real sink would be) that
    counts buffers (video) or samples (audio, S16LE after audioconvert)."""
    head = ("videoconvert" if key == "video" else
            "audioconvert ! audioresample ! audio/x-raw,format=S16LE")
    b = Gst.parse_bin_from_description(
        f"{head} ! fakesink name=sink sync=true signal-handoffs=true", True)

    def on_handoff(_sink, buf, pad):
        if key == "video":
            counts["video"] += 1
        else:
            s = pad.get_current_caps().get_structure(0)
            counts["rate"] = s.get_value("rate")
            counts["audio"] += buf.get_size() // (2 * s.get_value("channels"))

    b.get_by_name("sink").connect("handoff", on_handoff)
    return b


def audio_bin(counts):
    return counting_bin(counts, "audio")


def video_bin(counts):
    return counting_bin(counts, "video")


def play(mode, uri, seconds):
    counts = {"video": 0, "audio": 0, "rate": 0, "source": None, "eos": False,
              "errors": [], "audio_pad": False}
    if mode == "playbin":
        pipe = Gst.ElementFactory.make("playbin")
        pipe.set_property("uri", uri)
        pipe.set_property("video-sink", video_bin(counts))
        pipe.set_property("audio-sink", audio_bin(counts))

        def on_source(_pb, src):
            counts["source"] = src
        pipe.connect("source-setup", on_source)
    else:
        pipe = Gst.Pipeline.new("play")
        dec = Gst.ElementFactory.make("uridecodebin")
        dec.set_property("uri", uri)
        pipe.add(dec)

        def on_source(_db, src):
            counts["source"] = src
        dec.connect("source-setup", on_source)

        def on_pad(_db, pad):
            name = pad.get_current_caps().get_structure(0).get_name()
            if name.startswith("video/"):
                b = video_bin(counts)
            elif name.startswith("audio/"):
                b = audio_bin(counts)
                counts["audio_pad"] = True
            else:
                return
            pipe.add(b)
            b.sync_state_with_parent()
            pad.link(b.get_static_pad("sink"))
        dec.connect("pad-added", on_pad)

    loop = GLib.MainLoop()

    def on_msg(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            counts["eos"] = True
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            counts["errors"].append(f"{msg.src.get_name()}: {err.message} ({dbg})")
            loop.quit()

    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_msg)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    src = counts["source"]
    if mode == "playbin":
        # playbin's audio sink only sees data when the stream has audio.
        counts["audio_pad"] = counts["audio"] > 0 or pipe.get_property("n-audio") > 0
    pipe.set_state(Gst.State.NULL)

    ok = True
    if src is None or src.get_factory().get_name() != "p2pspsrc":
        print(f"{mode}: FAIL: the source is {src and src.get_factory().get_name()}, not p2pspsrc")
        ok = False
    else:
        print(f"{mode}: source p2pspsrc latency={src.get_property('latency')} "
              f"timeout={src.get_property('timeout')} uri={src.get_property('uri')}")
    secs = counts["audio"] / counts["rate"] if counts["rate"] else 0
    print(f"{mode}: {counts['video']} video frames, {counts['audio']} audio samples "
          f"({secs:.2f} s at {counts['rate']} Hz)")
    for e in counts["errors"]:
        print(f"{mode}: ERROR {e}")
    if counts["errors"] or not counts["eos"]:
        print(f"{mode}: FAIL: {'error' if counts['errors'] else 'no EOS within the time'}")
        ok = False
    if counts["video"] == 0 or (counts["audio_pad"] and counts["audio"] == 0):
        print(f"{mode}: FAIL: nothing rendered")
        ok = False
    return 0 if ok else 1


def uri_check():
    bad = 0

    def check(what, cond):
        nonlocal bad
        print(f"{'ok' if cond else 'FAIL'}: {what}")
        bad += 0 if cond else 1

    def make(uri):
        try:
            return Gst.Element.make_from_uri(Gst.URIType.SRC, uri, None)
        except GLib.Error:
            return None

    e = make("p2psp://127.0.0.1:4600?latency=300&timeout=30")
    check("p2psp:// makes a p2pspsrc", e is not None and e.get_factory().get_name() == "p2pspsrc")
    if e is None:
        return 1
    check("host, port from the URI", (e.get_property("host"), e.get_property("port")) ==
          ("127.0.0.1", 4600))
    check("?latency=300 sets latency", e.get_property("latency") == 300)
    check("&timeout=30 sets timeout", e.get_property("timeout") == 30)
    uri = e.get_uri()
    e2 = make(uri)
    check(f"get_uri round-trips ({uri})",
          e2 is not None and e2.get_uri() == uri and
          all(e2.get_property(p) == e.get_property(p) for p in ("host", "port", "latency", "timeout")))
    e.set_property("latency", 750)
    check(f"get_uri follows the properties ({e.get_uri()})", "latency=750" in e.get_uri())
    d = make("p2psp://example.org")
    check("the port defaults to 4552", d is not None and d.get_property("port") == 4552 and
          d.get_property("host") == "example.org")
    v6 = make("p2psp://[::1]:7000")
    check("IPv6 literal [::1]:7000", v6 is not None and v6.get_property("host") == "::1" and
          v6.get_property("port") == 7000 and v6.get_uri().startswith("p2psp://[::1]:7000"))
    for badu in ("p2psp://127.0.0.1:4552?bogus=1", "p2psp://127.0.0.1:4552?latency=abc",
                 "p2psp://127.0.0.1:99999", "http://127.0.0.1:4552"):
        x = make(badu)
        check(f"refused: {badu}", x is None or x.get_factory().get_name() != "p2pspsrc")
    # Changing the URI while running is refused (GST_URI_ERROR_BAD_STATE):
    # needs a started element, so only the NULL-state success is checked here.
    check("set_uri in NULL succeeds", e.set_uri("p2psp://10.0.0.1:5000"))
    check("... and sets host/port", (e.get_property("host"), e.get_property("port")) ==
          ("10.0.0.1", 5000))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["playbin", "uridecodebin", "uri-check"])
    ap.add_argument("uri", nargs="?")
    ap.add_argument("--seconds", type=float, default=60,
                    help="give up after this long (default 60)")
    a = ap.parse_args()
    Gst.init(None)
    if a.mode == "uri-check":
        return uri_check()
    if not a.uri:
        ap.error("a URI is needed")
    return play(a.mode, a.uri, a.seconds)


if __name__ == "__main__":
    sys.exit(main())
