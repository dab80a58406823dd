#!/usr/bin/env bash
# Everything bench/run.sh needs on Debian 12 (on top of scripts/install-deps.sh,
# which builds the plugin): Icecast 2 and shout2send, iperf3, gnuplot, perf,
# PyGObject, iproute2 (ip netns, tc), x264/theora encoders.
set -euo pipefail
SUDO=(); [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends \
  icecast2 iperf3 gnuplot-nox linux-perf curl iproute2 procps psmisc \
  python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
