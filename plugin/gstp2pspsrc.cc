/* gst-p2psp: p2pspsrc, a peer of a P2PSP team as a live GStreamer source.
 *
 * The protocol lives in p2psp::Peer (sans-I/O); this element owns the
 * sockets, a poll thread that feeds the peer, and the streaming thread that
 * takes the rebuilt stream out of it. */

/**
 * SECTION:element-p2pspsrc
 * @title: p2pspsrc
 * @see_also: p2pspsplittersink
 *
 * p2pspsrc joins the team of a P2PSP splitter (#p2pspsplittersink): it
 * connects to the splitter over TCP, receives chunks of the stream over UDP
 * from the splitter and from the other peers, floods the chunks it got from
 * the splitter to every other peer, and outputs the stream rebuilt in order,
 * with the caps, timestamps and buffer flags the splitter's pipeline had.
 *
 * The element is a live source. `latency` is the playout buffering that
 * absorbs the jitter of the round-robin and of the flooding; it is reported
 * in the LATENCY query. A late joiner starts at a keyframe, after the
 * stream headers (the caps' `streamheader`).
 *
 * When the team is lost without the splitter saying it stops (the splitter
 * was killed or restarted, or removed this peer: expelled, timed out), the
 * element posts a warning and rejoins by itself (#GstP2pspSrc:auto-reconnect)
 * for up to #GstP2pspSrc:timeout seconds: the first buffer after the rejoin
 * is DISCONT, the stream headers come again for a restarted stream, and
 * timestamps keep growing. Element messages tell the application about
 * removals, rejoin attempts and losses ("GstP2pspSrcRemoved",
 * "GstP2pspSrcReconnecting", "GstP2pspSrcRejoined", "GstP2pspSrcLoss"). With
 * #GstP2pspSrc:monitor the peer reports its lost chunks to the splitter.
 *
 * The element handles `p2psp://host:port` URIs (`p2psp://[::1]:4552` for
 * IPv6); query keys set properties, e.g. `p2psp://host:4552?latency=500`.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 p2pspsrc uri=p2psp://127.0.0.1:4552 ! oggdemux ! theoradec !
 * autovideosink
 * ]| Joins the team of a splitter on this host and plays an Ogg/Theora
 * stream.
 * |[
 * gst-play-1.0 p2psp://127.0.0.1:4552
 * ]| Same, letting playbin find the decoders.
 * |[
 * gst-launch-1.0 p2pspsrc host=splitter.example.org ! queue ! shout2send
 * ip=127.0.0.1 mount=/live.ogg
 * ]| Relays the team's stream to an Icecast server.
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux !
 * p2pspsplittersink port=4552
 * ]| The splitter end, for the examples above.
 * |[
 * gst-launch-1.0 p2pspsrc
 * uri="p2psp://127.0.0.1:4552?passphrase=correct%20horse%20battery" ! oggdemux
 * ! theoradec ! autovideosink
 * ]| Joins an authenticated team (#GstP2pspSrc:passphrase, also a URI query
 * key as with srtsrc). A wrong or missing passphrase, or a splitter without
 * one, is a RESOURCE/NOT_AUTHORIZED error: a peer given a passphrase never
 * joins an open team. See docs/security.md.
 * |[
 * gst-launch-1.0 p2pspsrc uri="p2psp://127.0.0.1:4552?io-interval=40" !
 * fakesink
 * ]| A peer that handles the network at most 25 times a second instead of on
 * every datagram (#GstP2pspSrc:io-interval): less CPU where datagrams come
 * faster than that, up to 40 ms more delay per hop. For hosts running many
 * peers.
 */

#include "gstp2pspsrc.h"

#include <gio/gio.h>
#include <gst/p2psp/auth.h>
#include <gst/p2psp/peer.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gstp2pspelements.h"
#include "gstp2pspenums.h"
#include "gstp2psputil.h"

GST_DEBUG_CATEGORY_STATIC(gst_p2psp_src_debug);
#define GST_CAT_DEFAULT gst_p2psp_src_debug

namespace {

using p2psp::Micros;
using p2psp_gst::GErrorPtr;
using p2psp_gst::GRef;

constexpr const char* kDefaultHost = "127.0.0.1";
constexpr int kDefaultPort = 4552;
constexpr guint kDefaultLatencyMs = 200;
constexpr guint kDefaultTimeoutS = 10;
constexpr guint kMaxLatencyMs = 600000;
constexpr guint kMaxTimeoutS = 3600;
constexpr guint kDefaultIoIntervalMs = 0;
constexpr guint kMaxIoIntervalMs = 100;
constexpr gboolean kDefaultMonitor = FALSE;
constexpr gboolean kDefaultAutoReconnect = TRUE;

// Rejoining: the wait between attempts doubles from the first to the last.
constexpr Micros kReconnectBackoffFirstUs = 200000;
constexpr Micros kReconnectBackoffMaxUs = 2000000;
// One attempt (connect, join) gives up after this, even with timeout=0.
constexpr Micros kJoinAttemptUs = 5000000;
// GstP2pspSrcLoss is posted at most this often.
constexpr Micros kLossMessagePeriodUs = 1000000;
// Items the network thread takes out of the core ahead of the streaming
// thread; beyond that they wait in the core's own buffer.
constexpr size_t kMaxReadyItems = 1024;

// Element messages (names and fields in docs/elements.md).
constexpr const char* kRemovedMessage = "GstP2pspSrcRemoved";
constexpr const char* kReconnectingMessage = "GstP2pspSrcReconnecting";
constexpr const char* kRejoinedMessage = "GstP2pspSrcRejoined";
constexpr const char* kLossMessage = "GstP2pspSrcLoss";

constexpr const char* kStatsName = "application/x-p2psp-peer-stats";
constexpr const char* kNeighbourStatsName = "application/x-p2psp-neighbour";

constexpr size_t kReceiveBatch = 32;
// Bounds the UDP batches per wake-up so TCP and timers are never starved.
constexpr int kMaxReceiveRounds = 8;
constexpr size_t kTcpReadSize = 16384;
// stop() gives the goodbye this long to leave the socket.
constexpr Micros kLeaveFlushUs = 200000;
constexpr Micros kNever = UINT64_MAX;
constexpr Micros kMinWaitUs = 1000;

enum {
  PROP_0,
  PROP_URI,
  PROP_HOST,
  PROP_PORT,
  PROP_LATENCY,
  PROP_TIMEOUT,
  PROP_MONITOR,
  PROP_AUTO_RECONNECT,
  PROP_PASSPHRASE,
  PROP_IO_INTERVAL,
  PROP_STATS,
};

enum { SIGNAL_PEER_ADDED, SIGNAL_PEER_REMOVED, LAST_SIGNAL };
guint src_signals[LAST_SIGNAL];

struct Settings {
  std::string host = kDefaultHost;
  int port = kDefaultPort;
  guint latency_ms = kDefaultLatencyMs;
  guint timeout_s = kDefaultTimeoutS;
  bool monitor = kDefaultMonitor;
  bool auto_reconnect = kDefaultAutoReconnect;
  guint io_interval_ms = kDefaultIoIntervalMs;
  std::string passphrase;  // never logged, never readable, not in the URI
};

// The streaming side's view of the connection.
enum class SrcState {
  kStopped,    // before start() / after stop()
  kReady,      // started; connects on the first create()
  kStreaming,  // connected: the poll thread runs the peer
  kRejoining,  // lost the team; create() is (or was, before a flush) rejoining
  kFailed,     // an error was posted; create() keeps failing
  kEos,        // the splitter ended the stream
};

// Why the poll thread gave up on the splitter (create() reports it).
enum class Failure { kNone, kLostSplitter, kRemoved };

// Why opening a connection to the splitter failed.
enum class OpenError { kNone, kCancelled, kNotFound, kConnect, kUdp, kThread };

struct NeighbourSignal {
  guint signal = 0;
  guint id = 0;
  std::string endpoint;
};

struct CapsDeleter {
  void operator()(GstCaps* caps) const { gst_caps_unref(caps); }
};
using CapsPtr = std::unique_ptr<GstCaps, CapsDeleter>;

struct BufferDeleter {
  void operator()(GstBuffer* buffer) const { gst_buffer_unref(buffer); }
};
using BufferPtr = std::unique_ptr<GstBuffer, BufferDeleter>;

// One connection to the splitter, under core_lock. Replaced whole when the
// connection ends (teardown_connection, start, stop): no reset list.
struct Link {
  std::unique_ptr<p2psp::Peer> peer;
  p2psp::Outbox outbox;
  Failure failure = Failure::kNone;
  std::string failure_text;
  p2psp::RemoveReason failure_reason = p2psp::RemoveReason::kUnknown;
  bool joined = false;  // TEAM received on this connection
  bool splitter_shutdown = false;
  Micros shutdown_at_us = 0;
  uint64_t chunks_seen = 0;
  // Items popped by the poll thread, in order, for the streaming thread: it
  // is woken only when there is one (or news), not for every datagram.
  std::deque<p2psp::StreamItem> ready;
};

// Across the connections of one run (rejoins), under core_lock. Replaced
// whole by start().
struct Run {
  bool welcome_caps_taken = false;
  // A REMOVED/REJECT the streaming thread has not posted on the bus yet.
  bool removed_unposted = false;
  p2psp::RemoveReason removed_reason = p2psp::RemoveReason::kUnknown;
  std::string removed_text;
  Micros last_activity_us = 0;  // last chunk (or connect) time
  guint reconnects = 0;
  bool reconnecting = false;  // between a loss and a rejoin
  bool ever_joined = false;   // some connection of this run got TEAM
  uint32_t last_team_id = 0;  // team of the previous connection
  uint64_t base_lost = 0;     // counters of the previous connections
  uint64_t base_recovered = 0;
  uint64_t base_nacks_sent = 0;
  uint64_t posted_lost = 0;  // values in the last GstP2pspSrcLoss
  uint64_t posted_recovered = 0;
  uint64_t posted_nacks_sent = 0;
  Micros loss_posted_us = 0;
};

// Sockets: set up by create(), then used by the poll thread only, until
// stop() has stopped it. Replaced whole once closed.
struct Sockets {
  GRef<GSocketConnection> tcp_stream;
  std::unique_ptr<p2psp_gst::TcpConnection> tcp;
  bool tcp_close_requested = false;
  bool tcp_closed = false;
  GRef<GSocket> udp;
  std::vector<p2psp_gst::ReceivedDatagram> rx_batch;
  std::vector<uint8_t> tcp_rx;
};

// Output, owned by the streaming thread. Replaced whole by start()/stop().
struct Output {
  CapsPtr caps;
  std::vector<BufferPtr> pending_headers;  // go out before the next buffer
  std::deque<BufferPtr> output;
  bool have_ts_offset = false;
  GstClockTimeDiff ts_offset = 0;
  bool carry_discont = false;  // a dropped buffer carried DISCONT
  // The end of the latest output timestamp: a new mapping (after a rejoin)
  // never goes below it.
  GstClockTime out_end = GST_CLOCK_TIME_NONE;
  // After a rejoin to a restarted stream: the streamheader goes out again
  // even if the caps did not change.
  bool resend_headers = false;
};

}  // namespace

