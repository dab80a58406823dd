#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs them. Exits non-zero on any finding
# (crash, sanitizer report, broken invariant, timeout, out-of-memory).
#
#   scripts/fuzz.sh [target...]     fuzz each target for FUZZ_SECONDS
#   scripts/fuzz.sh --regress       only replay the committed corpus (seconds;
#                                   what CI runs)
#   scripts/fuzz.sh --merge [t...]  add what fuzzing found that covers new
#                                   code to tests/fuzz/corpus (minimised)
#   scripts/fuzz.sh --seed          rewrite the seeds of tests/fuzz/corpus
#
# Targets: every fuzz-<name> executable tests/fuzz/meson.build defines
# (found through `meson introspect`, so a new target needs no change here);
# default all, e.g. udp tcp deframer reorder splitter peer.
# The last line printed is "N passed, N failed", one test per target (the
# fuzz mode replays the committed corpus first, then fuzzes).
# Environment:
#   FUZZ_SECONDS=20    time per target (-max_total_time)
#   FUZZ_JOBS=1        targets run at once (each uses one core)
#   FUZZ_BUILD_DIR     build directory (default build-fuzz)
#   FUZZ_ARGS          extra libFuzzer flags, e.g. "-runs=1000000"
#   P2PSP_SKIP_DEPS=1  do not check/install clang
# Logs: $FUZZ_BUILD_DIR/fuzz-logs/<target>.log; a finding is saved as
# $FUZZ_BUILD_DIR/fuzz-findings/<target>/crash-* (replay: run the target
# binary with that file as its only argument).
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=$PWD
B=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-1}

mode=fuzz
case "${1:-}" in
  --regress) mode=regress; shift ;;
  --merge) mode=merge; shift ;;
  --seed) mode=seed; shift ;;
  -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
esac
targets=("$@")

# Fuzz-only packages: installed here, not by install-deps.sh, so that a CI
# run that does not fuzz does not pay for them. libFuzzer's runtime
# (-fsanitize=fuzzer) is in libclang-rt-14-dev on Debian 12.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
if [[ "${P2PSP_SKIP_DEPS:-0}" != "1" ]] && command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${FUZZ_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" == installed ]] ||
      missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "fuzz.sh: installing ${missing[*]}"
    sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# libFuzzer needs clang; ASan and UBSan catch memory and undefined-behaviour
# errors the invariants would miss. b_lundef=false: clang's sanitizer
# runtimes leave symbols for the executable to resolve. Only the fuzz
# targets are built (-Dtests=disabled; the plugin is not needed).
if [[ ! -f "$B/build.ninja" ]]; then
  CC=clang CXX=clang++ meson setup "$B" -Dfuzzing=true -Dtests=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false
fi

# Every executable named fuzz-<target> (fuzz-gen-corpus writes seeds).
discover_targets() {
  meson introspect "$B" --targets | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin):
    n = t["name"]
    if t["type"] == "executable" and n.startswith("fuzz-") and n != "fuzz-gen-corpus":
        print(n[len("fuzz-"):])'
}
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(discover_targets | sort)
  [[ ${#targets[@]} -gt 0 ]] || { echo "fuzz.sh: no fuzz-* target in $B" >&2; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$B" "${targets[@]/#/tests/fuzz/fuzz-}" tests/fuzz/fuzz-gen-corpus >"$B/fuzz-build.log" 2>&1; then
  tail -30 "$B/fuzz-build.log"
  echo "fuzz.sh: build failed" >&2
  echo "0 passed, ${#targets[@]} failed"
  exit 1
fi

# show_finding TARGET FILE: what CI prints about a finding, enough to
# replay it without the build directory.
show_finding() {
  local t=$1 f=$2
  echo "fuzz.sh: $t: crashing input saved as $f ($(stat -c %s "$f") bytes);" \
    "replay: $B/tests/fuzz/fuzz-$t $f"
  echo "fuzz.sh: $t: the input, base64 (first 16 KiB; base64 -d > input):"
  head -c 16384 "$f" | base64
}

# Any report is fatal and shows where it happened.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0:print_stacktrace=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

corpus=$SRC/tests/fuzz/corpus
case $mode in
  seed)
    "$B/tests/fuzz/fuzz-gen-corpus" "$corpus"
    echo "fuzz.sh: seeds written to $corpus"
    exit 0
    ;;
  regress)
    ok=0 bad=0
    for t in "${targets[@]}"; do
      if [[ ! -d "$corpus/$t" ]]; then
        echo "fuzz.sh: $t: FAIL: no committed corpus $corpus/$t"
        bad=$((bad + 1))
      elif out=$("$B/tests/fuzz/fuzz-$t" -runs=0 "$corpus/$t" 2>&1); then
        echo "fuzz.sh: $t: corpus of $(ls "$corpus/$t" | wc -l) inputs replayed, no finding"
        ok=$((ok + 1))
      else
        echo "$out" | tail -40
        echo "fuzz.sh: $t: FINDING while replaying the corpus"
        bad=$((bad + 1))
      fi
    done
    echo "$ok passed, $bad failed"
    [[ $bad -eq 0 ]]
    exit
    ;;
  merge)
    for t in "${targets[@]}"; do
      [[ -d "$B/fuzz-corpus/$t" ]] || { echo "fuzz.sh: nothing fuzzed for $t"; continue; }
      "$B/tests/fuzz/fuzz-$t" -merge=1 "$corpus/$t" "$B/fuzz-corpus/$t" 2>&1 | tail -1
    done
    du -sh "$corpus"
    exit 0
    ;;
