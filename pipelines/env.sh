# Sourced by the pipelines/*.sh scripts: finds the gst-p2psp plugin.
#   P2PSP_PLUGIN_DIR  directory holding libgstp2psp.so; by default the first
#                     of build/plugin, build-*/plugin that has it; if none,
#                     the installed plugin (if any) is used.
#   HOST              splitter address (default 127.0.0.1)
_p2psp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${P2PSP_PLUGIN_DIR:-}" ]; then
  for _d in "$_p2psp_root"/build/plugin "$_p2psp_root"/build*/plugin; do
    if [ -f "$_d/libgstp2psp.so" ]; then
      P2PSP_PLUGIN_DIR=$_d
      break
    fi
  done
fi
if [ -n "${P2PSP_PLUGIN_DIR:-}" ]; then
  export GST_PLUGIN_PATH_1_0="$P2PSP_PLUGIN_DIR${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
fi
if ! gst-inspect-1.0 p2pspsrc >/dev/null 2>&1; then
  echo "p2pspsrc not found: build the plugin first (scripts/build.sh) or set P2PSP_PLUGIN_DIR" >&2
  exit 1
fi
HOST=${HOST:-127.0.0.1}

# p2psp_port_from_log LOGFILE PID: waits for "current-port = N" (printed by
# gst-launch-1.0 -v) and prints N.
p2psp_port_from_log() {
  local i port
  for i in $(seq 200); do
    port=$(grep -a -o 'current-port = [0-9]*' "$1" 2>/dev/null | awk '$3 > 0 { p = $3 } END { print p }')
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
