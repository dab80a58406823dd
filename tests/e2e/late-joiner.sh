#!/bin/bash
# e2e-late-joiner: a peer that joins a live stream mid-way must output a
# stream that decodes from its very first byte: the caps' streamheader first,
# then the first keyframe, for Ogg (Theora+Vorbis), WebM (VP8+Vorbis) and
# MPEG-TS (H.264).
#
# For each format: a live splitter runs ~10 s with no peer; a peer joins at
# ~3 s and records ~4.5 s, then is stopped with SIGINT (EOS).  Its file must:
#   * decode with an explicit demuxer/decoder chain: exit 0, no ERROR, no
#     WARNING on the bus, no warning from the demuxer, parser or decoders
#     (those are what a stream starting without headers or on a delta frame
#     produces: "unknown ogg pad", "Invalid header", "broken/invalid nal",
#     "dropping frame because we need a keyframe"),
#   * give one decoded picture per encoded frame (headers aside): nothing
#     dropped at the start,
#   * hold >= 70% of the frames the recording time implies (25 fps),
#   * have every decoded picture look like a picture of the source (a decoder
#     fed a delta frame first shows grey or smeared pictures),
#   * (Ogg) be the source's header pages followed by a contiguous run of the
#     source's pages, starting at a keyframe.
# Without its streamheader, or starting mid-GOP, a file fails these checks:
# each run also feeds them the source's raw second half (tail -c) and fails
# if they accept it.
#
# Env: P2PSP_E2E_FORMATS="ogg webm ts" to run a subset.

. "$(dirname "$0")/lib.sh"
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
e2e_init late-joiner
e2e_need_python
e2e_need_elements videotestsrc audiotestsrc tee queue filesink multifilesink \
  videoconvert videoscale audioconvert

FPS=25
SPLITTER_SECONDS=10
JOIN_AFTER=3
RECORD_SECONDS=4.5

VIDEO="videotestsrc is-live=true num-buffers=$((FPS * SPLITTER_SECONDS)) pattern=smpte horizontal-speed=2 ! video/x-raw,width=320,height=240,framerate=$FPS/1"
AUDIO="audiotestsrc is-live=true num-buffers=$((SPLITTER_SECONDS * 44100 / 1024)) samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! audioconvert"

run_format() {
  local fmt=$1 desc kind
  local src=$E2E_TMP/$fmt-source out=$E2E_TMP/$fmt-peer
  case "$fmt" in
    ogg)
      e2e_have_element theoraenc && e2e_have_element vorbisenc && e2e_have_element oggmux &&
        e2e_have_element oggdemux && e2e_have_element theoradec && e2e_have_element vorbisdec ||
        { e2e_log "SKIP ogg: theora/vorbis/ogg elements missing"; return 77; }
      kind=ogg
      desc="$AUDIO ! vorbisenc ! queue ! mux. $VIDEO ! theoraenc keyframe-freq=10 keyframe-force=10 ! queue ! oggmux name=mux max-page-delay=40000000 ! tee name=t t. ! queue ! filesink location=$src t. ! queue"
      ;;
    webm)
      e2e_have_element vp8enc && e2e_have_element vorbisenc && e2e_have_element webmmux &&
        e2e_have_element matroskademux && e2e_have_element vp8dec && e2e_have_element vorbisdec ||
        { e2e_log "SKIP webm: vp8/vorbis/matroska elements missing"; return 77; }
      kind=webm
      desc="$AUDIO ! vorbisenc ! queue ! mux. $VIDEO ! vp8enc keyframe-max-dist=10 deadline=1 ! queue ! webmmux streamable=true name=mux ! tee name=t t. ! queue ! filesink location=$src t. ! queue"
      ;;
    ts)
      local enc
      if e2e_have_element x264enc; then
        enc="x264enc tune=zerolatency key-int-max=10 speed-preset=ultrafast"
      elif e2e_have_element openh264enc; then
        e2e_log "x264enc missing (gstreamer1.0-plugins-ugly): using openh264enc for MPEG-TS"
        enc="openh264enc gop-size=10"
      else
        e2e_log "SKIP ts: no x264enc (gstreamer1.0-plugins-ugly) nor openh264enc"
        return 77
      fi
      e2e_have_element mpegtsmux && e2e_have_element tsdemux && e2e_have_element h264parse &&
        e2e_have_element avdec_h264 ||
        { e2e_log "SKIP ts: mpegtsmux/tsdemux/h264parse/avdec_h264 missing"; return 77; }
      kind=ts
      desc="$VIDEO ! $enc ! h264parse config-interval=-1 ! queue ! mpegtsmux name=mux ! tee name=t t. ! queue ! filesink location=$src t. ! queue"
      ;;
  esac

  e2e_log "=== $fmt: splitter ${SPLITTER_SECONDS}s live, peer joins after ${JOIN_AFTER}s, records ${RECORD_SECONDS}s"
  local t0
  t0=$(e2e_now)
  local slog=$fmt-splitter
  E2E_SPLITTER_NAME=$slog e2e_start_splitter "$desc"
  local splitter=$SPLITTER_PID port=$SPLITTER_PORT

  sleep "$JOIN_AFTER"
  if ! e2e_alive "$splitter"; then
    e2e_show_log "$slog"
    e2e_fail "$fmt: splitter died before the peer joined"
    return 1
  fi
  local tj
  tj=$(e2e_now)
  e2e_start_peer "$fmt-peer" "$port" "$out"
  local peer=$E2E_LAST_PID
  sleep "$RECORD_SECONDS"
  local rec
  rec=$(e2e_elapsed "$tj")
  local prc
  e2e_stop "$peer" 10
  prc=$E2E_RC
  e2e_log "$fmt: peer recorded ${rec}s, exit $prc, $(e2e_file_size "$out") bytes"
  if [ "$prc" != 0 ]; then
    e2e_show_log "$fmt-peer"
    e2e_fail "$fmt: peer did not stop cleanly on SIGINT/EOS (exit $prc)"
  fi
  e2e_check_log "$fmt-peer"

  local src_rc
  if e2e_wait_exit "$splitter" $((SPLITTER_SECONDS + 30)); then
    src_rc=$E2E_RC
  else
    e2e_stop "$splitter" 5
    src_rc="hung (then $E2E_RC)"
  fi
  e2e_log "$fmt: splitter exit $src_rc after $(e2e_elapsed "$t0")s, source $(e2e_file_size "$src") bytes"
  if [ "$src_rc" != 0 ]; then
    e2e_show_log "$slog"
    e2e_fail "$fmt: splitter did not finish cleanly (exit $src_rc)"
  fi
  e2e_check_log "$slog"

  if [ "$(e2e_file_size "$out")" = 0 ]; then
    e2e_show_log "$fmt-peer"
    e2e_fail "$fmt: the late joiner wrote nothing"
    return 1
  fi

  # Reference pictures from the source.
  if ! e2e_decode "$kind" "$src" "$fmt-source"; then
    e2e_decode_report "$fmt-source"
    e2e_fail "$fmt: the source itself does not decode cleanly (test setup problem)"
    return 1
  fi
  e2e_decode_report "$fmt-source"

  late_checks "$fmt" "$kind" "$src" "$out" "$fmt-peer" "$rec" report

  # Negative control: the same checks must reject the source's second half
  # (mid-stream bytes, no streamheader, not starting at a keyframe): if they
  # accepted it, they would prove nothing about the late joiner.
  local cut=$E2E_TMP/$fmt-cut size
  size=$(e2e_file_size "$src")
  tail -c $((size / 2)) "$src" >"$cut"
  if late_checks "$fmt" "$kind" "$src" "$cut" "$fmt-cut" "$rec" quiet; then
    e2e_fail "$fmt: control: the checks accept the source's raw second half; they are too weak"
  else
    e2e_ok "$fmt: control: the checks reject the source's raw second half (tail -c)"
  fi
}

