# Helpers shared by the scripts in pipelines/{icecast,cascade,media,playback}.
# Source it after setting OUT (the directory for logs and recordings):
#
#   . "$(dirname "$0")/../media/lib.sh"
#
# It sources pipelines/env.sh (finds the plugin), and provides:
#   run_bg NAME CMD...     CMD in the background, in a process group of its
#                          own, output to $OUT/NAME.log; sets LAST_PID
#   wait_exit PID SECS     waits for PID; sets RC (exit status, or "running")
#   stop_proc PID [SECS]   SIGINT (gst-launch -e: EOS), then SIGKILL; sets RC
#   wait_port NAME PID     port a "gst-launch-1.0 -v ... p2pspsplittersink
#                          port=0" announces in $OUT/NAME.log
#   wait_log NAME REGEX SECS  waits until $OUT/NAME.log matches
#   wait_playing NAME SECS    waits until gst-launch-1.0 NAME sets its
#                          pipeline to PLAYING; prints the time (date +%s.%N)
#   on_exit CMD            runs CMD (e.g. icecast_stop PID) at exit
# At exit every process still running is stopped (its whole group).
. "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
P2PSP_DECODE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/p2psp-decode.py
PIDS=()
_ON_EXIT=()
LAST_PID=
RC=

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

_lib_cleanup() {
  local rc=$? p i c
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do _alive "$p" && kill -INT -- "-$p" 2>/dev/null; done
  for i in $(seq 30); do
    c=0
    for p in "${PIDS[@]}"; do _alive "$p" && c=1; done
    [ $c = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do _alive "$p" && kill -KILL -- "-$p" 2>/dev/null; done
  for c in "${_ON_EXIT[@]}"; do eval "$c"; done
  wait 2>/dev/null
  exit $rc
}
trap _lib_cleanup EXIT
trap 'exit 130' INT TERM
on_exit() { _ON_EXIT+=("$*"); }

run_bg() {
  local name=$1
  shift
  setsid "$@" >"$OUT/$name.log" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

wait_exit() {
  local pid=$1 n i
  n=$(awk -v t="$2" 'BEGIN { printf "%d", t * 10 }')
  for ((i = 0; i < n; i++)); do
    _alive "$pid" || break
    sleep 0.1
  done
  if _alive "$pid"; then
    RC=running
    return 1
  fi
  RC=0
  wait "$pid" 2>/dev/null || RC=$?
  return 0
}

# dump_stuck NAME PID: what a process that should have ended is doing, for a
# failure that only happens on a loaded machine: its last log lines and, when
# gdb is installed, every thread's stack.
dump_stuck() {
  local name=$1 pid=$2
  _alive "$pid" || return 0
  echo "--- last lines of $name.log" >&2
  tail -n 15 "$OUT/$name.log" >&2
  command -v gdb >/dev/null || return 0
  echo "--- $name's threads (gdb)" >&2
  timeout 60 gdb -p "$pid" -batch -nx -ex "thread apply all bt 12" 2>/dev/null |
    grep -E '^(Thread|#)' | head -n 120 >&2
}

stop_proc() {
  local pid=$1
  if _alive "$pid"; then
    kill -INT "$pid" 2>/dev/null
    wait_exit "$pid" "${2:-10}" && return 0
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    RC=killed
    return 1
  fi
  RC=0
  wait "$pid" 2>/dev/null || RC=$?
}

wait_port() {
  p2psp_port_from_log "$OUT/$1.log" "$2" || {
    tail -n 20 "$OUT/$1.log" >&2
    echo "$1 did not announce its port" >&2
    return 1
  }
}

wait_log() {
  local i
  for i in $(seq $(($3 * 10))); do
    grep -a -q -E "$2" "$OUT/$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# A recording's clock starts when the pipeline goes to PLAYING, not when the
# process starts: loading the plugins takes seconds under ASan.
wait_playing() {
  wait_log "$1" "Setting pipeline to PLAYING" "$2" || return 1
  date +%s.%N
}

# The test sources every scenario uses: a live, small moving picture and a
# tone, as raw caps.  SECS long (num-buffers), FPS frames a second.
# p2pspsplittersink's default linger: it exits this long after the stream
# ended (it keeps answering the team's NACKs meanwhile).
SPLITTER_LINGER_S=0.5
FPS=${FPS:-25}
WIDTH=${WIDTH:-320}
HEIGHT=${HEIGHT:-240}
video_src() {
  echo "videotestsrc is-live=true num-buffers=$((${1} * FPS)) pattern=ball ! video/x-raw,width=$WIDTH,height=$HEIGHT,framerate=$FPS/1"
}
audio_src() {
  echo "audiotestsrc is-live=true num-buffers=$((${1} * 48000 / 960)) samplesperbuffer=960 wave=sine ! audio/x-raw,rate=48000,channels=2 ! audioconvert"
}
