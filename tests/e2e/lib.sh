# gst-p2psp end-to-end test helpers.  Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_init team
#
# Every process is a separate gst-launch-1.0 on 127.0.0.1, started in its own
# process group (setsid) so that cleanup can kill it and everything it forked.
# Exit codes follow the meson/automake convention: 0 pass, 77 skip, else fail.
#
# Environment:
#   P2PSP_PLUGIN_DIR   directory holding libgstp2psp.so (set by meson test)
#   P2PSP_E2E_KEEP=1   keep the temporary directory (printed at the end)
#   P2PSP_E2E_GST_DEBUG  GST_DEBUG for the splitter and the peers (default *:2)
#   P2PSP_E2E_VERBOSE=1  print full logs of failed processes

set -u

E2E_NAME=e2e
E2E_TMP=
E2E_PIDS=()        # every process we started (each leads its own group)
E2E_FAILED=0
E2E_PY=

e2e_log() { printf '[%s %s] %s\n' "$E2E_NAME" "$(date +%H:%M:%S)" "$*"; }
e2e_skip() { e2e_log "SKIP: $*"; exit 77; }
e2e_die() { e2e_log "FAIL: $*"; E2E_FAILED=1; exit 1; }

# Records a failed assertion but keeps going, so that one run reports
# everything; e2e_finish turns it into the exit status.
e2e_fail() { e2e_log "FAIL: $*"; E2E_FAILED=1; }
e2e_ok() { e2e_log "ok: $*"; }

# Seconds since the epoch, with milliseconds.
e2e_now() { date +%s.%N | cut -c1-14; }
# e2e_elapsed START -> seconds since START (float)
e2e_elapsed() { awk -v a="$1" -v b="$(e2e_now)" 'BEGIN { printf "%.2f", b - a }'; }

