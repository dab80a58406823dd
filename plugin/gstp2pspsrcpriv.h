/* gst-p2psp: p2pspsrc's private header, shared by its three files:
 * gstp2pspsrc.cc (GObject glue: properties, URI, start/stop, create),
 * gstp2pspsrcio.cc (sockets, the poll thread that drives p2psp::Peer,
 * stats) and gstp2pspsrcstream.cc (the streaming thread: waiting for items,
 * rejoining, mapping buffers, caps and stream headers).
 *
 * Who owns what: Settings under the object lock; Link and Run under
 * core_lock (poll thread and streaming thread); the TeamIo (sockets, poll
 * thread) set up by the streaming thread, then used under core_lock;
 * Output by the streaming thread only. Each is reset by assignment. */
#pragma once

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

#include "gstp2pspenums.h"
#include "gstp2pspsrc.h"
#include "gstp2pspteamio.h"
#include "gstp2psputil.h"

GST_DEBUG_CATEGORY_EXTERN(gst_p2psp_src_debug);
#define GST_CAT_DEFAULT gst_p2psp_src_debug

namespace p2psp_src {

using p2psp::Micros;
using p2psp_gst::GErrorPtr;
using p2psp_gst::GRef;

constexpr const char* kDefaultHost = "127.0.0.1";
constexpr int kDefaultPort = 4552;
constexpr guint kDefaultLatencyMs = 200;
constexpr guint kDefaultTimeoutS = 10;
constexpr guint kMaxLatencyMs = 600000;
constexpr guint kMaxTimeoutS = 3600;
// -1: automatic (TeamIo's AdaptiveInterval), rounds a tenth of `latency`
// apart, at most kAutoIoIntervalMaxMs, while the traffic is busy.
constexpr gint kDefaultIoIntervalMs = -1;
constexpr gint kMaxIoIntervalMs = 100;
constexpr guint kAutoIoIntervalMaxMs = 20;
// The late-joiner gate's bounded wait for a start point (PeerConfig).
constexpr guint kDefaultStartTimeoutMs = 3000;
constexpr guint kMaxStartTimeoutMs = 600000;
constexpr gboolean kDefaultMonitor = FALSE;
constexpr gboolean kDefaultJoinBurst = TRUE;
// A channel URI without a port names the tracker's default port.
constexpr int kDefaultTrackerPort = 8000;
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
  PROP_START_TIMEOUT,
  PROP_JOIN_BURST,
  PROP_CHANNEL,
  PROP_UPLOAD_LIMIT,
  PROP_STATS,
};

enum { SIGNAL_PEER_ADDED, SIGNAL_PEER_REMOVED, LAST_SIGNAL };
extern guint src_signals[LAST_SIGNAL];

struct Settings {
  std::string host = kDefaultHost;
  int port = kDefaultPort;
  guint latency_ms = kDefaultLatencyMs;
  guint timeout_s = kDefaultTimeoutS;
  bool monitor = kDefaultMonitor;
  bool auto_reconnect = kDefaultAutoReconnect;
  gint io_interval_ms = kDefaultIoIntervalMs;
  guint start_timeout_ms = kDefaultStartTimeoutMs;
  bool join_burst = kDefaultJoinBurst;
  gint64 upload_limit_bps = -1;  // -1: no limit stated
  std::string passphrase;        // never logged, never readable, not in the URI
  // Non-empty: join this channel through the tracker at host:port
  // (p2psp://tracker:port/channel, docs/tracker.md).
  std::string channel;
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
enum class OpenError {
  kNone,
  kCancelled,
  kNotFound,
  kConnect,
  kUdp,
  kThread,
  kTracker
};

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
  // The UDP socket's kernel side, copied from the I/O object for stats
  // (docs/elements.md).
  p2psp_gst::UdpKernelStats udp_kernel;
  std::vector<uint8_t> tcp_rx;  // the poll thread's TCP read buffer
  // Items popped by the poll thread, in order, for the streaming thread: it
  // is woken only when there is one (or news), not for every datagram.
  std::deque<p2psp::StreamItem> ready;
  // What GstP2pspSrcStart told of this connection's late-joiner gate.
  struct {
    bool started = false;
    Micros waiting_posted_us = 0;  // 0: no waiting message yet
  } start_posted;
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
  // Channel URIs: the team the tracker named last ("host:port"), and the
  // one a rejoin asks it to avoid (it just failed us).
  std::string team;
  std::string avoid_team;
  uint64_t base_lost = 0;  // counters of the previous connections
  uint64_t base_recovered = 0;
  uint64_t base_nacks_sent = 0;
  uint64_t posted_lost = 0;  // values in the last GstP2pspSrcLoss
  uint64_t posted_recovered = 0;
  uint64_t posted_nacks_sent = 0;
  Micros loss_posted_us = 0;
};

// Output, owned by the streaming thread. Replaced whole by start()/stop().
struct Output {
  CapsPtr caps;
  std::vector<BufferPtr> pending_headers;  // go out before the next buffer
  // A non-HEADER buffer went out since the streamheader was queued.
  bool media_started = false;
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

}  // namespace p2psp_src

using namespace p2psp_src;

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

  // The sockets, the poll thread, dispatch: set up by create() (the poll
  // thread stopped), then used under core_lock. Reset once closed.
  p2psp_gst::TeamIo io;

  Output out;
};

