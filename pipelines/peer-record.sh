#!/bin/bash
# A peer that joins a team and writes the stream, byte for byte, to a file.
#
#   pipelines/peer-record.sh PORT [OUTFILE]     # default OUTFILE: peer.ogg
# Env: HOST (splitter address, 127.0.0.1), LATENCY (ms, 200).
# Stops by itself (EOS, file complete) when the splitter ends the stream;
# Ctrl-C stops it too, with a complete file.
. "$(dirname "$0")/env.sh"
PORT=${1:-${PORT:-}}
[ -n "$PORT" ] || { echo "usage: $0 PORT [OUTFILE]" >&2; exit 2; }
OUT=${2:-peer.ogg}
exec gst-launch-1.0 -e \
  p2pspsrc uri="p2psp://$HOST:$PORT" latency="${LATENCY:-200}" ! filesink location="$OUT"
