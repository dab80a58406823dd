#!/bin/bash
# A peer that joins a team and plays the stream (any format decodebin knows).
#
#   pipelines/peer-play.sh PORT
# Env: HOST (splitter address, 127.0.0.1), LATENCY (ms, 200),
#      VIDEO_SINK (autovideosink), AUDIO_SINK (autoaudiosink): set them to
#      fakesink on a machine without display or sound.
# Stops by itself when the splitter ends the stream; Ctrl-C to leave.
. "$(dirname "$0")/env.sh"
PORT=${1:-${PORT:-}}
[ -n "$PORT" ] || { echo "usage: $0 PORT" >&2; exit 2; }
exec gst-launch-1.0 -e \
  p2pspsrc uri="p2psp://$HOST:$PORT" latency="${LATENCY:-200}" ! decodebin name=d \
  d. ! video/x-raw ! queue ! videoconvert ! "${VIDEO_SINK:-autovideosink}" \
  d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! "${AUDIO_SINK:-autoaudiosink}"
