#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer + UndefinedBehaviorSanitizer
# (gcc) in build-asan and runs the whole test suite there (every suite
# scripts/test.sh runs: core, sim, elements, e2e, health, interop, apps...).
# Any sanitizer report fails the test it happened in: memory errors,
# undefined behaviour, leaks (one-time allocations of third-party libraries
# are suppressed in tests/fuzz/lsan.supp).
#
#   scripts/sanitize.sh [extra meson test args, e.g. --suite e2e]
#
# The last line printed is "N passed, N failed" (scripts/test.sh).
# Environment: ASAN_BUILD_DIR (default build-asan), SAN_TIMEOUT_MULTIPLIER
# (default 3).
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

# halt_on_error/abort_on_error: the first report ends the process with a
# failure; UBSan's checks are recoverable by default and would only print.
# fast_unwind_on_malloc=0: GLib has no frame pointers, and a leak report
# that stops at g_malloc cannot be told ours or theirs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:print_stacktrace=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:fast_unwind_on_malloc=0:malloc_context_size=30}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0}
# The runtimes scripts/sanitize-wrap.sh preloads into every process of a
# test (gst-launch-1.0, python3 and the apps load the ASan-built plugin).
P2PSP_SAN_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export P2PSP_SAN_PRELOAD
# GStreamer scans plugins in a forked gst-plugin-scanner; in-process is
# simpler to read in a report.
export GST_REGISTRY_FORK=no
# GLib's slice allocator hides use-after-free from ASan; plain malloc.
export G_SLICE=always-malloc
export G_DEBUG=gc-friendly

# Tests whose scenario must outlast work paced by the processes themselves
# (health-churn) stretch it by this factor.
export P2PSP_TIME_SCALE=${P2PSP_TIME_SCALE:-3}
# Tests whose many processes cannot meet their timing under ASan on 2 cores
# skip themselves when this is set (exit 77, counted as skipped).
export P2PSP_SANITIZE=1

# The build (scripts/build.sh keeps the options above) and the count line
# come from scripts/test.sh; every test runs through the wrapper.
# Timeouts: ASan makes everything 2-3x slower; the tests' own assertions
# (deadlines included) are unchanged.
P2PSP_BUILDDIR=$B exec bash "$SRC/scripts/test.sh" \
  --wrapper "$SRC/scripts/sanitize-wrap.sh" \
  --timeout-multiplier "${SAN_TIMEOUT_MULTIPLIER:-3}" "$@"
