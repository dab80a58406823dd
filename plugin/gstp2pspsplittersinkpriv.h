/* gst-p2psp: p2pspsplittersink's private header, shared by its files:
 * gstp2pspsplittersink.cc (GObject glue: properties, signals, start/stop,
 * render, wait-for-peers, events to signals and messages),
 * gstp2pspsplittersinkprops.cc (the property specs) and
 * gstp2pspsplitterio.cc (the splitter's callbacks over the shared TeamIo:
 * binding, accepting peers, slow peers, the core's timer, stats).
 *
 * Who owns what: Settings under the object lock; the Run and the TeamIo
 * under core_mutex (streaming thread, poll thread, property readers), both
 * replaced whole by start(); sockets are only closed on the poll thread (or
 * after it stopped); num-peers and wait-for-peers under peers_mutex. */
#pragma once

#include <gst/p2psp/auth.h>
#include <gst/p2psp/icy.h>
#include <gst/p2psp/splitter.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "gstp2pspconnections.h"
#include "gstp2pspenums.h"
#include "gstp2pspsplittersink.h"
#include "gstp2pspteamio.h"
#include "gstp2psptracker.h"
#include "gstp2psputil.h"

GST_DEBUG_CATEGORY_EXTERN(gst_p2psp_splitter_sink_debug);
#define GST_CAT_DEFAULT gst_p2psp_splitter_sink_debug

using p2psp_gst::GErrorPtr;
using p2psp_gst::GRef;

