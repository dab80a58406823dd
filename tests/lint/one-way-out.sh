#!/usr/bin/env bash
# Every UDP datagram a core state machine sends goes through Egress
# (gst/p2psp/egress.h), which seals it and applies the amplification limit:
# no other core file may queue a datagram in an Outbox itself. Fails, naming
# the lines, if one does.
set -euo pipefail
src=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
hits=$(grep -nE 'udp[[:space:]]*\.[[:space:]]*(push_back|emplace_back|insert|emplace)[[:space:]]*\(' \
  "$src"/gst/p2psp/*.cc "$src"/gst/p2psp/*.h | grep -v '/egress\.cc:' || true)
if [[ -n "$hits" ]]; then
  echo "one-way-out: datagrams queued outside Egress::send:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "one-way-out: every core datagram goes through Egress::send"
