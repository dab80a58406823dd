# Sourced by the pipelines/icecast/*.sh scripts: run throw-away Icecast 2
# servers on loopback, each with a generated config in its own directory
# (logs, pid file), and stop them again.
#
#   icecast_start NAME DIR   starts a server; sets ICECAST_PORT and
#                            ICECAST_PID; its files are DIR/NAME.*
#   icecast_stop PID         stops one (the EXIT trap of the caller should
#                            call it for every server it started)
#   icecast_wait_mount PORT MOUNT [TIMEOUT_S]
#                            waits until a source is streaming to MOUNT
#
# Icecast listens on a fixed port written in its config: we ask the kernel
# for a free one (bind to port 0, read it, close) and retry on the rare
# collision.  Icecast refuses to run as root unless it can drop privileges:
# as root the config names the icecast2 user of the Debian package (or
# nobody) in <changeowner>; that user must be able to write the logs, so the
# server then runs in a directory of its own under /tmp (given to that user),
# whose files icecast_stop copies back into DIR before removing it.

ICECAST_BIN=${ICECAST_BIN:-$(command -v icecast2 || command -v icecast || true)}
ICECAST_PASSWORD=${ICECAST_PASSWORD:-hackme}
ICECAST_PORT=
ICECAST_PID=
declare -A _ICECAST_RUNDIR _ICECAST_DIR

icecast_free_port() {
  /usr/bin/python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

_icecast_owner() {
  if id icecast2 >/dev/null 2>&1; then
    echo "icecast2:$(id -gn icecast2)"
  else
    echo nobody:nogroup
  fi
}

# _icecast_config RUNDIR NAME PORT: the config; logs and pid file in RUNDIR.
_icecast_config() {
  local dir=$1 name=$2 port=$3 owner=
  if [ "$(id -u)" = 0 ]; then
    local o
    o=$(_icecast_owner)
    owner="<changeowner><user>${o%%:*}</user><group>${o#*:}</group></changeowner>"
  fi
  cat <<XML
<icecast>
  <location>loopback</location>
  <admin>nobody@localhost</admin>
  <limits>
    <clients>100</clients>
    <sources>8</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>$ICECAST_PASSWORD</source-password>
    <admin-user>admin</admin-user>
    <admin-password>$ICECAST_PASSWORD</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket>
    <port>$port</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>$dir</logdir>
    <pidfile>$dir/$name.pid</pidfile>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>$name.access.log</accesslog>
    <errorlog>$name.error.log</errorlog>
    <loglevel>3</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    $owner
  </security>
</icecast>
XML
}

# icecast_start NAME DIR: the server's files go to DIR (made if needed; as
# root it is given to the icecast user, so use a directory of its own).
icecast_start() {
  local name=$1 dir=$2 try port pid i rundir
  [ -n "$ICECAST_BIN" ] || { echo "icecast2 not found (apt-get install icecast2)" >&2; return 1; }
  mkdir -p "$dir"
  rundir=$dir
  if [ "$(id -u)" = 0 ]; then
    rundir=$(mktemp -d /tmp/p2psp-icecast-"$name".XXXXXX) || return 1
    chown "$(_icecast_owner)" "$rundir"
  fi
  for try in 1 2 3 4 5; do
    port=$(icecast_free_port)
    _icecast_config "$rundir" "$name" "$port" >"$dir/$name.xml"
    "$ICECAST_BIN" -c "$dir/$name.xml" >"$dir/$name.stdout.log" 2>&1 </dev/null &
    pid=$!
    # Up once it answers HTTP on its port (/status-json.xsl is always there).
    for i in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      if _icecast_get "$port" /status-json.xsl >/dev/null 2>&1; then
        ICECAST_PORT=$port
        ICECAST_PID=$pid
        _ICECAST_RUNDIR[$pid]=$rundir
        _ICECAST_DIR[$pid]=$dir
        return 0
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "icecast $name did not start on port $port (try $try):" >&2
    tail -n 5 "$dir/$name.stdout.log" "$rundir/$name.error.log" 2>/dev/null >&2
  done
  [ "$rundir" != "$dir" ] && rm -rf "$rundir"
  return 1
}

icecast_stop() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local run=${_ICECAST_RUNDIR[$pid]:-} dir=${_ICECAST_DIR[$pid]:-}
  if [ -n "$run" ] && [ "$run" != "$dir" ]; then
    cp -p "$run"/* "$dir"/ 2>/dev/null
    rm -rf "$run"
  fi
  return 0
}

# _icecast_get PORT PATH: prints the body of an HTTP GET (no curl needed).
_icecast_get() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", timeout=2) as r:
    sys.stdout.write(r.read().decode("utf-8", "replace"))
PY
}

# icecast_wait_mount PORT MOUNT [TIMEOUT_S]: 0 once MOUNT has a source.
icecast_wait_mount() {
  local port=$1 mount=$2 timeout=${3:-10} i
  for i in $(seq $((timeout * 10))); do
    if _icecast_get "$port" /status-json.xsl 2>/dev/null | grep -q "\"listenurl\":\"http://127.0.0.1:$port$mount\""; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