esac

mkdir -p "$B/fuzz-logs"
run_one() {
  local t=$1 rc=0
  # New inputs go to a working corpus in the build dir (the first
  # directory), the committed one (when the target has one) is read only.
  rm -rf "$B/fuzz-findings/$t"
  mkdir -p "$B/fuzz-corpus/$t" "$B/fuzz-findings/$t"
  local dirs=("$B/fuzz-corpus/$t")
  [[ -d "$corpus/$t" ]] && dirs+=("$corpus/$t")
  # -max_len: the state machine targets take a few bytes per event; 8 KiB
  # is a long session. -rss_limit_mb/-malloc_limit_mb make unbounded
  # memory a finding. -timeout: one input taking >10 s is a finding (a loop).
  # shellcheck disable=SC2086
  "$B/tests/fuzz/fuzz-$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$B/fuzz-findings/$t/" ${FUZZ_ARGS:-} \
    "${dirs[@]}" >"$B/fuzz-logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$B/fuzz-logs/$t.rc"
}

# At most JOBS targets at once; each writes its exit status to a file.
running=0
for t in "${targets[@]}"; do
  rm -f "$B/fuzz-logs/$t.rc"
  run_one "$t" &
  running=$((running + 1))
  if [[ $running -ge $JOBS ]]; then wait -n || true; running=$((running - 1)); fi
done
wait

total=0 ok=0 bad=0
for t in "${targets[@]}"; do
  rc=$(cat "$B/fuzz-logs/$t.rc" 2>/dev/null || echo missing)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz-logs/$t.log" | tail -1)
  execs=${execs:-0}
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$B/fuzz-logs/$t.log" | tail -1)
  total=$((total + execs))
  findings=("$B/fuzz-findings/$t"/*)
  if [[ "$rc" != 0 || -e "${findings[0]}" ]]; then
    echo "fuzz.sh: $t: FINDING after $execs executions (exit status $rc), log $B/fuzz-logs/$t.log:"
    grep -E "ERROR|invariant failed|runtime error|SUMMARY|Test unit written|^ +#[0-9]+ 0x" \
      "$B/fuzz-logs/$t.log" | head -40
    for f in "${findings[@]}"; do [[ -e "$f" ]] && show_finding "$t" "$f"; done
    bad=$((bad + 1))
  else
    echo "fuzz.sh: $t: $execs executions in ${secs:-?} s, no finding"
    ok=$((ok + 1))
  fi
done
echo "fuzz.sh: $total executions in all"
echo "$ok passed, $bad failed"
[[ $bad -eq 0 ]]
