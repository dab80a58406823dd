#!/usr/bin/env bash
# Issue 16's goal scenario at full size: 3 channels through p2psp-tracker and
# p2psp-channels, each starting with one team of max-peers=6, 30 peers
# joining by channel URI (tests/tracker/many-channels.sh with 10 peers per
# channel and max-peers=6; the suite runs it with 4 and max-peers=3). Then
# 1,000 joins against the tracker (bench/tracker-load.py).
#
#   bench/channels.sh [PEERS_PER_CHANNEL]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${P2PSP_BUILDDIR:-$ROOT/build}
ninja -C "$BUILD" >/dev/null
P2PSP_CHANNEL_PEERS=${1:-10} P2PSP_CHANNEL_MAX_PEERS=6 P2PSP_PLUGIN_DIR=$BUILD/plugin P2PSP_BUILD_DIR=$BUILD \
  P2PSP_SOURCE_DIR=$ROOT bash tests/tracker/many-channels.sh
/usr/bin/python3 bench/tracker-load.py --tracker "$BUILD/tools/tracker/p2psp-tracker"
