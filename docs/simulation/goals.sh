#!/usr/bin/env bash
# The "Peers as they are" goals of docs/simulation.md (issue 15): for each
# uplink mix, with NACK on, the CLR against the buffer, and a summary of the
# smallest buffer with CLR < 0.001.
# usage: docs/simulation/goals.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sim=${1:-build}/tools/sim/p2psp-sim
model=(--bitrate 1000 --chunk-size 1024 --delay 20 --jitter 10 --loss 0
       --splitter-upload-x 10 --queue 1000 --duration 20 --peers 100 --seed 1)
buffers=buffer=40:200:20

run() {  # name, then the mix's options
  local name=$1
  shift
  "$sim" "${model[@]}" "$@" --sweep "$buffers" --csv "$here/goals-$name.csv" \
    > "$here/goals-$name.md"
}

run 2x-dbs --peer-upload-x 2 --nack 0
run 2x-nack --peer-upload-x 2 --nack 1
run a-1.2x --peer-upload-x 1.2 --nack 1
run b-stated --peer-upload-x 2.5 --weak-fraction 0.5 --weak-upload-x 0.3 \
  --state-limits 1 --nack 1
run b-learned --peer-upload-x 2.5 --weak-fraction 0.5 --weak-upload-x 0.3 \
  --state-limits 0 --learn-shares 1 --nack 1
run c-stated --peer-upload-x 1.5 --free-riders 0.2 --state-limits 1 --nack 1
run c-learned --peer-upload-x 1.5 --free-riders 0.2 --state-limits 0 \
  --learn-shares 1 --nack 1

# Summary: per run, the smallest buffer with CLR < 0.001 and its CLR, and
# the CLR at B = 200 (the CSV's first two columns are buffer and CLR).
{
  echo "| run | smallest B with CLR < 0.001 | its CLR | CLR at B = 200 | splitter up at B = 200 |"
  echo "|---|---:|---:|---:|---:|"
  for f in "$here"/goals-*.csv; do
    name=$(basename "$f" .csv)
    name=${name#goals-}
    python3 - "$f" "$name" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = list(rows[0].keys())
b, clr = keys[0], keys[1]
up = next(k for k in keys if k.startswith("splitter"))
ok = [r for r in rows if float(r[clr]) < 0.001]
at200 = next(r for r in rows if float(r[b]) == 200)
first = f"{float(ok[0][b]):.0f} | {float(ok[0][clr]):.6f}" if ok else "none ≤ 200 | -"
print(f"| {sys.argv[2]} | {first} | {float(at200[clr]):.6f} | {float(at200[up]):.3f} |")
EOF
  done
} | tee "$here/goals-summary.md"