# late_checks FMT KIND SOURCE FILE TAG RECORDED_S report|quiet
# Every check of a late joiner's file; returns 0 if all pass.  "report"
# records failures (e2e_fail), "quiet" only returns the verdict.
late_checks() {
  local fmt=$1 kind=$2 src=$3 out=$4 tag=$5 rec=$6 mode=$7 bad=0
  _lc_fail() {
    bad=1
    if [ "$mode" = report ]; then e2e_fail "$fmt: $*"; else e2e_log "control rejects: $*"; fi
  }
  _lc_ok() { [ "$mode" = report ] && e2e_ok "$fmt: $*"; return 0; }

  if e2e_decode "$kind" "$out" "$tag"; then
    [ "$mode" = report ] && e2e_decode_report "$tag"
    _lc_ok "decodes with no error or warning"
  else
    [ "$mode" = report ] && e2e_decode_report "$tag"
    _lc_fail "the file does not decode cleanly from its first byte (rc $DEC_RC)"
  fi
  local want dropped
  want=$(awk -v r="$rec" -v f="$FPS" 'BEGIN { printf "%d", 0.7 * r * f }')
  if [ "$DEC_FRAMES" -lt "$want" ]; then
    _lc_fail "$DEC_FRAMES frames decoded, want >= $want (70% of ${rec}s x $FPS fps)"
  else
    _lc_ok "$DEC_FRAMES frames decoded (>= $want)"
  fi
  dropped=$((DEC_ENC - DEC_HEADERS - DEC_FRAMES))
  if [ "$dropped" -gt 1 ] || [ "$DEC_FRAMES" = 0 ]; then
    _lc_fail "the decoder dropped $dropped of $((DEC_ENC - DEC_HEADERS)) encoded frames (does not start at a keyframe?)"
  else
    _lc_ok "every encoded frame decoded ($DEC_FRAMES of $((DEC_ENC - DEC_HEADERS)))"
  fi
  if "$E2E_PY" "$E2E_DIR/e2e_check.py" frames "$E2E_TMP/$fmt-source.frames" "$E2E_TMP/$tag.frames"; then
    _lc_ok "every picture matches a source picture"
  else
    _lc_fail "decoded pictures do not match the source"
  fi
  if [ "$fmt" = ogg ]; then
    if "$E2E_PY" "$E2E_DIR/e2e_check.py" oggpages --late --max-missing-pages 0 "$src" "$out"; then
      _lc_ok "header pages, then a contiguous run of source pages starting at a keyframe"
    else
      _lc_fail "the pages are not the streamheader + a contiguous part of the source"
    fi
  fi
  return $bad
}

FORMATS=${P2PSP_E2E_FORMATS:-ogg webm ts}
ran=0
for fmt in $FORMATS; do
  rc=0
  run_format "$fmt" || rc=$?
  [ $rc = 77 ] || ran=$((ran + 1))
done
[ $ran = 0 ] && e2e_skip "no format could run"
e2e_finish