struct GstP2pspSrcPrivate {
  Settings settings;  // properties, under GST_OBJECT_LOCK
  Settings active;    // copied at start(), read by the streaming thread
  SrcState state = SrcState::kStopped;  // streaming thread and start/stop

  // Fired by unlock(): interrupts resolving and connecting.
  GRef<GCancellable> cancel{g_cancellable_new()};

  // Shared by the streaming thread and the poll thread, under core_lock.
  std::mutex core_lock;
  std::condition_variable core_cond;  // the peer may have output or news
  bool flushing = false;
  Link link;
  Run run;

  Sockets net;
  p2psp_gst::PollThread poll;

  Output out;
};

struct _GstP2pspSrc {
  GstPushSrc parent;
  GstP2pspSrcPrivate* priv;
};

static void gst_p2psp_src_uri_handler_init(gpointer iface, gpointer data);

#define gst_p2psp_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstP2pspSrc, gst_p2psp_src, GST_TYPE_PUSH_SRC,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER,
                                              gst_p2psp_src_uri_handler_init);
                        GST_DEBUG_CATEGORY_INIT(gst_p2psp_src_debug, "p2pspsrc",
                                                0, "P2PSP peer source"));

GST_ELEMENT_REGISTER_DEFINE(p2pspsrc, "p2pspsrc", GST_RANK_PRIMARY,
                            GST_TYPE_P2PSP_SRC);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* ------------------------------------------------------------ stats ---- */

static GValue neighbours_list_value(
    const std::vector<p2psp::NeighbourInfo>& neighbours) {
  GValue list = G_VALUE_INIT;
  g_value_init(&list, GST_TYPE_ARRAY);
  for (const p2psp::NeighbourInfo& n : neighbours) {
    GValue entry = G_VALUE_INIT;
    g_value_init(&entry, GST_TYPE_STRUCTURE);
    g_value_take_boxed(
        &entry,
        gst_structure_new(kNeighbourStatsName,                   //
                          "id", G_TYPE_UINT, n.id,               //
                          "endpoint", G_TYPE_STRING,             //
                          n.endpoint.to_string().c_str(),        //
                          "debt", G_TYPE_INT64, (gint64)n.debt,  //
                          "chunks-sent", G_TYPE_UINT64,          //
                          (guint64)n.chunks_sent,                //
                          "chunks-received", G_TYPE_UINT64,      //
                          (guint64)n.chunks_received, nullptr));
    gst_value_array_append_and_take_value(&list, &entry);
  }
  return list;
}

static GstStructure* build_stats(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  const p2psp::PeerStats empty_stats;
  const p2psp::PeerStats& s =
      priv->link.peer ? priv->link.peer->stats() : empty_stats;
  const p2psp::PeerState state =
      priv->link.peer ? priv->link.peer->state() : p2psp::PeerState::kIdle;
  const char* state_name =
      priv->run.reconnecting && (!priv->link.peer || !priv->link.joined)
          ? p2psp_gst::enum_nick(GST_TYPE_P2PSP_PEER_STATE,
                                 GST_P2PSP_PEER_STATE_RECONNECTING)
          : p2psp_gst::peer_state_nick(state);

  GstStructure* stats = gst_structure_new(
      kStatsName,                                                            //
      "peer-id", G_TYPE_UINT, priv->link.peer ? priv->link.peer->id() : 0u,  //
      "state", G_TYPE_STRING, state_name,                                    //
      "chunks-from-splitter", G_TYPE_UINT64, (guint64)s.chunks_from_splitter,
      "chunks-from-peers", G_TYPE_UINT64, (guint64)s.chunks_from_peers,  //
      "chunks-forwarded", G_TYPE_UINT64, (guint64)s.chunks_forwarded,    //
      "duplicates", G_TYPE_UINT64, (guint64)s.duplicates,                //
      "lost", G_TYPE_UINT64, (guint64)s.lost,                            //
      "late", G_TYPE_UINT64, (guint64)s.late,                            //
      "played", G_TYPE_UINT64, (guint64)s.played,                        //
      "bytes-up", G_TYPE_UINT64, (guint64)s.bytes_up,                    //
      "bytes-down", G_TYPE_UINT64, (guint64)s.bytes_down,                //
      "rejected-datagrams", G_TYPE_UINT64, (guint64)s.rejected_datagrams,
      "unauthenticated-datagrams", G_TYPE_UINT64,
      (guint64)s.unauthenticated_datagrams,  //
      "replayed-datagrams", G_TYPE_UINT64, (guint64)s.replayed_datagrams,
      "neighbours", G_TYPE_UINT64, (guint64)s.neighbours,    //
      "buffer-fill", G_TYPE_UINT64, (guint64)s.buffer_fill,  //
      "chunk-delay-us", G_TYPE_UINT64, (guint64)s.chunk_delay_us,
      "chunk-delay-max-us", G_TYPE_UINT64, (guint64)s.chunk_delay_max_us,
      nullptr);
  // Team health (counters of the current connection) and rejoins.
  gst_structure_set(
      stats,                                                             //
      "monitor", G_TYPE_BOOLEAN, (gboolean)(s.monitor != 0),             //
      "heartbeats-sent", G_TYPE_UINT64, (guint64)s.heartbeats_sent,      //
      "control-bytes-up", G_TYPE_UINT64, (guint64)s.control_bytes_up,    //
      "nacks-sent", G_TYPE_UINT64, (guint64)s.nacks_sent,                //
      "nacks-to-splitter", G_TYPE_UINT64, (guint64)s.nacks_to_splitter,  //
      "recovered", G_TYPE_UINT64, (guint64)s.recovered,                  //
      "lost-reports-sent", G_TYPE_UINT64, (guint64)s.lost_reports_sent,  //
      "retransmits-sent", G_TYPE_UINT64, (guint64)s.retransmits_sent,    //
      "retransmits-limited", G_TYPE_UINT64,                              //
      (guint64)s.retransmits_limited,                                    //
      "relayed", G_TYPE_UINT64, (guint64)s.relayed,                      //
      "requests-sent", G_TYPE_UINT64, (guint64)s.requests_sent,          //
      "prunes-sent", G_TYPE_UINT64, (guint64)s.prunes_sent,              //
      "relays-served", G_TYPE_UINT64, (guint64)s.relays_served,          //
      "signed-team", G_TYPE_BOOLEAN, s.signed_team != 0,                 //
      "bad-signatures", G_TYPE_UINT64, (guint64)s.bad_signatures,        //
      "unsigned-chunks", G_TYPE_UINT64, (guint64)s.unsigned_chunks,      //
      "pollution-reports-sent", G_TYPE_UINT64,                           //
      (guint64)s.pollution_reports_sent,                                 //
      "reconnects", G_TYPE_UINT, priv->run.reconnects, nullptr);
  GValue list = neighbours_list_value(
      priv->link.peer ? priv->link.peer->neighbours()
                      : std::vector<p2psp::NeighbourInfo>());
  gst_structure_take_value(stats, "neighbours-list", &list);
  return stats;
}

/* ------------------------------------------------------- poll thread ---- */

