/* gst-p2psp: p2pspsplittersink, the splitter end of a P2PSP team.
 *
 * The element is a thin wrapper: p2psp::Splitter decides everything (who is
 * in the team, which peer gets which chunk); this file moves bytes between it
 * and the sockets. render() cuts and sends without ever waiting for the
 * network; a poll thread accepts peers, reads their TCP control messages and
 * UDP registrations, flushes TCP output, and runs the core's timers. */

/**
 * SECTION:element-p2pspsplittersink
 * @title: p2pspsplittersink
 * @see_also: p2pspsrc
 *
 * Turns the stream it receives into a P2PSP team: the stream is cut into
 * numbered chunks and each chunk is sent by UDP to one peer of the team,
 * round-robin; the peers (p2pspsrc elements) flood the chunks to each other
 * and rebuild the stream. Peers join over TCP on #GstP2pspSplitterSink:port;
 * the caps (with their streamheader) are sent to every peer that joins, so
 * late joiners can start decoding at the next keyframe.
 *
 * The sink never waits for the network: with no peer in the team the chunks
 * are dropped (and counted in #GstP2pspSplitterSink:stats) and the pipeline
 * runs on, unless #GstP2pspSplitterSink:wait-for-peers asks it to hold the
 * stream until enough peers have joined.
 *
 * The team heals itself: peers heartbeat, and a member silent for
 * #GstP2pspSplitterSink:peer-timeout is removed; monitors (the first
 * #GstP2pspSplitterSink:monitors peers, or peers that ask) report lost
 * chunks, and a peer whose chunks are lost too often is expelled
 * (#GstP2pspSplitterSink:max-chunk-loss). Every removal posts a
 * "GstP2pspSplitterPeerRemoved" element message with its reason.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux ! \
 *     p2pspsplittersink port=4552
 * ]| Streams a live test video to every peer that joins on port 4552.
 * |[
 * gst-launch-1.0 souphttpsrc location=http://host:8000/stream.ogg ! \
 *     p2pspsplittersink
 * ]| Relays an Icecast stream to a team.
 * |[
 * gst-launch-1.0 p2pspsrc uri=p2psp://splitter-host:4552 ! decodebin ! \
 *     autovideosink
 * ]| A peer of either team.
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux ! \
 *     p2pspsplittersink port=4552 passphrase="correct horse battery"
 * ]| An authenticated team: only peers given the same
 * #GstP2pspSplitterSink:passphrase join, and every datagram is
 * authenticated and encrypted (#GstP2pspSplitterSink:encrypt=false keeps
 * the authentication but sends the payload in clear). See docs/security.md.
 */

#include "gstp2pspsplittersink.h"

#include <gst/p2psp/auth.h>
#include <gst/p2psp/splitter.h>
#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "gstp2pspconnections.h"
#include "gstp2pspelements.h"
#include "gstp2pspenums.h"
#include "gstp2psputil.h"

GST_DEBUG_CATEGORY_STATIC(gst_p2psp_splitter_sink_debug);
#define GST_CAT_DEFAULT gst_p2psp_splitter_sink_debug

using p2psp_gst::GErrorPtr;
using p2psp_gst::GRef;

namespace {

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

/* The element message posted for every peer that leaves the team. */
constexpr const char *kPeerRemovedMessage = "GstP2pspSplitterPeerRemoved";

/* How long stop() lets queued TCP output (REMOVED messages) drain. */
constexpr gint64 kStopFlushTimeoutUs = 200000;
constexpr gint64 kStopFlushPollUs = 5000;
constexpr size_t kReceiveBatch = 16;
constexpr size_t kTcpReadSize = 16384;
constexpr gint kListenBacklog = 64;
constexpr p2psp::Micros kCloseGraceUs = 2000000;

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
  PROP_PASSPHRASE,
  PROP_ENCRYPT,
  PROP_SIGN_CHUNKS,
  PROP_MAX_JOINS_PER_ADDRESS,
  PROP_MAX_HANDSHAKES,
  PROP_HANDSHAKE_TIMEOUT,
  PROP_MAX_CONTROL_BACKLOG,
  PROP_STATS,
  N_PROPERTIES
};

enum { SIGNAL_PEER_ADDED, SIGNAL_PEER_REMOVED, SIGNAL_REMOVE_PEER, N_SIGNALS };

GParamSpec *properties[N_PROPERTIES];
guint signals[N_SIGNALS];

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
  std::string passphrase; /* never logged, never readable */
  gboolean encrypt = TRUE;
  gboolean sign_chunks = FALSE;
  guint max_joins_per_address = DEFAULT_MAX_JOINS_PER_ADDRESS;
  guint max_handshakes = DEFAULT_MAX_HANDSHAKES;
  guint handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
  guint max_control_backlog = DEFAULT_MAX_CONTROL_BACKLOG;
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
  GRef<GSocket> listener;
  GRef<GSocket> udp;
  p2psp_gst::ConnectionTable connections;
  size_t max_backlog = DEFAULT_MAX_CONTROL_BACKLOG;
  /* Members dropped for a backed-up channel, until their event is taken. */
  std::unordered_set<uint32_t> slow_peers;
  std::deque<PendingEvent> pending_events;
  /* Caps held back while wait-for-peers holds the stream. */
  std::string pending_caps;
  bool has_pending_caps = false;
  p2psp::Micros armed_deadline = UINT64_MAX;
  uint64_t datagrams_dropped = 0;
  uint64_t rejected_accepts = 0;
  uint64_t peers_slow = 0; /* connections dropped for their backlog */
  std::vector<p2psp_gst::ReceivedDatagram> rx_batch =
      std::vector<p2psp_gst::ReceivedDatagram>(kReceiveBatch);
};

GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

}  // namespace

