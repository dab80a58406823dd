/* gst-p2psp: p2pspsplittersink's property specs (names, ranges, defaults,
 * blurbs; docs/elements.md lists them). Kept apart from the element's glue
 * so that adding one is a change here, in Settings and in set/get. */
#include "gstp2pspsplittersinkpriv.h"

namespace p2psp_sink {

namespace {
constexpr auto kReadWrite = static_cast<GParamFlags>(
    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
constexpr auto kReadOnly =
    static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

/* Where and how the team is served. */
void install_stream_properties() {
  properties[PROP_HOST] = g_param_spec_string(
      "host", "Host",
      "Address to listen on (\"0.0.0.0\": every IPv4 interface; \"::\": "
      "IPv6 and IPv4)",
      DEFAULT_HOST, kReadWrite);
  properties[PROP_PORT] = g_param_spec_int(
      "port", "Port",
      "TCP port peers join on; UDP uses the same number when free (0: pick "
      "one, see current-port)",
      0, G_MAXUINT16, DEFAULT_PORT, kReadWrite);
  properties[PROP_CURRENT_PORT] =
      g_param_spec_int("current-port", "Current port",
                       "TCP port actually bound (-1 when not listening)", -1,
                       G_MAXUINT16, -1, kReadOnly);
  properties[PROP_CHUNK_SIZE] = g_param_spec_uint(
      "chunk-size", "Chunk size",
      "Stream bytes per chunk (one UDP datagram). Unset, it fills a 1452-byte "
      "datagram: 1430, less 64 with sign-chunks and 28 with a passphrase",
      MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, kReadWrite);
  properties[PROP_MAX_PEERS] =
      g_param_spec_uint("max-peers", "Maximum peers",
                        "Largest team; later peers are rejected (0: no limit)",
                        0, G_MAXUINT, DEFAULT_MAX_PEERS, kReadWrite);
  properties[PROP_NUM_PEERS] = g_param_spec_uint("num-peers", "Number of peers",
                                                 "Peers currently in the team",
                                                 0, G_MAXUINT, 0, kReadOnly);
  properties[PROP_WAIT_FOR_PEERS] = g_param_spec_uint(
      "wait-for-peers", "Wait for peers",
      "Hold the stream until this many peers are in the team (0: never "
      "wait; chunks cut with no peer are dropped)",
      0, G_MAXUINT, DEFAULT_WAIT_FOR_PEERS,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                               GST_PARAM_MUTABLE_PLAYING));
}

/* Team health (docs/protocol.md section 10). */
/* IP multicast on the splitter's LAN (docs/protocol.md 8.5); names as in
 * udpsrc (multicast-group) and udpsink (multicast-iface, ttl-mc). */
void install_multicast_properties() {
  properties[PROP_MULTICAST_GROUP] = g_param_spec_string(
      "multicast-group", "Multicast group",
      "IP multicast group (address) the chunks of members on this LAN go "
      "to, once each; members elsewhere still get theirs unicast. Empty: off",
      "", kReadWrite);
  properties[PROP_MULTICAST_PORT] = g_param_spec_uint(
      "multicast-port", "Multicast port",
      "UDP port of the multicast group (0: the splitter's UDP port)", 0, 65535,
      0, kReadWrite);
  properties[PROP_MULTICAST_IFACE] = g_param_spec_string(
      "multicast-iface", "Multicast interface",
      "Network interface to send to the group on (empty: the one of host, "
      "or the routing table's)",
      "", kReadWrite);
  properties[PROP_TTL_MC] = g_param_spec_int(
      "ttl-mc", "Multicast TTL",
      "TTL (IPv6: hop limit) of datagrams to the group (1: this LAN only)", 0,
      255, 1, kReadWrite);
}

void install_health_properties() {
  properties[PROP_MONITORS] = g_param_spec_uint(
      "monitors", "Monitors",
      "The first peers to register are made monitors (report their lost "
      "chunks) until this many members are monitors; peers can also ask "
      "(p2pspsrc monitor=true)",
      0, G_MAXUINT, DEFAULT_MONITORS, kReadWrite);
  properties[PROP_MAX_CHUNK_LOSS] = g_param_spec_uint(
      "max-chunk-loss", "Maximum chunk loss",
      "A peer whose chunks monitors reported lost more than this many times "
      "(a counter halved every second) is expelled (0: never)",
      0, G_MAXUINT, DEFAULT_MAX_CHUNK_LOSS, kReadWrite);
  properties[PROP_PEER_TIMEOUT] = g_param_spec_uint(
      "peer-timeout", "Peer timeout",
      "A peer not heard from (heartbeats, any datagram) for this many "
      "milliseconds is removed (0: never)",
      0, MAX_PEER_TIMEOUT_MS, DEFAULT_PEER_TIMEOUT_MS, kReadWrite);
  properties[PROP_LINGER] = g_param_spec_uint(
      "linger", "Linger",
      "At the end of the stream, keep answering the team's NACKs for this "
      "many milliseconds before telling the peers it ended, so that chunks "
      "lost just before the end are recovered (set it above the peers' "
      "latency; 0: end at once)",
      0, MAX_LINGER_MS, DEFAULT_LINGER_MS, kReadWrite);
}

/* Authentication (docs/security.md). */
void install_security_properties() {
  properties[PROP_PASSPHRASE] = g_param_spec_string(
      "passphrase", "Passphrase",
      "Team passphrase (10 to 79 characters, write-only): only peers that "
      "know it join, every datagram is authenticated (empty: open team)",
      nullptr,
      static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                               GST_PARAM_MUTABLE_READY));
  properties[PROP_ENCRYPT] = g_param_spec_boolean(
      "encrypt", "Encrypt",
      "With a passphrase, encrypt the chunks and control datagrams too "
      "(FALSE: authenticate only)",
      TRUE, kReadWrite);
  properties[PROP_SIGN_CHUNKS] = g_param_spec_boolean(
      "sign-chunks", "Sign chunks",
      "Sign every chunk (Ed25519, 64 bytes each) so peers drop altered ones "
      "and report the sender, who is expelled once two peers reported it",
      FALSE, kReadWrite);
  properties[PROP_LEARN_SHARES] = g_param_spec_boolean(
      "learn-shares", "Learn shares",
      "Deal each peer chunks in proportion to what the team sees it "
      "forward, not only to the upload-limit it stated: a peer's first "
      "chunk is checked by an echo, and a peer whose chunks the team misses "
      "is dealt fewer, down to none (it still gets the whole stream)",
      FALSE, kReadWrite);
}

/* Limits on strangers, slow peers and join bursts (docs/security.md,
 * "Limits"). */
void install_limit_properties() {
  properties[PROP_MAX_JOINS_PER_ADDRESS] = g_param_spec_uint(
      "max-joins-per-address", "Maximum joins per address",
      "TCP connections one source address (IPv6: one /64) may open at once; "
      "the allowance comes back over 10 s, so a flood from one address is "
      "refused at once (0: no limit)",
      0, G_MAXUINT, DEFAULT_MAX_JOINS_PER_ADDRESS, kReadWrite);
  properties[PROP_MAX_HANDSHAKES] = g_param_spec_uint(
      "max-handshakes", "Maximum handshakes",
      "TCP connections still joining at once, all addresses; more are "
      "refused at once (0: no limit)",
      0, G_MAXUINT, DEFAULT_MAX_HANDSHAKES, kReadWrite);
  properties[PROP_HANDSHAKE_TIMEOUT] = g_param_spec_uint(
      "handshake-timeout", "Handshake timeout",
      "A connection that has not completed its join (JOIN, then the UDP "
      "REGISTER) within this many milliseconds is closed",
      MIN_HANDSHAKE_TIMEOUT_MS, MAX_HANDSHAKE_TIMEOUT_MS,
      DEFAULT_HANDSHAKE_TIMEOUT_MS, kReadWrite);
  properties[PROP_MAX_CONTROL_BACKLOG] = g_param_spec_uint(
      "max-control-backlog", "Maximum control backlog",
      "Unsent control (TCP) bytes the splitter holds for one peer; a peer "
      "that lets more pile up (it stopped reading) is removed with reason "
      "\"slow\" and counted in peers-slow. One message always gets through",
      MIN_MAX_CONTROL_BACKLOG, G_MAXUINT, DEFAULT_MAX_CONTROL_BACKLOG,
      kReadWrite);
  properties[PROP_BURST_MAX_BYTES] = g_param_spec_uint(
      "burst-max-bytes", "Maximum join burst",
      "A joining peer gets the stream from its latest keyframe (start "
      "point) at once, like tcpserversink's burst-keyframe, if that is at "
      "most this many bytes and still held; otherwise it waits for the next "
      "one (0: no join bursts)",
      0, G_MAXUINT, DEFAULT_BURST_MAX_BYTES, kReadWrite);
  properties[PROP_BURST_RATE] = g_param_spec_uint(
      "burst-rate", "Join burst rate",
      "Bits per second a join burst is paced at, after its first 32 KiB "
      "(0: four times the stream's bitrate, at least 10 Mb/s)",
      0, G_MAXUINT, DEFAULT_BURST_RATE, kReadWrite);
}

/* Channels: announcing the team to a tracker (docs/tracker.md). */
void install_channel_properties() {
  properties[PROP_TRACKER] = g_param_spec_string(
      "tracker", "Tracker",
      "Announce the team to this p2psp-tracker (http://host:port; several, "
      "comma-separated) under \"channel\", every second, and withdraw it on "
      "stop: peers then join with p2psp://tracker:port/channel "
      "(docs/tracker.md)",
      nullptr, kReadWrite);
  properties[PROP_CHANNEL] = g_param_spec_string(
      "channel", "Channel",
      "The channel this team serves at the tracker (letters, digits, '.', "
      "'_', '-'; like an Icecast mountpoint)",
      nullptr, kReadWrite);
  properties[PROP_ANNOUNCE_KEY] = g_param_spec_string(
      "announce-key", "Announce key",
      "The tracker's announce key, if it has one (write-only)", nullptr,
      static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                               GST_PARAM_MUTABLE_READY));
}

}  // namespace

void install_properties(GObjectClass *gobject_class) {
  install_stream_properties();
  install_health_properties();
  install_security_properties();
  install_limit_properties();
  install_channel_properties();
  install_multicast_properties();
  properties[PROP_STATS] = g_param_spec_boxed(
      "stats", "Statistics",
      "Counters of the current (or last) run, with one structure per peer",
      GST_TYPE_STRUCTURE, kReadOnly);
  g_object_class_install_properties(gobject_class, N_PROPERTIES, properties);
}

}  // namespace p2psp_sink