struct _GstP2pspSrc {
  GstPushSrc parent;
  GstP2pspSrcPrivate* priv;
};

namespace p2psp_src {

// What ends a wait for the next item, other than an item.
enum class WaitEnd { kItem, kFlushing, kFailure, kTimeout, kEos };
enum class JoinResult { kJoined, kFailed, kFlushing };

/* gstp2pspsrcio.cc */
GValue neighbours_list_value(
    const std::vector<p2psp::NeighbourInfo>& neighbours);
void add_health_stats(GstStructure* stats, const p2psp::PeerStats& s,
                      guint reconnects);
void add_path_stats(GstStructure* stats, const p2psp::PeerStats& s);
GstStructure* build_stats(GstP2pspSrc* self);
void on_removed(GstP2pspSrc* self, const p2psp::PeerEvent& ev, Micros now);
void dispatch_outbox(GstP2pspSrc* self);
bool collect_events(GstP2pspSrc* self, Micros now,
                    std::vector<NeighbourSignal>* signals);
bool pump_items(GstP2pspSrcPrivate* priv, Micros now);
bool finish_core_round(GstP2pspSrc* self, Micros now,
                       std::vector<NeighbourSignal>* signals);
void wake_streaming(GstP2pspSrc* self, bool news);
void emit_signals(GstP2pspSrc* self,
                  const std::vector<NeighbourSignal>& signals);
void on_udp_readable(GstP2pspSrc* self, bool multicast);
void on_tcp_ended(GstP2pspSrc* self, Micros now, const char* why);
void read_tcp(GstP2pspSrc* self, Micros now,
              std::vector<NeighbourSignal>* signals);
void on_tcp_io(GstP2pspSrc* self, GIOCondition condition);
bool watch_sockets(GstP2pspSrc* self, p2psp_gst::PollThread::WatchList& list);
GstStructure* loss_message_if_due(GstP2pspSrcPrivate* priv, Micros now);
Micros on_poll_timer(GstP2pspSrc* self, Micros now);
bool start_poll_thread(GstP2pspSrc* self);
OpenError open_tcp(GstP2pspSrc* self, guint connect_timeout_s,
                   std::string* detail);
OpenError open_udp(GstP2pspSrc* self, GSocketFamily family,
                   std::string* detail);
OpenError start_peer(GstP2pspSrc* self, std::string* detail);
OpenError open_connection(GstP2pspSrc* self, guint connect_timeout_s,
                          std::string* detail);
GstFlowReturn connect_to_splitter(GstP2pspSrc* self);
void teardown_connection(GstP2pspSrc* self);
void flush_tcp_bounded(GstP2pspSrcPrivate* priv);
void leave_team(GstP2pspSrc* self);
void close_sockets(GstP2pspSrcPrivate* priv);

/* gstp2pspsrcstream.cc */
GstClockTime to_output_time(GstP2pspSrcPrivate* priv, uint64_t t);
GstClockTime current_running_time(GstP2pspSrc* self);
void map_timestamps(GstP2pspSrc* self, const p2psp::MediaBuffer& in,
                    GstBuffer* out);
GstBuffer* wrap_data(std::vector<uint8_t>&& data);
void map_flags(uint32_t flags, GstBuffer* out);
bool duplicates_streamheader(GstP2pspSrcPrivate* priv,
                             const std::vector<uint8_t>& data);
void queue_buffer(GstP2pspSrc* self, p2psp::MediaBuffer&& in);
const GValue* streamheader_of(GstCaps* caps);
void queue_streamheader(GstP2pspSrc* self, const GValue* streamheader);
GstFlowReturn apply_caps(GstP2pspSrc* self, const std::string& text);
void post_element_message(GstP2pspSrc* self, GstStructure* s);
GstFlowReturn post_failure(GstP2pspSrc* self, Failure failure,
                           const std::string& text);
GstFlowReturn post_timeout(GstP2pspSrc* self);
void wait_until(GstP2pspSrcPrivate* priv, std::unique_lock<std::mutex>& lock,
                Micros now, Micros deadline);
void post_removed(GstP2pspSrc* self, std::unique_lock<std::mutex>& lock);
void post_start(GstP2pspSrc* self, std::unique_lock<std::mutex>& lock,
                Micros now);
WaitEnd wait_for_item(GstP2pspSrc* self, p2psp::StreamItem* item,
                      Failure* failure, std::string* failure_text,
                      p2psp::RemoveReason* reason);
JoinResult try_join(GstP2pspSrc* self, Micros give_up_us, std::string* why);
bool backoff_wait(GstP2pspSrcPrivate* priv, Micros until);
void prepare_output_after_rejoin(GstP2pspSrc* self);
void finish_rejoin(GstP2pspSrc* self);
GstFlowReturn post_rejoin_failed(GstP2pspSrc* self, const std::string& why);
GstFlowReturn reconnect(GstP2pspSrc* self);
GstFlowReturn handle_failure(GstP2pspSrc* self, Failure failure,
                             const std::string& text,
                             p2psp::RemoveReason reason);
GstFlowReturn next_item(GstP2pspSrc* self);

}  // namespace p2psp_src
