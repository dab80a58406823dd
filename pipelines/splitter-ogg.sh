#!/bin/bash
# A live splitter: test video (Theora) + test tone (Vorbis) in Ogg, cut into
# chunks by p2pspsplittersink and sent to the team.
#
#   pipelines/splitter-ogg.sh            # port picked by the system, printed
#   PORT=4552 pipelines/splitter-ogg.sh  # fixed port
# Env: PORT (default 0 = any free port), HOST (bind address, 127.0.0.1),
#      WAIT_FOR_PEERS (hold the stream until that many peers joined, 0),
#      SECONDS_ (stop after that many seconds of stream; default: run until
#      Ctrl-C), CHUNK_SIZE (1024).
# Prints the port ("current-port = N") and the team size as peers come and go.
. "$(dirname "$0")/env.sh"
PORT=${PORT:-0}
FPS=25
if [ -n "${SECONDS_:-}" ]; then
  VN="num-buffers=$((SECONDS_ * FPS))"
  AN="num-buffers=$((SECONDS_ * 44100 / 1024))"
fi
gst-launch-1.0 -e -v \
  videotestsrc is-live=true ${VN:-} ! video/x-raw,width=640,height=360,framerate=$FPS/1 ! \
    timeoverlay ! theoraenc keyframe-freq=25 ! queue ! oggmux name=mux ! \
    p2pspsplittersink host="$HOST" port="$PORT" wait-for-peers="${WAIT_FOR_PEERS:-0}" \
      chunk-size="${CHUNK_SIZE:-1024}" \
  audiotestsrc is-live=true ${AN:-} wave=ticks samplesperbuffer=1024 ! audioconvert ! \
    vorbisenc ! queue ! mux. 2>&1 |
  grep --line-buffered -v -E 'caps = |^Redistribute|^New clock'
exit "${PIPESTATUS[0]}"