/* Everything C++ lives here, so its constructors and destructors run. */
struct SplitterSinkPrivate {
  /* Object lock. */
  Settings settings;
  guint wait_for_peers = DEFAULT_WAIT_FOR_PEERS;
  gint current_port = -1;

  /* core_mutex guards the run: the splitter, the sockets' bookkeeping and the
   * counters the core does not keep. Outboxes are dispatched under it too
   * (the sends never block), so datagrams leave in the order they were cut. */
  std::mutex core_mutex;
  Run run;
  p2psp_gst::PollThread poll;

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
};

struct _GstP2pspSplitterSink {
  GstBaseSink parent;
  SplitterSinkPrivate *priv;
};

#define gst_p2psp_splitter_sink_parent_class parent_class
G_DEFINE_TYPE(GstP2pspSplitterSink, gst_p2psp_splitter_sink,
              GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(p2pspsplittersink, "p2pspsplittersink",
                            GST_RANK_NONE, GST_TYPE_P2PSP_SPLITTER_SINK);

namespace {

SplitterSinkPrivate *priv_of(gpointer self) {
  return GST_P2PSP_SPLITTER_SINK(self)->priv;
}

/* ------------------------------------------------------------ events ---- */

void emit_event(GstP2pspSplitterSink *self, const PendingEvent &pending) {
  const p2psp::SplitterEvent &ev = pending.event;
  const std::string endpoint = ev.endpoint.to_string();
  const bool added = ev.kind == p2psp::SplitterEvent::Kind::kPeerAdded;
  const char *reason =
      p2psp_gst::enum_nick(GST_TYPE_P2PSP_REMOVE_REASON, pending.reason);
  GST_INFO_OBJECT(self, "peer %u (%s) %s", ev.peer_id, endpoint.c_str(),
                  added ? "joined" : reason);
  g_signal_emit(self, signals[added ? SIGNAL_PEER_ADDED : SIGNAL_PEER_REMOVED],
                0, ev.peer_id, endpoint.c_str());
  /* The signal keeps its two arguments (handlers written for them, Python
   * lambdas included, would break on a third); the reason goes on the bus. */
  if (!added) {
    GstStructure *s = gst_structure_new(
        kPeerRemovedMessage, "peer-id", G_TYPE_UINT, ev.peer_id, "endpoint",
        G_TYPE_STRING, endpoint.c_str(), "reason", G_TYPE_STRING, reason,
        nullptr);
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_element(GST_OBJECT(self), s));
  }
}

void publish_num_peers(GstP2pspSplitterSink *self, guint num_peers) {
  SplitterSinkPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    if (priv->num_peers == num_peers) return;
    priv->num_peers = num_peers;
  }
  priv->peers_cond.notify_all();
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_NUM_PEERS]);
}

/* Emits the events the core produced, outside core_mutex so that handlers
 * may read properties. Whichever thread gets here first emits everything
 * pending, in order. */
void emit_pending_events(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  std::lock_guard<std::mutex> emit_lock(priv->emit_mutex);
  for (;;) {
    PendingEvent ev;
    guint num_peers;
    {
      std::lock_guard<std::mutex> lock(priv->core_mutex);
      if (priv->run.pending_events.empty()) return;
      ev = priv->run.pending_events.front();
      priv->run.pending_events.pop_front();
      num_peers = priv->run.splitter ? priv->run.splitter->num_peers() : 0;
    }
    emit_event(self, ev);
    publish_num_peers(self, num_peers);
  }
}

/* ---------------------------------------------------------- dispatch ---- */

/* The core's events, with the element's reasons: a member that closed or
 * said goodbye "left", one dropped for its backlog "slow". */
void take_events_locked(Run &run) {
  for (auto &ev : run.splitter->take_events()) {
    PendingEvent pending{ev, p2psp_gst::remove_reason_of(ev.reason)};
    if (ev.kind == p2psp::SplitterEvent::Kind::kPeerRemoved &&
        ev.reason == p2psp::RemoveReason::kUnknown)
      pending.reason = run.slow_peers.erase(ev.peer_id)
                           ? GST_P2PSP_REMOVE_REASON_SLOW
                           : GST_P2PSP_REMOVE_REASON_LEFT;
    run.pending_events.push_back(std::move(pending));
  }
}

/* A connection whose output backed up past max-control-backlog: its output
 * is dropped, the core forgets it (PEER_LEFT to the others) and the poll
 * thread closes it next round. Called with core_mutex held. */
void drop_slow_locked(Run &run, p2psp::ConnId conn, p2psp::Outbox *out) {
  p2psp_gst::ConnectionTable::Connection *c = run.connections.find(conn);
  /* Gone, abandoned already, or closing anyway (its reap is bounded). */
  if (c == nullptr || c->close_when_flushed) return;
  GST_WARNING("connection %" G_GUINT64_FORMAT
              " (%s) has over %zu bytes of "
              "control output queued: dropping it",
              static_cast<guint64>(conn), c->remote.to_string().c_str(),
              run.max_backlog);
  for (const auto &p : run.splitter->peer_stats())
    if (p.tcp_endpoint == c->remote) run.slow_peers.insert(p.id);
  run.peers_slow++;
  run.connections.abandon(conn);
  run.splitter->on_tcp_closed(conn, p2psp_gst::monotonic_now_us(), out);
}

/* Carries out what the core asked for. Called with core_mutex held. Returns
 * TRUE when the poll thread must be woken (TCP output, a connection to
 * close, or an earlier deadline). */
