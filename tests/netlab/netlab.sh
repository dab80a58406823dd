# netlab: a small "test internet" of network namespaces, for tests and bench.
# Source it from bash (as root):
#
#   . tests/netlab/netlab.sh
#   netlab_init cone                 # or exits 77 (skip) when it cannot work
#   netlab_host splitter 10.200.0.1  # a host on the public segment
#   netlab_nat  nat1 cone 10.200.0.101 10.200.1   # a NAT router, LAN 10.200.1.0/24
#   netlab_lan_host p1 nat1 10.200.1.11           # a host behind it
#   netlab_exec p1 some-command ...               # runs in p1's namespace
#
# Topology (every name below is a namespace called p2nl<PID>-<name>, so that
# parallel runs never collide; nothing outside them is touched, and every
# address is in 10.200.0.0/16, routed nowhere but inside):
#
#             inet (namespace with bridge br0: the "internet", 10.200.0.0/24)
#      +-----------+-------------+---------------+--------------------+
#      |           |             |               |                    |
#   splitter    public peer   public peer    NAT router nat1       NAT router nat2
#   10.200.0.1  10.200.0.11   10.200.0.12    wan 10.200.0.101      wan 10.200.0.102
#   (eth0)      (eth0)        (eth0)         lan bridge 10.200.1.1 lan 10.200.2.1
#                                              |          |           |       |
#                                           10.200.1.11 10.200.1.12  ...     ...
#                                           (LAN hosts: eth0, default route
#                                            via the router's lan address)
#
# A host on the public segment has one veth (eth0 inside, p<N> on br0) and no
# default route: it reaches 10.200.0.0/24 only. A NAT router has a veth
# "wan" on br0 and a bridge "lan" with one veth per LAN host; it forwards
# (ip_forward=1) and translates with nft (table ip netlab):
#
#   cone       port-restricted cone NAT, as most home routers: `masquerade`
#              (Linux keeps the local source port, so one mapping per local
#              socket whatever the destination) and filtering by conntrack:
#              only replies from an (address, port) the inside host sent to
#              come in. Unsolicited inbound is dropped, on the input hook as
#              well as on forward: `iifname "wan" ct state new drop`. Without
#              the input rule the first unsolicited datagram to a mapped port
#              is delivered locally and creates a conntrack entry, and the
#              next outbound datagram of that socket to that sender is then
#              masqueraded to ANOTHER port (tuple clash), which no home
#              router does (issue 14).
#   symmetric  `masquerade random` (NETLAB_SYMMETRIC_FLAGS, default "random";
#              "fully-random" works too): every new (destination address,
#              port) gets its own randomly chosen public port, as carrier-grade
#              and many corporate NATs; same filtering as above.
#   sequential symmetric NAT that hands out its public ports in sequence, as
#              many carrier-grade and older NATs: every new UDP flow (a new
#              destination address or port) gets the next port of a counter
#              shared by the whole LAN, NETLAB_SEQUENTIAL_STEP (default 1)
#              above the previous one: `snat to <wan> : numgen inc mod
#              NETLAB_SEQUENTIAL_PORTS map { 0 : base, 1 : base + step, ... }`
#              (base 20000-29999, random per router). The map is needed: nft
#              1.0.6 on this kernel stores a bare `numgen` result in host
#              byte order, and `snat to <wan> : numgen inc mod 1000 offset
#              20000` maps to 8270, 8526, 8782, ... (byte-swapped, step 256).
#              TCP is `masquerade random`. Same filtering as above.
#   fullcone   full-cone NAT (endpoint-independent mapping and filtering):
#              `masquerade` as cone, and every outbound flow records its
#              local (address, port) under its source port in a dynamic map;
#              a datagram from ANY outside sender to that public port is
#              forwarded to it (`dnat ... map`). Linux keeps the local port
#              when it is free, so the public port is the local one (a clash
#              between two LAN hosts' ports would break that mapping; ports
#              are random, and the tests never see one).
#
# No NAT hairpins: a LAN host's datagram to its own router's public address is
# dropped (`iifname "lan" ip daddr <wan> ct state new drop`), so two hosts
# behind one NAT reach each other only at their LAN addresses.
#
# Functions:
#   netlab_init TAG                  checks root, ip netns, nft; makes the inet
#                                    namespace; installs the cleanup (EXIT trap,
#                                    chained before any EXIT trap already set)
#   netlab_host NAME ADDR            host on the public segment
#   netlab_nat NAME KIND WAN LAN24   router (KIND cone|symmetric|sequential|
#                                    fullcone),
#                                    LAN24 like 10.200.1 (the router takes .1)
#   netlab_loss PERMILLE             every IPv4 datagram crossing the inet
#                                    segment (between any two of its sites)
#                                    is lost with this probability, in 1/1000
#                                    (nft numgen on br0; 0 removes it)
#   netlab_lost                      datagrams netlab_loss dropped so far
#   netlab_lan_host NAME ROUTER ADDR host behind ROUTER
#   netlab_ns NAME                   prints the namespace of NAME
#   netlab_exec NAME CMD...          runs CMD in NAME's namespace
#   netlab_iface NAME                prints NAME's interface towards its
#                                    network (eth0, or wan for a router)
#   netlab_bytes NAME tx|rx          bytes its interface sent / received
#   netlab_drops ROUTER              datagrams its filter dropped
#   netlab_conntrack NAME            number of conntrack entries (routers)
#   netlab_cleanup                   kills every process in our namespaces and
#                                    deletes them (also run at exit)
#
# A failure to build the network makes netlab_init/netlab_* call
# netlab_skip (default: print and exit 77) when the environment lacks
# something (not root, no netns, no nft or no NAT support), netlab_die
# (exit 1) otherwise. Callers may redefine both after sourcing.

