#!/usr/bin/env python3
"""gst-p2psp end-to-end checks that shell tools cannot do (stdlib only).

  e2e_check.py oggpages SOURCE OUTPUT [--max-missing-bytes N] [--max-missing-pages N]
                        [--late] [--json]
      Splits both Ogg files into pages and compares them as page sequences:
        * garbage: bytes of OUTPUT that are not part of a page of SOURCE
          (must be 0),
        * order: the pages of OUTPUT must appear in SOURCE in the same order,
        * missing: pages of SOURCE (between the first and the last page the
          output has, header pages excepted for --late) absent from OUTPUT.
      With --late (a late joiner), OUTPUT must start with SOURCE's header
      pages (the streamheader), then go on at a page of SOURCE; the first
      Theora packet after the headers must be a keyframe.
      Exit 0 if within bounds, 1 otherwise.

  e2e_check.py frames REFERENCE TEST [--frame-bytes 256] [--max-diff D]
      REFERENCE and TEST are raw GRAY8 frames (16x16 by default) as written by
      lib.sh e2e_decode.  Every TEST frame must look like some REFERENCE
      frame (mean absolute difference <= D); this catches a decoder fed a
      delta frame with no keyframe before it (grey or smeared pictures), which
      decodes "without error" for some codecs.  Reports the first frame too.
"""

import argparse
import struct
import sys


def ogg_pages(data):
    """Yields (offset, page_bytes) for every valid-looking page; bytes that
    are not part of a page are returned separately as (offset, None, n)."""
    pos = 0
    n = len(data)
    pages = []
    junk = 0
    while pos < n:
        if data[pos:pos + 4] != b"OggS" or pos + 27 > n:
            nxt = data.find(b"OggS", pos + 1)
            if nxt < 0:
                nxt = n
            junk += nxt - pos
            pos = nxt
            continue
        nseg = data[pos + 26]
        if pos + 27 + nseg > n:
            junk += n - pos
            break
        body = sum(data[pos + 27:pos + 27 + nseg])
        end = pos + 27 + nseg + body
        if end > n:
            junk += n - pos
            break
        pages.append((pos, data[pos:end]))
        pos = end
    return pages, junk


def page_info(page):
    header_type = page[5]
    granule = struct.unpack_from("<q", page, 6)[0]
    serial = struct.unpack_from("<I", page, 14)[0]
    seqno = struct.unpack_from("<I", page, 18)[0]
    nseg = page[26]
    lacing = page[27:27 + nseg]
    return header_type, granule, serial, seqno, lacing


def packets_starting(page):
    """Payloads' first bytes of the packets that start in this page."""
    header_type, _, _, _, lacing = page_info(page)
    off = 27 + len(lacing)
    starts = []
    new_packet = not (header_type & 0x01)
    for lace in lacing:
        if new_packet and off < len(page):
            starts.append(page[off:off + 8])
        off += lace
        new_packet = lace < 255
    return starts


