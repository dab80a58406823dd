#!/bin/bash
# interop-*: runs one scenario script of pipelines/{icecast,cascade,media,
# playback} and checks its results from the files it left, independently of
# what the script itself printed: byte-identity with the stream the splitter
# got, decoding with real decoders (pipelines/media/p2psp-decode.py: no error
# or warning, every frame decoded, no hole, duration), frame counts, Icecast's
# own logs.
#
#   interop.sh SCENARIO
# SCENARIO: icecast-to-team, icecast-late-joiner, team-to-icecast, icecast-many-teams, cascade,
#           playback, media-<format> (ogg-theora, ogg-opus, webm-vp8,
#           mkv-vp9, ts-h264), feed-<feed> (ogg-oggparse, ogg-raw, ts-raw,
#           webm-raw, webm-matroskaparse, flv-raw), matrix-<row> (a row of
#           pipelines/media/matrix.sh: a live feed over Icecast, UDP, SRT or
#           TCP, a late joiner, FFmpeg's decode check).
# Exit 0 pass, 1 fail, 77 skip (a package is missing).

. "$(dirname "$0")/../e2e/lib.sh"
SCEN=${1:?scenario}
e2e_init "interop-$SCEN"
e2e_pygst || e2e_skip "PyGObject (python3-gi) missing"
PIPES=${P2PSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/pipelines
DECODE=$PIPES/media/p2psp-decode.py
FFCHECK=$PIPES/media/ffcheck.py
OUT=$E2E_TMP/out
# Late joiners' share of the recorded time that must decode (media-*,
# feed-*, icecast-late-joiner): with the join burst (docs/protocol.md 7.4)
# a joiner's recording starts at the latest keyframe, before the join;
# measured 1.03-1.10 (docs/benchmarks.md, "Media matrix").
JOIN_RATIO=0.9
mkdir -p "$OUT"
export P2PSP_PLUGIN_DIR

need_icecast() {
  command -v icecast2 >/dev/null || e2e_skip "icecast2 missing (apt-get install icecast2)"
  e2e_need_elements shout2send souphttpsrc oggparse
}

# run_scenario SCRIPT [ARGS...]: runs it (bounded), output to $E2E_TMP/scenario.log.
run_scenario() {
  local rc=0
  e2e_log "running ${1#"$PIPES"/} ${*:2}"
  # shellcheck disable=SC2086
  timeout 240 "$@" >"$E2E_TMP/scenario.log" 2>&1 || rc=$?
  sed 's/^/  | /' "$E2E_TMP/scenario.log"
  if [ $rc = 0 ]; then e2e_ok "the scenario script passed"; else e2e_fail "the scenario script exited $rc"; fi
}

# same A B
same() { e2e_assert_same "$1" "$2" >/dev/null || e2e_fail "$(basename "$2") is not byte-identical to $(basename "$1")"; }

# decodes FILE SECONDS MIN_RATIO [MAX_EXTRA]: the independent decode check.
decodes() {
  if "$E2E_PYGST" "$DECODE" "$1" --expect-seconds "$2" --min-ratio "$3" --max-extra "${4:-1.5}" --json "$1.json" >"$1.decode" 2>&1; then
    e2e_ok "$(basename "$1"): $(grep -a -E '^(video|audio)' "$1.decode" | tr '\n' ';')"
  else
    e2e_fail "$(basename "$1") does not decode cleanly:"
    sed 's/^/    /' "$1.decode" | head -12
  fi
}

# ffdecodes FILE SECONDS MIN_RATIO [MAX_EXTRA]: the outside decoder's check
# (FFmpeg: no error, decoded duration >= MIN_RATIO x SECONDS).
ffdecodes() {
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || {
    e2e_ok "$(basename "$1"): no ffmpeg/ffprobe here, FFmpeg check skipped"
    return
  }
  if "$FFCHECK" "$1" --expect-seconds "$2" --min-ratio "$3" --max-extra "${4:-1.5}" >"$1.ffcheck" 2>&1; then
    e2e_ok "$(basename "$1") (FFmpeg): $(grep -a -E '^(video|audio|ffmpeg)' "$1.ffcheck" | tr '\n' ';')"
  else
    e2e_fail "$(basename "$1") does not pass FFmpeg's decode check:"
    sed 's/^/    /' "$1.ffcheck" | head -12
  fi
}

# No Icecast of ours may survive the script. procps' pgrep and pkill hang
# forever with the ASan runtime preloaded (scripts/sanitize-wrap.sh), and
# they need no sanitizer: run them without it.
no_icecast_left() {
  if env -u LD_PRELOAD pgrep -f "icecast2? -c $OUT/" >/dev/null; then
    e2e_fail "an Icecast server of the scenario is still running"
    env -u LD_PRELOAD pkill -f "icecast2? -c $OUT/"   # only ours: the config path is our temp dir
  else
    e2e_ok "the Icecast servers were stopped"
  fi
}

# access_count LOG REGEX: lines of an Icecast access log that match.
access_count() { grep -a -c -E "$2" "$1" 2>/dev/null || echo 0; }

case "$SCEN" in
  icecast-to-team)
    need_icecast
    PEERS=2 SECS=8 run_scenario "$PIPES/icecast/icecast-to-team.sh" "$OUT"
    no_icecast_left
    n=$(access_count "$OUT/icecast-origin/origin.access.log" '"GET /live.ogg')
    [ "$n" -ge 1 ] && e2e_ok "Icecast logged the splitter as a listener of /live.ogg" ||
      e2e_fail "no listener of /live.ogg in Icecast's access log"
    decodes "$OUT/splitter-in.ogg" 8 0.8
    for i in 1 2; do
      same "$OUT/splitter-in.ogg" "$OUT/peer$i.ogg"
      decodes "$OUT/peer$i.ogg" 8 0.5
    done
    ;;
  tracker-relay)
    # Icecast, a tracker, a launcher and 6 pipelines: past its time budget
    # under ASan (scripts/sanitize.sh); tracker-channels covers the code.
    [ -n "${P2PSP_SANITIZE:-}" ] && e2e_skip "too slow under the sanitizers"
    # docs/cookbook.md recipe 7: an Icecast relay server replaced by
    # p2psp-channels and p2psp-tracker; peers join by channel name, late.
    need_icecast
    PEERS=2 SECS=12 run_scenario "$PIPES/tracker/replace-icecast-relay.sh" "$OUT"
    no_icecast_left
    # The peers join about 3 s into 12 s of stream; the join burst starts
    # them up to a GOP (1 s) earlier, at the latest keyframe.
    for mount in news music; do
      for i in 1 2; do decodes "$OUT/$mount-peer$i.ogg" 9 0.75 1.5; done
    done
    ;;
  icecast-late-joiner)
    need_icecast
    JOIN=3 REC=4 run_scenario "$PIPES/icecast/icecast-late-joiner.sh" "$OUT"
    no_icecast_left
    rec=$(sed -n 's/.*peer recorded \([0-9.]*\)s.*/\1/p' "$E2E_TMP/scenario.log")
    decodes "$OUT/peer.ogg" "${rec:-4}" "$JOIN_RATIO" 2.5
    ffdecodes "$OUT/peer.ogg" "${rec:-4}" "$JOIN_RATIO" 2.5
    ;;
  team-to-icecast)
    need_icecast
    e2e_need_elements theoradec oggdemux
    LISTENERS=2 SECS=10 run_scenario "$PIPES/icecast/team-to-icecast.sh" "$OUT"
    no_icecast_left
    n=$(access_count "$OUT/icecast-b/b.access.log" '"GET /relay.ogg')
    [ "$n" -ge 3 ] && e2e_ok "Icecast B logged $n HTTP listeners of /relay.ogg" ||
      e2e_fail "Icecast B logged $n listeners of /relay.ogg, want 3"
    grep -a -q 'Source logging in at mountpoint "/relay.ogg"' "$OUT/icecast-b/b.error.log" &&
      e2e_ok "the team's peer was Icecast B's source" ||
      e2e_fail "Icecast B never saw the peer as a source"
    for i in 1 2; do decodes "$OUT/listener$i.ogg" 10 0.5; done
    decodes "$OUT/peer.ogg" 10 0.5
    ;;
  icecast-many-teams)
    need_icecast
    TEAMS=3 PEERS=2 SECS=8 run_scenario "$PIPES/icecast/icecast-many-teams.sh" "$OUT"
    no_icecast_left
    n=$(access_count "$OUT/icecast/origin.access.log" '"GET /live.ogg')
    [ "$n" = 3 ] && e2e_ok "Icecast served 3 listeners (one per splitter)" ||
      e2e_fail "Icecast served $n listeners of /live.ogg, want 3"
    for t in 1 2 3; do
      for i in 1 2; do
        same "$OUT/team$t-in.ogg" "$OUT/team$t-peer$i.ogg"
        decodes "$OUT/team$t-peer$i.ogg" 8 0.5
      done
    done
    ;;
  cascade)
    PEERS_B=2 SECS=6 run_scenario "$PIPES/cascade/two-teams.sh" "$OUT"
    for p in a-peer b-peer1 b-peer2; do
      same "$OUT/source.ogg" "$OUT/$p.ogg"
      decodes "$OUT/$p.ogg" 6 0.9
    done
    grep -a -q 'num-peers = 2' "$OUT/relay.log" && e2e_ok "the relay's splitter had team B (2 peers)" ||
      e2e_fail "the relay's splitter never had 2 peers"
    ;;
  playback)
    e2e_need_elements playbin uridecodebin theoradec vorbisdec
    command -v gst-play-1.0 >/dev/null || e2e_skip "gst-play-1.0 missing"
    SECS=6 run_scenario "$PIPES/playback/play-uri.sh" "$OUT"
    f=$(($(e2e_file_size "$OUT/gst-play.gray") / 64))
    [ "$f" -ge 142 ] && e2e_ok "gst-play-1.0 rendered $f frames of 150" ||
      e2e_fail "gst-play-1.0 rendered $f frames, want >= 142 of 150"
    for p in playbin uridecodebin; do
      line=$(grep -a "^$p: [0-9]* video frames" "$OUT/$p.log")
      read -r v a < <(echo "$line" | sed -n 's/.*: \([0-9]*\) video frames, \([0-9]*\) audio samples.*/\1 \2/p')
      if [ "${v:-0}" -ge 142 ] && [ "${a:-0}" -ge 273600 ]; then
        e2e_ok "$line"
      else
        e2e_fail "$p: '${line:-nothing}', want >= 142 frames and >= 273600 samples"
      fi
      grep -a -q "^$p: source p2pspsrc latency=300 " "$OUT/$p.log" &&
        e2e_ok "$p chose p2pspsrc, and ?latency=300 set its latency" ||
        e2e_fail "$p: no p2pspsrc with latency 300"
    done
    grep -a -q FAIL "$OUT/uri-check.log" && e2e_fail "URI handler checks failed" ||
      e2e_ok "URI handler: $(grep -a -c '^ok' "$OUT/uri-check.log") checks"
    ;;
  media-*)
    fmt=${SCEN#media-}
    case "$fmt" in
      ogg-theora) e2e_need_elements theoraenc theoradec vorbisenc vorbisdec oggmux oggdemux; ext=ogg ;;
      ogg-opus) e2e_need_elements opusenc opusdec oggmux oggdemux; ext=opus ;;
      webm-vp8) e2e_need_elements vp8enc vp8dec opusenc opusdec webmmux matroskademux; ext=webm ;;
      mkv-vp9) e2e_need_elements vp9enc vp9dec vorbisenc vorbisdec matroskamux matroskademux; ext=mkv ;;
      ts-h264) e2e_need_elements x264enc h264parse avdec_h264 mpegtsmux tsdemux; ext=ts ;;
      *) e2e_die "unknown format $fmt" ;;
    esac
    JOIN=3 REC=3.5 run_scenario "$PIPES/media/late-joiner.sh" "$fmt" "$OUT"
    rec=$(sed -n 's/.*peer recorded \([0-9.]*\)s.*/\1/p' "$E2E_TMP/scenario.log")
    decodes "$OUT/peer.$ext" "${rec:-3.5}" "$JOIN_RATIO"
    ffdecodes "$OUT/peer.$ext" "${rec:-3.5}" "$JOIN_RATIO"
    # The source itself must decode (else the check proves nothing), and
    # the check must reject the source's raw second half.
    # (the stream lasts JOIN + REC = 7 s)
    decodes "$OUT/source.$ext" 6.5 0.8
    if "$E2E_PYGST" "$DECODE" "$OUT/control.$ext" --expect-seconds "${rec:-3.5}" >/dev/null 2>&1; then
      e2e_fail "control: the decode check accepts the source's raw second half"
    else
      e2e_ok "control: the decode check rejects the source's raw second half"
    fi
    ;;
  feed-*)
    # Late joiners whatever feeds the splitter (issue 13): oggparse, or raw
    # bytes with no parser and no caps (pipelines/media/late-joiner-feed.sh).
    feed=${SCEN#feed-}
    case "$feed" in
      ogg-*) e2e_need_elements theoraenc theoradec vorbisenc vorbisdec oggmux oggdemux oggparse identity; ext=ogg ;;
      ts-*) e2e_need_elements x264enc h264parse avdec_h264 mpegtsmux tsdemux identity; ext=ts ;;
      webm-*) e2e_need_elements vp8enc vp8dec vorbisenc vorbisdec webmmux matroskademux matroskaparse identity; ext=webm ;;
      flv-*) e2e_need_elements x264enc h264parse avdec_h264 flvmux flvdemux identity; ext=flv ;;
      *) e2e_die "unknown feed $feed" ;;
    esac
    JOIN=2.5 SECS=8 run_scenario "$PIPES/media/late-joiner-feed.sh" "$feed" "$OUT"
    rec=$(sed -n 's/.*peer recorded \([0-9.]*\)s.*/\1/p' "$E2E_TMP/scenario.log")
    decodes "$OUT/peer.$ext" "${rec:-5}" "$JOIN_RATIO" 2.5
    ffdecodes "$OUT/peer.$ext" "${rec:-5}" "$JOIN_RATIO" 2.5
    if grep -a -q 'GstP2pspSrcStart, status=(string)started.*started-at=(string)keyframe' "$OUT/peer.log"; then
      e2e_ok "the peer posted GstP2pspSrcStart: started at a keyframe"
    else
      e2e_fail "no GstP2pspSrcStart started-at=keyframe from the peer"
    fi
    ;;
  matrix-*)
    # Live encoders and FFmpeg's duration check: under ASan the join falls
    # behind the recording window (scripts/sanitize.sh); feed-* and media-*
    # cover the same code under the sanitizers.
    [ -n "${P2PSP_SANITIZE:-}" ] && e2e_skip "too slow under the sanitizers"
    # A row of the media matrix (issue 13; bench/media-matrix.sh runs all).
    row=${SCEN#matrix-}
    command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || e2e_skip "ffmpeg/ffprobe missing (apt-get install ffmpeg)"
    case "$row" in *-icecast-*) need_icecast ;; esac
    JOIN=3 REC=6 run_scenario "$PIPES/media/matrix.sh" "$row" "$OUT"
    grep -a -q '^\[.*\] SKIP: ' "$E2E_TMP/scenario.log" && e2e_skip "$(sed -n 's/.*SKIP: //p' "$E2E_TMP/scenario.log")"
    rec=$(sed -n 's/.*peer recorded \([0-9.]*\)s.*/\1/p' "$E2E_TMP/scenario.log")
    f=
    for g in "$OUT"/peer.*; do
      case "$g" in *.log | *.json | *.ffcheck) ;; *) [ -f "$g" ] && f=$g && break ;; esac
    done
    [ -n "$f" ] || e2e_fail "no recording"
    [ -n "$f" ] && ffdecodes "$f" "${rec:-6}" 0.9 2.5
    if grep -a -q 'GstP2pspSrcStart, status=(string)started.*started-at=(string)keyframe' "$OUT/peer.log"; then
      e2e_ok "the peer posted GstP2pspSrcStart: started at a keyframe"
    else
      e2e_fail "no GstP2pspSrcStart started-at=keyframe from the peer"
    fi
    ;;
  *) e2e_die "unknown scenario $SCEN" ;;
esac
e2e_finish
