#!/usr/bin/env bash
# Regenerates the tables and the plot of docs/simulation.md.
# usage: docs/simulation/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sim=${1:-build}/tools/sim/p2psp-sim
# The model (docs/simulation.md, "Model"): 1 Mb/s in 1024-byte chunks,
# 20 ms links with up to 10 ms of jitter, no random loss, peers' uplinks at
# twice the stream rate, the splitter's at ten times, 1 s drop-tail queues.
model=(--bitrate 1000 --chunk-size 1024 --delay 20 --jitter 10 --loss 0
       --peer-upload-x 2 --splitter-upload-x 10 --queue 1000 --duration 20)

"$sim" "${model[@]}" --peers 100 --nack 0 --repeat 3 --seed 1 \
  --sweep buffer=10:300:10 --csv "$here/n100-dbs.csv" | tee "$here/n100-dbs.md"
"$sim" "${model[@]}" --peers 100 --nack 1 --seed 1 \
  --sweep buffer=20:300:20 --csv "$here/n100-nack.csv" | tee "$here/n100-nack.md"
"$sim" "${model[@]}" --peers 20 --nack 0 --repeat 3 --seed 1 \
  --sweep buffer=5:80:5 --csv "$here/n20-dbs.csv" | tee "$here/n20-dbs.md"
for x in 1.2 1.5 4; do
  "$sim" "${model[@]}" --peers 100 --nack 0 --seed 1 \
    --peer-upload-x "$x" --sweep buffer=10:150:10 \
    --csv "$here/n100-dbs-up$x.csv" | tee "$here/n100-dbs-up$x.md"
done
python3 "$here/plot.py" "$here"