NETLAB_PREFIX=
NETLAB_INET=
NETLAB_SYMMETRIC_FLAGS=${NETLAB_SYMMETRIC_FLAGS:-random}
NETLAB_SEQUENTIAL_STEP=${NETLAB_SEQUENTIAL_STEP:-1}
NETLAB_SEQUENTIAL_PORTS=${NETLAB_SEQUENTIAL_PORTS:-1000}
NETLAB_NAMESPACES=()   # every namespace we created, inet first
NETLAB_PREV_EXIT=
NETLAB_PORTS=0         # veth ports on br0 so far
declare -A NETLAB_NS=()      # name -> namespace
declare -A NETLAB_IF=()      # name -> its interface (eth0 / wan)
declare -A NETLAB_KIND=()    # name -> host | cone | symmetric | sequential | fullcone
declare -A NETLAB_WAN=()     # router -> its public address
declare -A NETLAB_LANPORTS=() # router -> LAN ports so far

netlab_log() { printf '[netlab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
netlab_skip() { netlab_log "SKIP: $*"; exit 77; }
netlab_die() { netlab_log "FAIL: $*"; exit 1; }

# _netlab_try WHAT CMD...: runs CMD, dies with its stderr when it fails.
_netlab_try() {
  local what=$1 err
  shift
  if ! err=$("$@" 2>&1 >/dev/null); then
    netlab_die "$what: $* -> $err"
  fi
}

_netlab_exit() {
  local rc=$?
  netlab_cleanup
  if [ -n "$NETLAB_PREV_EXIT" ]; then
    (exit $rc)
    eval "$NETLAB_PREV_EXIT"
  fi
  exit $rc
}

netlab_init() {
  local tag=${1:-lab} err
  [ "$(id -u)" = 0 ] || netlab_skip "needs root (network namespaces)"
  command -v ip >/dev/null || netlab_skip "ip (iproute2) not found"
  command -v nft >/dev/null || netlab_skip "nft (nftables) not found"
  NETLAB_PREFIX=p2nl$$-
  # The EXIT trap already set (a test library's cleanup) runs after ours.
  local prev
  prev=$(trap -p EXIT)
  if [ -n "$prev" ]; then
    prev=${prev#trap -- \'}
    NETLAB_PREV_EXIT=${prev%\' EXIT}
  fi
  trap _netlab_exit EXIT
  NETLAB_INET=${NETLAB_PREFIX}inet
  if ! err=$(ip netns add "$NETLAB_INET" 2>&1); then
    netlab_skip "cannot create a network namespace: $err"
  fi
  NETLAB_NAMESPACES+=("$NETLAB_INET")
  ip -n "$NETLAB_INET" link set lo up
  _netlab_try "bridge" ip -n "$NETLAB_INET" link add br0 type bridge
  _netlab_try "bridge up" ip -n "$NETLAB_INET" link set br0 up
  # Can nft (and its NAT) work in a namespace here?
  if ! err=$(ip netns exec "$NETLAB_INET" nft -f - 2>&1 <<'EOF'
table ip netlab_probe {
  chain post { type nat hook postrouting priority srcnat; policy accept; masquerade random; }
  chain in { type filter hook input priority 0; policy accept; ct state new counter; }
}
EOF
  ); then
    netlab_skip "nft cannot load a NAT table in a namespace: $(echo "$err" | head -3)"
  fi
  ip netns exec "$NETLAB_INET" nft delete table ip netlab_probe
  netlab_log "lab $tag: namespaces ${NETLAB_PREFIX}*"
}

_netlab_new_ns() {
  local name=$1 ns=${NETLAB_PREFIX}$1
  [ -z "${NETLAB_NS[$name]:-}" ] || netlab_die "node $name exists already"
  _netlab_try "namespace $ns" ip netns add "$ns"
  NETLAB_NAMESPACES+=("$ns")
  NETLAB_NS[$name]=$ns
  ip -n "$ns" link set lo up
}

# _netlab_inet_port NS IFNAME: a veth from NS (named IFNAME there) to br0.
_netlab_inet_port() {
  local ns=$1 ifname=$2 port
  NETLAB_PORTS=$((NETLAB_PORTS + 1))
  port=p$NETLAB_PORTS
  _netlab_try "veth" ip link add "$ifname" netns "$ns" type veth peer name "$port" netns "$NETLAB_INET"
  _netlab_try "br0 port" ip -n "$NETLAB_INET" link set "$port" master br0
  ip -n "$NETLAB_INET" link set "$port" up
  _netlab_wire "$ns" "$ifname"
  ip -n "$ns" link set "$ifname" up
}

# _netlab_wire NS IFNAME: the host's side of a link carries datagrams, as
# a wire does. A UDP GSO send (the elements send runs of equal datagrams
# to one destination that way) would otherwise cross the veth and the
# bridge as one packet, and netlab_loss would drop a whole run at once
# where a real network's NIC cuts it into datagrams first.
_netlab_wire() {
  ip -n "$1" link set "$2" gso_max_segs 1 2>/dev/null || true
}

netlab_host() {
  local name=$1 addr=$2
  _netlab_new_ns "$name"
  local ns=${NETLAB_NS[$name]}
  _netlab_inet_port "$ns" eth0
  _netlab_try "address" ip -n "$ns" addr add "$addr/24" dev eth0
  NETLAB_IF[$name]=eth0
  NETLAB_KIND[$name]=host
}

# _netlab_nat_rules KIND WAN MASQ: the router's nft table on stdout.
_netlab_nat_rules() {
  local kind=$1 wan=$2 masq=$3 learn="" map=""
  local forward_in='iifname "wan" ct state new counter drop comment "unsolicited"'
  if [ "$kind" = fullcone ]; then
    map='map fullcone {
    type inet_service : ipv4_addr . inet_service
    flags dynamic,timeout
    timeout 10m
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" meta l4proto udp dnat ip to udp dport map @fullcone
  }'
    learn='oifname "wan" meta l4proto udp update @fullcone { udp sport : ip saddr . udp sport }'
    # What the map forwarded is solicited, by definition of full cone.
    forward_in='iifname "wan" ct state new ct status & dnat == 0 counter drop comment "unsolicited"'
  fi
  cat <<EOF
table ip netlab {
  $map
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    $learn
    oifname "wan" $masq
  }
  chain in {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state new counter drop comment "unsolicited"
    iifname "lan" ip daddr $wan ct state new counter drop comment "hairpin"
  }
  chain fw {
    type filter hook forward priority 0; policy accept;
    $forward_in
  }
}
EOF
}

# _netlab_sequential_snat WAN: the UDP rule of a sequential NAT (see above).
_netlab_sequential_snat() {
  local wan=$1 base=$((20000 + RANDOM % 10000)) i map=""
  for ((i = 0; i < NETLAB_SEQUENTIAL_PORTS; i++)); do
    map+="$i : $((base + i * NETLAB_SEQUENTIAL_STEP)), "
  done
  printf 'meta l4proto udp snat to %s : numgen inc mod %d map { %s }' \
    "$wan" "$NETLAB_SEQUENTIAL_PORTS" "${map%, }"
}

netlab_nat() {
  local name=$1 kind=$2 wan=$3 lan=$4 masq err
  case "$kind" in
    cone | fullcone) masq="masquerade" ;;
    symmetric) masq="masquerade $NETLAB_SYMMETRIC_FLAGS" ;;
    sequential) masq="$(_netlab_sequential_snat "$wan")
    oifname \"wan\" masquerade random" ;;
    *) netlab_die "netlab_nat: unknown NAT kind $kind (cone, symmetric, sequential, fullcone)" ;;
  esac
  _netlab_new_ns "$name"
  local ns=${NETLAB_NS[$name]}
  _netlab_inet_port "$ns" wan
  _netlab_try "address" ip -n "$ns" addr add "$wan/24" dev wan
  _netlab_try "lan bridge" ip -n "$ns" link add lan type bridge
  _netlab_try "lan address" ip -n "$ns" addr add "$lan.1/24" dev lan
  ip -n "$ns" link set lan up
  _netlab_try "ip_forward" ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1
  if ! err=$(_netlab_nat_rules "$kind" "$wan" "$masq" | ip netns exec "$ns" nft -f - 2>&1); then
    netlab_die "nft cannot load the NAT of $name: $(echo "$err" | head -3)"
  fi
  NETLAB_IF[$name]=wan
  NETLAB_KIND[$name]=$kind
  NETLAB_WAN[$name]=$wan
  NETLAB_LANPORTS[$name]=0
}