bool dispatch_locked(SplitterSinkPrivate *priv, p2psp::Outbox &out) {
  Run &run = priv->run;
  bool wake = false;
  std::vector<p2psp::ConnId> slow;
  if (!out.udp.empty() && run.udp)
    run.datagrams_dropped += p2psp_gst::send_datagrams(run.udp.get(), out.udp);
  for (const p2psp::TcpSend &send : out.tcp) {
    if (!run.connections.queue(send.conn, send.data, run.max_backlog))
      slow.push_back(send.conn);
    wake = true;
  }
  for (p2psp::ConnId conn : out.tcp_close) {
    run.connections.close_when_flushed(
        conn, p2psp_gst::monotonic_now_us() + kCloseGraceUs);
    wake = true;
  }
  out.clear();
  if (!run.splitter) return wake;
  p2psp::Outbox more;
  for (p2psp::ConnId conn : slow) drop_slow_locked(run, conn, &more);
  take_events_locked(run);
  /* PEER_LEFT for the dropped ones; each round drops connections, so this
   * ends. */
  if (!more.empty()) wake |= dispatch_locked(priv, more);
  if (run.splitter->next_deadline() < run.armed_deadline) wake = true;
  return wake;
}

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
  if (wake) priv->poll.wake();
  emit_pending_events(self);
}

/* ------------------------------------------------------- poll thread ---- */

/* Closes what is due and returns the poll list, rebuilt only when a
 * connection came, went or changed what it waits for. */
bool collect_watches(SplitterSinkPrivate *priv,
                     p2psp_gst::PollThread::WatchList &list) {
  std::lock_guard<std::mutex> lock(priv->core_mutex);
  Run &run = priv->run;
  /* Connections are only destroyed here, on the poll thread, so the sockets
   * of a watch list stay alive for the whole poll round. */
  run.connections.reap(p2psp_gst::monotonic_now_us());
  return run.connections.watches(run.listener.get(), run.udp.get(), list);
}

void accept_connections(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  for (;;) {
    GError *error = nullptr;
    GSocket *sock = g_socket_accept(priv->run.listener.get(), nullptr, &error);
    GErrorPtr owned(error);
    if (sock == nullptr) {
      if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        /* Typically EMFILE: the peer is turned away, the team goes on. */
        GST_WARNING_OBJECT(self, "accept failed: %s", error->message);
        std::lock_guard<std::mutex> lock(priv->core_mutex);
        priv->run.rejected_accepts++;
      }
      return;
    }
    g_socket_set_blocking(sock, FALSE);
    GSocketAddress *remote_addr = g_socket_get_remote_address(sock, nullptr);
    const p2psp::Endpoint remote =
        p2psp_gst::endpoint_from_address(remote_addr);
    if (remote_addr) g_object_unref(remote_addr);

    p2psp::ConnId conn;
    {
      std::lock_guard<std::mutex> lock(priv->core_mutex);
      /* The kernel's share of a peer's control output is bounded too: its
       * autotuned send buffer would hold megabytes for a peer that stopped
       * reading before max-control-backlog is ever reached. */
      g_socket_set_option(sock, SOL_SOCKET, SO_SNDBUF,
                          static_cast<gint>(priv->run.max_backlog), nullptr);
      conn = priv->run.connections.add(sock, remote);
    }
    GST_DEBUG_OBJECT(self, "TCP connection %" G_GUINT64_FORMAT " from %s",
                     static_cast<guint64>(conn), remote.to_string().c_str());
    run_core(self,
             [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
               s.on_tcp_accepted(conn, remote, now, out);
             });
  }
}

/* Forgets a connection the remote closed (or broke) and tells the core. */
void drop_connection(GstP2pspSplitterSink *self, p2psp::ConnId conn) {
  SplitterSinkPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    if (priv->run.connections.find(conn) == nullptr) return;
    priv->run.connections.erase(conn);
  }
  run_core(self, [&](p2psp::Splitter &s, p2psp::Micros now,
                     p2psp::Outbox *out) { s.on_tcp_closed(conn, now, out); });
}

void read_connection(GstP2pspSplitterSink *self, p2psp::ConnId conn) {
  SplitterSinkPrivate *priv = self->priv;
  uint8_t buf[kTcpReadSize];
  for (;;) {
    gssize n;
    {
      std::lock_guard<std::mutex> lock(priv->core_mutex);
      auto *c = priv->run.connections.find(conn);
      if (c == nullptr || c->close_when_flushed) return;
      n = c->tcp->read_some(buf, sizeof buf);
    }
    if (n == -2) return;
    if (n <= 0) {
      drop_connection(self, conn);
      return;
    }
    run_core(self,
             [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
               s.on_tcp_data(conn, buf, static_cast<size_t>(n), now, out);
             });
  }
}

void on_connection_io(GstP2pspSplitterSink *self, GSocket *sock,
                      GIOCondition cond) {
  SplitterSinkPrivate *priv = self->priv;
  p2psp::ConnId conn = 0;
  bool broken = false;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    conn = priv->run.connections.find(sock);
    if (conn == 0) return;
    if ((cond & G_IO_OUT) && !priv->run.connections.flush(conn)) broken = true;
  }
  if (broken || (cond & (G_IO_ERR | G_IO_NVAL))) {
    drop_connection(self, conn);
    return;
  }
  /* HUP with data pending still reads the data first, then the EOF. */
  if (cond & (G_IO_IN | G_IO_HUP)) read_connection(self, conn);
}

void read_datagrams(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    if (priv->run.state != State::kRunning || !priv->run.splitter) return;
    size_t got;
    while ((got = p2psp_gst::receive_datagrams(priv->run.udp.get(),
                                               priv->run.rx_batch)) > 0) {
      p2psp::Outbox out;
      for (size_t i = 0; i < got; i++) {
        const auto &d = priv->run.rx_batch[i];
        priv->run.splitter->on_udp(d.from, d.data.data(), d.size,
                                   p2psp_gst::monotonic_now_us(), &out);
      }
      wake |= dispatch_locked(priv, out);
      if (got < priv->run.rx_batch.size()) break;
    }
  }
  if (wake) priv->poll.wake();
  emit_pending_events(self);
}

