#!/usr/bin/env bash
# Build gst-p2psp: install dependencies (see install-deps.sh), configure the
# Meson build directory (default: build/, override with P2PSP_BUILDDIR) and
# compile it. Extra arguments are passed to `meson setup`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILDDIR=${P2PSP_BUILDDIR:-build}

bash "$ROOT/scripts/install-deps.sh"

if [[ -f "$BUILDDIR/meson-private/coredata.dat" ]]; then
  echo "build: reconfiguring $BUILDDIR"
  if ! meson setup --reconfigure "$BUILDDIR" "$@"; then
    echo "build: reconfigure failed, wiping $BUILDDIR" >&2
    meson setup --wipe "$BUILDDIR" "$@"
  fi
else
  echo "build: configuring $BUILDDIR"
  meson setup "$BUILDDIR" "$@"
fi

ninja -C "$BUILDDIR"
echo "build: plugin at $ROOT/$BUILDDIR/plugin (export GST_PLUGIN_PATH=$ROOT/$BUILDDIR/plugin)"