e2e_alive() {
  # A zombie still answers kill -0: look at the state in /proc as well.
  local pid=$1 st
  kill -0 "$pid" 2>/dev/null || return 1
  st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

_e2e_cleanup() {
  local rc=$? pid any=0
  trap - EXIT INT TERM
  for pid in "${E2E_PIDS[@]}"; do
    if e2e_alive "$pid"; then
      kill -INT -- "-$pid" 2>/dev/null
      any=1
    fi
  done
  if [ $any = 1 ]; then
    local i
    for i in $(seq 30); do
      any=0
      for pid in "${E2E_PIDS[@]}"; do e2e_alive "$pid" && any=1; done
      [ $any = 0 ] && break
      sleep 0.1
    done
    for pid in "${E2E_PIDS[@]}"; do
      e2e_alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null
    done
  fi
  wait 2>/dev/null
  if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
    if [ "${P2PSP_E2E_KEEP:-0}" = 1 ]; then
      e2e_log "kept $E2E_TMP"
    else
      rm -rf "$E2E_TMP"
    fi
  fi
  exit $rc
}

# e2e_init NAME: checks the environment, makes the temp dir, sets the trap.
e2e_init() {
  E2E_NAME=$1
  command -v gst-launch-1.0 >/dev/null || e2e_skip "gst-launch-1.0 not found"
  command -v gst-inspect-1.0 >/dev/null || e2e_skip "gst-inspect-1.0 not found"
  E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/p2psp-$E2E_NAME.XXXXXX") || e2e_die "mktemp"
  trap _e2e_cleanup EXIT
  trap 'e2e_log "interrupted"; exit 130' INT TERM

  if [ -z "${P2PSP_PLUGIN_DIR:-}" ]; then
    # Run by hand from a build dir: guess.
    if [ -n "${P2PSP_BUILD_DIR:-}" ]; then
      P2PSP_PLUGIN_DIR=$P2PSP_BUILD_DIR/plugin
    else
      e2e_die "P2PSP_PLUGIN_DIR is not set (run through meson test)"
    fi
  fi
  [ -d "$P2PSP_PLUGIN_DIR" ] || e2e_die "no plugin dir $P2PSP_PLUGIN_DIR"
  export GST_PLUGIN_PATH_1_0=$P2PSP_PLUGIN_DIR
  export GST_PLUGIN_PATH=$P2PSP_PLUGIN_DIR
  export GST_REGISTRY_1_0=$E2E_TMP/registry.bin
  export GST_REGISTRY=$E2E_TMP/registry.bin
  export GST_REGISTRY_FORK=no
  # An installed copy of the plugin must never be the one tested.
  if [ -z "${GST_PLUGIN_SYSTEM_PATH_1_0:-}" ] && command -v pkg-config >/dev/null; then
    local sys
    sys=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null)
    [ -n "$sys" ] && [ -d "$sys" ] && export GST_PLUGIN_SYSTEM_PATH_1_0=$sys
  fi
  export GST_DEBUG_NO_COLOR=1
  unset GST_DEBUG_FILE

  local el file
  for el in p2pspsplittersink p2pspsrc; do
    file=$(gst-inspect-1.0 "$el" 2>/dev/null | awk '/^ *Filename/ { print $2 }')
    [ -n "$file" ] || e2e_die "element $el not found in $P2PSP_PLUGIN_DIR"
    case "$file" in
      "$P2PSP_PLUGIN_DIR"/*) ;;
      *) e2e_die "$el comes from $file, not from $P2PSP_PLUGIN_DIR" ;;
    esac
  done
  e2e_log "tmp $E2E_TMP, plugin $P2PSP_PLUGIN_DIR"
}

# e2e_need_elements EL... : skip (77) unless every element exists.
e2e_need_elements() {
  local el
  for el in "$@"; do
    gst-inspect-1.0 --exists "$el" 2>/dev/null || e2e_skip "element $el missing"
  done
}
e2e_have_element() { gst-inspect-1.0 --exists "$1" 2>/dev/null; }

e2e_need_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 6))' 2>/dev/null; then
      E2E_PY=$py
      return 0
    fi
  done
  e2e_skip "python3 not found"
}

# e2e_pygst: the python3 with PyGObject + Gst, for tests/e2e/e2e_launch.py
# (a gst-launch-1.0 -e that prints the elements' stats at the end); sets
# E2E_PYGST or returns 1.
E2E_PYGST=
e2e_pygst() {
  local py
  [ "${P2PSP_E2E_NO_PYGST:-0}" = 1 ] && return 1
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null &&
      "$py" -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2>/dev/null; then
      E2E_PYGST=$py
      return 0
    fi
  done
  return 1
}

# e2e_spawn NAME CMD... : runs CMD in the background, in its own process
# group, output to $E2E_TMP/NAME.log; sets E2E_LAST_PID.
e2e_spawn() {
  local name=$1
  shift
  GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2} setsid "$@" >"$E2E_TMP/$name.log" 2>&1 </dev/null &
  E2E_LAST_PID=$!
  E2E_PIDS+=("$E2E_LAST_PID")
}

# Splitter ---------------------------------------------------------------
#
# e2e_start_splitter "<pipeline before the sink>" [sink properties...]
#   Launches gst-launch-1.0 -e -v DESC ! p2pspsplittersink host=127.0.0.1
#   port=0 PROPS, waits for current-port and sets SPLITTER_PID, SPLITTER_PORT,
#   SPLITTER_LOG ($E2E_TMP/$E2E_SPLITTER_NAME.log, default name "splitter").
#   E2E_SPLITTER_LAUNCH replaces "gst-launch-1.0 -e -v" (e.g. with
#   "$E2E_PYGST tests/e2e/e2e_launch.py", which also prints the stats).  The description may use tee branches: the sink is linked
#   to whatever the description ends with.
SPLITTER_PID=
SPLITTER_PORT=
SPLITTER_LOG=
e2e_start_splitter() {
  local desc=$1
  shift
  local name=${E2E_SPLITTER_NAME:-splitter}
  SPLITTER_LOG=$E2E_TMP/$name.log
  # shellcheck disable=SC2086  # the description is word-split on purpose
  # shellcheck disable=SC2086
  e2e_spawn "$name" ${E2E_SPLITTER_LAUNCH:-gst-launch-1.0 -e -v} $desc ! \
    p2pspsplittersink name=splitter host=127.0.0.1 port=0 "$@"
  SPLITTER_PID=$E2E_LAST_PID
  local i port=
  for i in $(seq 200); do
    port=$(grep -a -o 'current-port = [0-9]*' "$SPLITTER_LOG" 2>/dev/null |
      awk '$3 != 0 { p = $3 } END { print p }')
    [ -n "$port" ] && break
    if ! e2e_alive "$SPLITTER_PID"; then
      e2e_show_log "$name"
      e2e_die "splitter exited before announcing current-port"
    fi
    sleep 0.05
  done
  if [ -z "$port" ]; then
    e2e_show_log "$name"
    e2e_die "splitter did not announce current-port within 10 s"
  fi
  SPLITTER_PORT=$port
  e2e_log "splitter pid $SPLITTER_PID on 127.0.0.1:$SPLITTER_PORT"
}

# Peers ------------------------------------------------------------------
#
# e2e_start_peer NAME PORT OUTFILE [src properties...]
#   gst-launch-1.0 -e p2pspsrc uri=p2psp://127.0.0.1:PORT PROPS ! filesink
#   Sets E2E_LAST_PID; the log is $E2E_TMP/NAME.log.  E2E_PEER_LAUNCH
#   replaces "gst-launch-1.0 -e".
e2e_start_peer() {
  local name=$1 port=$2 out=$3
  shift 3
  # shellcheck disable=SC2086
  e2e_spawn "$name" ${E2E_PEER_LAUNCH:-gst-launch-1.0 -e} p2pspsrc name=src \
    "uri=p2psp://127.0.0.1:$port" "$@" ! filesink "location=$out"
  e2e_log "peer $name pid $E2E_LAST_PID -> $(basename "$out")"
}

# Processes ----------------------------------------------------------------
# (These set E2E_RC instead of printing it: "wait" only works in the shell
# that started the process, never in a $(...) subshell.)
#
# e2e_wait_exit PID TIMEOUT_S: waits for PID to exit; sets E2E_RC to its exit
# status and returns 0, or returns 1 (E2E_RC=running) if it is still running.
E2E_RC=
e2e_wait_exit() {
  local pid=$1 timeout=$2 i n
  n=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 10 }')
  for ((i = 0; i < n; i++)); do
    e2e_alive "$pid" || break
    sleep 0.1
  done
  if e2e_alive "$pid"; then
    E2E_RC=running
    return 1
  fi
  E2E_RC=0
  wait "$pid" 2>/dev/null || E2E_RC=$?
  return 0
}

# e2e_left DEADLINE: seconds from now to DEADLINE (an e2e_now value), at
# least 0.5, so that several waits can share one bound.
e2e_left() { awk -v d="$1" -v n="$(e2e_now)" 'BEGIN { l = d - n; if (l < 0.5) l = 0.5; printf "%.1f", l }'; }

# e2e_stop PID [TIMEOUT_S]: SIGINT (gst-launch -e turns it into EOS), waits;
# kills the group if it hangs.  Sets E2E_RC to the exit status, or "killed"
# (then returns 1).
e2e_stop() {
  local pid=$1 timeout=${2:-10}
  if e2e_alive "$pid"; then
    kill -INT "$pid" 2>/dev/null
    e2e_wait_exit "$pid" "$timeout" && return 0
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    E2E_RC=killed
    return 1
  fi
  E2E_RC=0
  wait "$pid" 2>/dev/null || E2E_RC=$?
  return 0
}

# e2e_show_log NAME [LINES]: tail of a process log (whole log if verbose);
# long lines (caps with streamheaders) are cut.
e2e_show_log() {
  local f=$E2E_TMP/$1.log n=${2:-40}
  [ -f "$f" ] || return 0
  echo "----- $1.log -----"
  if [ "${P2PSP_E2E_VERBOSE:-0}" = 1 ]; then
    cut -c1-400 "$f"
  else
    grep -a -v 'last-message' "$f" | cut -c1-300 | tail -n "$n"
  fi
  echo "-----"
}

# e2e_check_log NAME: the process printed no ERROR and no CRITICAL.
e2e_check_log() {
  local f=$E2E_TMP/$1.log
  if grep -a -q -E '^ERROR|: ERROR|CRITICAL|assertion .* failed|Segmentation' "$f"; then
    e2e_fail "$1 log has errors:"
    grep -a -E '^ERROR|: ERROR|CRITICAL|assertion|Segmentation|Additional debug info' "$f" | cut -c1-300 | head -10
    return 1
  fi
  return 0
}

# Assertions --------------------------------------------------------------
e2e_file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# e2e_assert_same A B: byte-identical files.
e2e_assert_same() {
  if cmp -s "$1" "$2"; then
    e2e_ok "$(basename "$1") == $(basename "$2") ($(e2e_file_size "$1") bytes)"
  else
    local first
    first=$(cmp "$1" "$2" 2>&1 | head -1)
    e2e_fail "$(basename "$1") ($(e2e_file_size "$1") B) differs from $(basename "$2") ($(e2e_file_size "$2") B): $first; $(cmp -l "$1" "$2" 2>/dev/null | wc -l) bytes differ"
    return 1
  fi
}

# Decoding ----------------------------------------------------------------
#
# e2e_decode KIND FILE TAG: decodes FILE with an explicit demuxer/decoder
# chain (no decodebin guessing), as a separate gst-launch-1.0.
#   KIND: ogg (theora + vorbis), ogg-video (theora only), webm (vp8 + vorbis),
#         ts (h264 [+ audio ignored])
# Writes every decoded video frame scaled to 16x16 GRAY8 to
# $E2E_TMP/TAG.frames (256 bytes a frame), every encoded video frame the
# demuxer gave out to $E2E_TMP/TAG.enc/ (one file each, via multifilesink),
# and sets:
#   DEC_RC        gst-launch exit status
#   DEC_FRAMES    decoded video frames
#   DEC_ENC       encoded video buffers out of the demuxer (headers included)
#   DEC_HEADERS   how many of those are codec headers (theora: 3)
#   DEC_AUDIO     decoded audio bytes (0 if the kind has no audio)
#   DEC_ISSUES    lines of the log that show an ERROR or a WARNING, from the
#                 bus or from the decoders' and demuxers' debug output
# Returns 0 when the pipeline exited 0 with no issue.
E2E_FRAME_BYTES=256
e2e_decode() {
  local kind=$1 file=$2 tag=$3 demux vdec vparse acaps adec cats
  local frames=$E2E_TMP/$tag.frames encdir=$E2E_TMP/$tag.enc audio=$E2E_TMP/$tag.audio
  local log=$E2E_TMP/$tag.decode.log
  rm -rf "$frames" "$encdir" "$audio"
  mkdir -p "$encdir"
  local scale="videoconvert ! videoscale ! video/x-raw,format=GRAY8,width=16,height=16,pixel-aspect-ratio=1/1 ! filesink location=$frames"
  local enc="queue ! multifilesink location=$encdir/%06d"
  case "$kind" in
    ogg | ogg-video)
      demux=oggdemux
      vparse="video/x-theora"
      vdec=theoradec
      DEC_HEADERS=3
      acaps="audio/x-vorbis"
      adec=vorbisdec
      cats=oggdemux:2,theoradec:2,vorbisdec:2,videodecoder:2,audiodecoder:2
      ;;
    webm)
      demux=matroskademux
      vparse="video/x-vp8"
      vdec=vp8dec
      DEC_HEADERS=0
      acaps="audio/x-vorbis"
      adec=vorbisdec
      cats=matroskademux:2,ebmlread:2,vp8dec:2,vorbisdec:2,videodecoder:2,audiodecoder:2
      ;;
    ts)
      demux=tsdemux
      vparse="video/x-h264"
      vdec="h264parse ! avdec_h264"
      DEC_HEADERS=0
      acaps=
      adec=
      cats=tsdemux:2,h264parse:2,videodecoder:2
      ;;
    *) e2e_die "e2e_decode: unknown kind $kind" ;;
  esac
  local desc="filesrc location=$file ! queue ! $demux name=d d. ! $vparse ! tee name=vt vt. ! $enc vt. ! queue ! $vdec ! $scale"
  if [ "$kind" = ogg ] || [ "$kind" = webm ]; then
    desc="$desc d. ! $acaps ! queue ! $adec ! audioconvert ! audio/x-raw,format=S16LE ! filesink location=$audio"
  fi
  DEC_RC=0
  # shellcheck disable=SC2086
  # The checker runs none of our code: it decodes uninstrumented, without our
  # plugin (own registry), even when the test runs under the sanitizers
  # (seen: an ASan-preloaded oggdemux ! theoradec of a late joiner's file
  # stalled until the 120 s timeout).
  env -u LD_PRELOAD GST_PLUGIN_PATH= GST_PLUGIN_PATH_1_0= \
    GST_REGISTRY_1_0="$E2E_TMP/decode-registry.bin" GST_REGISTRY="$E2E_TMP/decode-registry.bin" \
    GST_DEBUG=$cats timeout 120 gst-launch-1.0 $desc >"$log" 2>&1 </dev/null || DEC_RC=$?
  DEC_FRAMES=$(($(e2e_file_size "$frames") / E2E_FRAME_BYTES))
  DEC_ENC=$(find "$encdir" -type f | wc -l)
  DEC_AUDIO=$(e2e_file_size "$audio")
  DEC_ISSUES=$(grep -a -E '^ERROR|^WARNING|ERROR|WARN|CRITICAL' "$log" | cut -c1-300 | head -10)
  [ "$DEC_RC" = 0 ] && [ -z "$DEC_ISSUES" ]
}

# e2e_decode_report TAG: prints the result of the last e2e_decode.
e2e_decode_report() {
  e2e_log "decode $1: rc=$DEC_RC video frames=$DEC_FRAMES (encoded buffers $DEC_ENC) audio bytes=$DEC_AUDIO"
  if [ -n "$DEC_ISSUES" ]; then
    echo "$DEC_ISSUES" | sed 's/^/    /'
  fi
}

# e2e_finish: exit status from the recorded assertions.
# e2e_wait_team_exit SECONDS: the splitter ($SPLITTER_PID) must end the
# stream by itself within SECONDS and every peer (PEER_PIDS, logs peerN)
# within 15 s after it, all exiting 0 with clean logs; a process still
# running is stopped and fails the test.
e2e_wait_team_exit() {
  local i pid
  if e2e_wait_exit "$SPLITTER_PID" "$1"; then
    [ "$E2E_RC" = 0 ] || e2e_fail "splitter exited $E2E_RC"
  else
    e2e_show_log splitter
    e2e_stop "$SPLITTER_PID" 5
    e2e_fail "splitter did not finish the stream"
  fi
  e2e_check_log splitter
  for i in $(seq ${#PEER_PIDS[@]}); do
    pid=${PEER_PIDS[$((i - 1))]}
    if e2e_wait_exit "$pid" 15; then
      [ "$E2E_RC" = 0 ] || { e2e_show_log "peer$i"; e2e_fail "peer$i exited $E2E_RC"; }
    else
      e2e_show_log "peer$i"
      e2e_stop "$pid" 5
      e2e_fail "peer$i still running 15 s after the splitter left"
    fi
    e2e_check_log "peer$i"
  done
}

e2e_finish() {
  if [ "$E2E_FAILED" != 0 ]; then
    e2e_log "FAILED"
    exit 1
  fi
  e2e_log "PASSED"
  exit 0
}
