#!/usr/bin/env bash
# CPU and wake-ups of a team's peers, for quick A/B runs of a change: a
# splitter fed the bench medium in real time and N gst-launch peers (default
# 20) on the loopback of a private network namespace; after 6 s of warm-up,
# S seconds (default 20) are measured from /proc: CPU time and context
# switches of all peer processes, and the UDP datagrams the namespace
# received (Udp InDatagrams: chunks plus a little control traffic).
# Extra arguments are p2pspsrc properties (e.g. io-interval=40).
# Needs the plugin built (bench/run.sh builds build-bench/) and the medium
# (bench/run.sh makes bench/out/media-*.ogg).
#
#   bench/team-cpu.sh [N] [S] [property=value...]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20} S=${2:-20}
shift $(($# < 2 ? $# : 2))
OUT=bench/out/team-cpu
mkdir -p "$OUT"
. bench/team-lib.sh
team_start "$N" "$OUT" "$@"
sleep 6

# CPU ticks, context switches (all threads) of the peers; UDP datagrams in.
snapshot() {
  local ticks=0 switches=0 p f
  for p in "${PIDS[@]}"; do
    ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    for f in /proc/"$p"/task/*/status; do
      switches=$((switches + $(awk '/ctxt_switches/ { s += $2 } END { print s }' "$f")))
    done
  done
  echo "$ticks $switches $($X awk '/^Udp:/ { n++ } /^Udp:/ && n == 2 { print $2 }' /proc/net/snmp)"
}
read -r t0 c0 d0 < <(snapshot)
sleep "$S"
read -r t1 c1 d1 < <(snapshot)
python3 - "$N" "$S" "$(getconf CLK_TCK)" "$t0" "$t1" "$c0" "$c1" "$d0" "$d1" <<'EOF'
import sys
n, s, hz, t0, t1, c0, c1, d0, d1 = map(float, sys.argv[1:])
cpu = (t1 - t0) / hz / n / s
dgrams = (d1 - d0) / n / s
print(f"N={n:.0f}: per peer and second {cpu * 1e3:.2f} ms CPU, "
      f"{(c1 - c0) / n / s:.0f} context switches, {dgrams:.1f} datagrams in; "
      f"{cpu / dgrams * 1e6:.1f} us per datagram received")
EOF
