#!/bin/bash
# Replace an Icecast relay server with P2PSP teams: one config file, one
# command (docs/cookbook.md, recipe 7; the slides' Icecast labs 3 and 4).
#
#   source --shout2send--> Icecast (master) /news.ogg, /music.ogg
#                               | HTTP, one listener per channel
#                         p2psp-channels (channels.ini) --announce--> p2psp-tracker
#                               |                                        ^
#                         a team per channel (more as they fill)         | GET /v1/join/...
#                               v                                        |
#              gst-play-1.0 p2psp://tracker:PORT/news.ogg ---------------+
#
# Where an Icecast relay (its own server, relaying every mount of the
# master) serves each listener a copy of the stream, each channel here is
# one listener of the master and a P2PSP team: the listeners relay to each
# other. They join by channel name through the tracker, 3 s into the
# stream (late joiners).
#
#   pipelines/tracker/replace-icecast-relay.sh [OUTDIR]
# Env: PEERS (per channel, 2), SECS (stream length, 12).
# Exit 0 when every peer recorded its channel (checked by the caller).
set -u
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/p2psp-relay.XXXXXX")}
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../media/lib.sh"
. "$HERE/../icecast/icecast-lib.sh"
PEERS=${PEERS:-2}
SECS=${SECS:-12}
BUILD=${P2PSP_BUILD_DIR:-$HERE/../../build}
TRACKER=$BUILD/tools/tracker/p2psp-tracker
LAUNCHER=$HERE/../../tools/channels/p2psp-channels

icecast_start origin "$OUT/icecast-origin" || exit 1
ICE=$ICECAST_PORT
on_exit icecast_stop "$ICECAST_PID"
for mount in news music; do
  run_bg "source-$mount" gst-launch-1.0 -e \
    $(video_src "$SECS") ! theoraenc keyframe-force=25 ! queue ! oggmux name=mux ! \
    shout2send ip=127.0.0.1 port="$ICE" password="$ICECAST_PASSWORD" mount="/$mount.ogg" \
    $(audio_src "$SECS") ! vorbisenc ! queue ! mux.
  icecast_wait_mount "$ICE" "/$mount.ogg" 10 || { log "no source on /$mount.ogg"; exit 1; }
done
log "Icecast master on 127.0.0.1:$ICE with /news.ogg and /music.ogg"

run_bg tracker "$TRACKER" --host 127.0.0.1 --port 0
wait_log tracker "listening on port" 5 || { log "no tracker"; exit 1; }
TP=$(grep -o 'port [0-9]*' "$OUT/tracker.log" | cut -d' ' -f2)
on_exit kill "$LAST_PID"

# The whole relay server: this file and one command.
cat >"$OUT/channels.ini" <<INI
[launcher]
tracker = http://127.0.0.1:$TP
host = 127.0.0.1

[channel news.ogg]
source = http://127.0.0.1:$ICE/news.ogg
max-peers = 20

[channel music.ogg]
source = http://127.0.0.1:$ICE/music.ogg
max-peers = 20
INI
run_bg launcher /usr/bin/python3 "$LAUNCHER" --config "$OUT/channels.ini"
LAUNCHER_PID=$LAST_PID
log "p2psp-channels on tracker 127.0.0.1:$TP"
sleep 3

for mount in news music; do
  for i in $(seq "$PEERS"); do
    run_bg "$mount-peer$i" gst-launch-1.0 -e \
      p2pspsrc uri="p2psp://127.0.0.1:$TP/$mount.ogg" ! filesink location="$OUT/$mount-peer$i.ogg"
  done
done
log "$((2 * PEERS)) peers joined by channel name"
# The sources end; the master closes the mounts; the teams get EOS and so
# do their peers.
sleep $((SECS))
for f in "$OUT"/*-peer*.log; do
  name=$(basename "$f" .log)
  pid=$(pgrep -f "location=$OUT/$name.ogg" | head -1)
  [ -n "$pid" ] && { wait_exit "$pid" 10 || stop_proc "$pid"; }
done
stop_proc "$LAUNCHER_PID" 10
log "done"
