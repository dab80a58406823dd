#!/usr/bin/python3
"""Decode a recording with an outside decoder (FFmpeg) and check it.

    ffcheck.py FILE --expect-seconds S [--min-ratio R] [--json OUT]

An independent second opinion next to p2psp-decode.py (GStreamer's own
demuxers and decoders): FFmpeg shares no code with GStreamer's elements
(gst-libav's decoders aside, but not its demuxers or its parsers), so a
recording both accept is not accepted because of one library's leniency.

  * `ffmpeg -v error -xerror -i FILE -f null -`: any message at level error
    (a damaged or missing header, a frame the decoder rejects, a packet
    cut short) or a non-zero exit fails the check;
  * `ffprobe -show_frames` decodes every stream and counts what comes out:
    video pictures / frame rate and audio samples / sample rate give each
    stream's decoded duration, which must be >= R x S and <= S + E s
    (--max-extra E, 1.5 by default: the join burst may start a recording
    up to a GOP before the join);
  * there must be at least one stream, and each must decode something.
Prints one line per stream and exits 1 on any failure.
"""
import argparse
import json
import subprocess
import sys
from fractions import Fraction


def ffmpeg_errors(path):
    p = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror",
         "-i", path, "-f", "null", "-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    lines = [l for l in p.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
    if p.returncode != 0 and not lines:
        lines = [f"ffmpeg exited {p.returncode}"]
    return lines


def probe(path):
    p = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_frames",
         "-show_entries",
         "stream=index,codec_type,codec_name,avg_frame_rate,r_frame_rate,sample_rate:"
         "frame=stream_index,media_type,best_effort_timestamp_time,nb_samples,sample_rate",
         path], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode("utf-8", "replace").strip() or "ffprobe failed")
    return json.loads(p.stdout or b"{}")


def rate(s):
    try:
        f = Fraction(s)
    except (ValueError, ZeroDivisionError, TypeError):
        return 0.0
    return float(f)


def streams_of(info):
    """Per stream: kind, codec, frames, decoded seconds, first/last pts."""
    out = {}
    for s in info.get("streams", []):
        if s.get("codec_type") not in ("video", "audio"):
            continue
        out[s["index"]] = {"kind": s["codec_type"], "codec": s.get("codec_name", "?"),
                           "fps": rate(s.get("avg_frame_rate")) or rate(s.get("r_frame_rate")),
                           "frames": 0, "samples": 0, "rate": int(s.get("sample_rate") or 0),
                           "first": None, "last": None}
    for f in info.get("frames", []):
        st = out.get(f.get("stream_index"))
        if st is None:
            continue
        st["frames"] += 1
        st["samples"] += int(f.get("nb_samples") or 0)
        st["rate"] = int(f.get("sample_rate") or st["rate"])
        t = f.get("best_effort_timestamp_time")
        if t not in (None, "N/A"):
            t = float(t)
            st["first"] = t if st["first"] is None else min(st["first"], t)
            st["last"] = t if st["last"] is None else max(st["last"], t)
    for st in out.values():
        if st["kind"] == "video":
            st["seconds"] = st["frames"] / st["fps"] if st["fps"] else 0.0
        else:
            st["seconds"] = st["samples"] / st["rate"] if st["rate"] else 0.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--expect-seconds", type=float, required=True)
    ap.add_argument("--min-ratio", type=float, default=0.9)
    ap.add_argument("--max-extra", type=float, default=1.5,
                    help="seconds a stream may last beyond S (default 1.5)")
    ap.add_argument("--json")
    a = ap.parse_args()
    problems = ["ffmpeg: " + l.replace(a.file, "FILE") for l in ffmpeg_errors(a.file)[:8]]
    try:
        streams = streams_of(probe(a.file))
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        streams = {}
        problems.append(f"ffprobe: {e}")
    if not streams:
        problems.append("no audio or video stream")
    lo, hi = a.min_ratio * a.expect_seconds, a.expect_seconds + a.max_extra
    for i, st in sorted(streams.items()):
        span = "" if st["first"] is None else f" (pts {st['first']:.3f} .. {st['last']:.3f})"
        what = f"{st['frames']} frames" if st["kind"] == "video" else f"{st['samples']} samples at {st['rate']} Hz"
        print(f"{st['kind']} {st['codec']}: {what}, {st['seconds']:.2f} s decoded{span}")
        if not lo <= st["seconds"] <= hi:
            problems.append(f"{st['kind']} {st['codec']}: {st['seconds']:.2f} s decoded, "
                            f"want {lo:.2f} .. {hi:.2f} (ratio {a.min_ratio} of {a.expect_seconds} s)")
    ratio = min((st["seconds"] for st in streams.values()), default=0.0) / a.expect_seconds
    print(f"ffmpeg: {'no error' if not any(p.startswith('ffmpeg') for p in problems) else 'ERRORS'}, "
          f"min decoded/recorded {ratio:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"file": a.file, "expect_seconds": a.expect_seconds, "ratio": ratio,
                       "streams": list(streams.values()), "problems": problems}, f, indent=1)
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
