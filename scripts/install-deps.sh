#!/usr/bin/env bash
# Install everything gst-p2psp needs to build, test and run its demo on
# Debian 12 (bookworm). Idempotent: when every package is already installed it
# does nothing (set P2PSP_FORCE_DEPS=1 to run apt-get anyway).
#
#   P2PSP_SKIP_DEPS=1   skip this step entirely
#   P2PSP_FORCE_DEPS=1  run apt-get update/install even if all is installed
set -euo pipefail

if [[ "${P2PSP_SKIP_DEPS:-0}" == "1" ]]; then
  echo "install-deps: P2PSP_SKIP_DEPS=1, skipping"
  exit 0
fi

PACKAGES=(
  # build
  meson ninja-build pkg-config g++ libglib2.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # crypto: passphrase authentication, encryption, signed chunks
  libsodium-dev
  # run time: gst-launch/gst-inspect/gst-play and the elements the
  # pipelines, tests and demo use (videotestsrc, theora, ogg, x264, ...)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-x
  # tests
  libgtest-dev googletest
  # demo (PyGObject on Debian's /usr/bin/python3)
  python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  # e2e tests: network namespaces, netem/nft, process control
  iproute2 nftables procps psmisc
  # style
  clang-format
  # tools/tracker: HTTP server and JSON (issue 16); its status page is
  # checked in a real headless browser
  libsoup-3.0-dev libjson-glib-dev chromium
  # tools/teamviz: SVG -> PNG
  librsvg2-bin
  # tests/interop, pipelines/icecast: a real Icecast 2 server (shout2send and
  # souphttpsrc come with gstreamer1.0-plugins-good)
  icecast2
  # tests/interop media-*/feed-* and bench/media-matrix.sh: an outside
  # decoder (ffmpeg/ffprobe) checks what late joiners recorded
  ffmpeg
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: not a Debian-like system (no dpkg/apt-get)." >&2
  echo "install-deps: install the equivalents of: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 && "${P2PSP_FORCE_DEPS:-0}" != "1" ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
[[ ${#missing[@]} -eq 0 ]] && missing=("${PACKAGES[@]}")

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: not root and no sudo; please install these packages:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 0
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_get() {
  # apt/dpkg may be locked by another apt run (e.g. unattended upgrades).
  local i
  for i in 1 2 3 4 5 6; do
    if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get \
        -o DPkg::Lock::Timeout=120 "$@"; then
      return 0
    fi
    echo "install-deps: apt-get $1 failed (try $i), retrying in 10s" >&2
    sleep 10
  done
  return 1
}
apt_get update
apt_get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
