# gst-p2psp team-health end-to-end helpers, on top of tests/e2e/lib.sh.
#
#   . "$(dirname "$0")/hlib.sh"
#   health_init loss
#
# The splitter and the peers run through splitter.py / peer.py (runner.py):
# the same descriptions as gst-launch-1.0 -e, plus the elements' stats as
# JSON at the end (FINAL lines) and timestamped events (EVENT lines).

HEALTH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$HEALTH_DIR/../e2e/lib.sh"

HEALTH_NETNS=
HEALTH_PY=/usr/bin/python3
HEALTH_FPS=25

_health_cleanup() {
  local rc=$?
  # Deleting the name does not kill what runs inside; _e2e_cleanup kills
  # every process we started right after.
  if [ -n "$HEALTH_NETNS" ]; then
    ip netns delete "$HEALTH_NETNS" 2>/dev/null
  fi
  (exit $rc)
  _e2e_cleanup
}

# health_init NAME: lib.sh's e2e_init, PyGObject, the media elements, and a
# cleanup that also removes our network namespace.
health_init() {
  e2e_init "health-$1"
  trap _health_cleanup EXIT
  "$HEALTH_PY" -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2>/dev/null ||
    e2e_skip "$HEALTH_PY has no PyGObject with Gst (python3-gi, gir1.2-gstreamer-1.0)"
  E2E_PY=$HEALTH_PY
  e2e_need_elements videotestsrc audiotestsrc theoraenc vorbisenc oggmux tee queue \
    filesink fakesink oggdemux theoradec vorbisdec multifilesink videoconvert videoscale audioconvert
  # INFO from our elements: joins, removals, reconnections.
  export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:4}
  E2E_SPLITTER_LAUNCH="$HEALTH_PY $HEALTH_DIR/splitter.py"
  E2E_PEER_LAUNCH="$HEALTH_PY $HEALTH_DIR/peer.py"
}

# health_netns: a private network namespace with lo up; the splitter and the
# peers are then started inside it (E2E_*_LAUNCH get "ip netns exec NS").
# Skips (77) when namespaces are not available (not root, no CAP_SYS_ADMIN).
health_netns() {
  [ "$(id -u)" = 0 ] || e2e_skip "needs root for a network namespace"
  command -v ip >/dev/null || e2e_skip "ip (iproute2) not found"
  HEALTH_NETNS=p2psp-$1-$$
  ip netns add "$HEALTH_NETNS" 2>"$E2E_TMP/netns.err" || {
    HEALTH_NETNS=
    e2e_skip "cannot create a network namespace: $(cat "$E2E_TMP/netns.err")"
  }
  ip -n "$HEALTH_NETNS" link set lo up || e2e_die "cannot bring lo up in $HEALTH_NETNS"
  HEALTH_IN_NS="ip netns exec $HEALTH_NETNS"
  E2E_SPLITTER_LAUNCH="$HEALTH_IN_NS $E2E_SPLITTER_LAUNCH"
  E2E_PEER_LAUNCH="$HEALTH_IN_NS $E2E_PEER_LAUNCH"
  e2e_log "network namespace $HEALTH_NETNS"
}

# health_media SECONDS [OGG_OUT]: sets HEALTH_DESC, an Ogg Theora + Vorbis
# live stream (320x240, 25 fps, a keyframe every second, ~100 KB/s so that a
# run has thousands of chunks) of SECONDS seconds (0: endless), teed to
# OGG_OUT (the splitter's input, to compare the peers with) when given.  The
# description ends where the sink is to be linked.
health_media() {
  local secs=$1 out=${2:-} vn= an=
  if [ "$secs" != 0 ]; then
    vn="num-buffers=$((secs * HEALTH_FPS))"
    an="num-buffers=$((secs * 44100 / 1024))"
  fi
  local video="videotestsrc is-live=true $vn pattern=smpte horizontal-speed=2 ! video/x-raw,width=320,height=240,framerate=$HEALTH_FPS/1 ! theoraenc keyframe-freq=$HEALTH_FPS bitrate=800"
  local audio="audiotestsrc is-live=true $an samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! audioconvert ! vorbisenc"
  HEALTH_DESC="$audio ! queue ! mux. $video ! queue ! oggmux name=mux max-page-delay=40000000"
  if [ -n "$out" ]; then
    HEALTH_DESC="$HEALTH_DESC ! tee name=t t. ! queue ! filesink location=$out t. ! queue"
  fi
}