namespace p2psp_sink {

constexpr const char *DEFAULT_HOST = "0.0.0.0";
/* The port the P2PSP console tools used. */
constexpr gint DEFAULT_PORT = 4552;
/* Fills a datagram that crosses a 1500-byte MTU unfragmented (IPv4 and
 * IPv6, origin stated or not): docs/protocol.md, "Chunk size". */
constexpr guint DEFAULT_CHUNK_SIZE = p2psp::kDefaultChunkSize;
constexpr guint MIN_CHUNK_SIZE = 64;
constexpr guint MAX_CHUNK_SIZE = 65000; /* p2psp::kMaxChunkPayload */
constexpr guint DEFAULT_MAX_PEERS = 0;
constexpr guint DEFAULT_WAIT_FOR_PEERS = 0;
/* Team health, the core's defaults (docs/protocol.md section 10). */
constexpr guint DEFAULT_MONITORS = 0;
constexpr guint DEFAULT_MAX_CHUNK_LOSS = 32;
constexpr guint DEFAULT_PEER_TIMEOUT_MS = 1500;
/* After the stream's end the team still recovers its last chunks from the
 * splitter (NACKs) for this long: more than the peers' default latency
 * (200 ms) and one retry. */
constexpr guint DEFAULT_LINGER_MS = 500;
constexpr guint MAX_LINGER_MS = 60000;
constexpr guint MAX_PEER_TIMEOUT_MS = 3600000;
/* Limits on strangers (docs/security.md, "Limits"), the core's defaults. */
constexpr guint DEFAULT_MAX_JOINS_PER_ADDRESS = 64;
constexpr guint DEFAULT_MAX_HANDSHAKES = 256;
constexpr guint DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
constexpr guint MIN_HANDSHAKE_TIMEOUT_MS = 100;
constexpr guint MAX_HANDSHAKE_TIMEOUT_MS = 600000;
/* Unsent control bytes one connection may hold in the splitter: a peer past
 * it stopped reading and is dropped (reason "slow"). Any one message gets
 * through an idle connection whatever its size (frames are at most 1 MiB). */
constexpr guint DEFAULT_MAX_CONTROL_BACKLOG = 1 << 20;
constexpr guint MIN_MAX_CONTROL_BACKLOG = 1024;
/* Join bursts (docs/protocol.md 7.4): at most 4 MiB each; paced at four
 * times the stream's rate, at least 10 Mb/s, unless burst-rate says. */
constexpr guint DEFAULT_BURST_MAX_BYTES = 4 << 20;
constexpr guint DEFAULT_BURST_RATE = 0;

/* The element message posted for every peer that leaves the team. */
constexpr const char *kPeerRemovedMessage = "GstP2pspSplitterPeerRemoved";

/* How long stop() lets queued TCP output (REMOVED messages) drain. */
constexpr gint64 kStopFlushTimeoutUs = 200000;
/* A buffer this much behind the clock is late: the start of a backlog that
 * is paced (CatchUpPacer). Less is the jitter of a live source. */
constexpr GstClockTime kCatchUpSlack = 20 * GST_MSECOND;
constexpr gint64 kStopFlushPollUs = 5000;
constexpr size_t kReceiveBatch = 16;
constexpr size_t kTcpReadSize = 16384;
constexpr gint kListenBacklog = 64;

enum {
  PROP_0,
  PROP_HOST,
  PROP_PORT,
  PROP_CURRENT_PORT,
  PROP_CHUNK_SIZE,
  PROP_MAX_PEERS,
  PROP_NUM_PEERS,
  PROP_WAIT_FOR_PEERS,
  PROP_MONITORS,
  PROP_MAX_CHUNK_LOSS,
  PROP_PEER_TIMEOUT,
  PROP_LINGER,
  PROP_PASSPHRASE,
  PROP_ENCRYPT,
  PROP_SIGN_CHUNKS,
  PROP_LEARN_SHARES,
  PROP_MAX_JOINS_PER_ADDRESS,
  PROP_MAX_HANDSHAKES,
  PROP_HANDSHAKE_TIMEOUT,
  PROP_MAX_CONTROL_BACKLOG,
  PROP_BURST_MAX_BYTES,
  PROP_BURST_RATE,
  PROP_TRACKER,
  PROP_CHANNEL,
  PROP_ANNOUNCE_KEY,
  PROP_MULTICAST_GROUP,
  PROP_MULTICAST_PORT,
  PROP_MULTICAST_IFACE,
  PROP_TTL_MC,
  PROP_STATS,
  N_PROPERTIES
};

enum { SIGNAL_PEER_ADDED, SIGNAL_PEER_REMOVED, SIGNAL_REMOVE_PEER, N_SIGNALS };

extern GParamSpec *properties[N_PROPERTIES];
extern guint signals[N_SIGNALS];

/* Copied under the object lock at start(): the run uses one consistent set. */
struct Settings {
  std::string host = DEFAULT_HOST;
  gint port = DEFAULT_PORT;
  guint chunk_size = DEFAULT_CHUNK_SIZE;
  // Left at the default, the chunk shrinks to make room for a signature and
  // a seal, so datagrams never fragment.
  bool chunk_size_set = false;
  guint max_peers = DEFAULT_MAX_PEERS;
  guint monitors = DEFAULT_MONITORS;
  guint max_chunk_loss = DEFAULT_MAX_CHUNK_LOSS;
  guint peer_timeout_ms = DEFAULT_PEER_TIMEOUT_MS;
  guint linger_ms = DEFAULT_LINGER_MS;
  std::string passphrase; /* never logged, never readable */
  gboolean encrypt = TRUE;
  gboolean sign_chunks = FALSE;
  /* Adaptive chunk shares learned from the team (docs/protocol.md 10.7). */
  gboolean learn_shares = FALSE;
  guint max_joins_per_address = DEFAULT_MAX_JOINS_PER_ADDRESS;
  guint max_handshakes = DEFAULT_MAX_HANDSHAKES;
  guint handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
  guint max_control_backlog = DEFAULT_MAX_CONTROL_BACKLOG;
  guint burst_max_bytes = DEFAULT_BURST_MAX_BYTES;
  guint burst_rate = DEFAULT_BURST_RATE; /* bits per second, 0: auto */
  /* Channels (docs/tracker.md): announce the team to this tracker. */
  std::string tracker; /* http://host:port[,http://...], empty: none */
  std::string channel;
  std::string announce_key; /* never logged, never readable */
  /* IP multicast on the LAN (docs/protocol.md 8.5); empty group: off. */
  std::string multicast_group;
  guint multicast_port = 0; /* 0: the splitter's UDP port */
  std::string multicast_iface;
  gint ttl_mc = 1;
};

enum class State { kStopped, kRunning };

/* An event of the core, with the reason the element gives it. */
struct PendingEvent {
  p2psp::SplitterEvent event;
  GstP2pspRemoveReason reason = GST_P2PSP_REMOVE_REASON_UNKNOWN;
};

/* Everything one run holds. start() replaces it whole (no reset list); the
 * finished run stays for its stats until the next start(). */
struct Run {
  State state = State::kStopped;
  std::unique_ptr<p2psp::Splitter> splitter;
  /* Members dropped for a backed-up channel, until their event is taken. */
  std::unordered_set<uint32_t> slow_peers;
  std::deque<PendingEvent> pending_events;
  /* Caps held back while wait-for-peers holds the stream. */
  std::string pending_caps;
  bool has_pending_caps = false;
  uint64_t rejected_accepts = 0;
  uint64_t peers_slow = 0; /* connections dropped for their backlog */
};

}  // namespace p2psp_sink

using namespace p2psp_sink;

/* Everything C++ lives here, so its constructors and destructors run. */
struct SplitterSinkPrivate {
  /* Object lock. */
  Settings settings;
  guint wait_for_peers = DEFAULT_WAIT_FOR_PEERS;
  gint current_port = -1;

  /* core_mutex guards the run (the splitter, the counters the core does not
   * keep) and the I/O object's sockets, connection table and counters.
   * Outboxes are dispatched under it too (the sends never block), so
   * datagrams leave in the order they were cut. Reset with the run. */
  std::mutex core_mutex;
  Run run;
  p2psp_gst::TeamIo io;
  /* Announces the team to the tracker while running (streaming thread:
   * start/stop only). */
  std::vector<std::unique_ptr<p2psp_gst::TrackerAnnouncer>> announcers;

