#!/bin/bash
# nat-predict: port prediction (docs/protocol.md 3.3) in tests/netlab's
# test internet.
#
#   inet 10.200.0.0/24: splitter 10.200.0.1, public peer pub1 .11, NAT
#   routers nat1 .101 and nat2 .102, port-restricted cone (c1a, c2a),
#   nat4 .104, symmetric with random ports (s4a), and nat3 .103, symmetric
#   allocating in sequence (q3a, q3b). No hairpinning.
#
# Joins in that order (pub1, c1a, c2a, s4a, q3a, q3b), so that the
# sequential NAT's peers are the newcomers: the cone peers find the ports
# their HELLOs left from by probing the few above the one the splitter saw,
# and exchange with them directly; the random NAT's peer is missed by the
# same probing and reaches the cone peers through relays.
#
# NAT_FULL=1 (bench/nat.sh): issue 14's 2 of 8 behind a symmetric NAT, as
# nat-symmetric's full form but with the sequential NAT: pub1, pub2, two
# cone NATs with two peers each, then q3a, q3b.
#
# Ogg Theora + Vorbis, 20 s, wait-for-peers, joins 0.5 s apart. Asserts
# (natcheck.py):
#   * every peer exits 0 and plays >= 99.9 % of the chunks cut,
#   * the splitter uploads <= 1.30 bytes per stream byte in the steady part,
#   * every pair where a direct path can exist, prediction included,
#     exchanges directly both ways; the two behind nat3 on their LAN,
#   * each cone peer lists each sequential one with path "predicted", and
#     the random one never as direct or predicted.

. "$(dirname "$0")/natlib.sh"
nat_init predict
[ -n "${P2PSP_SANITIZE:-}" ] && e2e_skip "too slow under the sanitizers"
nat_public_peer pub1 10.200.0.11
netlab_nat nat1 cone 10.200.0.101 10.200.1
netlab_nat nat2 cone 10.200.0.102 10.200.2
netlab_nat nat3 sequential 10.200.0.103 10.200.3
if [ "${NAT_FULL:-0}" = 1 ]; then
  nat_public_peer pub2 10.200.0.12
  nat_lan_peer c1a nat1 10.200.1.11
  nat_lan_peer c1b nat1 10.200.1.12
  nat_lan_peer c2a nat2 10.200.2.11
  nat_lan_peer c2b nat2 10.200.2.12
else
  netlab_nat nat4 symmetric 10.200.0.104 10.200.4
  nat_lan_peer c1a nat1 10.200.1.11
  nat_lan_peer c2a nat2 10.200.2.11
  nat_lan_peer s4a nat4 10.200.4.11
fi
nat_lan_peer q3a nat3 10.200.3.11
nat_lan_peer q3b nat3 10.200.3.12
nat_run 20 --min-played-permille 999 --max-upload 1.30 --assert-direct --ems --assert-lan \
  --predict --assert-predicted
e2e_finish
