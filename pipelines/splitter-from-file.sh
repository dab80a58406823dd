#!/bin/bash
# A splitter that streams an Ogg Theora(+Vorbis) file to the team at its own
# pace: the pages carry timestamps and the sink (a GstBaseSink, sync=true)
# sends each page when its time comes, as a live source would.
#
#   pipelines/splitter-from-file.sh [FILE.ogg]
# Without FILE, a 20 s Theora+Vorbis sample is made first (in $TMPDIR).
# Env: PORT (default 0 = any free port, printed), HOST (127.0.0.1),
#      WAIT_FOR_PEERS (0), AUDIO=0 for a file without a Vorbis stream.
# The stream (and the peers) end at the end of the file.
. "$(dirname "$0")/env.sh"
PORT=${PORT:-0}
FILE=${1:-}
if [ -z "$FILE" ]; then
  FILE=${TMPDIR:-/tmp}/p2psp-sample.ogg
  if [ ! -s "$FILE" ]; then
    echo "making a 20 s sample: $FILE"
    gst-launch-1.0 -q -e \
      videotestsrc num-buffers=500 ! video/x-raw,width=640,height=360,framerate=25/1 ! \
        timeoverlay ! theoraenc keyframe-freq=25 ! queue ! oggmux name=mux ! filesink location="$FILE" \
      audiotestsrc num-buffers=861 samplesperbuffer=1024 wave=ticks ! audioconvert ! vorbisenc ! queue ! mux. ||
      exit 1
  fi
fi
[ -r "$FILE" ] || { echo "cannot read $FILE" >&2; exit 2; }
# oggparse alone would do for the peers present from the start, but it marks
# every data page DELTA_UNIT, so a late joiner would never find a keyframe:
# the file is demuxed and remuxed (no re-encoding) so that oggmux marks the
# pages that start a keyframe.  AUDIO=0 for a Theora-only file.
if [ "${AUDIO:-1}" = 1 ]; then
  audio="d. ! audio/x-vorbis ! vorbisparse ! queue ! mux."
fi
# shellcheck disable=SC2086
gst-launch-1.0 -e -v \
  filesrc location="$FILE" ! oggdemux name=d \
  d. ! video/x-theora ! theoraparse ! queue ! oggmux name=mux ! \
    p2pspsplittersink host="$HOST" port="$PORT" wait-for-peers="${WAIT_FOR_PEERS:-0}" sync=true \
  ${audio:-} 2>&1 |
  grep --line-buffered -v -E 'caps = |^Redistribute|^New clock'
exit "${PIPESTATUS[0]}"
