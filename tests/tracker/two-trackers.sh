#!/bin/bash
# tracker-two-trackers: a deployment with two trackers behind one name
# (docs/tracker.md): the test makes its own network namespace whose
# /etc/hosts (ip netns exec mounts /etc/netns/NS/hosts) gives "trackers" two
# addresses, 127.0.0.1 and 127.0.0.2, with a tracker on each.
#
# Asserts:
#   * a splitter with tracker=http://127.0.0.1:P,http://127.0.0.2:P is
#     listed by both trackers,
#   * a peer joining p2psp://trackers:P/live plays,
#   * with the first tracker killed, a new peer still joins through the
#     second one and plays.
if [ -z "${P2PSP_IN_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespace)"; exit 77; }
  NS=p2tt$$
  ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
  mkdir -p "/etc/netns/$NS"
  printf '127.0.0.1 localhost\n127.0.0.1 trackers\n127.0.0.2 trackers\n' >"/etc/netns/$NS/hosts"
  P2PSP_IN_NETNS=1 ip netns exec "$NS" bash "$0" "$@"
  rc=$?
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$NS"
  rm -rf "/etc/netns/$NS"
  exit $rc
fi

. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/lib.sh"
e2e_init tracker-two-trackers
e2e_need_elements audiotestsrc filesink
ip link set lo up
PY=/usr/bin/python3
[ "$(getent ahosts trackers | awk '{print $1}' | sort -u | wc -l)" -eq 2 ] ||
  e2e_die "\"trackers\" does not resolve to two addresses in the namespace"

tracker_start tracker1 127.0.0.1 0
T1=$TRACKER_PID
tracker_start tracker2 127.0.0.2 "$TP"
sleep 0.3

e2e_start_splitter \
  "audiotestsrc is-live=true samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=2" \
  "tracker=http://127.0.0.1:$TP,http://127.0.0.2:$TP" channel=live
sleep 1.5
for t in 1 2; do
  n=$($PY -c "import json,urllib.request
s=json.load(urllib.request.urlopen('http://127.0.0.$t:$TP/status-json'))
print(sum(len(c['teams']) for c in s['channels'] if c['name']=='live'))")
  [ "$n" = 1 ] && e2e_ok "tracker $t lists the team" || e2e_fail "tracker $t lists $n teams"
done

plays() { # NAME: a peer joining through "trackers" plays within 3 s
  e2e_spawn "$1" gst-launch-1.0 -e p2pspsrc "uri=p2psp://trackers:$TP/live" \
    timeout=10 ! filesink "location=$E2E_TMP/$1.raw"
  sleep 3
  [ "$(e2e_file_size "$E2E_TMP/$1.raw")" -gt 100000 ]
}
plays peer1 && e2e_ok "peer1 plays through p2psp://trackers:$TP/live" ||
  { e2e_fail "peer1 does not play"; e2e_show_log peer1; }
kill -9 "$T1"
e2e_log "tracker 1 killed"
plays peer2 && e2e_ok "peer2 plays with tracker 1 gone" ||
  { e2e_fail "peer2 does not play with tracker 1 gone"; e2e_show_log peer2; }
e2e_finish
