#!/usr/bin/env bash
# Issue 14's NAT goals at full size, without and with loss: the scenarios of
# tests/nat (which the suite runs in short forms) with NAT_FULL=1, each at
# 0 and 2 % loss of the datagrams crossing the test internet (netlab_loss).
#
#   cone       6 peers behind 3 NATs (2 port-restricted cone, 1 full cone)
#              and 2 public peers; splitter <= 1.10, every possible pair direct
#   symmetric  2 of 8 behind a symmetric NAT; splitter <= 1.30
#   predict    2 of 8 behind a symmetric NAT that allocates in sequence
#              (port prediction, protocol.md 3.3); splitter <= 1.30
#   multicast  10 LAN peers on the splitter's LAN (IMS) and 2 behind a NAT;
#              splitter <= 1.10
# Every peer must play >= 99.9 % of the chunks. Root only (network namespaces).
#
#   bench/nat.sh [SCENARIO...]    (default: cone symmetric predict multicast)
#   NAT_BENCH_LOSSES="0 20"       per-mille losses to run (default "0 20")
# Prints one RESULT line per run (natcheck.py) and a summary table; the logs
# stay in $NAT_BENCH_OUT (default /tmp/p2psp-bench-nat).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${P2PSP_BUILDDIR:-$ROOT/build}
ninja -C "$BUILD" >/dev/null || exit 1
OUT=${NAT_BENCH_OUT:-/tmp/p2psp-bench-nat}
mkdir -p "$OUT"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(cone symmetric predict multicast)
summary=()
for s in "${scenarios[@]}"; do
  for loss in ${NAT_BENCH_LOSSES:-0 20}; do
    log=$OUT/$s-loss$loss.log
    echo "== $s, loss $loss per mille ($log)"
    NAT_FULL=1 NAT_LOSS_PERMILLE=$loss P2PSP_PLUGIN_DIR=$BUILD/plugin \
      P2PSP_BUILD_DIR=$BUILD P2PSP_SOURCE_DIR=$ROOT bash "tests/nat/$s.sh" >"$log" 2>&1
    rc=$?
    result=$(grep -h 'RESULT' "$log" | tail -1 | sed 's/^ *RESULT //')
    verdict=$([ $rc = 0 ] && echo PASS || echo "FAIL (exit $rc)")
    echo "   $verdict $result"
    grep -h '^ *FAIL' "$log" | sed 's/^ */   /'
    summary+=("$(printf '%-10s %5s  %-14s %s' "$s" "$loss" "$verdict" "$result")")
  done
done
echo
printf '%-10s %5s  %-14s %s\n' scenario loss verdict result
printf '%s\n' "${summary[@]}"
