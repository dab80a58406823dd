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
# Targets: udp tcp deframer reorder splitter peer auth (default: all).
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
ALL_TARGETS=(udp tcp deframer reorder splitter peer auth)

mode=fuzz
case "${1:-}" in
  --regress) mode=regress; shift ;;
  --merge) mode=merge; shift ;;
  --seed) mode=seed; shift ;;
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
esac
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${ALL_TARGETS[@]}")

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
ninja -C "$B" "${targets[@]/#/tests/fuzz/fuzz-}" tests/fuzz/fuzz-gen-corpus >/dev/null

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
    status=0
    for t in "${targets[@]}"; do
      if out=$("$B/tests/fuzz/fuzz-$t" -runs=0 "$corpus/$t" 2>&1); then
        echo "fuzz.sh: $t: corpus of $(ls "$corpus/$t" | wc -l) inputs replayed, no finding"
      else
        echo "$out" | tail -40
        echo "fuzz.sh: $t: FINDING while replaying the corpus" >&2
        status=1
      fi
    done
    exit $status
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
  local t=$1
  # New inputs go to a working corpus in the build dir (the first
  # directory), the committed one is read only.
  mkdir -p "$B/fuzz-corpus/$t" "$B/fuzz-findings/$t"
  # -max_len: the state machine targets take a few bytes per event; 8 KiB
  # is a long session. -rss_limit_mb/-malloc_limit_mb make unbounded
  # memory a finding. -timeout: one input taking >10 s is a finding (a loop).
  # shellcheck disable=SC2086
  "$B/tests/fuzz/fuzz-$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$B/fuzz-findings/$t/" ${FUZZ_ARGS:-} \
    "$B/fuzz-corpus/$t" "$corpus/$t" >"$B/fuzz-logs/$t.log" 2>&1
}

status=0
declare -A pids
running=0
for t in "${targets[@]}"; do
  run_one "$t" & pids[$t]=$!
  running=$((running + 1))
  if [[ $running -ge $JOBS ]]; then wait -n || true; running=$((running - 1)); fi
done
total=0
for t in "${targets[@]}"; do
  rc=0; wait "${pids[$t]}" || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz-logs/$t.log" | tail -1)
  execs=${execs:-0}
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$B/fuzz-logs/$t.log" | tail -1)
  total=$((total + execs))
  if [[ $rc -ne 0 ]] || ls "$B/fuzz-findings/$t"/* >/dev/null 2>&1; then
    echo "fuzz.sh: $t: FINDING after $execs executions (rc $rc), see $B/fuzz-logs/$t.log:" >&2
    grep -E "ERROR|invariant failed|runtime error|SUMMARY|Test unit written" "$B/fuzz-logs/$t.log" | head -10 >&2
    status=1
  else
    echo "fuzz.sh: $t: $execs executions in ${secs:-?} s, no finding"
  fi
done
echo "fuzz.sh: $total executions in all"
exit $status
