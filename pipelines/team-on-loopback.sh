#!/bin/bash
# A whole team on this machine: a live splitter (Theora+Vorbis in Ogg, also
# written to source.ogg) and N peers that record what they rebuild; the
# stream starts once all N have joined (wait-for-peers) and lasts SECONDS_.
# At the end, each peer's file is compared with source.ogg.
#
#   pipelines/team-on-loopback.sh [N] [OUTDIR]
# Env: SECONDS_ (stream length, 10), CHUNK_SIZE (1024), KEEP=0 to delete
#      OUTDIR afterwards.  Defaults: N=3, OUTDIR a new directory in $TMPDIR.
. "$(dirname "$0")/env.sh"
N=${1:-3}
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-team.XXXXXX")}
SECS=${SECONDS_:-10}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ "${KEEP:-1}" = 0 ] && rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gst-launch-1.0 -e -v \
  videotestsrc is-live=true num-buffers=$((SECS * 25)) ! video/x-raw,width=640,height=360,framerate=25/1 ! \
    timeoverlay ! theoraenc keyframe-freq=25 ! queue ! oggmux name=mux ! tee name=t \
    t. ! queue ! filesink location="$OUT/source.ogg" \
    t. ! queue ! p2pspsplittersink host="$HOST" port=0 wait-for-peers="$N" chunk-size="${CHUNK_SIZE:-1024}" \
  audiotestsrc is-live=true num-buffers=$((SECS * 44100 / 1024)) samplesperbuffer=1024 wave=ticks ! \
    audioconvert ! vorbisenc ! queue ! mux. \
  >"$OUT/splitter.log" 2>&1 </dev/null &
SPLITTER=$!
PIDS+=("$SPLITTER")
PORT=$(p2psp_port_from_log "$OUT/splitter.log" "$SPLITTER") || {
  cat "$OUT/splitter.log" >&2
  echo "the splitter did not start" >&2
  exit 1
}
echo "splitter on $HOST:$PORT (pid $SPLITTER), $N peers, ${SECS}s of stream, files in $OUT"
for i in $(seq "$N"); do
  gst-launch-1.0 -e p2pspsrc uri="p2psp://$HOST:$PORT" ! filesink location="$OUT/peer$i.ogg" \
    >"$OUT/peer$i.log" 2>&1 </dev/null &
  PIDS+=("$!")
done

wait "$SPLITTER"
echo "splitter finished (exit $?); waiting for the peers to get EOS"
rc=0
for i in $(seq "$N"); do
  wait "${PIDS[$i]}"
  prc=$?
  if cmp -s "$OUT/source.ogg" "$OUT/peer$i.ogg"; then
    same="identical to source.ogg"
  else
    same="DIFFERS from source.ogg"
    rc=1
  fi
  [ $prc = 0 ] || rc=1
  echo "peer$i: exit $prc, $(stat -c %s "$OUT/peer$i.ogg" 2>/dev/null || echo 0) bytes, $same"
done
PIDS=()
echo "source.ogg: $(stat -c %s "$OUT/source.ogg") bytes; team size $(grep -a -o 'num-peers = [0-9]*' "$OUT/splitter.log" | awk '$3 > m { m = $3 } END { print m + 0 }')"
echo "play one: gst-play-1.0 $OUT/peer1.ogg"
exit $rc
