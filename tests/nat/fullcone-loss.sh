#!/bin/bash
# nat-fullcone-loss: a full-cone NAT beside a port-restricted cone NAT, with
# 2 % of the datagrams crossing the internet lost (tests/netlab).
#
#   inet 10.200.0.0/24: splitter 10.200.0.1, public peer pub1 .11, NAT
#   routers nat1 .101, port-restricted cone (LAN 10.200.1.0/24: c1a), and
#   nat2 .102, full cone: whatever reaches a mapped public port is forwarded
#   to its LAN host, from any sender (LAN 10.200.2.0/24: f2a, f2b). No
#   hairpinning. Every IPv4 datagram that crosses the internet segment is
#   dropped with probability NAT_LOSS_PERMILLE / 1000 (default 20), TCP
#   included, from the first join to the end.
#
# Ogg Theora + Vorbis, 20 s, wait-for-peers=4, joins 0.5 s apart; the
# bounds on the splitter's upload apply to the steady part (natlib.sh).
# Asserts (natcheck.py):
#   * every peer exits 0 and plays >= 99.9 % of the chunks cut: NACKs to
#     neighbours, then to the splitter, make up the 2 %,
#   * the splitter uploads <= 1.10 bytes per stream byte in the steady part,
#     its NACK answers included,
#   * every pair where a direct path can exist (all but f2a <-> f2b, which
#     meet on their LAN) exchanges chunks directly both ways, and the two
#     behind the full cone on their LAN (EMS).

. "$(dirname "$0")/natlib.sh"
nat_init fullcone-loss
export NAT_LOSS_PERMILLE=${NAT_LOSS_PERMILLE:-20}
nat_public_peer pub1 10.200.0.11
netlab_nat nat1 cone 10.200.0.101 10.200.1
netlab_nat nat2 fullcone 10.200.0.102 10.200.2
nat_lan_peer c1a nat1 10.200.1.11
nat_lan_peer f2a nat2 10.200.2.11
nat_lan_peer f2b nat2 10.200.2.12
nat_run 20 --min-played-permille 999 --max-upload 1.10 --assert-direct --ems --assert-lan
e2e_finish