// Hands what the peer asked for to the sockets. Called with core_lock held.
static void dispatch_outbox(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  p2psp::Outbox& out = priv->link.outbox;
  if (!out.udp.empty() && priv->net.udp) {
    size_t dropped = p2psp_gst::send_datagrams(priv->net.udp.get(), out.udp);
    if (dropped > 0)
      GST_LOG_OBJECT(self, "%" G_GSIZE_FORMAT " datagrams dropped", dropped);
  }
  if (priv->net.tcp && !priv->net.tcp_closed) {
    for (const p2psp::TcpSend& send : out.tcp) priv->net.tcp->queue(send.data);
    if (!out.tcp_close.empty()) priv->net.tcp_close_requested = true;
    if (priv->net.tcp->wants_write() && !priv->net.tcp->flush()) {
      GST_DEBUG_OBJECT(self, "writing to the splitter failed");
      priv->net.tcp_closed = true;
      if (priv->link.failure == Failure::kNone &&
          !priv->link.splitter_shutdown) {
        priv->link.failure = Failure::kLostSplitter;
        priv->link.failure_text = "Sending to the splitter failed";
      }
    }
  }
  out.clear();
}

// Turns peer events into state and pending signals. Called with core_lock.
// Returns true when the streaming thread has something to look at.
static bool collect_events(GstP2pspSrc* self, Micros now,
                           std::vector<NeighbourSignal>* signals) {
  GstP2pspSrcPrivate* priv = self->priv;
  bool news = false;
  for (const p2psp::PeerEvent& ev : priv->link.peer->take_events()) {
    news = true;
    switch (ev.kind) {
      case p2psp::PeerEvent::Kind::kJoined:
        GST_INFO_OBJECT(self, "joined the team as peer %u",
                        priv->link.peer->id());
        priv->link.joined = true;
        priv->run.ever_joined = true;
        break;
      case p2psp::PeerEvent::Kind::kNeighbourAdded:
        signals->push_back({src_signals[SIGNAL_PEER_ADDED], ev.peer_id,
                            ev.endpoint.to_string()});
        break;
      case p2psp::PeerEvent::Kind::kNeighbourRemoved:
        signals->push_back({src_signals[SIGNAL_PEER_REMOVED], ev.peer_id,
                            ev.endpoint.to_string()});
        break;
      case p2psp::PeerEvent::Kind::kRemoved:
        priv->run.removed_unposted = true;
        priv->run.removed_reason = ev.reason;
        priv->run.removed_text =
            ev.text.empty() ? p2psp_gst::remove_reason_description(ev.reason)
                            : ev.text;
        if (ev.reason == p2psp::RemoveReason::kShutdown) {
          GST_INFO_OBJECT(self, "the splitter is shutting down");
          if (!priv->link.splitter_shutdown) priv->link.shutdown_at_us = now;
          priv->link.splitter_shutdown = true;
        } else if (priv->link.failure == Failure::kNone) {
          priv->link.failure = Failure::kRemoved;
          priv->link.failure_reason = ev.reason;
          priv->link.failure_text =
              ev.text.empty() ? p2psp_gst::remove_reason_description(ev.reason)
                              : ev.text;
        }
        break;
      case p2psp::PeerEvent::Kind::kProtocolError:
        if (priv->link.failure == Failure::kNone) {
          priv->link.failure = Failure::kLostSplitter;
          priv->link.failure_reason = p2psp::RemoveReason::kProtocolError;
          priv->link.failure_text = "Protocol error: " + ev.text;
        }
        break;
    }
  }
  const p2psp::PeerStats& stats = priv->link.peer->stats();
  const uint64_t chunks = stats.chunks_from_splitter + stats.chunks_from_peers;
  if (chunks != priv->link.chunks_seen) {
    priv->link.chunks_seen = chunks;
    priv->run.last_activity_us = now;
  }
  return news;
}

// Takes what is due out of the core for the streaming thread. Called with
// core_lock; true if anything was taken.
static bool pump_items(GstP2pspSrcPrivate* priv, Micros now) {
  bool any = false;
  p2psp::StreamItem item;
  while (priv->link.ready.size() < kMaxReadyItems &&
         priv->link.peer->pop_item(now, &item)) {
    priv->link.ready.push_back(std::move(item));
    item = p2psp::StreamItem();
    any = true;
  }
  return any;
}

// Ends a round of core work: sends, and wakes create() only when it has
// something to do (an item, an event, a failure): waking it for every
// datagram cost more than the datagrams (docs/benchmarks.md, profile).
// Called with core_lock.
static void finish_core_round(GstP2pspSrc* self, Micros now,
                              std::vector<NeighbourSignal>* signals) {
  GstP2pspSrcPrivate* priv = self->priv;
  dispatch_outbox(self);
  bool news = collect_events(self, now, signals);
  news |= pump_items(priv, now);
  // A connection that ended is news until create() has dealt with it (few
  // rounds: the streaming thread tears the connection down).
  news |= priv->link.failure != Failure::kNone || priv->net.tcp_closed;
  if (news) priv->core_cond.notify_all();
}

static void emit_signals(GstP2pspSrc* self,
                         const std::vector<NeighbourSignal>& signals) {
  for (const NeighbourSignal& s : signals) {
    GST_DEBUG_OBJECT(self, "%s %u %s", g_signal_name(s.signal), s.id,
                     s.endpoint.c_str());
    g_signal_emit(self, s.signal, 0, s.id, s.endpoint.c_str());
  }
}

static void on_udp_readable(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    Micros now = 0;
    bool full = true;
    for (int round = 0; full && round < kMaxReceiveRounds; round++) {
      size_t n =
          p2psp_gst::receive_datagrams(priv->net.udp.get(), priv->net.rx_batch);
      // The time of receipt of this batch: a backlog takes long enough to
      // read that one time for all of it made later datagrams look sent
      // before they arrived (a 40 to 100 ms error in chunk-delay-us).
      now = p2psp_gst::monotonic_now_us();
      for (size_t i = 0; i < n; i++) {
        const p2psp_gst::ReceivedDatagram& d = priv->net.rx_batch[i];
        priv->link.peer->on_udp(d.from, d.data.data(), d.size, now,
                                &priv->link.outbox);
      }
      full = n == priv->net.rx_batch.size();
    }
    // With io-interval, what is left must not wait for the next interval.
    if (full) priv->poll.run_again();
    finish_core_round(self, now, &signals);
  }
  emit_signals(self, signals);
}

// The splitter's TCP connection ended. Called with core_lock held.
static void on_tcp_ended(GstP2pspSrc* self, Micros now, const char* why) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->net.tcp_closed = true;
  priv->link.peer->on_tcp_closed(now, &priv->link.outbox);
  // A splitter that shuts down says so before closing; anything else is a
  // lost connection.
  if (!priv->link.splitter_shutdown && priv->link.failure == Failure::kNone) {
    priv->link.failure = Failure::kLostSplitter;
    priv->link.failure_text = why;
  }
}

static void read_tcp(GstP2pspSrc* self, Micros now,
                     std::vector<NeighbourSignal>* signals) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->net.tcp_rx.resize(kTcpReadSize);
  while (!priv->net.tcp_closed) {
    gssize n = priv->net.tcp->read_some(priv->net.tcp_rx.data(),
                                        priv->net.tcp_rx.size());
    if (n == -2) break;
    if (n <= 0) {
      // Events already read (e.g. a shutdown notice) decide what EOF means.
      collect_events(self, now, signals);
      on_tcp_ended(self, now,
                   n == 0 ? "The splitter closed the connection"
                          : "Reading from the splitter failed");
      break;
    }
    priv->link.peer->on_tcp_data(priv->net.tcp_rx.data(),
                                 static_cast<size_t>(n), now,
                                 &priv->link.outbox);
  }
}

static void on_tcp_io(GstP2pspSrc* self, GIOCondition condition) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    const Micros now = p2psp_gst::monotonic_now_us();
    if ((condition & G_IO_OUT) && !priv->net.tcp->flush())
      on_tcp_ended(self, now, "Sending to the splitter failed");
    if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
      read_tcp(self, now, &signals);
    finish_core_round(self, now, &signals);
  }
  emit_signals(self, signals);
}

static void watch_sockets(GstP2pspSrc* self,
                          p2psp_gst::PollThread::WatchList& list) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  if (priv->net.tcp_close_requested && !priv->net.tcp->wants_write() &&
      !priv->net.tcp_closed) {
    // The peer is done with the splitter: stop watching, close in stop().
    priv->net.tcp_closed = true;
  }
  if (!priv->net.tcp_closed) {
    int condition = G_IO_IN;
    if (priv->net.tcp->wants_write()) condition |= G_IO_OUT;
    list.emplace_back(priv->net.tcp->socket(),
                      static_cast<GIOCondition>(condition));
  }
  list.emplace_back(priv->net.udp.get(), G_IO_IN);
}

// GstP2pspSrcLoss, at most once a second, when chunks were lost or
// recovered since the last one. Called with core_lock; the caller posts.
static GstStructure* loss_message_if_due(GstP2pspSrcPrivate* priv, Micros now) {
  if (now < priv->run.loss_posted_us + kLossMessagePeriodUs) return nullptr;
  const p2psp::PeerStats& s = priv->link.peer->stats();
  const uint64_t lost = priv->run.base_lost + s.lost;
  const uint64_t recovered = priv->run.base_recovered + s.recovered;
  const uint64_t nacks = priv->run.base_nacks_sent + s.nacks_sent;
  if (lost == priv->run.posted_lost && recovered == priv->run.posted_recovered)
    return nullptr;
  GstStructure* st = gst_structure_new(
      kLossMessage,                                                          //
      "lost", G_TYPE_UINT64, (guint64)lost,                                  //
      "recovered", G_TYPE_UINT64, (guint64)recovered,                        //
      "nacks-sent", G_TYPE_UINT64, (guint64)nacks,                           //
      "lost-delta", G_TYPE_UINT64, (guint64)(lost - priv->run.posted_lost),  //
      "recovered-delta", G_TYPE_UINT64,                                      //
      (guint64)(recovered - priv->run.posted_recovered),                     //
      "nacks-sent-delta", G_TYPE_UINT64,                                     //
      (guint64)(nacks - priv->run.posted_nacks_sent), nullptr);
  priv->run.posted_lost = lost;
  priv->run.posted_recovered = recovered;
  priv->run.posted_nacks_sent = nacks;
  priv->run.loss_posted_us = now;
  return st;
}

