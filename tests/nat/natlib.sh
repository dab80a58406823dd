# NAT scenario helpers (tests/nat/*.sh): a team in tests/netlab's test
# internet, run with the team-health runner (tests/health: splitter.py,
# peer.py print the elements' stats as JSON), checked by natcheck.py.
#
#   . "$(dirname "$0")/natlib.sh"
#   nat_init cone
#   netlab_nat nat1 cone 10.200.0.101 10.200.1
#   nat_public_peer pub1 10.200.0.11
#   nat_lan_peer c1a nat1 10.200.1.11
#   nat_run 15 --max-upload 1.10      # natcheck.py options
#   e2e_finish
#
# The splitter is the host "splitter" at 10.200.0.1 on the public segment;
# it holds the stream until every peer joined (wait-for-peers), the peers
# join one after another, 0.5 s apart, and the stream lasts the given seconds.
# NAT_SPLITTER_ARGS adds splitter properties (e.g. multicast-group=...).
# NAT_LOSS_PERMILLE (default 0) drops that share of the datagrams crossing
# the internet segment (netlab_loss), from the first join to the end.
# NAT_FULL=1 asks the scenarios for the full-size team of issue 14's goals
# (bench/nat.sh); the suite runs the short forms.
# NAT_MEDIA replaces the Ogg stream (a pipeline description ending where
# the sink is linked); NAT_PEER_ARGS[name] adds p2pspsrc properties.

NAT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../health/hlib.sh
. "$NAT_DIR/../health/hlib.sh"
# shellcheck source=../netlab/netlab.sh
. "$NAT_DIR/../netlab/netlab.sh"

NAT_SPLITTER_ADDR=10.200.0.1
NAT_PEERS=()
declare -A NAT_GROUP=()
declare -A NAT_KIND=()
declare -A NAT_PEER_ARGS=()

nat_init() {
  health_init "nat-$1"
  # netlab's verdicts through lib.sh's (same exit codes, same log).
  netlab_skip() { e2e_skip "$*"; }
  netlab_die() { e2e_die "$*"; }
  netlab_init "$1"
  netlab_host splitter "$NAT_SPLITTER_ADDR"
  # The per-neighbour counters over time, for natcheck.py's direct pairs.
  export HEALTH_STATS_INTERVAL_MS=500
  NAT_T0=$(e2e_now)
}

nat_public_peer() {
  netlab_host "$1" "$2"
  NAT_PEERS+=("$1")
  NAT_GROUP[$1]=public
  NAT_KIND[$1]=public
}

nat_lan_peer() {
  netlab_lan_host "$1" "$2" "$3"
  NAT_PEERS+=("$1")
  NAT_GROUP[$1]=$2
  NAT_KIND[$1]=${NETLAB_KIND[$2]}
}

# nat_run STREAM_SECONDS [natcheck.py options...]
nat_run() {
  local secs=$1 name i
  shift
  local n=${#NAT_PEERS[@]}
  health_media "$secs"
  [ -z "${NAT_MEDIA:-}" ] || HEALTH_DESC=$NAT_MEDIA
  E2E_SPLITTER_LAUNCH="ip netns exec $(netlab_ns splitter) $HEALTH_PY $HEALTH_DIR/splitter.py"
  local tx0 tx1
  netlab_loss "${NAT_LOSS_PERMILLE:-0}"
  [ "${NAT_LOSS_PERMILLE:-0}" = 0 ] || e2e_log "loss: ${NAT_LOSS_PERMILLE} per mille of the datagrams crossing the internet segment"
  tx0=$(netlab_bytes splitter tx)
  local t0
  t0=$(e2e_now)
  # chunk-size 1024 (as health-loss): more chunks, so that 0.1 % is more
  # than one chunk.
  # shellcheck disable=SC2086  # NAT_SPLITTER_ARGS: extra properties
  e2e_start_splitter "$HEALTH_DESC" "host=$NAT_SPLITTER_ADDR" wait-for-peers="$n" chunk-size=1024 ${NAT_SPLITTER_ARGS:-}
  e2e_log "splitter on $NAT_SPLITTER_ADDR:$SPLITTER_PORT in $(netlab_ns splitter)"
  local nat_pids=()
  for name in "${NAT_PEERS[@]}"; do
    e2e_spawn "$name" ip netns exec "$(netlab_ns "$name")" "$HEALTH_PY" "$HEALTH_DIR/peer.py" \
      p2pspsrc name=src "uri=p2psp://$NAT_SPLITTER_ADDR:$SPLITTER_PORT" ${NAT_PEER_ARGS[$name]:-} ! fakesink sync=false
    nat_pids+=("$E2E_LAST_PID")
    e2e_log "peer $name (${NAT_KIND[$name]}, ${NAT_GROUP[$name]}) pid $E2E_LAST_PID"
    sleep 0.5
  done
  local src_rc
  if e2e_wait_exit "$SPLITTER_PID" $((secs + 40)); then
    src_rc=$E2E_RC
  else
    health_show_log splitter
    e2e_stop "$SPLITTER_PID" 5
    src_rc="hung (then $E2E_RC)"
  fi
  e2e_log "splitter exit $src_rc after $(e2e_elapsed "$t0")s"
  [ "$src_rc" = 0 ] || e2e_fail "splitter did not finish cleanly (exit $src_rc)"
  e2e_check_log splitter
  health_wait_peers nat_pids "$(awk -v n="$(e2e_now)" 'BEGIN { printf "%.2f", n + 20 }')"
  tx1=$(netlab_bytes splitter tx)
  for i in "${!NAT_PEERS[@]}"; do
    name=${NAT_PEERS[$i]}
    if [ "${PEER_RC[$i]}" != 0 ]; then
      health_show_log "$name"
      e2e_fail "$name exited ${PEER_RC[$i]}"
    fi
    e2e_check_log "$name"
  done
  [ "${NAT_LOSS_PERMILLE:-0}" = 0 ] || e2e_log "loss: $(netlab_lost) datagrams dropped on the internet segment"
  local router
  for router in "${!NETLAB_WAN[@]}"; do
    e2e_log "router $router (${NETLAB_KIND[$router]}): dropped $(netlab_drops "$router"), conntrack entries $(netlab_conntrack "$router")"
  done
  local specs=()
  for name in "${NAT_PEERS[@]}"; do
    specs+=(--peer "$name:${NAT_GROUP[$name]}:${NAT_KIND[$name]}:$E2E_TMP/$name.log")
  done
  "$HEALTH_PY" "$NAT_DIR/natcheck.py" --splitter "$SPLITTER_LOG" "${specs[@]}" \
    --wire-tx $((tx1 - tx0)) "$@" >"$E2E_TMP/natcheck.out" 2>&1
  local rc=$?
  sed 's/^/    /' "$E2E_TMP/natcheck.out"
  [ $rc = 0 ] || e2e_fail "natcheck: $(grep -c '^FAIL' "$E2E_TMP/natcheck.out") assertion(s) failed (above)"
  e2e_log "run took $(e2e_elapsed "$NAT_T0")s (stream ${secs}s)"
}
