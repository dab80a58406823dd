# Sourced by bench/profile.sh and bench/team-cpu.sh: a splitter fed the
# bench medium in real time and N gst-launch peers (fakesink) on the loopback
# of a private network namespace, removed with everything in it at exit.
#
#   team_start N OUTDIR [p2pspsrc property=value...]
#
# Sets NS (the namespace), X (the command prefix that runs in it) and PIDS
# (the peers' gst-launch processes). Run from the project root.
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$PWD/build-bench/plugin}
NS=p2bt$$
X="ip netns exec $NS"
PIDS=()

team_cleanup() {
  local pid
  for pid in $(ip netns pids $NS 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in $(ip netns pids $NS 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del $NS 2>/dev/null || true
}

team_start() {
  local n=$1 out=$2 media i
  shift 2
  media=$(ls -S bench/out/media-*.ogg | head -1)
  trap team_cleanup EXIT
  ip netns add $NS
  ip -n $NS link set lo up
  $X gst-launch-1.0 -q filesrc location="$media" ! oggdemux ! theoraparse \
    ! oggmux max-delay=40000000 max-page-delay=40000000 ! clocksync \
    ! p2pspsplittersink sync=false host=127.0.0.1 port=4552 >"$out/splitter.log" 2>&1 &
  sleep 1
  for i in $(seq "$n"); do
    $X gst-launch-1.0 -q p2pspsrc uri=p2psp://127.0.0.1:4552 "$@" ! fakesink >"$out/peer$i.log" 2>&1 &
    PIDS+=($!)
  done
}