void on_socket_io(GstP2pspSplitterSink *self, GSocket *sock,
                  GIOCondition cond) {
  SplitterSinkPrivate *priv = self->priv;
  if (sock == priv->run.listener.get()) {
    accept_connections(self);
  } else if (sock == priv->run.udp.get()) {
    read_datagrams(self);
  } else {
    on_connection_io(self, sock, cond);
  }
}

p2psp::Micros on_timer(GstP2pspSplitterSink *self, p2psp::Micros now) {
  SplitterSinkPrivate *priv = self->priv;
  p2psp::Micros next;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    if (priv->run.state != State::kRunning || !priv->run.splitter)
      return UINT64_MAX;
    /* The poll thread asks after every round (each datagram): tick only
     * when something is due. */
    if (now >= priv->run.splitter->next_deadline()) {
      p2psp::Outbox out;
      priv->run.splitter->tick(now, &out);
      dispatch_locked(priv, out);
    }
    next = priv->run.splitter->next_deadline();
    priv->run.armed_deadline = next;
  }
  /* The poll thread is the caller: it polls the new TCP output next round. */
  emit_pending_events(self);
  return next;
}

/* ------------------------------------------------------- start, stop ---- */

GSocket *bind_socket(GInetAddress *inet, guint16 port, GSocketType type,
                     GError **error) {
  GSocket *sock = g_socket_new(g_inet_address_get_family(inet), type,
                               G_SOCKET_PROTOCOL_DEFAULT, error);
  if (sock == nullptr) return nullptr;
  GSocketAddress *addr = g_inet_socket_address_new(inet, port);
  /* Reuse lets a restarted TCP listener take its port back from TIME_WAIT;
   * for UDP it would let two splitters share a port, so it stays off. */
  const gboolean reuse = type == G_SOCKET_TYPE_STREAM;
  gboolean ok = g_socket_bind(sock, addr, reuse, error);
  g_object_unref(addr);
  if (ok && type == G_SOCKET_TYPE_STREAM) {
    g_socket_set_listen_backlog(sock, kListenBacklog);
    ok = g_socket_listen(sock, error);
  }
  if (!ok) {
    g_object_unref(sock);
    return nullptr;
  }
  g_socket_set_blocking(sock, FALSE);
  return sock;
}

guint16 local_port(GSocket *sock) {
  GSocketAddress *addr = g_socket_get_local_address(sock, nullptr);
  if (addr == nullptr) return 0;
  guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr));
  g_object_unref(addr);
  return port;
}

/* Binds the TCP listener, then UDP on the same port number so a firewall
 * needs one rule; UDP falls back to any port (WELCOME announces it). */
gboolean open_sockets(GstP2pspSplitterSink *self, const Settings &settings,
                      GRef<GSocket> *listener, GRef<GSocket> *udp) {
  GError *error = nullptr;
  GInetAddress *inet = p2psp_gst::resolve_host(settings.host, nullptr, &error);
  if (inet == nullptr) {
    GErrorPtr owned(error);
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                      ("Could not resolve host \"%s\"", settings.host.c_str()),
                      ("%s", error ? error->message : "no address"));
    return FALSE;
  }
  GRef<GInetAddress> address(inet);

  listener->reset(
      bind_socket(inet, settings.port, G_SOCKET_TYPE_STREAM, &error));
  if (!*listener) {
    GErrorPtr owned(error);
    GST_ELEMENT_ERROR(
        self, RESOURCE, OPEN_READ_WRITE,
        ("Could not bind to %s:%d", settings.host.c_str(), settings.port),
        ("TCP: %s", error->message));
    return FALSE;
  }
  const guint16 port = local_port(listener->get());
  udp->reset(bind_socket(inet, port, G_SOCKET_TYPE_DATAGRAM, nullptr));
  if (!*udp) {
    GST_INFO_OBJECT(self, "UDP port %u taken, using another one", port);
    udp->reset(bind_socket(inet, 0, G_SOCKET_TYPE_DATAGRAM, &error));
  }
  if (!*udp) {
    GErrorPtr owned(error);
    GST_ELEMENT_ERROR(
        self, RESOURCE, OPEN_READ_WRITE,
        ("Could not bind to %s:%d", settings.host.c_str(), settings.port),
        ("UDP: %s", error->message));
    listener->reset();
    return FALSE;
  }
  return TRUE;
}

void set_current_port(GstP2pspSplitterSink *self, gint port) {
  GST_OBJECT_LOCK(self);
  self->priv->current_port = port;
  GST_OBJECT_UNLOCK(self);
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_CURRENT_PORT]);
}

gboolean start_poll_thread(GstP2pspSplitterSink *self) {
  return self->priv->poll.start_cached(
      "p2psp-splitter",
      [self](p2psp_gst::PollThread::WatchList &list) {
        return collect_watches(self->priv, list);
      },
      [self](GSocket *sock, GIOCondition cond) {
        on_socket_io(self, sock, cond);
      },
      [self](p2psp::Micros now) { return on_timer(self, now); });
}

