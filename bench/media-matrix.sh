#!/usr/bin/env bash
# The media matrix of issue 13: feeds x formats, each with a peer that joins
# 3 s after the start and records about 6 s; an outside decoder (FFmpeg)
# must decode >= 90 % of the recorded time with no error
# (pipelines/media/matrix.sh runs one row; docs/benchmarks.md, "Media
# matrix", has the table of a run).
#
#   bench/media-matrix.sh [ROW...]      (default: every row, about 3 min)
#
# Env: JOIN, REC, MIN_RATIO (passed on), P2PSP_PLUGIN_DIR (default build/).
# Writes a Markdown table to stdout and bench/out/media-matrix-<date>.md;
# the files of each row stay in bench/out/media-matrix-<date>/ROW/.
# Exit 0 when every row passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
ROWS=("$@")
[[ ${#ROWS[@]} -gt 0 ]] || read -r -a ROWS <<<"$(bash pipelines/media/matrix.sh --list | tr '\n' ' ')"
STAMP=$(date +%Y%m%d-%H%M%S)
DIR=$ROOT/bench/out/media-matrix-$STAMP
mkdir -p "$DIR"
TABLE=$DIR.md
{
  echo "| row (format-feed-parser) | recorded s | decoded / recorded (min over streams) | FFmpeg errors | peer started at | result |"
  echo "| --- | --- | --- | --- | --- | --- |"
} >"$TABLE"
fail=0
for row in "${ROWS[@]}"; do
  bash pipelines/media/matrix.sh "$row" "$DIR/$row" >"$DIR/$row.log" 2>&1
  rc=$?
  line=$(grep -a '^RESULT ' "$DIR/$row.log" | tail -1)
  [[ $rc = 0 ]] || fail=1
  if [[ -z $line ]]; then
    res=$([[ $rc = 77 ]] && echo "skipped" || echo "FAIL (no result, exit $rc)")
    echo "| $row | | | | | $res |" >>"$TABLE"
    continue
  fi
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  err=$(grep -a -m1 '^      ffmpeg: ' "$DIR/$row.log" | sed 's/^ *ffmpeg: //; s/|/\\|/g' | cut -c1-60)
  printf '| %s | %s | %.2f | %s%s | %s | %s |\n' "$row" "$(get recorded)" "$(get ratio)" \
    "$(get ffmpeg_errors)" "${err:+ ($err)}" "$(get started_at)" "${line##* }" >>"$TABLE"
done
cat "$TABLE"
echo "(rows' files in $DIR)"
exit $fail