def cmd_oggpages(args):
    src = open(args.source, "rb").read()
    out = open(args.output, "rb").read()
    spages, sjunk = ogg_pages(src)
    opages, ojunk = ogg_pages(out)
    if sjunk:
        print(f"source has {sjunk} bytes outside pages")
    index = {}
    for i, (_, p) in enumerate(spages):
        index.setdefault(p, []).append(i)

    # Header pages: every page up to the last one carrying a header packet
    # (first payload byte with the high bit set for theora/vorbis headers).
    codecs = {}
    for _, p in spages:
        if page_info(p)[0] & 0x02:  # BOS
            starts = packets_starting(p)
            if starts:
                codecs[page_info(p)[2]] = starts[0][1:7]
    theora_serials = {s for s, c in codecs.items() if c == b"theora"}

    def is_header_packet(serial, b0):
        c = codecs.get(serial)
        if c == b"theora":
            return bool(b0 & 0x80)
        if c == b"vorbis":
            return bool(b0 & 0x01)
        return False

    header_count = 0
    for i, (_, p) in enumerate(spages):
        serial = page_info(p)[2]
        starts = packets_starting(p)
        if page_info(p)[0] & 0x02 or any(s and is_header_packet(serial, s[0]) for s in starts):
            header_count = i + 1
        elif i > 16:
            break

    problems = []
    garbage = ojunk
    positions = []
    for off, p in opages:
        where = index.get(p)
        if not where:
            garbage += len(p)
            continue
        positions.append(where)
    # Map output pages to source indices in order (the first unused index
    # after the previous one; duplicated header pages are rare but allowed).
    mapped = []
    last = -1
    out_of_order = 0
    for where in positions:
        nxt = [i for i in where if i > last]
        if not nxt:
            out_of_order += 1
            continue
        last = nxt[0]
        mapped.append(last)

    missing_pages = 0
    missing_bytes = 0
    first = last_i = None
    if mapped:
        if args.late:
            hdr = list(range(header_count))
            if mapped[:header_count] != hdr:
                problems.append(
                    f"output does not start with the {header_count} header pages "
                    f"of the source (starts with source pages {mapped[:header_count + 2]})")
            body = mapped[header_count:]
        else:
            body = mapped
        if body:
            first, last_i = body[0], body[-1]
            have = set(body)
            for i in range(first, last_i + 1):
                if i not in have:
                    missing_pages += 1
                    missing_bytes += len(spages[i][1])
            if not args.late:
                # Everything before the first page output is missing too.
                for i in range(0, first):
                    missing_pages += 1
                    missing_bytes += len(spages[i][1])
            if args.late and theora_serials:
                # First theora packet after the headers must be a keyframe
                # (theora data packet: bit 7 clear = data, bit 6 clear = intra).
                for i in body:
                    p = spages[i][1]
                    if page_info(p)[2] not in theora_serials:
                        continue
                    starts = packets_starting(p)
                    if not starts:
                        continue
                    b0 = starts[0][0]
                    if b0 & 0x40:
                        problems.append(
                            f"first theora packet after the headers (source page {i}) "
                            f"is not a keyframe")
                    break
    else:
        problems.append("output has no page of the source")

    if garbage:
        problems.append(f"{garbage} bytes of output are not pages of the source")
    if out_of_order:
        problems.append(f"{out_of_order} pages out of order or repeated")
    if args.max_missing_pages is not None and missing_pages > args.max_missing_pages:
        problems.append(f"{missing_pages} source pages missing (max {args.max_missing_pages})")
    if args.max_missing_bytes is not None and missing_bytes > args.max_missing_bytes:
        problems.append(f"{missing_bytes} source bytes missing (max {args.max_missing_bytes})")
    if not args.late and last_i is not None and last_i != len(spages) - 1:
        tail = sum(len(p) for _, p in spages[last_i + 1:])
        print(f"note: output stops {len(spages) - 1 - last_i} pages ({tail} bytes) before the source end")
        if args.max_missing_bytes is not None and missing_bytes + tail > args.max_missing_bytes:
            problems.append(f"output ends {len(spages) - 1 - last_i} pages before the source")

    maxpage = max((len(p) for _, p in spages), default=0)
    print(f"source: {len(spages)} pages ({len(src)} B, {header_count} header pages, "
          f"largest {maxpage} B); output: {len(opages)} pages ({len(out)} B), "
          f"source pages {first}..{last_i}, missing {missing_pages} pages / "
          f"{missing_bytes} B, garbage {garbage} B")
    for p in problems:
        print("problem: " + p)
    return 1 if problems else 0


def cmd_frames(args):
    ref = open(args.reference, "rb").read()
    test = open(args.test, "rb").read()
    fb = args.frame_bytes
    rframes = [ref[i:i + fb] for i in range(0, len(ref) - fb + 1, fb)]
    tframes = [test[i:i + fb] for i in range(0, len(test) - fb + 1, fb)]
    if not rframes or not tframes:
        print(f"no frames (reference {len(rframes)}, test {len(tframes)})")
        return 1

    def mad(a, b):
        return sum(abs(x - y) for x, y in zip(a, b)) / fb

    # Distinct reference pictures are few (a moving test pattern loops), so
    # dedupe them to keep this quick.
    uniq = list(dict.fromkeys(rframes))
    bad = []
    worst = 0.0
    first = None
    cache = {}
    for n, t in enumerate(tframes):
        if t in cache:
            d = cache[t]
        else:
            d = min(mad(t, r) for r in uniq)
            cache[t] = d
        if n == 0:
            first = d
        worst = max(worst, d)
        # The last picture may be cut by stopping the recorder (SIGINT in
        # the middle of an MPEG-TS frame), not by the transport.
        if d > args.max_diff and n != len(tframes) - 1:
            bad.append((n, d))
    print(f"frames: {len(tframes)} tested against {len(rframes)} reference "
          f"({len(uniq)} distinct); first frame diff {first:.2f}, worst {worst:.2f} "
          f"(max allowed {args.max_diff})")
    if bad:
        print("problem: %d frames do not look like the source, first ones: %s" % (
            len(bad), ", ".join(f"#{n} ({d:.1f})" for n, d in bad[:8])))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("oggpages")
    p.add_argument("source")
    p.add_argument("output")
    p.add_argument("--max-missing-bytes", type=int)
    p.add_argument("--max-missing-pages", type=int)
    p.add_argument("--late", action="store_true")
    p = sub.add_parser("frames")
    p.add_argument("reference")
    p.add_argument("test")
    p.add_argument("--frame-bytes", type=int, default=256)
    p.add_argument("--max-diff", type=float, default=6.0)
    args = ap.parse_args()
    if args.cmd == "oggpages":
        return cmd_oggpages(args)
    return cmd_frames(args)


if __name__ == "__main__":
    sys.exit(main())