gboolean gst_p2psp_splitter_sink_start(GstBaseSink *sink) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  SplitterSinkPrivate *priv = self->priv;

  GST_OBJECT_LOCK(self);
  const Settings settings = priv->settings;
  GST_OBJECT_UNLOCK(self);

  if (auto problem = p2psp::auth::passphrase_problem(settings.passphrase);
      problem && !settings.passphrase.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid passphrase"),
                      ("%s", problem->c_str()));
    return FALSE;
  }
  GRef<GSocket> listener, udp;
  if (!open_sockets(self, settings, &listener, &udp)) return FALSE;
  const guint16 tcp_port = local_port(listener.get());
  const guint16 udp_port = local_port(udp.get());

  p2psp::SplitterConfig config;
  config.chunk_size = settings.chunk_size_set ? settings.chunk_size : 0;
  config.max_peers = settings.max_peers;
  config.udp_port = udp_port;
  config.team_id = g_random_int();
  config.monitors = settings.monitors;
  config.max_chunk_loss = settings.max_chunk_loss;
  config.peer_timeout_us =
      static_cast<p2psp::Micros>(settings.peer_timeout_ms) * 1000;
  config.passphrase = settings.passphrase;
  config.encrypt = settings.encrypt;
  config.sign_chunks = settings.sign_chunks;
  config.max_joins_per_address = settings.max_joins_per_address;
  config.max_handshakes = settings.max_handshakes;
  config.handshake_timeout_us =
      static_cast<p2psp::Micros>(settings.handshake_timeout_ms) * 1000;
  /* Argon2id runs here, once per start (tens of ms), never per join. */
  std::unique_ptr<p2psp::Splitter> splitter;
  try {
    splitter = std::make_unique<p2psp::Splitter>(config);
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("Could not set up the team's passphrase"),
                      ("%s", e.what()));
    return FALSE;
  }
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run = Run();
    priv->run.splitter = std::move(splitter);
    priv->run.listener = std::move(listener);
    priv->run.udp = std::move(udp);
    priv->run.max_backlog = settings.max_control_backlog;
    priv->run.state = State::kRunning;
  }
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->num_peers = 0;
    priv->team_reached = false;
  }
  if (!start_poll_thread(self)) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                      ("Could not start the network thread"), (nullptr));
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run.state = State::kStopped;
    priv->run.listener.reset();
    priv->run.udp.reset();
    return FALSE;
  }
  GST_INFO_OBJECT(self, "team %08x on %s: TCP port %u, UDP port %u",
                  config.team_id, settings.host.c_str(), tcp_port, udp_port);
  set_current_port(self, tcp_port);
  return TRUE;
}

/* Gives the poll thread a bounded chance to write what is queued (the
 * REMOVED messages of a shutdown): a peer that learns it was removed does not
 * wait for a timeout. */
void drain_tcp_output(SplitterSinkPrivate *priv) {
  const gint64 give_up = g_get_monotonic_time() + kStopFlushTimeoutUs;
  while (g_get_monotonic_time() < give_up) {
    bool pending = false;
    {
      std::lock_guard<std::mutex> lock(priv->core_mutex);
      pending = priv->run.connections.wants_write();
    }
    if (!pending) return;
    priv->poll.wake();
    g_usleep(kStopFlushPollUs);
  }
}

gboolean gst_p2psp_splitter_sink_stop(GstBaseSink *sink) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  SplitterSinkPrivate *priv = self->priv;

  run_core(self, [](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
    s.shutdown(now, out);
  });
  drain_tcp_output(priv);
  priv->poll.stop();
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run.state = State::kStopped;
    priv->run.connections.close_all();
    if (priv->run.listener) g_socket_close(priv->run.listener.get(), nullptr);
    if (priv->run.udp) g_socket_close(priv->run.udp.get(), nullptr);
    priv->run.listener.reset();
    priv->run.udp.reset();
    /* The splitter stays for the stats of the finished run; start() makes a
     * new one. */
  }
  emit_pending_events(self);
  publish_num_peers(self, 0);
  set_current_port(self, -1);
  return TRUE;
}

/* ------------------------------------------------------------ stream ---- */

/* TRUE while wait-for-peers holds (or is about to hold) the stream. */
bool team_short(GstP2pspSplitterSink *self) {
  GST_OBJECT_LOCK(self);
  const guint wanted = self->priv->wait_for_peers;
  GST_OBJECT_UNLOCK(self);
  std::lock_guard<std::mutex> lock(self->priv->peers_mutex);
  return !self->priv->team_reached && self->priv->num_peers < wanted;
}

/* Caps go to the core at once, so peers get them in WELCOME. While
 * wait-for-peers holds the stream the caps frame waits with it (the team
 * that was waited for gets it in-band instead of it being cut for nobody),
 * but WELCOME has them at once: a peer that joins as the team fills up may
 * get its TEAM after the first chunks went out. */
gboolean gst_p2psp_splitter_sink_set_caps(GstBaseSink *sink, GstCaps *caps) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  gchar *text = gst_caps_to_string(caps);
  const std::string caps_string(text);
  g_free(text);
  GST_DEBUG_OBJECT(self, "caps %s", caps_string.c_str());
  if (team_short(self)) {
    std::lock_guard<std::mutex> lock(self->priv->core_mutex);
    self->priv->run.pending_caps = caps_string;
    self->priv->run.has_pending_caps = true;
    if (self->priv->run.splitter)
      self->priv->run.splitter->announce_caps(caps_string);
    return TRUE;
  }
  run_core(self,
           [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
             self->priv->run.has_pending_caps = false;
             s.set_caps(caps_string, now, out);
           });
  return TRUE;
}

/* Called with core_mutex held. */
void apply_pending_caps(SplitterSinkPrivate *priv, p2psp::Micros now,
                        p2psp::Outbox *out) {
  if (!priv->run.has_pending_caps) return;
  priv->run.has_pending_caps = false;
  priv->run.splitter->set_caps(priv->run.pending_caps, now, out);
}

uint64_t running_time_of(const GstSegment *segment, GstClockTime ts) {
  if (!GST_CLOCK_TIME_IS_VALID(ts) || segment->format != GST_FORMAT_TIME)
    return p2psp::kNoTime;
  const guint64 rt = gst_segment_to_running_time(segment, GST_FORMAT_TIME, ts);
  return GST_CLOCK_TIME_IS_VALID(rt) ? rt : p2psp::kNoTime;
}

uint32_t media_flags_of(GstBuffer *buffer) {
  uint32_t flags = 0;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_HEADER))
    flags |= p2psp::MediaBuffer::kHeader;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT))
    flags |= p2psp::MediaBuffer::kDeltaUnit;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT))
    flags |= p2psp::MediaBuffer::kDiscont;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP))
    flags |= p2psp::MediaBuffer::kGap;
  return flags;
}

