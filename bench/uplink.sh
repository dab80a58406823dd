#!/usr/bin/env bash
# Tight and uneven uplinks on real processes (issue 15), the long form of the
# uplink-b / uplink-c tests: 12 peers, each in its own network namespace
# behind a `tc tbf` uplink, a 1 Mb/s stream, mixes
#   b: half the peers at 0.3x, half at 2.5x the stream rate;
#   c: 3 of 12 free riders (upload-limit=0), the rest at 1.5x;
# each peer stating its link as upload-limit; and the same mixes with
# nothing stated, learned by the splitter (b-learned, c-learned: free riders
# whose namespace drops what they send to peers). Runs tests/nat/uplink.sh once
# per mix with S seconds of stream (default 60) and keeps its reports in
# bench/out/uplink/: MIX.natcheck.out (every peer's stats, the splitter's
# upload per stream byte) and MIX.qdisc.md (each uplink's bytes and drops).
# Root only (network namespaces). Needs the plugin built in BUILD (default
# build).
#
#   bench/uplink.sh [S] [BUILD]
set -uo pipefail
cd "$(dirname "$0")/.."
S=${1:-60}
BUILD=${2:-build}
OUT=bench/out/uplink
mkdir -p "$OUT"
export P2PSP_PLUGIN_DIR=${P2PSP_PLUGIN_DIR:-$PWD/$BUILD/plugin}
export P2PSP_BUILD_DIR=${P2PSP_BUILD_DIR:-$PWD/$BUILD}
rc=0
for mix in ${UPLINK_MIXES:-b c b-learned c-learned}; do
  echo "== mix $mix, $S s of stream"
  UPLINK_REPORT=$OUT/$mix bash tests/nat/uplink.sh "$mix" "$S" >"$OUT/$mix.log" 2>&1
  r=$?
  echo "exit $r (log: $OUT/$mix.log)"
  [ $r = 0 ] || rc=1
  grep -E '^ *(ok|FAIL):|splitter|played' "$OUT/$mix.natcheck.out" 2>/dev/null | head -20
  cat "$OUT/$mix.qdisc.md" 2>/dev/null
done
exit $rc
