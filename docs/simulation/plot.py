#!/usr/bin/env python3
"""Draws clr-vs-buffer.svg from the CSV files run.sh writes (no plotting
library needed: the SVG is written by hand), and writes summary.md: per
series, the smallest buffer with CLR < 0.001 and the first from which no
chunk was lost."""
import csv
import math
import os
import sys

WIDTH, HEIGHT = 760, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 30, 60
X_MAX = 420
Y_MIN, Y_MAX = 1e-5, 1.0  # log scale; a CLR of 0 is drawn at the floor

# Published figures of the reference simulator (digest, "Published figures").
REFERENCE = {
    "reference, N = 100": [(205, 0.159), (250, 0.048), (265, 0.013),
                           (280, 0.0005), (400, 0.0005)],
    "reference, N = 20": [(40, 0.073), (60, Y_MIN)],
}

SERIES = [
    ("n100-dbs.csv", "N = 100, uplink 2x", "#1f77b4", ""),
    ("n100-nack.csv", "N = 100, 2x, NACK on", "#d62728", ""),
    ("n100-dbs-up1.2.csv", "N = 100, uplink 1.2x", "#9467bd", ""),
    ("n100-dbs-up1.5.csv", "N = 100, uplink 1.5x", "#8c564b", ""),
    ("n100-dbs-up4.csv", "N = 100, uplink 4x", "#17becf", ""),
    ("n20-dbs.csv", "N = 20, uplink 2x", "#2ca02c", ""),
]


def x_pos(buffer):
    return LEFT + (WIDTH - LEFT - RIGHT) * buffer / X_MAX


def y_pos(clr):
    clr = min(max(clr, Y_MIN), Y_MAX)
    span = math.log10(Y_MAX) - math.log10(Y_MIN)
    return TOP + (HEIGHT - TOP - BOTTOM) * (
        math.log10(Y_MAX) - math.log10(clr)) / span


def read_points(path):
    with open(path) as f:
        return [(float(row["buffer"]), float(row["clr"]))
                for row in csv.DictReader(f)]


def summary(directory):
    rows = ["| series | smallest B with CLR < 0.001 | its CLR | worst peer "
            "there | p50 delay there (ms) | no loss at all from B |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, label, _, _ in SERIES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            table = [row for row in csv.DictReader(f)]
        good = [r for r in table if float(r["clr"]) < 0.001]
        first = good[0] if good else None
        # From this buffer on, every larger one lost nothing either.
        lossless = None
        for r in reversed(table):
            if float(r["clr"]) != 0:
                break
            lossless = r["buffer"]
        rows.append(
            f"| {label} | {first['buffer'] if first else '-'} | "
            f"{float(first['clr']):.6f} | {float(first['worst_peer_clr']):.4f}"
            f" | {float(first['delay_p50_ms']):.0f} | {lossless or '-'} |"
            if first else f"| {label} | - | - | - | - | {lossless or '-'} |")
    return "\n".join(rows) + "\n"


def polyline(points, colour, dash=""):
    coords = " ".join(f"{x_pos(b):.1f},{y_pos(c):.1f}" for b, c in points)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    dots = "".join(
        f'<circle cx="{x_pos(b):.1f}" cy="{y_pos(c):.1f}" r="2.5" '
        f'fill="{colour}"/>' for b, c in points)
    return (f'<polyline points="{coords}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"{dash_attr}/>' + dots)


def axes():
    out = []
    bottom = HEIGHT - BOTTOM
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
               f'height="{bottom - TOP}" fill="none" stroke="#333"/>')
    for b in range(0, X_MAX + 1, 50):
        x = x_pos(b)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{bottom + 18}" text-anchor="middle">'
                   f'{b}</text>')
    for e in range(-5, 1):
        y = y_pos(10.0 ** e)
        out.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" '
                   f'y2="{y}" stroke="#ddd"/>')
        label = "0 / 1e-5" if e == -5 else f"1e{e}" if e < 0 else "1"
        out.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">'
                   f'{label}</text>')
    y = y_pos(1e-3)
    out.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
               f'stroke="#000" stroke-dasharray="2,3"/>')
    out.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y - 4}" '
               f'text-anchor="end">CLR 0.001</text>')
    x = x_pos(200)
    out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom}" '
               f'stroke="#000" stroke-dasharray="2,3"/>')
    out.append(f'<text x="{x + 4}" y="{TOP + 14}">2N (N = 100)</text>')
    out.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 15}" '
               f'text-anchor="middle">buffer (chunks)</text>')
    out.append(f'<text transform="translate(18,{(TOP + bottom) / 2}) '
               f'rotate(-90)" text-anchor="middle">chunk loss ratio</text>')
    return out


def legend(entries):
    out = []
    for i, (label, colour, dash) in enumerate(entries):
        y = TOP + 10 + 20 * i
        x = WIDTH - RIGHT + 12
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" '
                   f'stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{x + 28}" y="{y + 4}">{label}</text>')
    return out


def main(directory):
    body = axes()
    entries = []
    for name, label, colour, dash in SERIES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        body.append(polyline(read_points(path), colour, dash))
        entries.append((label, colour, dash))
    for (label, points), colour in zip(REFERENCE.items(),
                                       ["#ff7f0e", "#7f7f7f"]):
        body.append(polyline(points, colour, "6,4"))
        entries.append((label, colour, "6,4"))
    body += legend(entries)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
           f'height="{HEIGHT}" font-family="sans-serif" font-size="12">'
           f'<rect width="100%" height="100%" fill="white"/>'
           + "".join(body) + "</svg>\n")
    with open(os.path.join(directory, "clr-vs-buffer.svg"), "w") as f:
        f.write(svg)
    table = summary(directory)
    with open(os.path.join(directory, "summary.md"), "w") as f:
        f.write(table)
    print(table, end="")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__))