# health_wait_flowing FILE [TIMEOUT_S]: waits until FILE has data (the stream
# started).  Returns 1 on timeout.
health_wait_flowing() {
  local f=$1 n=$((${2:-15} * 20)) i
  for ((i = 0; i < n; i++)); do
    [ "$(e2e_file_size "$f")" -gt 0 ] && return 0
    sleep 0.05
  done
  return 1
}

# health_stats LOG ELEMENT FIELD... : the values from runner.py's last stats
# of ELEMENT ("none" for a missing field); empty when there are none.
health_stats() {
  "$HEALTH_PY" "$HEALTH_DIR/hcheck.py" final "$@" 2>/dev/null
}

# health_wait_peers PID_ARRAY_NAME DEADLINE: waits for each peer to exit by
# itself; the ones still running at DEADLINE get SIGINT (EOS: they still
# print their stats).  Sets PEER_RC[i] for each peer.
declare -A PEER_RC
health_wait_peers() {
  local -n pids=$1
  local deadline=$2 i
  for i in "${!pids[@]}"; do
    if e2e_wait_exit "${pids[$i]}" "$(e2e_left "$deadline")"; then
      PEER_RC[$i]=$E2E_RC
    else
      e2e_stop "${pids[$i]}" 10
      PEER_RC[$i]="still running, SIGINT -> $E2E_RC"
    fi
  done
}

# health_check_decode NAME FILE SRC_FRAMES LOST MIN_FRAMES: FILE decodes with
# oggdemux ! theoradec, vorbisdec: exit 0 and no ERROR; decoder warnings are
# accepted only when the peer declared chunks lost (LOST > 0); at least
# MIN_FRAMES video frames.  Sets HEALTH_FRAMES.
health_check_decode() {
  local name=$1 file=$2 src_frames=$3 lost=$4 min=$5 errors
  e2e_decode ogg "$file" "$name"
  HEALTH_FRAMES=$DEC_FRAMES
  errors=$(echo "$DEC_ISSUES" | grep -a -E 'ERROR|CRITICAL')
  if [ "$DEC_RC" != 0 ] || [ -n "$errors" ]; then
    e2e_decode_report "$name"
    e2e_fail "$name: $(basename "$file") does not decode (rc $DEC_RC)"
  elif [ -n "$DEC_ISSUES" ] && [ "${lost:-0}" = 0 ]; then
    e2e_decode_report "$name"
    e2e_fail "$name: decoder warnings although no chunk was lost"
  elif [ "$DEC_FRAMES" -lt "$min" ]; then
    e2e_decode_report "$name"
    e2e_fail "$name: $DEC_FRAMES video frames decoded, want at least $min (source: $src_frames)"
  else
    e2e_ok "$name decodes: $DEC_FRAMES of $src_frames video frames, $DEC_AUDIO audio bytes${DEC_ISSUES:+ (decoder warnings after $lost lost chunks)}"
    return 0
  fi
  return 1
}

# health_show_events LOG: the EVENT lines of a runner log.
health_show_events() {
  grep -a '^EVENT ' "$E2E_TMP/$1.log" | cut -c1-300 | tail -n "${2:-20}"
}

# health_show_log NAME [LINES]: like e2e_show_log, without the periodic
# STATS lines of the runner.
health_show_log() {
  local f=$E2E_TMP/$1.log
  [ -f "$f" ] || return 0
  echo "----- $1.log -----"
  grep -a -v -E '^STATS |last-message' "$f" | cut -c1-300 | tail -n "${2:-40}"
  echo "-----"
}