static Micros on_poll_timer(GstP2pspSrc* self, Micros now) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  Micros deadline;
  GstStructure* loss = nullptr;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    // Called after every poll round: the core only when it has work.
    if (now >= priv->link.peer->next_deadline()) {
      priv->link.peer->tick(now, &priv->link.outbox);
      finish_core_round(self, now, &signals);
    }
    deadline = priv->link.peer->next_deadline();
    loss = loss_message_if_due(priv, now);
  }
  emit_signals(self, signals);
  if (loss != nullptr)
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_element(GST_OBJECT(self), loss));
  return deadline;
}

static bool start_poll_thread(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  // Its period is io-interval, which set_property keeps up to date.
  return priv->poll.start(
      "p2pspsrc-io",
      [self](p2psp_gst::PollThread::WatchList& list) {
        watch_sockets(self, list);
      },
      [self](GSocket* socket, GIOCondition condition) {
        if (socket == self->priv->net.udp.get())
          on_udp_readable(self);
        else
          on_tcp_io(self, condition);
      },
      [self](Micros now) { return on_poll_timer(self, now); });
}

/* ---------------------------------------------------------- connect ---- */

// Resolves the splitter's host and opens the TCP control connection.
static OpenError open_tcp(GstP2pspSrc* self, guint connect_timeout_s,
                          std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  GError* error = nullptr;
  GRef<GInetAddress> address(
      p2psp_gst::resolve_host(s.host, priv->cancel.get(), &error));
  if (!address) {
    GErrorPtr owned(error);
    *detail = error->message;
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
               ? OpenError::kCancelled
               : OpenError::kNotFound;
  }

  GRef<GSocketAddress> splitter(
      g_inet_socket_address_new(address.get(), static_cast<guint16>(s.port)));
  GRef<GSocketClient> client(g_socket_client_new());
  g_socket_client_set_timeout(client.get(), connect_timeout_s);
  GST_DEBUG_OBJECT(self, "connecting to %s:%d", s.host.c_str(), s.port);
  priv->net.tcp_stream.reset(g_socket_client_connect(
      client.get(), G_SOCKET_CONNECTABLE(splitter.get()), priv->cancel.get(),
      &error));
  if (!priv->net.tcp_stream) {
    GErrorPtr owned(error);
    *detail = error->message;
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
               ? OpenError::kCancelled
               : OpenError::kConnect;
  }
  GSocket* socket = g_socket_connection_get_socket(priv->net.tcp_stream.get());
  // The client's timeout was for connecting; the poll thread never blocks.
  g_socket_set_timeout(socket, 0);
  g_socket_set_blocking(socket, FALSE);
  priv->net.tcp = std::make_unique<p2psp_gst::TcpConnection>(
      G_SOCKET(g_object_ref(socket)));
  return OpenError::kNone;
}

// A UDP socket on the any-address of the splitter's family, any port.
static OpenError open_udp(GstP2pspSrc* self, GSocketFamily family,
                          std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  GError* error = nullptr;
  priv->net.udp.reset(g_socket_new(family, G_SOCKET_TYPE_DATAGRAM,
                                   G_SOCKET_PROTOCOL_UDP, &error));
  if (priv->net.udp) {
    GRef<GInetAddress> any(g_inet_address_new_any(family));
    GRef<GSocketAddress> local(g_inet_socket_address_new(any.get(), 0));
    if (!g_socket_bind(priv->net.udp.get(), local.get(), FALSE, &error))
      priv->net.udp.reset();
  }
  if (!priv->net.udp) {
    GErrorPtr owned(error);
    *detail = error->message;
    return OpenError::kUdp;
  }
  g_socket_set_blocking(priv->net.udp.get(), FALSE);
  return OpenError::kNone;
}

static OpenError start_peer(GstP2pspSrc* self, std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  GError* error = nullptr;
  GRef<GSocketAddress> remote(g_socket_connection_get_remote_address(
      priv->net.tcp_stream.get(), &error));
  GErrorPtr owned(error);
  const p2psp::Endpoint splitter =
      p2psp_gst::endpoint_from_address(remote.get());
  if (!splitter.valid()) {
    *detail = error ? error->message : "no remote address";
    return OpenError::kConnect;
  }

  OpenError ret =
      open_udp(self, g_socket_address_get_family(remote.get()), detail);
  if (ret != OpenError::kNone) return ret;

  p2psp::PeerConfig config;
  config.latency_us = static_cast<Micros>(priv->active.latency_ms) * 1000;
  config.monitor = priv->active.monitor;
  config.passphrase = priv->active.passphrase;
  priv->net.rx_batch.resize(kReceiveBatch);
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    const Micros now = p2psp_gst::monotonic_now_us();
    priv->link.peer = std::make_unique<p2psp::Peer>(config, splitter);
    priv->run.last_activity_us = now;
    priv->link.peer->start(now, &priv->link.outbox);
    dispatch_outbox(self);
  }
  if (!start_poll_thread(self)) {
    *detail = "could not start the thread";
    return OpenError::kThread;
  }
  GST_INFO_OBJECT(self, "connected to the splitter at %s",
                  splitter.to_string().c_str());
  return OpenError::kNone;
}

static void close_sockets(GstP2pspSrcPrivate* priv);

// Opens TCP and UDP and starts a new core and its poll thread. On failure
// whatever was opened is closed again.
static OpenError open_connection(GstP2pspSrc* self, guint connect_timeout_s,
                                 std::string* detail) {
  OpenError ret = open_tcp(self, connect_timeout_s, detail);
  if (ret == OpenError::kNone) ret = start_peer(self, detail);
  if (ret != OpenError::kNone) {
    self->priv->poll.stop();
    close_sockets(self->priv);
    std::unique_lock<std::mutex> lock(self->priv->core_lock);
    self->priv->link.peer.reset();
    self->priv->link.outbox.clear();
  }
  return ret;
}

// The first connection: any failure is an error (auto-reconnect is about
// keeping a team once joined).
static GstFlowReturn connect_to_splitter(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  std::string detail;
  const OpenError ret = open_connection(self, s.timeout_s, &detail);
  switch (ret) {
    case OpenError::kNone:
      priv->state = SrcState::kStreaming;
      return GST_FLOW_OK;
    case OpenError::kCancelled:
      return GST_FLOW_FLUSHING;
    case OpenError::kNotFound:
      GST_ELEMENT_ERROR(
          self, RESOURCE, NOT_FOUND,
          ("Could not resolve P2PSP splitter host \"%s\"", s.host.c_str()),
          ("%s", detail.c_str()));
      break;
    case OpenError::kConnect:
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                        ("Could not connect to P2PSP splitter at %s:%d",
                         s.host.c_str(), s.port),
                        ("%s", detail.c_str()));
      break;
    case OpenError::kUdp:
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                        ("Could not open a UDP socket for the P2PSP team"),
                        ("%s", detail.c_str()));
      break;
    case OpenError::kThread:
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                        ("Could not start the P2PSP network thread"),
                        (nullptr));
      break;
  }
  priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

/* ----------------------------------------------------------- output ---- */

static GstClockTime to_output_time(GstP2pspSrcPrivate* priv, uint64_t t) {
  if (t == p2psp::kNoTime || !priv->out.have_ts_offset)
    return GST_CLOCK_TIME_NONE;
  const GstClockTimeDiff shifted =
      static_cast<GstClockTimeDiff>(t) + priv->out.ts_offset;
  return shifted < 0 ? 0 : static_cast<GstClockTime>(shifted);
}

// The pipeline's running time now (0 without a clock).
static GstClockTime current_running_time(GstP2pspSrc* self) {
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  if (clock == nullptr) return 0;
  const GstClockTime now = gst_clock_get_time(clock);
  const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  gst_object_unref(clock);
  return now > base ? now - base : 0;
}

// The splitter's running time is mapped so the first buffer leaves "now".
// After a rejoin (a new mapping: the new splitter's clock may have started
// again from zero) it also leaves no earlier than the end of what was
// already pushed, so timestamps stay monotonic.
static void map_timestamps(GstP2pspSrc* self, const p2psp::MediaBuffer& in,
                           GstBuffer* out) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (!priv->out.have_ts_offset && in.pts != p2psp::kNoTime) {
    const GstClockTime running = current_running_time(self);
    priv->out.ts_offset = static_cast<GstClockTimeDiff>(running) -
                          static_cast<GstClockTimeDiff>(in.pts);
    const uint64_t earliest =
        in.dts != p2psp::kNoTime ? std::min(in.dts, in.pts) : in.pts;
    if (GST_CLOCK_TIME_IS_VALID(priv->out.out_end)) {
      const GstClockTimeDiff floor_offset =
          static_cast<GstClockTimeDiff>(priv->out.out_end) -
          static_cast<GstClockTimeDiff>(earliest);
      priv->out.ts_offset = std::max(priv->out.ts_offset, floor_offset);
    }
    priv->out.have_ts_offset = true;
    GST_DEBUG_OBJECT(self, "timestamp offset %" GST_STIME_FORMAT,
                     GST_STIME_ARGS(priv->out.ts_offset));
  }
  GST_BUFFER_PTS(out) = to_output_time(priv, in.pts);
  GST_BUFFER_DTS(out) = to_output_time(priv, in.dts);
  GST_BUFFER_DURATION(out) =
      in.duration == p2psp::kNoTime ? GST_CLOCK_TIME_NONE : in.duration;
}

