#!/usr/bin/env bash
# UDP GSO over a path whose MTU is smaller than a chunk datagram (a VPN or
# tunnel): the kernel refuses the GSO send (EMSGSIZE), and every datagram
# must still arrive, sent plain (IP fragments them). Runs element-udp's
# send and receive tests in a network namespace of its own whose loopback
# has an MTU of 1400, below the 1448 - 1452 byte datagrams they send.
# usage: small-mtu.sh TEST_ELEMENT_UDP
set -u
exe=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespace)"; exit 77; }
ns=p2mtu$$
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip netns exec "$ns" ip link set lo up mtu 1400 || exit 1
out=$(ip netns exec "$ns" "$exe" \
  --gtest_filter='SendDatagrams.*:ReceiveDatagrams.*' 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: the tests failed over the small MTU"; exit 1; }
# The point: GSO was tried and refused here, not simply never used.
grep -q "UDP GSO refused" <<<"$out" ||
  { echo "FAIL: GSO was not refused at MTU 1400"; exit 1; }
echo "PASS: every datagram arrived, sent plain once GSO was refused"
