#!/usr/bin/env bash
# Build gst-p2psp (scripts/build.sh) and run its whole test suite with
# `meson test`. Extra arguments go to meson test, e.g.
#   scripts/test.sh --suite core
#   scripts/test.sh --suite e2e -v
# The last line printed is always "N passed, N failed" (", N skipped" when
# tests were skipped; a failed build counts as "0 passed, 1 failed"). Exit
# status is non-zero when a test failed or timed out, when the build failed,
# or when no test ran at all.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILDDIR=${P2PSP_BUILDDIR:-build}

if ! bash "$ROOT/scripts/build.sh"; then
  echo "test: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/p2psp-test.XXXXXX")
trap 'rm -f "$LOG"' EXIT
rm -f "$BUILDDIR/meson-logs/testlog.json"

meson test -C "$BUILDDIR" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}

# Meson's closing summary, e.g. "Ok:  4", "Expected Fail:  0", "Fail:  1"...
# (colour codes stripped; the last occurrence of each line wins).
counts=$(sed -e 's/\x1b\[[0-9;]*m//g' "$LOG" | awk '
  /^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout):[ \t]+[0-9]+[ \t]*$/ {
    split($0, kv, ":"); gsub(/[ \t]/, "", kv[2]); v[kv[1]] = kv[2]; found = 1
  }
  END {
    if (!found) { print "none"; exit }
    printf "%d %d %d %d\n", v["Ok"] + v["Expected Fail"],
      v["Fail"] + v["Unexpected Pass"] + v["Timeout"], v["Skipped"], v["Timeout"]
  }')

# No summary in the output (meson died early?): count from testlog.json.
if [[ "$counts" == "none" && -s "$BUILDDIR/meson-logs/testlog.json" ]]; then
  counts=$(/usr/bin/python3 - "$BUILDDIR/meson-logs/testlog.json" <<'PY' 2>/dev/null || echo none
import json, sys
p = f = s = t = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
        t += r == "TIMEOUT"
print(p, f, s, t)
PY
)
fi

if [[ "$counts" == "none" ]]; then
  # e.g. "No tests defined." for a --suite that matches nothing.
  echo "test: no test ran (no meson test summary; meson test exit $rc)" >&2
  echo "0 passed, 0 failed"
  exit 1
fi

read -r passed failed skipped timeouts <<<"$counts"
status=0
if (( failed > 0 )); then
  (( timeouts > 0 )) && echo "test: $timeouts test(s) timed out" >&2
  status=1
elif (( passed + skipped == 0 )); then
  echo "test: no test ran" >&2
  status=1
elif (( rc != 0 )); then
  echo "test: meson test exited $rc" >&2
  status=1
fi
if (( passed == 0 && status == 0 )); then
  echo "test: every test was skipped, none passed" >&2
  status=1
fi

line="$passed passed, $failed failed"
(( skipped > 0 )) && line+=", $skipped skipped"
echo "$line"
exit $status
