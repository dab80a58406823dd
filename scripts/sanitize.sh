#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer + UndefinedBehaviorSanitizer
# (gcc) in build-asan and runs the core, element and simulator suites. Any
# sanitizer report fails the run: memory errors, undefined behaviour, leaks
# (one-time GLib/GStreamer allocations are suppressed in tests/fuzz/lsan.supp).
#
#   scripts/sanitize.sh [extra meson test args, e.g. --suite e2e]
#
# Environment: ASAN_BUILD_DIR (default build-asan).
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=$PWD
B=${ASAN_BUILD_DIR:-build-asan}

if [[ ! -f "$B/build.ninja" ]]; then
  # b_lundef=false: the plugin is a module whose sanitizer symbols the
  # loading executable provides.
  meson setup "$B" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized
fi
ninja -C "$B"

# halt_on_error/abort: the first report ends the test with a failure;
# UBSan's checks are recoverable by default and would only print.
# fast_unwind_on_malloc=0: GLib has no frame pointers, and a leak report
# that stops at g_malloc cannot be told ours or theirs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:print_stacktrace=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:fast_unwind_on_malloc=0:malloc_context_size=30}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0}
# GStreamer scans plugins in a forked gst-plugin-scanner, an uninstrumented
# executable that cannot load an ASan-built plugin: scan in-process.
export GST_REGISTRY_FORK=no
# GLib's slice allocator hides use-after-free from ASan; plain malloc.
export G_SLICE=always-malloc
export G_DEBUG=gc-friendly

# The reconnect tests kill and restart a splitter run by gst-launch-1.0, an
# uninstrumented executable that cannot load an ASan-built plugin; they run
# in the normal suite (scripts/test.sh).
export GTEST_FILTER=${GTEST_FILTER:--P2pspSrcReconnect.*}

args=("$@")
[[ ${#args[@]} -eq 0 ]] && args=(--suite core --suite elements --suite sim)
meson test -C "$B" --print-errorlogs "${args[@]}"
