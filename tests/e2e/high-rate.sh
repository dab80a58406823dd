#!/bin/bash
# e2e-high-rate: a team of 5 peers (each its own gst-launch-1.0) carrying
# raw audio at 24.6 Mb/s (16 channels of S32LE at 48 kHz: about 2150 chunks
# a second, 8600 datagrams a second through each peer), all there from the
# first buffer (wait-for-peers=5), 5 s of stream. Issue 17: this team lost
# 98 % of the stream, because the backlog held by wait-for-peers left the
# splitter in one burst that the peers' default socket buffers could not
# hold (docs/benchmarks.md, "High rates").
#
# Asserts:
#   * every peer's file is byte-identical to the splitter's input (a tee
#     writes it to source.raw),
#   * every peer exits 0 on its own after the splitter's EOS,
#   * with PyGObject (stats): the splitter answered NACKs for under 1 % of
#     the chunks it cut, and peer5 lost nothing.

. "$(dirname "$0")/lib.sh"
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
e2e_init high-rate
e2e_need_elements audiotestsrc tee queue filesink

PEERS=5
SECONDS_OF_STREAM=5
CHANNELS=16
SRC=$E2E_TMP/source.raw
# 480 samples: a buffer every 10 ms, of 30720 bytes (21 or 22 chunks).
AUDIO="audiotestsrc is-live=true wave=white-noise samplesperbuffer=480 num-buffers=$((SECONDS_OF_STREAM * 100)) ! audio/x-raw,format=S32LE,rate=48000,channels=$CHANNELS,layout=interleaved"
DESC="$AUDIO ! tee name=t t. ! queue ! filesink location=$SRC t. ! queue"

export P2PSP_E2E_GST_DEBUG=${P2PSP_E2E_GST_DEBUG:-*:2,p2pspsplittersink:4,p2pspsrc:3}

STATS_PEER=0
if e2e_pygst; then
  STATS_PEER=$PEERS
  E2E_SPLITTER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py"
else
  e2e_log "note: no PyGObject: no stats, only the files are checked"
fi
LATENCY=latency=$((200 * ${P2PSP_TIME_SCALE:-1}))

t0=$(e2e_now)
e2e_start_splitter "$DESC" wait-for-peers=$PEERS
# The peers come a second later, as people starting them would: the live
# source has a second of stream waiting for the team when it is complete.
sleep 1
PEER_PIDS=()
for i in $(seq $PEERS); do
  if [ "$i" = "$STATS_PEER" ]; then
    E2E_PEER_LAUNCH="$E2E_PYGST $E2E_DIR/e2e_launch.py" \
      e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.raw" "$LATENCY"
  else
    e2e_start_peer "peer$i" "$SPLITTER_PORT" "$E2E_TMP/peer$i.raw" "$LATENCY"
  fi
  PEER_PIDS+=("$E2E_LAST_PID")
done

e2e_wait_team_exit $((SECONDS_OF_STREAM + 20))
e2e_log "team done after $(e2e_elapsed "$t0")s, source $(e2e_file_size "$SRC") bytes"

want=$((SECONDS_OF_STREAM * 100 * 480 * CHANNELS * 4))
[ "$(e2e_file_size "$SRC")" = "$want" ] ||
  e2e_fail "source.raw is $(e2e_file_size "$SRC") bytes, want $want (test setup)"
for i in $(seq $PEERS); do
  e2e_assert_same "$E2E_TMP/peer$i.raw" "$SRC"
done

stval() { # stval FIELD STRUCTURE-LINE -> number
  echo "$2" | grep -o -E "(^|[ ,])$1=\([a-z0-9]*\)[0-9]+" | head -n 1 | grep -o -E '[0-9]+$'
}
if [ "$STATS_PEER" != 0 ]; then
  sst=$(grep -a '^STATS splitter:' "$SPLITTER_LOG" | tr -d '\\' | tail -n 1)
  pst=$(grep -a '^STATS src:' "$E2E_TMP/peer$STATS_PEER.log" | tr -d '\\' | tail -n 1)
  if [ -z "$sst" ] || [ -z "$pst" ]; then
    e2e_fail "no stats printed at EOS"
  else
    cut=$(stval chunks-cut "$sst")
    retx=$(stval retransmits "$sst")
    nacks=$(stval nacks-received "$sst")
    e2e_log "splitter: $cut chunks cut, $nacks NACKed, $retx retransmitted, $(stval buffers-paced "$sst") buffers paced, kernel-drops $(stval kernel-drops "$sst")"
    e2e_log "peer$STATS_PEER: $(stval played "$pst") played, $(stval lost "$pst") lost, $(stval nacks-sent "$pst") NACKs, kernel-drops $(stval kernel-drops "$pst"), receive buffer $(stval udp-receive-buffer "$pst") bytes"
    [ "${cut:-0}" -gt 10000 ] || e2e_fail "the splitter cut only ${cut:-0} chunks"
    [ $((${retx:-0} * 100)) -lt "${cut:-0}" ] ||
      e2e_fail "the splitter retransmitted $retx of $cut chunks (want under 1 %)"
    [ "$(stval lost "$pst")" = 0 ] || e2e_fail "peer$STATS_PEER lost chunks"
  fi
fi
e2e_finish