netlab_lan_host() {
  local name=$1 router=$2 addr=$3 rns port gw
  rns=${NETLAB_NS[$router]:-}
  if [ -z "$rns" ] || [ -z "${NETLAB_WAN[$router]:-}" ]; then
    netlab_die "netlab_lan_host: no router $router"
  fi
  _netlab_new_ns "$name"
  local ns=${NETLAB_NS[$name]}
  NETLAB_LANPORTS[$router]=$((NETLAB_LANPORTS[$router] + 1))
  port=l${NETLAB_LANPORTS[$router]}
  _netlab_try "veth" ip link add eth0 netns "$ns" type veth peer name "$port" netns "$rns"
  _netlab_try "lan port" ip -n "$rns" link set "$port" master lan
  ip -n "$rns" link set "$port" up
  _netlab_wire "$ns" eth0
  ip -n "$ns" link set eth0 up
  _netlab_try "address" ip -n "$ns" addr add "$addr/24" dev eth0
  gw=$(ip -n "$rns" -4 -o addr show dev lan | awk '{ print $4 }' | cut -d/ -f1)
  _netlab_try "default route" ip -n "$ns" route add default via "$gw"
  NETLAB_IF[$name]=eth0
  NETLAB_KIND[$name]=host
}

netlab_ns() {
  [ -n "${NETLAB_NS[$1]:-}" ] || netlab_die "no node $1"
  echo "${NETLAB_NS[$1]}"
}