/* Timestamps travel as splitter running time: peers map them onto their own
 * clock, whatever segment the splitter's input had. */
gboolean media_buffer_from(GstBaseSink *sink, GstBuffer *buffer,
                           p2psp::MediaBuffer *mb) {
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return FALSE;
  mb->data.assign(map.data, map.data + map.size);
  gst_buffer_unmap(buffer, &map);
  mb->pts = running_time_of(&sink->segment, GST_BUFFER_PTS(buffer));
  mb->dts = running_time_of(&sink->segment, GST_BUFFER_DTS(buffer));
  mb->duration = GST_BUFFER_DURATION_IS_VALID(buffer)
                     ? GST_BUFFER_DURATION(buffer)
                     : p2psp::kNoTime;
  mb->flags = media_flags_of(buffer);
  return TRUE;
}

/* Holds the stream until wait-for-peers peers are in (or unlock()), once per
 * run. */
GstFlowReturn wait_for_peers(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  for (;;) {
    GST_OBJECT_LOCK(self);
    const guint wanted = priv->wait_for_peers;
    GST_OBJECT_UNLOCK(self);

    std::unique_lock<std::mutex> lock(priv->peers_mutex);
    if (priv->team_reached) return GST_FLOW_OK;
    if (priv->num_peers >= wanted) {
      priv->team_reached = true;
      return GST_FLOW_OK;
    }
    if (!priv->unlocked) {
      GST_DEBUG_OBJECT(self, "waiting for %u peers (have %u)", wanted,
                       priv->num_peers);
      priv->peers_cond.wait(lock);
      continue;
    }
    lock.unlock();
    /* Unlocked by a flush or a state change: basesink decides whether the
     * stream goes on (OK, wait again) or not. */
    GstFlowReturn ret = gst_base_sink_wait_preroll(GST_BASE_SINK(self));
    if (ret != GST_FLOW_OK) return ret;
  }
}

GstFlowReturn gst_p2psp_splitter_sink_render(GstBaseSink *sink,
                                             GstBuffer *buffer) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  GstFlowReturn ret = wait_for_peers(self);
  if (ret != GST_FLOW_OK) return ret;

  p2psp::MediaBuffer mb;
  if (!media_buffer_from(sink, buffer, &mb)) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Could not read a buffer"),
                      (nullptr));
    return GST_FLOW_ERROR;
  }
  GST_TRACE_OBJECT(self, "buffer of %zu bytes", mb.data.size());
  run_core(self,
           [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
             apply_pending_caps(self->priv, now, out);
             s.push_buffer(mb, now, out);
           });
  return GST_FLOW_OK;
}

gboolean gst_p2psp_splitter_sink_event(GstBaseSink *sink, GstEvent *event) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    /* The tail of the stream must not wait for the flush timer. */
    run_core(self, [](p2psp::Splitter &s, p2psp::Micros now,
                      p2psp::Outbox *out) { s.flush(now, out); });
  }
  return GST_BASE_SINK_CLASS(parent_class)->event(sink, event);
}

gboolean gst_p2psp_splitter_sink_unlock(GstBaseSink *sink) {
  SplitterSinkPrivate *priv = priv_of(sink);
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->unlocked = true;
  }
  priv->peers_cond.notify_all();
  return TRUE;
}

gboolean gst_p2psp_splitter_sink_unlock_stop(GstBaseSink *sink) {
  SplitterSinkPrivate *priv = priv_of(sink);
  std::lock_guard<std::mutex> lock(priv->peers_mutex);
  priv->unlocked = false;
  return TRUE;
}

/* ------------------------------------------------------------- stats ---- */

GstStructure *peer_structure(const p2psp::SplitterPeerStats &p) {
  const std::string endpoint = p.endpoint.to_string();
  const p2psp::Micros now = p2psp_gst::monotonic_now_us();
  const guint64 silent_ms =
      now > p.last_heard_us ? (now - p.last_heard_us) / 1000 : 0;
  return gst_structure_new(
      "application/x-p2psp-peer", "id", G_TYPE_UINT, p.id, "endpoint",
      G_TYPE_STRING, endpoint.c_str(), "chunks-sent", G_TYPE_UINT64,
      static_cast<guint64>(p.chunks_sent), "bytes-sent", G_TYPE_UINT64,
      static_cast<guint64>(p.bytes_sent), "monitor", G_TYPE_BOOLEAN,
      static_cast<gboolean>(p.monitor), "loss-counter", G_TYPE_UINT,
      static_cast<guint>(p.loss_counter), "retransmits", G_TYPE_UINT64,
      static_cast<guint64>(p.retransmits), "silent-ms", G_TYPE_UINT64,
      silent_ms, nullptr);
}

void add_peer_array(GstStructure *s,
                    const std::vector<p2psp::SplitterPeerStats> &peers) {
  GValue array = G_VALUE_INIT;
  gst_value_array_init(&array, peers.size());
  for (const auto &p : peers) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&v, peer_structure(p));
    gst_value_array_append_and_take_value(&array, &v);
  }
  gst_structure_take_value(s, "peers", &array);
}