static GstBuffer* wrap_data(std::vector<uint8_t>&& data) {
  if (data.empty()) return gst_buffer_new();
  auto* holder = new std::vector<uint8_t>(std::move(data));
  return gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, holder->data(), holder->size(), 0,
      holder->size(), holder,
      [](gpointer p) { delete static_cast<std::vector<uint8_t>*>(p); });
}

static void map_flags(uint32_t flags, GstBuffer* out) {
  if (flags & p2psp::MediaBuffer::kHeader)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_HEADER);
  if (flags & p2psp::MediaBuffer::kDeltaUnit)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DELTA_UNIT);
  if (flags & p2psp::MediaBuffer::kDiscont)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
  if (flags & p2psp::MediaBuffer::kGap)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_GAP);
}

static const GValue* streamheader_of(GstCaps* caps);

// Only byte-identical copies count: mpegtsmux, for one, also flags the
// packets of every keyframe HEADER, and those must reach the demuxer.
static bool duplicates_streamheader(GstP2pspSrcPrivate* priv,
                                    const std::vector<uint8_t>& data) {
  const GValue* streamheader = streamheader_of(priv->out.caps.get());
  if (streamheader == nullptr) return false;
  const guint n = gst_value_array_get_size(streamheader);
  for (guint i = 0; i < n; i++) {
    const GValue* v = gst_value_array_get_value(streamheader, i);
    if (!GST_VALUE_HOLDS_BUFFER(v)) continue;
    GstBuffer* header = gst_value_get_buffer(v);
    if (gst_buffer_get_size(header) == data.size() &&
        gst_buffer_memcmp(header, 0, data.data(), data.size()) == 0)
      return true;
  }
  return false;
}

static void queue_buffer(GstP2pspSrc* self, p2psp::MediaBuffer&& in) {
  GstP2pspSrcPrivate* priv = self->priv;
  const bool discont = (in.flags & p2psp::MediaBuffer::kDiscont) != 0;
  if ((in.flags & p2psp::MediaBuffer::kHeader) &&
      duplicates_streamheader(priv, in.data)) {
    // The caps' streamheader already carried it, first.
    GST_LOG_OBJECT(self, "dropping in-stream copy of a streamheader buffer");
    priv->out.carry_discont = priv->out.carry_discont || discont;
    return;
  }
  BufferPtr buffer(wrap_data(std::move(in.data)));
  map_timestamps(self, in, buffer.get());
  map_flags(in.flags, buffer.get());
  for (GstClockTime t :
       {GST_BUFFER_PTS(buffer.get()), GST_BUFFER_DTS(buffer.get())}) {
    if (!GST_CLOCK_TIME_IS_VALID(t)) continue;
    if (GST_BUFFER_DURATION_IS_VALID(buffer.get()))
      t += GST_BUFFER_DURATION(buffer.get());
    if (!GST_CLOCK_TIME_IS_VALID(priv->out.out_end) || t > priv->out.out_end)
      priv->out.out_end = t;
  }
  if (priv->out.carry_discont)
    GST_BUFFER_FLAG_SET(buffer.get(), GST_BUFFER_FLAG_DISCONT);
  priv->out.carry_discont = false;

  for (BufferPtr& header : priv->out.pending_headers) {
    GST_BUFFER_PTS(header.get()) = GST_BUFFER_PTS(buffer.get());
    priv->out.output.push_back(std::move(header));
  }
  priv->out.pending_headers.clear();
  priv->out.output.push_back(std::move(buffer));
}

static const GValue* streamheader_of(GstCaps* caps) {
  if (caps == nullptr || gst_caps_get_size(caps) == 0) return nullptr;
  const GValue* value =
      gst_structure_get_value(gst_caps_get_structure(caps, 0), "streamheader");
  return value != nullptr && GST_VALUE_HOLDS_ARRAY(value) ? value : nullptr;
}

// Copies of the streamheader buffers, flagged for going out first.
static void queue_streamheader(GstP2pspSrc* self, const GValue* streamheader) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->out.pending_headers.clear();
  const guint n = gst_value_array_get_size(streamheader);
  for (guint i = 0; i < n; i++) {
    const GValue* v = gst_value_array_get_value(streamheader, i);
    if (!GST_VALUE_HOLDS_BUFFER(v)) continue;
    GstBuffer* copy = gst_buffer_copy(gst_value_get_buffer(v));
    GST_BUFFER_PTS(copy) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DTS(copy) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_FLAG_SET(copy, GST_BUFFER_FLAG_HEADER);
    if (priv->out.pending_headers.empty())
      GST_BUFFER_FLAG_SET(copy, GST_BUFFER_FLAG_DISCONT);
    priv->out.pending_headers.emplace_back(copy);
  }
}

static GstFlowReturn apply_caps(GstP2pspSrc* self, const std::string& text) {
  GstP2pspSrcPrivate* priv = self->priv;
  CapsPtr caps(gst_caps_from_string(text.c_str()));
  if (!caps) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                      ("Received invalid caps from the P2PSP team"),
                      ("%s", text.c_str()));
    return GST_FLOW_ERROR;
  }
  // After a rejoin to a restarted stream the demuxer needs the headers
  // again, even with the same caps.
  const bool resend = priv->out.resend_headers;
  priv->out.resend_headers = false;
  if (priv->out.caps && gst_caps_is_equal(caps.get(), priv->out.caps.get())) {
    const GValue* header = streamheader_of(priv->out.caps.get());
    if (resend && header != nullptr) queue_streamheader(self, header);
    return GST_FLOW_OK;
  }

  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, caps.get());
  const GValue* old_header = streamheader_of(priv->out.caps.get());
  const GValue* new_header = streamheader_of(caps.get());
  if (new_header == nullptr) {
    priv->out.pending_headers.clear();
  } else if (resend || old_header == nullptr ||
             gst_value_compare(old_header, new_header) != GST_VALUE_EQUAL) {
    queue_streamheader(self, new_header);
  }
  if (!gst_base_src_set_caps(GST_BASE_SRC(self), caps.get())) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream refused the stream's caps"),
                      ("%s", text.c_str()));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  priv->out.caps = std::move(caps);
  return GST_FLOW_OK;
}

/* ------------------------------------------------------------ create ---- */

static void post_element_message(GstP2pspSrc* self, GstStructure* s) {
  gst_element_post_message(GST_ELEMENT(self),
                           gst_message_new_element(GST_OBJECT(self), s));
}

static GstFlowReturn post_failure(GstP2pspSrc* self, Failure failure,
                                  const std::string& text) {
  const Settings& s = self->priv->active;
  if (failure == Failure::kRemoved) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, READ,
        ("Removed from the P2PSP team by the splitter: %s", text.c_str()),
        (nullptr));
  } else {
    GST_ELEMENT_ERROR(self, RESOURCE, READ,
                      ("Lost the connection to the P2PSP splitter at %s:%d",
                       s.host.c_str(), s.port),
                      ("%s", text.c_str()));
  }
  self->priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

static GstFlowReturn post_timeout(GstP2pspSrc* self) {
  const Settings& s = self->priv->active;
  GST_ELEMENT_ERROR(self, RESOURCE, READ,
                    ("Timed out: no data from the P2PSP team of %s:%d for "
                     "%u seconds",
                     s.host.c_str(), s.port, s.timeout_s),
                    (nullptr));
  self->priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

// Waits on core_cond until `deadline` (core clock), at most a second.
// `lock` holds core_lock.
static void wait_until(GstP2pspSrcPrivate* priv,
                       std::unique_lock<std::mutex>& lock, Micros now,
                       Micros deadline) {
  const Micros wait = deadline > now ? deadline - now : 0;
  priv->core_cond.wait_for(
      lock, std::chrono::microseconds(std::min<Micros>(wait, G_USEC_PER_SEC)));
}

// Posts GstP2pspSrcRemoved for a REMOVED/REJECT the poll thread recorded.
// `lock` holds core_lock; it is released while posting (a bus sync handler
// may read the stats) and held again on return.
static void post_removed(GstP2pspSrc* self,
                         std::unique_lock<std::mutex>& lock) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (!priv->run.removed_unposted) return;
  priv->run.removed_unposted = false;
  GstStructure* s = gst_structure_new(
      kRemovedMessage, "reason", G_TYPE_STRING,
      p2psp_gst::remove_reason_nick(priv->run.removed_reason), "text",
      G_TYPE_STRING, priv->run.removed_text.c_str(), nullptr);
  lock.unlock();
  post_element_message(self, s);
  lock.lock();
}

// What ends a wait for the next item, other than an item.
enum class WaitEnd { kItem, kFlushing, kFailure, kTimeout, kEos };