netlab_exec() {
  local name=$1
  shift
  ip netns exec "$(netlab_ns "$name")" "$@"
}

netlab_iface() { echo "${NETLAB_IF[$1]}"; }

# netlab_bytes NAME tx|rx
netlab_bytes() {
  ip netns exec "$(netlab_ns "$1")" cat "/sys/class/net/${NETLAB_IF[$1]}/statistics/${2}_bytes"
}

# netlab_drops ROUTER: "unsolicited N hairpin M", datagrams (packets) its
# filter dropped: unsolicited inbound on wan (input + forward), and LAN hosts'
# attempts to reach a public endpoint behind the same router.
netlab_drops() {
  ip netns exec "$(netlab_ns "$1")" nft list table ip netlab 2>/dev/null | awk '
    /counter packets/ {
      for (i = 1; i < NF; i++) if ($i == "packets") n = $(i + 1)
      if ($0 ~ /hairpin/) h += n; else u += n
    }
    END { printf "unsolicited %d hairpin %d\n", u, h }'
}

netlab_loss() {
  local permille=$1
  ip netns exec "$NETLAB_INET" nft delete table bridge netlab_loss 2>/dev/null
  [ "$permille" -gt 0 ] || return 0
  _netlab_try "loss on br0" ip netns exec "$NETLAB_INET" nft -f - <<EOF
table bridge netlab_loss {
  chain fw {
    type filter hook forward priority 0; policy accept;
    ether type ip numgen random mod 1000 < $permille counter drop
  }
}
EOF
}

netlab_lost() {
  ip netns exec "$NETLAB_INET" nft list table bridge netlab_loss 2>/dev/null |
    awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}

netlab_conntrack() {
  ip netns exec "$(netlab_ns "$1")" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0
}

netlab_cleanup() {
  local ns pid i any
  [ ${#NETLAB_NAMESPACES[@]} = 0 ] && return 0
  # Only processes inside our own namespaces: we started them.
  for ns in "${NETLAB_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for i in $(seq 20); do
    any=0
    for ns in "${NETLAB_NAMESPACES[@]}"; do
      [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && any=1
    done
    [ $any = 0 ] && break
    sleep 0.1
  done
  for ns in "${NETLAB_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  # LAN hosts and routers first, inet last (deleting a namespace deletes its
  # veth ends, and with them the peers' ends).
  for ((i = ${#NETLAB_NAMESPACES[@]} - 1; i >= 0; i--)); do
    ip netns delete "${NETLAB_NAMESPACES[$i]}" 2>/dev/null
  done
  NETLAB_NAMESPACES=()
  NETLAB_NS=()
}
