#!/usr/bin/env bash
# meson test --wrapper for scripts/sanitize.sh: runs one test with the
# sanitizer runtimes preloaded into every process it starts, and fails it
# when any of them wrote a sanitizer report.
#
#   sanitize-wrap.sh COMMAND [ARGS...]
#
# Why preload: the shell and Python tests run gst-launch-1.0, python3 and the
# example apps, uninstrumented executables that cannot load the ASan-built
# plugin unless the ASan runtime is loaded first. LD_PRELOAD
# ($P2PSP_SAN_PRELOAD, set by sanitize.sh) puts it first in every process of
# the test, the test's own children included.
#
# Why the reports go to files: a gst-launch-1.0 started in the background
# by a shell test may die of a report while the test's verdict only looks at
# what the other processes saw. log_path makes each reporting process write
# <dir>/asan.<pid> (or ubsan.<pid>), and any such file fails the test here,
# whatever its exit status was (a skip, 77, included).
#
# Leaks: a test program of ours (an ASan-built executable, e.g. the GTest
# suites) and every gst-launch-1.0 a script starts are checked for leaks
# (ASAN_OPTIONS from sanitize.sh, detect_leaks=1). The interpreters and
# tools of a script test are not: python3 never frees its heap at exit
# (tens of KB of "leaks" for a bare `import gi`), nor does bash. So a
# script test runs with detect_leaks=0, and gst-launch-1.0 is found first in
# PATH as a shim that turns it back on (the tests call it by name).
set -u

dir=$(mktemp -d "${TMPDIR:-/tmp}/p2psp-san.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/reports" "$dir/bin"

export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$dir/reports/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$dir/reports/ubsan"

asan_built() { readelf -d "$1" 2>/dev/null | grep -q 'NEEDED.*libasan'; }
if ! asan_built "$1"; then
  real=$(command -v gst-launch-1.0 || true)
  if [[ -n "$real" ]]; then
    # Not for a pipeline with shout2send or souphttpsrc: Debian 12's builds
    # leak at exit whatever the pipeline (seen in every process of the
    # Icecast scenarios, ours or not): shout2send a libshout handle and,
    # from its event handler, one event per event; souphttpsrc a GObject
    # weak-reference block at teardown; oggparse, whatever feeds it, its
    # ogg_stream state (libogg's ogg_stream_init, and caps it made, seen in
    # filesrc ! oggparse ! p2pspsplittersink). Memory errors and UB are
    # still checked there, and
    # the leaks of our elements are checked in every other pipeline.
    cat >"$dir/bin/gst-launch-1.0" <<EOF
#!/bin/sh
leaks=1
for a in "\$@"; do
  case "\$a" in shout2send|souphttpsrc|oggparse) leaks=0 ;; esac
done
ASAN_OPTIONS="\$ASAN_OPTIONS:detect_leaks=\$leaks:fast_unwind_on_malloc=0" exec $(printf %q "$real") "\$@"
EOF
    chmod +x "$dir/bin/gst-launch-1.0"
  fi
  export PATH="$dir/bin:$PATH"
  # fast_unwind_on_malloc=1 where leaks are not checked: the slow unwinder
  # in every malloc of an interpreter or a tool costs time for nothing.
  # gst-launch-1.0 keeps it: fast unwinding stops at g_malloc (GLib has no
  # frame pointers), so the suppressions of one-time allocations (matched
  # on deeper frames) no longer match and every gst-launch-1.0 "leaks"
  # 16 KiB (seen: 10 false reports in e2e-team).
  export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0:fast_unwind_on_malloc=1"
fi

LD_PRELOAD="${P2PSP_SAN_PRELOAD:-}${LD_PRELOAD:+:$LD_PRELOAD}" "$@"
rc=$?

reports=("$dir/reports"/*)
if [[ -e "${reports[0]}" ]]; then
  for r in "${reports[@]}"; do
    echo "==== sanitizer report ${r##*/} ====" >&2
    cat "$r" >&2
  done
  echo "sanitize: ${#reports[@]} sanitizer report(s) in this test (exit status was $rc): FAIL" >&2
  exit 1
fi
exit "$rc"