static WaitEnd wait_for_item(GstP2pspSrc* self, p2psp::StreamItem* item,
                             Failure* failure, std::string* failure_text,
                             p2psp::RemoveReason* reason) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Micros timeout_us =
      static_cast<Micros>(priv->active.timeout_s) * G_USEC_PER_SEC;
  const Micros drain_us = static_cast<Micros>(priv->active.latency_ms) * 1000;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return WaitEnd::kFlushing;
    post_removed(self, lock);
    if (priv->flushing) return WaitEnd::kFlushing;
    const Micros now = p2psp_gst::monotonic_now_us();
    if (!priv->run.welcome_caps_taken &&
        !priv->link.peer->welcome_caps().empty()) {
      priv->run.welcome_caps_taken = true;
      item->kind = p2psp::StreamItem::Kind::kCaps;
      item->caps = priv->link.peer->welcome_caps();
      return WaitEnd::kItem;
    }
    if (!priv->link.ready.empty()) {
      *item = std::move(priv->link.ready.front());
      priv->link.ready.pop_front();
      return WaitEnd::kItem;
    }
    // The poll thread stops taking items when `ready` is full.
    if (priv->link.peer->pop_item(now, item)) return WaitEnd::kItem;
    if (priv->link.failure != Failure::kNone) {
      *failure = priv->link.failure;
      *failure_text = priv->link.failure_text;
      *reason = priv->link.failure_reason;
      return WaitEnd::kFailure;
    }
    // Items, events and failures come with a broadcast from the poll
    // thread; the only deadlines here are the stream's end and `timeout`.
    Micros deadline = kNever;
    if (priv->link.splitter_shutdown) {
      // Whatever was still in flight had `latency` to arrive.
      const Micros end = priv->link.shutdown_at_us + drain_us;
      if (now >= end) return WaitEnd::kEos;
      deadline = end;
    } else if (timeout_us > 0) {
      const Micros end = priv->run.last_activity_us + timeout_us;
      if (now >= end) return WaitEnd::kTimeout;
      deadline = end;
    }
    wait_until(priv, lock, now, deadline);
  }
}

// Stops the poll thread, closes the sockets and drops the core, keeping
// what the next connection needs to know.
static void teardown_connection(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->poll.stop();
  close_sockets(priv);
  std::unique_lock<std::mutex> lock(priv->core_lock);
  if (priv->link.peer) {
    const p2psp::PeerStats& s = priv->link.peer->stats();
    priv->run.base_lost += s.lost;
    priv->run.base_recovered += s.recovered;
    priv->run.base_nacks_sent += s.nacks_sent;
    if (priv->link.peer->team_id() != 0)
      priv->run.last_team_id = priv->link.peer->team_id();
  }
  priv->link = Link();
}

enum class JoinResult { kJoined, kFailed, kFlushing };

// One attempt: connect, start a core and wait until it is a member again.
static JoinResult try_join(GstP2pspSrc* self, Micros give_up_us,
                           std::string* why) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Micros now = p2psp_gst::monotonic_now_us();
  const Micros end = std::min(give_up_us, now + kJoinAttemptUs);
  const guint connect_timeout_s =
      static_cast<guint>(std::max<Micros>(1, (end - now) / G_USEC_PER_SEC));
  const OpenError opened = open_connection(self, connect_timeout_s, why);
  if (opened == OpenError::kCancelled) return JoinResult::kFlushing;
  if (opened != OpenError::kNone) return JoinResult::kFailed;

  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return JoinResult::kFlushing;
    if (priv->link.joined) return JoinResult::kJoined;
    if (priv->link.failure != Failure::kNone || priv->link.splitter_shutdown) {
      *why = priv->link.failure_text.empty() ? "the splitter is shutting down"
                                             : priv->link.failure_text;
      return JoinResult::kFailed;
    }
    const Micros t = p2psp_gst::monotonic_now_us();
    if (t >= end) {
      *why = "no answer to the join";
      return JoinResult::kFailed;
    }
    wait_until(priv, lock, t, end);
  }
}

// Sleeps until `until`, or until unlock(). FALSE when flushing.
static bool backoff_wait(GstP2pspSrcPrivate* priv, Micros until) {
  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return false;
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= until) return true;
    wait_until(priv, lock, now, until);
  }
}

// The output side of a rejoin: DISCONT, a new timestamp mapping, the caps
// again (and the streamheader again if the stream restarted).
static void prepare_output_after_rejoin(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  const bool new_stream = priv->link.peer->team_id() != priv->run.last_team_id;
  priv->out.carry_discont = true;
  priv->out.have_ts_offset = false;
  priv->run.welcome_caps_taken = false;
  priv->out.resend_headers = new_stream;
  priv->run.reconnecting = false;
  priv->run.reconnects++;
  GST_INFO_OBJECT(self, "rejoined the team as peer %u (%s team)",
                  priv->link.peer->id(), new_stream ? "new" : "same");
}

// Rejoins after a lost connection or a removal, trying until `timeout`.
static GstFlowReturn reconnect(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  priv->state = SrcState::kRejoining;
  const Micros lost_at = p2psp_gst::monotonic_now_us();
  const Micros give_up =
      s.timeout_s == 0
          ? kNever
          : lost_at + static_cast<Micros>(s.timeout_s) * G_USEC_PER_SEC;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->run.reconnecting = true;
  }
  teardown_connection(self);
  Micros backoff = kReconnectBackoffFirstUs;
  std::string why = "no attempt";
  for (guint attempt = 1;; attempt++) {
    GST_INFO_OBJECT(self, "rejoining %s:%d, attempt %u", s.host.c_str(), s.port,
                    attempt);
    post_element_message(
        self, gst_structure_new(kReconnectingMessage, "attempt", G_TYPE_UINT,
                                attempt, nullptr));
    switch (try_join(self, give_up, &why)) {
      case JoinResult::kJoined: {
        prepare_output_after_rejoin(self);
        priv->state = SrcState::kStreaming;
        guint id, reconnects;
        {
          std::unique_lock<std::mutex> lock(priv->core_lock);
          id = priv->link.peer->id();
          reconnects = priv->run.reconnects;
        }
        post_element_message(
            self,
            gst_structure_new(kRejoinedMessage, "peer-id", G_TYPE_UINT, id,
                              "reconnects", G_TYPE_UINT, reconnects, nullptr));
        return GST_FLOW_OK;
      }
      case JoinResult::kFlushing:
        return GST_FLOW_FLUSHING;
      case JoinResult::kFailed:
        break;
    }
    {
      // A REJECT of this attempt is on the bus like any removal.
      std::unique_lock<std::mutex> lock(priv->core_lock);
      post_removed(self, lock);
    }
    teardown_connection(self);
    GST_DEBUG_OBJECT(self, "attempt %u failed: %s", attempt, why.c_str());
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= give_up) break;
    if (!backoff_wait(priv, std::min(give_up, now + backoff)))
      return GST_FLOW_FLUSHING;
    backoff = std::min(backoff * 2, kReconnectBackoffMaxUs);
  }
  GST_ELEMENT_ERROR(self, RESOURCE, READ,
                    ("Could not rejoin the P2PSP team of %s:%d within %u "
                     "seconds",
                     s.host.c_str(), s.port, s.timeout_s),
                    ("last attempt: %s", why.c_str()));
  priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

// A lost splitter or a removal: a warning and a rejoin, or an error.
static GstFlowReturn handle_failure(GstP2pspSrc* self, Failure failure,
                                    const std::string& text,
                                    p2psp::RemoveReason reason) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  bool ever_joined;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    ever_joined = priv->run.ever_joined;
  }
  // Retrying cannot fix a version mismatch, and a splitter that refuses or
  // drops us before we ever were in the team is an answer, not an accident
  // (like a failed first connection).
  if (reason == p2psp::RemoveReason::kAuth) {
    // Retrying with the same passphrase cannot help either.
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_AUTHORIZED,
                      ("Not admitted to the P2PSP team of %s:%d: %s",
                       s.host.c_str(), s.port, text.c_str()),
                      (nullptr));
    priv->state = SrcState::kFailed;
    return GST_FLOW_ERROR;
  }
  const bool fatal = reason == p2psp::RemoveReason::kVersion || !ever_joined;
  if (!s.auto_reconnect || fatal) return post_failure(self, failure, text);
  if (failure == Failure::kRemoved) {
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("Removed from the P2PSP team by the splitter (%s); "
                         "rejoining",
                         text.c_str()),
                        ("reason: %s", p2psp_gst::remove_reason_nick(reason)));
  } else {
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("Lost the connection to the P2PSP splitter at "
                         "%s:%d; rejoining",
                         s.host.c_str(), s.port),
                        ("%s", text.c_str()));
  }
  return reconnect(self);
}

static GstFlowReturn next_item(GstP2pspSrc* self) {
  p2psp::StreamItem item;
  Failure failure = Failure::kNone;
  std::string failure_text;
  p2psp::RemoveReason reason = p2psp::RemoveReason::kUnknown;
  switch (wait_for_item(self, &item, &failure, &failure_text, &reason)) {
    case WaitEnd::kItem:
      break;
    case WaitEnd::kFlushing:
      return GST_FLOW_FLUSHING;
    case WaitEnd::kFailure:
      return handle_failure(self, failure, failure_text, reason);
    case WaitEnd::kTimeout:
      return post_timeout(self);
    case WaitEnd::kEos:
      GST_INFO_OBJECT(self, "the splitter ended the stream");
      self->priv->state = SrcState::kEos;
      return GST_FLOW_EOS;
  }
  if (item.kind == p2psp::StreamItem::Kind::kCaps)
    return apply_caps(self, item.caps);
  queue_buffer(self, std::move(item.buffer));
  return GST_FLOW_OK;
}