GstStructure *build_stats(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  std::lock_guard<std::mutex> lock(priv->core_mutex);
  p2psp::SplitterStats st;
  std::vector<p2psp::SplitterPeerStats> peers;
  guint num_peers = 0;
  if (priv->run.splitter) {
    st = priv->run.splitter->stats();
    num_peers = priv->run.splitter->num_peers();
    if (priv->run.state == State::kRunning)
      peers = priv->run.splitter->peer_stats();
    else
      num_peers = 0;
  }
  GstStructure *s = gst_structure_new(
      "application/x-p2psp-splitter-stats", "buffers-in", G_TYPE_UINT64,
      st.buffers_in, "bytes-in", G_TYPE_UINT64, st.bytes_in, "chunks-cut",
      G_TYPE_UINT64, st.chunks_cut, "chunks-sent", G_TYPE_UINT64,
      st.chunks_sent, "bytes-sent", G_TYPE_UINT64, st.bytes_sent,
      "chunks-dropped", G_TYPE_UINT64, st.chunks_dropped, "datagrams-dropped",
      G_TYPE_UINT64, static_cast<guint64>(priv->run.datagrams_dropped),
      "peers-joined", G_TYPE_UINT64, st.peers_joined, "peers-left",
      G_TYPE_UINT64, st.peers_left, "rejected-datagrams", G_TYPE_UINT64,
      st.rejected_datagrams, "rejected-connections", G_TYPE_UINT64,
      static_cast<guint64>(st.rejected_connections +
                           priv->run.rejected_accepts),
      "num-peers", G_TYPE_UINT, num_peers, nullptr);
  gst_structure_set(
      s, "peers-timed-out", G_TYPE_UINT64, st.peers_timed_out, "peers-expelled",
      G_TYPE_UINT64, st.peers_expelled, "lost-reports", G_TYPE_UINT64,
      st.lost_reports, "nacks-received", G_TYPE_UINT64, st.nacks_received,
      "retransmits", G_TYPE_UINT64, st.retransmits, "retransmit-bytes",
      G_TYPE_UINT64, st.retransmit_bytes, "retransmits-unavailable",
      G_TYPE_UINT64, st.retransmits_unavailable, "retransmits-limited",
      G_TYPE_UINT64, st.retransmits_limited, nullptr);
  gst_structure_set(s, "auth-failures", G_TYPE_UINT64, st.auth_failures,
                    "unauthenticated-datagrams", G_TYPE_UINT64,
                    st.unauthenticated_datagrams, "replayed-datagrams",
                    G_TYPE_UINT64, st.replayed_datagrams, nullptr);
  gst_structure_set(s, "chunks-signed", G_TYPE_UINT64, st.chunks_signed,
                    "pollution-reports", G_TYPE_UINT64, st.pollution_reports,
                    "polluters-expelled", G_TYPE_UINT64, st.polluters_expelled,
                    nullptr);
  gst_structure_set(s, "handshake-timeouts", G_TYPE_UINT64,
                    st.handshake_timeouts, "joins-limited", G_TYPE_UINT64,
                    st.joins_limited, nullptr);
  gst_structure_set(s, "peers-slow", G_TYPE_UINT64,
                    static_cast<guint64>(priv->run.peers_slow),
                    "control-backlog-bytes", G_TYPE_UINT64,
                    static_cast<guint64>(priv->run.connections.queued_bytes()),
                    nullptr);
  add_peer_array(s, peers);
  return s;
}

/* -------------------------------------------------------- properties ---- */

void gst_p2psp_splitter_sink_set_property(GObject *object, guint prop_id,
                                          const GValue *value,
                                          GParamSpec *pspec) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  SplitterSinkPrivate *priv = self->priv;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_HOST: {
      const gchar *host = g_value_get_string(value);
      priv->settings.host = host ? host : DEFAULT_HOST;
      break;
    }
    case PROP_PORT:
      priv->settings.port = g_value_get_int(value);
      break;
    case PROP_CHUNK_SIZE:
      priv->settings.chunk_size = g_value_get_uint(value);
      priv->settings.chunk_size_set = true;
      break;
    case PROP_MAX_PEERS:
      priv->settings.max_peers = g_value_get_uint(value);
      break;
    case PROP_WAIT_FOR_PEERS:
      priv->wait_for_peers = g_value_get_uint(value);
      break;
    case PROP_MONITORS:
      priv->settings.monitors = g_value_get_uint(value);
      break;
    case PROP_MAX_CHUNK_LOSS:
      priv->settings.max_chunk_loss = g_value_get_uint(value);
      break;
    case PROP_PEER_TIMEOUT:
      priv->settings.peer_timeout_ms = g_value_get_uint(value);
      break;
    case PROP_PASSPHRASE: {
      const gchar *passphrase = g_value_get_string(value);
      priv->settings.passphrase = passphrase ? passphrase : "";
      break;
    }
    case PROP_ENCRYPT:
      priv->settings.encrypt = g_value_get_boolean(value);
      break;
    case PROP_SIGN_CHUNKS:
      priv->settings.sign_chunks = g_value_get_boolean(value);
      break;
    case PROP_MAX_JOINS_PER_ADDRESS:
      priv->settings.max_joins_per_address = g_value_get_uint(value);
      break;
    case PROP_MAX_HANDSHAKES:
      priv->settings.max_handshakes = g_value_get_uint(value);
      break;
    case PROP_HANDSHAKE_TIMEOUT:
      priv->settings.handshake_timeout_ms = g_value_get_uint(value);
      break;
    case PROP_MAX_CONTROL_BACKLOG:
      priv->settings.max_control_backlog = g_value_get_uint(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
  /* A lowered wait-for-peers releases a waiting render() at once. */
  if (prop_id == PROP_WAIT_FOR_PEERS) {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->peers_cond.notify_all();
  }
}

