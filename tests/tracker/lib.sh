# Shared by the tracker's shell tests (tests/tracker/*.sh), sourced after
# tests/e2e/lib.sh.

# tracker_start NAME HOST PORT [OPTION...]: starts p2psp-tracker (its log
# is NAME.log) on HOST:PORT (0: a free port) and waits until it listens.
# Sets TP (its port) and TRACKER_PID.
tracker_start() {
  local name=$1 host=$2 port=$3
  shift 3
  e2e_spawn "$name" "${P2PSP_BUILD_DIR:?}/tools/tracker/p2psp-tracker" \
    --host "$host" --port "$port" "$@"
  TRACKER_PID=$E2E_LAST_PID
  TP=
  for _ in $(seq 100); do
    TP=$(grep -o 'port [0-9]*' "$E2E_TMP/$name.log" | cut -d' ' -f2)
    [ -n "$TP" ] && break
    sleep 0.05
  done
  [ -n "$TP" ] || e2e_die "$name did not start"
}

# tracker_status [HOST]: the tracker's /status-json on one line.
tracker_status() {
  /usr/bin/python3 -c "import json,urllib.request
print(json.dumps(json.load(urllib.request.urlopen('http://${1:-127.0.0.1}:$TP/status-json'))))"
}