static GstFlowReturn gst_p2psp_src_create(GstPushSrc* psrc, GstBuffer** out) {
  GstP2pspSrc* self = GST_P2PSP_SRC(psrc);
  GstP2pspSrcPrivate* priv = self->priv;
  if (priv->state == SrcState::kReady) {
    GstFlowReturn ret = connect_to_splitter(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  if (priv->state == SrcState::kRejoining) {
    // A flush interrupted the rejoin: start it again (a new `timeout`).
    GstFlowReturn ret = reconnect(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  while (priv->out.output.empty()) {
    if (priv->state == SrcState::kFailed) return GST_FLOW_ERROR;
    if (priv->state == SrcState::kEos) return GST_FLOW_EOS;
    GstFlowReturn ret = next_item(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  *out = priv->out.output.front().release();
  priv->out.output.pop_front();
  GST_LOG_OBJECT(self, "pushing %" GST_PTR_FORMAT, *out);
  return GST_FLOW_OK;
}

/* --------------------------------------------------- start and stop ---- */

static gboolean gst_p2psp_src_start(GstBaseSrc* bsrc) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  GstP2pspSrcPrivate* priv = self->priv;
  GST_OBJECT_LOCK(self);
  priv->active = priv->settings;
  GST_OBJECT_UNLOCK(self);
  const std::string& passphrase = priv->active.passphrase;
  if (auto problem = p2psp::auth::passphrase_problem(passphrase);
      problem && !passphrase.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid passphrase"),
                      ("%s", problem->c_str()));
    return FALSE;
  }
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = false;
    priv->link = Link();
    priv->run = Run();
  }
  g_cancellable_reset(priv->cancel.get());
  priv->out = Output();
  priv->state = SrcState::kReady;
  GST_DEBUG_OBJECT(self, "started; will join %s:%d", priv->active.host.c_str(),
                   priv->active.port);
  return TRUE;
}

// Gives queued TCP bytes (the goodbye) a bounded chance to leave.
static void flush_tcp_bounded(GstP2pspSrcPrivate* priv) {
  if (!priv->net.tcp || priv->net.tcp_closed) return;
  const Micros end = p2psp_gst::monotonic_now_us() + kLeaveFlushUs;
  while (priv->net.tcp->wants_write()) {
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= end) break;
    g_socket_condition_timed_wait(priv->net.tcp->socket(), G_IO_OUT,
                                  static_cast<gint64>(end - now), nullptr,
                                  nullptr);
    if (!priv->net.tcp->flush()) break;
  }
}

static void leave_team(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    if (!priv->link.peer) return;
    priv->link.peer->leave(p2psp_gst::monotonic_now_us(), &priv->link.outbox);
    dispatch_outbox(self);
  }
  flush_tcp_bounded(priv);
}

static void close_sockets(GstP2pspSrcPrivate* priv) {
  priv->net.tcp.reset();
  if (priv->net.tcp_stream)
    g_io_stream_close(G_IO_STREAM(priv->net.tcp_stream.get()), nullptr,
                      nullptr);
  priv->net.tcp_stream.reset();
  if (priv->net.udp) g_socket_close(priv->net.udp.get(), nullptr);
  priv->net = Sockets();
}

static gboolean gst_p2psp_src_stop(GstBaseSrc* bsrc) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  GstP2pspSrcPrivate* priv = self->priv;
  priv->poll.stop();
  leave_team(self);
  close_sockets(priv);
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->link = Link();
  }
  priv->out = Output();
  priv->state = SrcState::kStopped;
  GST_DEBUG_OBJECT(self, "stopped");
  return TRUE;
}

static gboolean gst_p2psp_src_unlock(GstBaseSrc* bsrc) {
  GstP2pspSrcPrivate* priv = GST_P2PSP_SRC(bsrc)->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = true;
    priv->core_cond.notify_all();
  }
  g_cancellable_cancel(priv->cancel.get());
  return TRUE;
}

static gboolean gst_p2psp_src_unlock_stop(GstBaseSrc* bsrc) {
  GstP2pspSrcPrivate* priv = GST_P2PSP_SRC(bsrc)->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = false;
  }
  g_cancellable_reset(priv->cancel.get());
  return TRUE;
}

static gboolean gst_p2psp_src_query(GstBaseSrc* bsrc, GstQuery* query) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  if (GST_QUERY_TYPE(query) != GST_QUERY_LATENCY)
    return GST_BASE_SRC_CLASS(parent_class)->query(bsrc, query);
  GST_OBJECT_LOCK(self);
  /* A buffer is taken out of the playout buffer in the network thread's
   * next round: up to io-interval after it is due. */
  const GstClockTime latency =
      (self->priv->settings.latency_ms + self->priv->settings.io_interval_ms) *
      GST_MSECOND;
  GST_OBJECT_UNLOCK(self);
  /* Chunks wait in the playout buffer, not on a fixed ring: downstream may
   * add any latency of its own without us losing data (max = NONE), which
   * keeps sinks with a processing deadline from calling the pipeline
   * invalid. */
  gst_query_set_latency(query, TRUE, latency, GST_CLOCK_TIME_NONE);
  return TRUE;
}

/* ------------------------------------------------------------- URI ---- */

static gchar* build_uri(const Settings& s) {
  GString* uri = g_string_new("p2psp://");
  const bool ipv6 = s.host.find(':') != std::string::npos;
  g_string_append_printf(uri, ipv6 ? "[%s]:%d" : "%s:%d", s.host.c_str(),
                         s.port);
  const char* separator = "?";
  if (s.latency_ms != kDefaultLatencyMs) {
    g_string_append_printf(uri, "%slatency=%u", separator, s.latency_ms);
    separator = "&";
  }
  if (s.timeout_s != kDefaultTimeoutS) {
    g_string_append_printf(uri, "%stimeout=%u", separator, s.timeout_s);
    separator = "&";
  }
  if (s.monitor != kDefaultMonitor) {
    g_string_append_printf(uri, "%smonitor=%s", separator,
                           s.monitor ? "true" : "false");
    separator = "&";
  }
  if (s.auto_reconnect != kDefaultAutoReconnect) {
    g_string_append_printf(uri, "%sauto-reconnect=%s", separator,
                           s.auto_reconnect ? "true" : "false");
    separator = "&";
  }
  if (s.io_interval_ms != kDefaultIoIntervalMs)
    g_string_append_printf(uri, "%sio-interval=%u", separator,
                           s.io_interval_ms);
  return g_string_free(uri, FALSE);
}

// Query keys may set the properties that are not part of the URI itself.
static gboolean check_query_key(GObject* object, const char* key,
                                const char* value, GError** error) {
  GParamSpec* pspec =
      g_object_class_find_property(G_OBJECT_GET_CLASS(object), key);
  const bool settable = pspec != nullptr && (pspec->flags & G_PARAM_WRITABLE) &&
                        g_strcmp0(key, "uri") != 0 &&
                        g_strcmp0(key, "host") != 0 &&
                        g_strcmp0(key, "port") != 0;
  if (!settable) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Unknown query key '%s' in p2psp URI", key);
    return FALSE;
  }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, pspec->value_type);
  const bool ok = value != nullptr && gst_value_deserialize(&v, value) &&
                  !g_param_value_validate(pspec, &v);
  g_value_unset(&v);
  if (!ok) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Invalid value '%s' for '%s' in p2psp URI", value ? value : "",
                key);
    return FALSE;
  }
  return TRUE;
}

static gboolean parse_uri_authority(GstUri* uri, Settings* s, GError** error) {
  const gchar* scheme = gst_uri_get_scheme(uri);
  const gchar* host = gst_uri_get_host(uri);
  gchar* path = gst_uri_get_path(uri); /* transfer full */
  const bool path_empty =
      path == nullptr || g_strcmp0(path, "") == 0 || g_strcmp0(path, "/") == 0;
  g_free(path);
  const guint port = gst_uri_get_port(uri);
  if (g_ascii_strcasecmp(scheme ? scheme : "", "p2psp") != 0 ||
      host == nullptr || host[0] == '\0' || port > 65535 ||
      gst_uri_get_userinfo(uri) != nullptr || !path_empty) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Expected p2psp://host:port");
    return FALSE;
  }
  s->host = host;
  s->port = port == GST_URI_NO_PORT ? kDefaultPort : static_cast<int>(port);
  return TRUE;
}