void gst_p2psp_splitter_sink_get_property(GObject *object, guint prop_id,
                                          GValue *value, GParamSpec *pspec) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  SplitterSinkPrivate *priv = self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  if (prop_id == PROP_NUM_PEERS) {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    g_value_set_uint(value, priv->num_peers);
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_HOST:
      g_value_set_string(value, priv->settings.host.c_str());
      break;
    case PROP_PORT:
      g_value_set_int(value, priv->settings.port);
      break;
    case PROP_CURRENT_PORT:
      g_value_set_int(value, priv->current_port);
      break;
    case PROP_CHUNK_SIZE:
      g_value_set_uint(value, priv->settings.chunk_size);
      break;
    case PROP_MAX_PEERS:
      g_value_set_uint(value, priv->settings.max_peers);
      break;
    case PROP_WAIT_FOR_PEERS:
      g_value_set_uint(value, priv->wait_for_peers);
      break;
    case PROP_MONITORS:
      g_value_set_uint(value, priv->settings.monitors);
      break;
    case PROP_MAX_CHUNK_LOSS:
      g_value_set_uint(value, priv->settings.max_chunk_loss);
      break;
    case PROP_PEER_TIMEOUT:
      g_value_set_uint(value, priv->settings.peer_timeout_ms);
      break;
    case PROP_ENCRYPT:
      g_value_set_boolean(value, priv->settings.encrypt);
      break;
    case PROP_SIGN_CHUNKS:
      g_value_set_boolean(value, priv->settings.sign_chunks);
      break;
    case PROP_MAX_JOINS_PER_ADDRESS:
      g_value_set_uint(value, priv->settings.max_joins_per_address);
      break;
    case PROP_MAX_HANDSHAKES:
      g_value_set_uint(value, priv->settings.max_handshakes);
      break;
    case PROP_HANDSHAKE_TIMEOUT:
      g_value_set_uint(value, priv->settings.handshake_timeout_ms);
      break;
    case PROP_MAX_CONTROL_BACKLOG:
      g_value_set_uint(value, priv->settings.max_control_backlog);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

void gst_p2psp_splitter_sink_finalize(GObject *object) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

void install_properties(GObjectClass *gobject_class) {
  constexpr auto kReadWrite = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  constexpr auto kReadOnly =
      static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

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
      "datagram: 1432, less 64 with sign-chunks and 28 with a passphrase",
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
  properties[PROP_STATS] = g_param_spec_boxed(
      "stats", "Statistics",
      "Counters of the current (or last) run, with one structure per peer",
      GST_TYPE_STRUCTURE, kReadOnly);
  g_object_class_install_properties(gobject_class, N_PROPERTIES, properties);
}

/* The remove-peer action signal. */
gboolean remove_peer(GstP2pspSplitterSink *self, guint peer_id) {
  bool removed = false;
  run_core(self, [&](p2psp::Splitter &s, p2psp::Micros, p2psp::Outbox *out) {
    for (const auto &p : s.peer_stats()) removed |= p.id == peer_id;
    if (removed) s.remove_peer(peer_id, p2psp::RemoveReason::kExpelled, out);
  });
  GST_INFO_OBJECT(self, "remove-peer %u: %s", peer_id,
                  removed ? "removed" : "no such member");
  return removed;
}

void install_signals(GObjectClass *gobject_class) {
  /**
   * GstP2pspSplitterSink::peer-added:
   * @sink: the element
   * @peer_id: the team-unique id of the peer
   * @endpoint: its public UDP endpoint, "host:port"
   *
   * A peer completed its join and gets chunks from now on. Emitted from the
   * streaming thread or the element's network thread.
   */
  signals[SIGNAL_PEER_ADDED] = g_signal_new(
      "peer-added", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSplitterSink::peer-removed:
   * @sink: the element
   * @peer_id: the id the peer had
   * @endpoint: its public UDP endpoint, "host:port"
   *
   * A peer left, was removed, or the splitter stopped. The reason is in
   * the "GstP2pspSplitterPeerRemoved" element message posted with it.
   */
  signals[SIGNAL_PEER_REMOVED] = g_signal_new(
      "peer-removed", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSplitterSink::remove-peer:
   * @sink: the element
   * @peer_id: the id of a member of the team
   *
   * Action signal: removes the member, which is told REMOVED with reason
   * expelled (the others get PEER_LEFT); peer-removed and the
   * "GstP2pspSplitterPeerRemoved" message (reason "expelled") follow.
   *
   * Returns: %TRUE if @peer_id was a member and was removed.
   */
  signals[SIGNAL_REMOVE_PEER] = g_signal_new_class_handler(
      "remove-peer", G_TYPE_FROM_CLASS(gobject_class),
      static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK(remove_peer), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1,
      G_TYPE_UINT);
}

}  // namespace

static void gst_p2psp_splitter_sink_class_init(
    GstP2pspSplitterSinkClass *klass) {
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  auto *basesink_class = GST_BASE_SINK_CLASS(klass);

  gobject_class->set_property = gst_p2psp_splitter_sink_set_property;
  gobject_class->get_property = gst_p2psp_splitter_sink_get_property;
  gobject_class->finalize = gst_p2psp_splitter_sink_finalize;
  install_properties(gobject_class);
  install_signals(gobject_class);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  p2psp_gst::mark_enums_as_plugin_api();
  gst_element_class_set_static_metadata(
      element_class, "P2PSP splitter sink", "Sink/Network",
      "Splits a stream into chunks and sends them to a P2PSP team of peers",
      "gst-p2psp developers");

  basesink_class->start = gst_p2psp_splitter_sink_start;
  basesink_class->stop = gst_p2psp_splitter_sink_stop;
  basesink_class->set_caps = gst_p2psp_splitter_sink_set_caps;
  basesink_class->render = gst_p2psp_splitter_sink_render;
  basesink_class->event = gst_p2psp_splitter_sink_event;
  basesink_class->unlock = gst_p2psp_splitter_sink_unlock;
  basesink_class->unlock_stop = gst_p2psp_splitter_sink_unlock_stop;

  GST_DEBUG_CATEGORY_INIT(gst_p2psp_splitter_sink_debug, "p2pspsplittersink", 0,
                          "P2PSP splitter sink");
}

static void gst_p2psp_splitter_sink_init(GstP2pspSplitterSink *self) {
  self->priv = new SplitterSinkPrivate;
}
