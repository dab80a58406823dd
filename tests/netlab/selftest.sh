#!/bin/bash
# netlab-selftest: the test internet's NATs behave as netlab.sh says, so that
# the NAT scenarios test the protocol against what they claim:
#   * cone: the public port is the local one; a datagram from a host the
#     inside host never sent to is dropped;
#   * fullcone: the same datagram is forwarded to the inside host;
#   * symmetric: two destinations see two different public ports;
#   * sequential: three new flows (two destinations, then a second socket)
#     see three consecutive public ports;
#   * no hairpinning: a LAN host cannot reach its own router's public address;
#   * netlab_loss 100 (10 %) drops between 5 and 15 % of 2000 datagrams.
# Root only (77 otherwise).
. "$(dirname "$0")/netlab.sh"
PY=/usr/bin/python3
FAILS=0
check() { # check WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok: $1 ($3)"; else echo "FAIL: $1: expected $2, got $3"; FAILS=$((FAILS + 1)); fi
}

# udp_listen NODE PORT SECONDS: prints "from ADDR PORT" per datagram received.
udp_listen() {
  netlab_exec "$1" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(float(sys.argv[2]))
try:
    while True:
        d, a = s.recvfrom(100); print("from", a[0], a[1], flush=True)
except socket.timeout:
    pass' "$2" "$3"
}
# udp_send NODE SRC_PORT DST_ADDR DST_PORT [COUNT]
udp_send() {
  netlab_exec "$1" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
for _ in range(int(sys.argv[4])):
    s.sendto(b"x", (sys.argv[2], int(sys.argv[3])))' "$2" "$3" "$4" "${5:-1}"
}

netlab_init selftest
netlab_host pub1 10.200.0.11
netlab_host pub2 10.200.0.12
netlab_nat cone1 cone 10.200.0.101 10.200.1
netlab_nat full2 fullcone 10.200.0.102 10.200.2
netlab_nat sym3 symmetric 10.200.0.103 10.200.3
netlab_nat seq4 sequential 10.200.0.104 10.200.4
netlab_lan_host c1 cone1 10.200.1.11
netlab_lan_host f2 full2 10.200.2.11
netlab_lan_host s3 sym3 10.200.3.11
netlab_lan_host s3b sym3 10.200.3.12
netlab_lan_host q4 seq4 10.200.4.11

# cone and full cone: the mapping keeps the local port.
for pair in "c1 10.200.0.101 cone" "f2 10.200.0.102 fullcone"; do
  set -- $pair
  out=$(mktemp)
  udp_listen pub1 9000 1.5 >"$out" &
  sleep 0.3
  udp_send "$1" 40001 10.200.0.11 9000
  wait
  check "$3: public port = local port" "from $2 40001" "$(head -1 "$out")"
  rm -f "$out"
done

# Unsolicited reach, with a listener bound to the mapped port.
unsolicited() { # NODE WAN: "1" when pub2's datagram reached NODE
  local out
  out=$(mktemp)
  netlab_exec "$1" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 41000)); s.settimeout(1.5)
s.sendto(b"x", ("10.200.0.11", 9000))
n = 0
try:
    while True:
        d, a = s.recvfrom(100)
        n += a[0] == "10.200.0.12"
except socket.timeout:
    pass
print(n)' >"$out" &
  sleep 0.5
  udp_send pub2 0 "$2" 41000
  wait
  cat "$out"
  rm -f "$out"
}
check "cone: a stranger's datagram dropped" 0 "$(unsolicited c1 10.200.0.101)"
check "fullcone: a stranger's datagram forwarded" 1 "$(unsolicited f2 10.200.0.102)"

# symmetric: one socket, two destinations, two public ports.
out=$(mktemp)
udp_listen pub1 9000 1.5 >"$out.1" &
udp_listen pub2 9000 1.5 >"$out.2" &
sleep 0.3
netlab_exec s3 "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 42000))
s.sendto(b"x", ("10.200.0.11", 9000)); s.sendto(b"x", ("10.200.0.12", 9000))'
wait
p1=$(awk '{ print $3 }' "$out.1")
p2=$(awk '{ print $3 }' "$out.2")
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ] && diff=yes || diff="no ($p1, $p2)"
check "symmetric: a public port per destination" yes "$diff"
rm -f "$out" "$out.1" "$out.2"

# sequential: one socket to two destinations, then another socket: the
# ports the two listeners see follow each other (step 1).
out=$(mktemp)
udp_listen pub1 9000 1.5 >"$out.1" &
udp_listen pub2 9000 1.5 >"$out.2" &
sleep 0.3
netlab_exec q4 "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 42000))
s.sendto(b"x", ("10.200.0.11", 9000)); time.sleep(0.05)
s.sendto(b"x", ("10.200.0.12", 9000)); time.sleep(0.05)
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t.sendto(b"x", ("10.200.0.11", 9000))'
wait
ports=$(cat "$out.1" "$out.2" | awk '{ print $3 }' | sort -n | tr '\n' ' ')
set -- $ports
[ $# = 3 ] && [ $(($2 - $1)) = 1 ] && [ $(($3 - $2)) = 1 ] && seq=yes || seq="no ($ports)"
check "sequential: consecutive public ports per new flow" yes "$seq"
rm -f "$out" "$out.1" "$out.2"

# No hairpinning: s3b sends to sym3's public address.
out=$(mktemp)
udp_listen s3 43000 1.0 >"$out" &
sleep 0.3
udp_send s3b 0 10.200.0.103 43000
wait
check "no hairpinning" 0 "$(wc -l <"$out")"
rm -f "$out"

# Loss: 10 % on the internet segment.
netlab_loss 100
out=$(mktemp)
udp_listen pub1 9001 2.0 >"$out" &
sleep 0.3
netlab_exec pub2 "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(b"x", ("10.200.0.11", 9001))
    if i % 50 == 0: time.sleep(0.01)'
wait
got=$(wc -l <"$out")
lost=$(netlab_lost)
rm -f "$out"
echo "loss: 2000 sent, $got received, $lost dropped by netlab_loss"
[ "$lost" -ge 100 ] && [ "$lost" -le 300 ] && inrange=yes || inrange=no
check "netlab_loss 100: 5-15 % dropped" yes "$inrange"
check "netlab_loss: every datagram not dropped arrives" 2000 $((got + lost))
netlab_loss 0

[ $FAILS = 0 ] || exit 1
echo PASSED