static gboolean gst_p2psp_src_set_uri(GstP2pspSrc* self, const gchar* text,
                                      GError** error) {
  GST_OBJECT_LOCK(self);
  const GstState state = GST_STATE(self);
  GST_OBJECT_UNLOCK(self);
  if (state > GST_STATE_READY) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
                "Changing the URI of p2pspsrc is only possible in the NULL "
                "or READY state");
    return FALSE;
  }

  GstUri* uri = text ? gst_uri_from_string(text) : nullptr;
  if (uri == nullptr) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Invalid p2psp URI: %s", text ? text : "(null)");
    return FALSE;
  }
  Settings parsed;
  gboolean ok = parse_uri_authority(uri, &parsed, error);
  GHashTable* query = ok ? gst_uri_get_query_table(uri) : nullptr;
  if (query != nullptr) {
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, query);
    while (ok && g_hash_table_iter_next(&iter, &key, &value))
      ok = check_query_key(G_OBJECT(self), static_cast<const char*>(key),
                           static_cast<const char*>(value), error);
  }
  if (ok) {
    GST_OBJECT_LOCK(self);
    self->priv->settings.host = parsed.host;
    self->priv->settings.port = parsed.port;
    GST_OBJECT_UNLOCK(self);
    if (query != nullptr) {
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init(&iter, query);
      while (g_hash_table_iter_next(&iter, &key, &value))
        gst_util_set_object_arg(G_OBJECT(self), static_cast<gchar*>(key),
                                static_cast<gchar*>(value));
    }
    g_object_notify(G_OBJECT(self), "host");
    g_object_notify(G_OBJECT(self), "port");
    g_object_notify(G_OBJECT(self), "uri");
  }
  if (query != nullptr) g_hash_table_unref(query);
  gst_uri_unref(uri);
  return ok;
}

static GstURIType gst_p2psp_src_uri_get_type(GType) { return GST_URI_SRC; }

static const gchar* const* gst_p2psp_src_uri_get_protocols(GType) {
  static const gchar* protocols[] = {"p2psp", nullptr};
  return protocols;
}

static gchar* gst_p2psp_src_uri_get_uri(GstURIHandler* handler) {
  GstP2pspSrc* self = GST_P2PSP_SRC(handler);
  GST_OBJECT_LOCK(self);
  gchar* uri = build_uri(self->priv->settings);
  GST_OBJECT_UNLOCK(self);
  return uri;
}

static gboolean gst_p2psp_src_uri_set_uri(GstURIHandler* handler,
                                          const gchar* uri, GError** error) {
  return gst_p2psp_src_set_uri(GST_P2PSP_SRC(handler), uri, error);
}

static void gst_p2psp_src_uri_handler_init(gpointer g_iface, gpointer) {
  auto* iface = static_cast<GstURIHandlerInterface*>(g_iface);
  iface->get_type = gst_p2psp_src_uri_get_type;
  iface->get_protocols = gst_p2psp_src_uri_get_protocols;
  iface->get_uri = gst_p2psp_src_uri_get_uri;
  iface->set_uri = gst_p2psp_src_uri_set_uri;
}

/* ------------------------------------------------------ properties ---- */

static void gst_p2psp_src_set_property(GObject* object, guint prop_id,
                                       const GValue* value, GParamSpec* pspec) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  Settings& s = self->priv->settings;
  if (prop_id == PROP_URI) {
    GError* error = nullptr;
    if (!gst_p2psp_src_set_uri(self, g_value_get_string(value), &error)) {
      GST_WARNING_OBJECT(self, "%s", error->message);
      g_error_free(error);
    }
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_HOST: {
      const gchar* host = g_value_get_string(value);
      s.host = host ? host : kDefaultHost;
      break;
    }
    case PROP_PORT:
      s.port = g_value_get_int(value);
      break;
    case PROP_LATENCY:
      s.latency_ms = g_value_get_uint(value);
      break;
    case PROP_TIMEOUT:
      s.timeout_s = g_value_get_uint(value);
      break;
    case PROP_MONITOR:
      s.monitor = g_value_get_boolean(value);
      break;
    case PROP_AUTO_RECONNECT:
      s.auto_reconnect = g_value_get_boolean(value);
      break;
    case PROP_PASSPHRASE: {
      const gchar* passphrase = g_value_get_string(value);
      s.passphrase = passphrase ? passphrase : "";
      break;
    }
    case PROP_IO_INTERVAL:
      s.io_interval_ms = g_value_get_uint(value);
      self->priv->poll.set_period(static_cast<Micros>(s.io_interval_ms) * 1000);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
  // It is part of the latency we report.
  if (prop_id == PROP_IO_INTERVAL)
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_latency(GST_OBJECT(self)));
}

static void gst_p2psp_src_get_property(GObject* object, guint prop_id,
                                       GValue* value, GParamSpec* pspec) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  const Settings& s = self->priv->settings;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_URI:
      g_value_take_string(value, build_uri(s));
      break;
    case PROP_HOST:
      g_value_set_string(value, s.host.c_str());
      break;
    case PROP_PORT:
      g_value_set_int(value, s.port);
      break;
    case PROP_LATENCY:
      g_value_set_uint(value, s.latency_ms);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint(value, s.timeout_s);
      break;
    case PROP_MONITOR:
      g_value_set_boolean(value, s.monitor);
      break;
    case PROP_AUTO_RECONNECT:
      g_value_set_boolean(value, s.auto_reconnect);
      break;
    case PROP_IO_INTERVAL:
      g_value_set_uint(value, s.io_interval_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

/* ------------------------------------------------------------ GType ---- */

static void gst_p2psp_src_finalize(GObject* object) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_p2psp_src_init(GstP2pspSrc* self) {
  self->priv = new GstP2pspSrcPrivate();
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  gst_base_src_set_do_timestamp(GST_BASE_SRC(self), FALSE);
}

static void install_properties(GObjectClass* gobject_class) {
  const auto rw = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_URI,
      g_param_spec_string("uri", "URI",
                          "Splitter to join, as p2psp://host:port (query "
                          "keys set other properties, e.g. ?latency=300)",
                          "p2psp://127.0.0.1:4552", rw));
  g_object_class_install_property(
      gobject_class, PROP_HOST,
      g_param_spec_string("host", "Host",
                          "Host name or address of the splitter", kDefaultHost,
                          rw));
  g_object_class_install_property(
      gobject_class, PROP_PORT,
      g_param_spec_int("port", "Port", "TCP port of the splitter", 1, 65535,
                       kDefaultPort, rw));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Playout buffering in milliseconds: how long a chunk "
                        "waits for earlier ones",
                        0, kMaxLatencyMs, kDefaultLatencyMs, rw));
  g_object_class_install_property(
      gobject_class, PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds to wait for the connection, for data, and "
                        "for a rejoin after losing the team, before giving "
                        "up (0 = forever)",
                        0, kMaxTimeoutS, kDefaultTimeoutS, rw));
  g_object_class_install_property(
      gobject_class, PROP_MONITOR,
      g_param_spec_boolean("monitor", "Monitor",
                           "Ask to be a monitor: report lost chunks to the "
                           "splitter, which expels peers that lose too many",
                           kDefaultMonitor, rw));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_RECONNECT,
      g_param_spec_boolean(
          "auto-reconnect", "Auto reconnect",
          "After losing the splitter or being removed from the team, post a "
          "warning and rejoin (for up to timeout seconds) instead of an "
          "error",
          kDefaultAutoReconnect, rw));
  g_object_class_install_property(
      gobject_class, PROP_PASSPHRASE,
      g_param_spec_string(
          "passphrase", "Passphrase",
          "Passphrase of an authenticated team (10 to 79 characters, "
          "write-only; also the URI query key 'passphrase'). Empty: join "
          "open teams only",
          nullptr,
          static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(
      gobject_class, PROP_IO_INTERVAL,
      g_param_spec_uint(
          "io-interval", "I/O interval",
          "Handle the network at most once per this many milliseconds "
          "instead of on every datagram: fewer wake-ups (less CPU) for up to "
          "this much more delay per hop, and as much more reported latency "
          "(0 = on every datagram)",
          0, kMaxIoIntervalMs, kDefaultIoIntervalMs,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Peer statistics (application/x-p2psp-peer-stats)",
          GST_TYPE_STRUCTURE,
          static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
}

static void install_signals(GObjectClass* gobject_class) {
  /**
   * GstP2pspSrc::peer-added:
   * @src: the p2pspsrc
   * @id: the neighbour's peer id
   * @endpoint: the neighbour's UDP endpoint, "address:port"
   *
   * A peer joined the team and became a neighbour. Emitted from the
   * element's network thread.
   */
  src_signals[SIGNAL_PEER_ADDED] = g_signal_new(
      "peer-added", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSrc::peer-removed:
   * @src: the p2pspsrc
   * @id: the neighbour's peer id
   * @endpoint: the neighbour's UDP endpoint, "address:port"
   *
   * A neighbour left the team or was dropped. Emitted from the element's
   * network thread.
   */
  src_signals[SIGNAL_PEER_REMOVED] = g_signal_new(
      "peer-removed", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
}

static void gst_p2psp_src_class_init(GstP2pspSrcClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass* basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass* pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  gobject_class->set_property = gst_p2psp_src_set_property;
  gobject_class->get_property = gst_p2psp_src_get_property;
  gobject_class->finalize = gst_p2psp_src_finalize;
  install_properties(gobject_class);
  install_signals(gobject_class);

  gst_element_class_add_static_pad_template(element_class, &src_template);
  p2psp_gst::mark_enums_as_plugin_api();
  gst_element_class_set_static_metadata(
      element_class, "P2PSP peer source", "Source/Network",
      "Joins a P2PSP team and outputs the live stream it carries",
      "gst-p2psp developers");

  basesrc_class->start = gst_p2psp_src_start;
  basesrc_class->stop = gst_p2psp_src_stop;
  basesrc_class->unlock = gst_p2psp_src_unlock;
  basesrc_class->unlock_stop = gst_p2psp_src_unlock_stop;
  basesrc_class->query = gst_p2psp_src_query;
  pushsrc_class->create = gst_p2psp_src_create;
}
