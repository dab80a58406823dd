#!/usr/bin/env bash
# Runs one example application against a real team on 127.0.0.1 and checks
# its --json output (apps/tests/check_app_output.py).
#
#   app-test.sh cpp-peer|py-peer APP...   the peer app joins a gst-launch
#       splitter; a second peer (gst-launch) joins 2.5 s later: the app must
#       print growing stats, decode, see peer-added, and exit 0.
#   app-test.sh cpp-peer-rejoin|py-peer-rejoin APP...   the splitter is
#       SIGKILLed 2.5 s into the run and restarted on the same port 1 s
#       later: the app must report the "rejoining" warning and the
#       Reconnecting / Rejoined element messages, and go on.
#   app-test.sh cpp-splitter APP...       the splitter app on port 0; two
#       gst-launch peers join, then the second one is frozen (SIGSTOP):
#       peer-added twice, growing chunks-sent, the frozen peer removed for
#       "timeout" (peer-removed + GstP2pspSplitterPeerRemoved), exit 0.
#
# Uses tests/e2e/lib.sh (process groups, cleanup on exit, isolated registry).
set -u
mode=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
src_dir=${P2PSP_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
. "$src_dir/tests/e2e/lib.sh"
e2e_init "apps-$mode"
e2e_need_elements videotestsrc theoraenc oggmux decodebin theoradec fakesink
CHECK="/usr/bin/python3 $here/check_app_output.py"
APP_SECONDS=7
SOURCE="videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ! theoraenc ! oggmux"

case "$mode" in
  cpp-peer | py-peer)
    if [ "$mode" = py-peer ]; then
      /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2>/dev/null ||
        e2e_skip "no PyGObject with Gst 1.0 on /usr/bin/python3"
    fi
    e2e_start_splitter "$SOURCE"
    t0=$(e2e_now)
    e2e_spawn app "$@" --json --seconds "$APP_SECONDS" --uri "p2psp://127.0.0.1:$SPLITTER_PORT"
    app_pid=$E2E_LAST_PID
    sleep 2.5
    second_t=$(e2e_elapsed "$t0")
    e2e_spawn peer2 gst-launch-1.0 p2pspsrc "uri=p2psp://127.0.0.1:$SPLITTER_PORT" ! fakesink
    e2e_wait_exit "$app_pid" $((APP_SECONDS + 10)) || e2e_fail "the app did not stop after --seconds $APP_SECONDS"
    [ "$E2E_RC" = 0 ] || e2e_fail "the app exited with $E2E_RC"
    $CHECK peer "$E2E_TMP/app.log" "$second_t" || e2e_fail "app output checks"
    ;;
  cpp-peer-rejoin | py-peer-rejoin)
    if [ "$mode" = py-peer-rejoin ]; then
      /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' 2>/dev/null ||
        e2e_skip "no PyGObject with Gst 1.0 on /usr/bin/python3"
    fi
    e2e_start_splitter "$SOURCE"
    port=$SPLITTER_PORT
    e2e_spawn app "$@" --json --seconds 11 --uri "p2psp://127.0.0.1:$port"
    app_pid=$E2E_LAST_PID
    sleep 2.5
    # No goodbye: the peer only sees its TCP connection drop.
    kill -KILL -- "-$SPLITTER_PID"
    wait "$SPLITTER_PID" 2>/dev/null
    sleep 1
    E2E_SPLITTER_NAME=splitter2 e2e_start_splitter "$SOURCE" "port=$port"
    [ "$SPLITTER_PORT" = "$port" ] || e2e_fail "the new splitter got port $SPLITTER_PORT, not $port"
    e2e_wait_exit "$app_pid" 20 || e2e_fail "the app did not stop after --seconds 11"
    [ "$E2E_RC" = 0 ] || e2e_fail "the app exited with $E2E_RC"
    $CHECK rejoin "$E2E_TMP/app.log" || e2e_fail "app output checks"
    ;;
  cpp-splitter)
    t0=$(e2e_now)
    e2e_spawn app "$@" --json --seconds "$APP_SECONDS" --host 127.0.0.1 --port 0 \
      --pipeline "$SOURCE"
    app_pid=$E2E_LAST_PID
    port=
    for _ in $(seq 100); do
      port=$(grep -a -o '"port":[0-9]*' "$E2E_TMP/app.log" | head -1 | cut -d: -f2)
      [ -n "$port" ] && break
      sleep 0.05
    done
    [ -n "$port" ] || { e2e_show_log app; e2e_die "the splitter app printed no port"; }
    e2e_log "splitter app on port $port"
    e2e_spawn peer1 gst-launch-1.0 p2pspsrc "uri=p2psp://127.0.0.1:$port" ! fakesink
    sleep 1
    e2e_spawn peer2 gst-launch-1.0 p2pspsrc "uri=p2psp://127.0.0.1:$port" ! fakesink
    peer2_pid=$E2E_LAST_PID
    sleep 2.5
    # Frozen with its sockets open: only the missing heartbeats tell.
    kill -STOP -- "-$peer2_pid"
    e2e_wait_exit "$app_pid" $((APP_SECONDS + 10)) || e2e_fail "the app did not stop after --seconds $APP_SECONDS"
    [ "$E2E_RC" = 0 ] || e2e_fail "the app exited with $E2E_RC"
    $CHECK splitter "$E2E_TMP/app.log" || e2e_fail "app output checks"
    ;;
  *) e2e_die "unknown mode $mode" ;;
esac

[ "$E2E_FAILED" = 0 ] || e2e_show_log app 60
e2e_finish