  /* Typefinding a stream that came without caps (streaming thread only):
   * the core it is done for, and the buffers held meanwhile. */
  struct {
    const void *core = nullptr;
    bool done = false;
    std::vector<uint8_t> bytes;
    std::vector<p2psp::MediaBuffer> held;
    gint64 since_us = 0; /* monotonic time of the first held buffer */
  } typefind;

  /* ICY metadata taken out of an application/x-icy stream before it is
   * typefound and cut (streaming thread only; null: none). */
  std::unique_ptr<p2psp::IcyDeinterleaver> icy;

  /* Serialises signal emission so handlers see events in order; never held
   * together with core_mutex. */
  std::mutex emit_mutex;

  /* peers_mutex guards what wait-for-peers waits on. */
  std::mutex peers_mutex;
  std::condition_variable peers_cond;
  guint num_peers = 0;
  bool unlocked = false;
  /* The team reached wait-for-peers once in this run: from then on peers
   * leaving never stall the stream again (the others still need it). */
  bool team_reached = false;
  /* Owned by the streaming thread (render()). */
  p2psp_gst::CatchUpPacer pacer;
  uint64_t paced_buffers = 0; /* under peers_mutex, for stats */
};

struct _GstP2pspSplitterSink {
  GstBaseSink parent;
  SplitterSinkPrivate *priv;
};

namespace p2psp_sink {

/* gstp2pspsplittersink.cc */
void emit_event(GstP2pspSplitterSink *self, const PendingEvent &pending);
void publish_num_peers(GstP2pspSplitterSink *self, guint num_peers);
void emit_pending_events(GstP2pspSplitterSink *self);

/* gstp2pspsplittersinkprops.cc: fills properties[] and installs them. */
void install_properties(GObjectClass *gobject_class);

/* gstp2pspsplitterio.cc */
/* The core's configuration for a run (a new random team id each time). */
p2psp::SplitterConfig splitter_config(const Settings &settings,
                                      guint16 udp_port);
void take_events_locked(Run &run);
void drop_slow_locked(SplitterSinkPrivate *priv, p2psp::ConnId conn,
                      p2psp::Outbox *out);
bool dispatch_locked(SplitterSinkPrivate *priv, p2psp::Outbox &out);
bool collect_watches(SplitterSinkPrivate *priv,
                     p2psp_gst::PollThread::WatchList &list);
void accept_connections(GstP2pspSplitterSink *self);
void drop_connection(GstP2pspSplitterSink *self, p2psp::ConnId conn);
void read_connection(GstP2pspSplitterSink *self, p2psp::ConnId conn);
void on_connection_io(GstP2pspSplitterSink *self, GSocket *sock,
                      GIOCondition cond);
void read_datagrams(GstP2pspSplitterSink *self);
void on_socket_io(GstP2pspSplitterSink *self, GSocket *sock, GIOCondition cond);
p2psp::Micros on_timer(GstP2pspSplitterSink *self, p2psp::Micros now);
GSocket *bind_socket(GInetAddress *inet, guint16 port, GSocketType type,
                     GError **error);
guint16 local_port(GSocket *sock);
gboolean open_sockets(GstP2pspSplitterSink *self, const Settings &settings,
                      GRef<GSocket> *listener, GRef<GSocket> *udp);
gboolean start_poll_thread(GstP2pspSplitterSink *self);
void drain_tcp_output(SplitterSinkPrivate *priv);
GstStructure *peer_structure(const p2psp::SplitterPeerStats &p);
void add_peer_array(GstStructure *s,
                    const std::vector<p2psp::SplitterPeerStats> &peers);
GstStructure *traffic_stats(const p2psp::SplitterStats &st, const Run &run,
                            const p2psp_gst::TeamIo &io, guint num_peers);
void add_health_stats(GstStructure *s, const p2psp::SplitterStats &st);
void add_io_stats(GstStructure *s, const p2psp::SplitterStats &st,
                  const Run &run, p2psp_gst::TeamIo &io, guint64 paced);
GstStructure *build_stats(GstP2pspSplitterSink *self);
gboolean remove_peer(GstP2pspSplitterSink *self, guint peer_id);
/* Channels (docs/tracker.md): false (an element error posted) on settings
 * that cannot work. */
gboolean check_tracker_settings(GstP2pspSplitterSink *self,
                                const Settings &settings);
void start_announcing(GstP2pspSplitterSink *self, const Settings &settings,
                      guint16 tcp_port, guint32 team_id);
void stop_announcing(GstP2pspSplitterSink *self);

/* Runs one core operation and dispatches its outbox. */
template <typename Op>
void run_core(GstP2pspSplitterSink *self, Op op) {
  SplitterSinkPrivate *priv = self->priv;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    if (priv->run.state != State::kRunning || !priv->run.splitter) return;
    p2psp::Outbox out;
    op(*priv->run.splitter, p2psp_gst::monotonic_now_us(), &out);
    wake = dispatch_locked(priv, out);
  }
  if (wake) priv->io.wake();
  emit_pending_events(self);
}

}  // namespace p2psp_sink
