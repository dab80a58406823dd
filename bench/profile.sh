#!/usr/bin/env bash
# Where a peer's time goes: a team of N gst-launch peers (default 20) and a
# splitter at 1 Mb/s in a private network namespace; perf samples 4 of the
# peers for S seconds (default 20). Prints the flat profile by shared object
# and by symbol. Needs the plugin built (bench/run.sh builds build-bench/).
#
#   bench/profile.sh [N] [S] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20} S=${2:-20} OUT=${3:-bench/out/profile}
mkdir -p "$OUT"
. bench/team-lib.sh
team_start "$N" "$OUT"
sleep 5
SAMPLED=$(IFS=,; echo "${PIDS[*]:0:4}")
perf record -q -F 1999 --call-graph dwarf,8192 -o "$OUT/perf.data" -p "$SAMPLED" -- sleep "$S" 2>/dev/null
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
echo
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
