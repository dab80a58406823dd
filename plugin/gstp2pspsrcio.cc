/* gst-p2psp: p2pspsrc's network side over the shared TeamIo
 * (gstp2pspteamio.h): connecting, the poll thread's callbacks that drive
 * p2psp::Peer (its events, items for the streaming thread), joining and
 * leaving, and the stats. */
#include "gstp2pspmulticast.h"
#include "gstp2pspsrcpriv.h"
#include "gstp2psptracker.h"

namespace p2psp_src {

/* ------------------------------------------------------------ stats ---- */

const char* path_nick(p2psp::NeighbourPath path) {
  switch (path) {
    case p2psp::NeighbourPath::kDirect:
      return "direct";
    case p2psp::NeighbourPath::kPredicted:
      return "predicted";
    case p2psp::NeighbourPath::kLan:
      return "lan";
    case p2psp::NeighbourPath::kRelayed:
      return "relayed";
    case p2psp::NeighbourPath::kSplitter:
      return "splitter";
    case p2psp::NeighbourPath::kMulticast:
      return "multicast";
    case p2psp::NeighbourPath::kUnknown:
      break;
  }
  return "unknown";
}

GValue neighbours_list_value(
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
                          (guint64)n.chunks_received,            //
                          "path", G_TYPE_STRING, path_nick(n.path), nullptr));
    gst_value_array_append_and_take_value(&list, &entry);
  }
  return list;
}

// Team health (counters of the current connection) and rejoins.
void add_health_stats(GstStructure* stats, const p2psp::PeerStats& s,
                      guint reconnects) {
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
      "requests-refused", G_TYPE_UINT64, (guint64)s.requests_refused,    //
      "signed-team", G_TYPE_BOOLEAN, s.signed_team != 0,                 //
      "bad-signatures", G_TYPE_UINT64, (guint64)s.bad_signatures,        //
      "unsigned-chunks", G_TYPE_UINT64, (guint64)s.unsigned_chunks,      //
      "pollution-reports-sent", G_TYPE_UINT64,                           //
      (guint64)s.pollution_reports_sent,                                 //
      "burst-chunks", G_TYPE_UINT64, (guint64)s.burst_chunks,            //
      "nack-answers-from-splitter", G_TYPE_UINT64,
      (guint64)s.nack_answers_from_splitter,  //
      "reconnects", G_TYPE_UINT, reconnects, nullptr);
}

// Address validation and paths (docs/security.md, docs/protocol.md 3.2).
void add_path_stats(GstStructure* stats, const p2psp::PeerStats& s) {
  gst_structure_set(stats, "probes-sent", G_TYPE_UINT64, (guint64)s.probes_sent,
                    "endpoints-moved", G_TYPE_UINT64,
                    (guint64)s.endpoints_moved, "moves-refused", G_TYPE_UINT64,
                    (guint64)s.moves_refused, "amplification-limited",
                    G_TYPE_UINT64, (guint64)s.amplification_limited, nullptr);
  // Paths (docs/protocol.md 3.2, docs/elements.md).
  gst_structure_set(stats, "lan-neighbours", G_TYPE_UINT64,
                    (guint64)s.lan_neighbours, "chunks-from-lan", G_TYPE_UINT64,
                    (guint64)s.chunks_from_lan, "paths-direct", G_TYPE_UINT64,
                    (guint64)s.paths_direct, "paths-predicted", G_TYPE_UINT64,
                    (guint64)s.paths_predicted, "paths-lan", G_TYPE_UINT64,
                    (guint64)s.paths_lan, "paths-relayed", G_TYPE_UINT64,
                    (guint64)s.paths_relayed, "paths-splitter", G_TYPE_UINT64,
                    (guint64)s.paths_splitter, "paths-multicast", G_TYPE_UINT64,
                    (guint64)s.paths_multicast, "multicast", G_TYPE_BOOLEAN,
                    (gboolean)(s.multicast != 0), "chunks-from-multicast",
                    G_TYPE_UINT64, (guint64)s.chunks_from_multicast, nullptr);
  // Port prediction (docs/protocol.md 3.3).
  gst_structure_set(stats, "predict-probes-sent", G_TYPE_UINT64,
                    (guint64)s.predict_probes_sent, "predicted-neighbours",
                    G_TYPE_UINT64, (guint64)s.predicted_neighbours,
                    "hellos-repeated", G_TYPE_UINT64,
                    (guint64)s.hellos_repeated, nullptr);
}

GstStructure* build_stats(GstP2pspSrc* self) {
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
  add_path_stats(stats, s);
  add_health_stats(stats, s, priv->run.reconnects);
  // The kernel's side of the UDP socket (datagrams it dropped for a full
  // receive buffer never reach the counters above).
  p2psp_gst::add_udp_kernel_stats(stats, priv->link.udp_kernel);
  GValue list = neighbours_list_value(
      priv->link.peer ? priv->link.peer->neighbours()
                      : std::vector<p2psp::NeighbourInfo>());
  gst_structure_take_value(stats, "neighbours-list", &list);
  return stats;
}

/* ------------------------------------------------------- poll thread ---- */

// Hands what the peer asked for to the sockets. Called with core_lock held.
void dispatch_outbox(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  const uint64_t dropped_before = priv->io.datagrams_dropped();
  const p2psp_gst::Dispatched done = priv->io.dispatch(priv->link.outbox);
  const uint64_t dropped = priv->io.datagrams_dropped() - dropped_before;
  if (dropped > 0)
    GST_LOG_OBJECT(self, "%" G_GUINT64_FORMAT " datagrams dropped", dropped);
  if (done.tcp_failed) {
    GST_DEBUG_OBJECT(self, "writing to the splitter failed");
    if (priv->link.failure == Failure::kNone && !priv->link.splitter_shutdown) {
      priv->link.failure = Failure::kLostSplitter;
      priv->link.failure_text = "Sending to the splitter failed";
    }
  }
}

// The splitter named a multicast group (docs/protocol.md 8.5): join it on
// the interface the splitter is reached through. A host that cannot (no
// multicast there) just keeps getting its chunks unicast. Called with
// core_lock; the poll thread watches the socket from its next round.
void open_multicast(GstP2pspSrc* self, const p2psp::Endpoint& group) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (priv->io.multicast()) return;
  GRef<GSocketAddress> local(
      g_socket_connection_get_local_address(priv->io.stream(), nullptr));
  const p2psp::Endpoint via =
      local ? p2psp_gst::endpoint_from_address(local.get()) : p2psp::Endpoint();
  std::string error;
  priv->io.adopt_multicast(
      p2psp_gst::multicast_receiver_open(group, via, &error));
  if (priv->io.multicast()) {
    GST_INFO_OBJECT(self, "joined multicast group %s",
                    group.to_string().c_str());
  } else {
    GST_INFO_OBJECT(self, "not joining multicast group %s: %s",
                    group.to_string().c_str(), error.c_str());
  }
}

// REMOVED or REJECT: posted by the streaming thread; a shutdown is the
// end of the stream, anything else a failure. Called with core_lock.
void on_removed(GstP2pspSrc* self, const p2psp::PeerEvent& ev, Micros now) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->run.removed_unposted = true;
  priv->run.removed_reason = ev.reason;
  priv->run.removed_text = ev.text.empty()
                               ? p2psp_gst::remove_reason_description(ev.reason)
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
}

// Turns peer events into state and pending signals. Called with core_lock.
// Returns true when the streaming thread has something to look at.
bool collect_events(GstP2pspSrc* self, Micros now,
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
      case p2psp::PeerEvent::Kind::kNeighbourMoved:
        GST_INFO_OBJECT(self, "neighbour %u now at %s", ev.peer_id,
                        ev.endpoint.to_string().c_str());
        break;
      case p2psp::PeerEvent::Kind::kMulticastGroup:
        open_multicast(self, ev.endpoint);
        break;
      case p2psp::PeerEvent::Kind::kRemoved:
        on_removed(self, ev, now);
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
  const uint64_t chunks = stats.chunks_from_splitter + stats.chunks_from_peers +
                          stats.chunks_from_multicast +
                          stats.nack_answers_from_splitter;
  if (chunks != priv->link.chunks_seen) {
    priv->link.chunks_seen = chunks;
    priv->run.last_activity_us = now;
  }
  return news;
}

// Takes what is due out of the core for the streaming thread. Called with
// core_lock; true if anything was taken.
bool pump_items(GstP2pspSrcPrivate* priv, Micros now) {
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

// Each chunk given up on, with what recovery knew and tried: the first
// thing to read when a peer plays less than it should
// (docs/troubleshooting.md). Called with core_lock.
void log_losses(GstP2pspSrc* self) {
  for (const p2psp::ChunkLoss& l : self->priv->link.peer->take_losses()) {
    GST_INFO_OBJECT(self,
                    "chunk %u lost: origin %u, relayed by %u, %u NACKs "
                    "(%u to the splitter), first to %u",
                    l.number, l.origin, l.relay, l.nacks, l.splitter_nacks,
                    l.first_asked);
  }
}

// Ends a round of core work: sends, and says whether create() has
// something to do (an item, an event, a failure): waking it for every
// datagram cost more than the datagrams (docs/benchmarks.md, profile).
// Called with core_lock; the caller wakes create() (wake_streaming) once
// it has let the lock go, or create() would wake only to wait for it.
bool finish_core_round(GstP2pspSrc* self, Micros now,
                       std::vector<NeighbourSignal>* signals) {
  GstP2pspSrcPrivate* priv = self->priv;
  dispatch_outbox(self);
  bool news = collect_events(self, now, signals);
  news |= pump_items(priv, now);
  log_losses(self);
  // A connection that ended is news until create() has dealt with it (few
  // rounds: the streaming thread tears the connection down).
  news |= priv->link.failure != Failure::kNone || priv->io.tcp_closed();
  return news;
}

void wake_streaming(GstP2pspSrc* self, bool news) {
  if (news) self->priv->core_cond.notify_all();
}

void emit_signals(GstP2pspSrc* self,
                  const std::vector<NeighbourSignal>& signals) {
  for (const NeighbourSignal& s : signals) {
    GST_DEBUG_OBJECT(self, "%s %u %s", g_signal_name(s.signal), s.id,
                     s.endpoint.c_str());
    g_signal_emit(self, s.signal, 0, s.id, s.endpoint.c_str());
  }
}

// multicast: from the group's socket (Peer::on_multicast).
void on_udp_readable(GstP2pspSrc* self, bool multicast) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  bool news;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    Micros now = p2psp_gst::monotonic_now_us();
    p2psp::Peer& peer = *priv->link.peer;
    // Each batch at its time of receipt: one time for a whole backlog made
    // later datagrams look sent before they arrived (a 40 to 100 ms error
    // in chunk-delay-us).
    const bool full = priv->io.receive(
        multicast ? priv->io.multicast() : priv->io.udp(), kMaxReceiveRounds,
        [&](const p2psp_gst::DatagramView& d, Micros received) {
          now = received;
          if (multicast)
            peer.on_multicast(d.from, d.data, d.size, now, &priv->link.outbox);
          else
            peer.on_udp(d.from, d.data, d.size, now, &priv->link.outbox);
        },
        [](Micros) {});
    priv->link.udp_kernel = priv->io.kernel_stats();
    // With io-interval, what is left must not wait for the next interval.
    if (full) priv->io.run_again();
    news = finish_core_round(self, now, &signals);
  }
  wake_streaming(self, news);
  emit_signals(self, signals);
}

// The splitter's TCP connection ended. Called with core_lock held.
void on_tcp_ended(GstP2pspSrc* self, Micros now, const char* why) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->io.set_tcp_closed();
  priv->link.peer->on_tcp_closed(now, &priv->link.outbox);
  // A splitter that shuts down says so before closing; anything else is a
  // lost connection.
  if (!priv->link.splitter_shutdown && priv->link.failure == Failure::kNone) {
    priv->link.failure = Failure::kLostSplitter;
    priv->link.failure_text = why;
  }
}

void read_tcp(GstP2pspSrc* self, Micros now,
              std::vector<NeighbourSignal>* signals) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->link.tcp_rx.resize(kTcpReadSize);
  while (!priv->io.tcp_closed()) {
    gssize n = priv->io.tcp()->read_some(priv->link.tcp_rx.data(),
                                         priv->link.tcp_rx.size());
    if (n == -2) break;
    if (n <= 0) {
      // Events already read (e.g. a shutdown notice) decide what EOF means.
      collect_events(self, now, signals);
      on_tcp_ended(self, now,
                   n == 0 ? "The splitter closed the connection"
                          : "Reading from the splitter failed");
      break;
    }
    priv->link.peer->on_tcp_data(priv->link.tcp_rx.data(),
                                 static_cast<size_t>(n), now,
                                 &priv->link.outbox);
  }
}

void on_tcp_io(GstP2pspSrc* self, GIOCondition condition) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  bool news;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    const Micros now = p2psp_gst::monotonic_now_us();
    if ((condition & G_IO_OUT) && !priv->io.tcp()->flush())
      on_tcp_ended(self, now, "Sending to the splitter failed");
    if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
      read_tcp(self, now, &signals);
    news = finish_core_round(self, now, &signals);
  }
  wake_streaming(self, news);
  emit_signals(self, signals);
}

// The connection to the splitter, UDP and the multicast group's socket.
bool watch_sockets(GstP2pspSrc* self, p2psp_gst::PollThread::WatchList& list) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  return priv->io.watches(list);
}

// GstP2pspSrcLoss, at most once a second, when chunks were lost or
// recovered since the last one. Called with core_lock; the caller posts.
GstStructure* loss_message_if_due(GstP2pspSrcPrivate* priv, Micros now) {
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

Micros on_poll_timer(GstP2pspSrc* self, Micros now) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::vector<NeighbourSignal> signals;
  Micros deadline;
  GstStructure* loss = nullptr;
  bool news = false;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    p2psp::Peer& peer = *priv->link.peer;
    deadline = priv->io.on_timer(peer, now, [&] {
      peer.tick(now, &priv->link.outbox);
      news = finish_core_round(self, now, &signals);
    });
    loss = loss_message_if_due(priv, now);
  }
  wake_streaming(self, news);
  emit_signals(self, signals);
  if (loss != nullptr)
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_element(GST_OBJECT(self), loss));
  return deadline;
}

bool start_poll_thread(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  // Its period is io-interval, which set_property keeps up to date.
  return priv->io.start(
      "p2pspsrc-io",
      [self](p2psp_gst::PollThread::WatchList& list) {
        return watch_sockets(self, list);
      },
      [self](GSocket* socket, GIOCondition condition) {
        if (socket == self->priv->io.udp())
          on_udp_readable(self, false);
        else if (socket == self->priv->io.multicast())
          on_udp_readable(self, true);
        else
          on_tcp_io(self, condition);
      },
      [self](Micros now) { return on_poll_timer(self, now); });
}

/* ---------------------------------------------------------- connect ---- */

constexpr gint64 kTrackerRetryUs = 500000;

// Channel URIs: the tracker names the team (docs/tracker.md); a rejoin asks
// it to avoid the team that just failed us.
OpenError ask_tracker(GstP2pspSrc* self, guint timeout_s, std::string* host,
                      int* port, std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  std::string avoid;
  {
    std::lock_guard<std::mutex> lock(priv->core_lock);
    avoid = priv->run.avoid_team;
  }
  p2psp_gst::TeamAddress team;
  // All full: ask again every half second, within the timeout (a launcher
  // may be adding a team).
  const gint64 give_up = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
  for (;;) {
    const p2psp_gst::JoinAnswer answer =
        p2psp_gst::tracker_join(s.host, s.port, s.channel, avoid, timeout_s,
                                priv->cancel.get(), &team, detail);
    if (answer == p2psp_gst::JoinAnswer::kTeam) break;
    if (answer == p2psp_gst::JoinAnswer::kCancelled)
      return OpenError::kCancelled;
    if (answer == p2psp_gst::JoinAnswer::kFailed ||
        g_get_monotonic_time() + kTrackerRetryUs >= give_up) {
      return OpenError::kTracker;
    }
    GST_INFO_OBJECT(self, "channel %s is full, asking again",
                    s.channel.c_str());
    for (gint64 t = 0; t < kTrackerRetryUs; t += 10000) {
      if (g_cancellable_is_cancelled(priv->cancel.get()))
        return OpenError::kCancelled;
      g_usleep(10000);
    }
  }
  GST_INFO_OBJECT(self, "tracker %s:%d: channel %s is served at %s:%d",
                  s.host.c_str(), s.port, s.channel.c_str(), team.host.c_str(),
                  team.port);
  *host = team.host;
  *port = team.port;
  std::lock_guard<std::mutex> lock(priv->core_lock);
  priv->run.team = p2psp_gst::host_port(team.host, team.port);
  return OpenError::kNone;
}

// Resolves the splitter's host and opens the TCP control connection.
OpenError open_tcp(GstP2pspSrc* self, guint connect_timeout_s,
                   std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  std::string host = s.host;
  int port = s.port;
  if (!s.channel.empty()) {
    OpenError asked =
        ask_tracker(self, connect_timeout_s, &host, &port, detail);
    if (asked != OpenError::kNone) return asked;
  }
  GError* error = nullptr;
  GRef<GInetAddress> address(
      p2psp_gst::resolve_host(host, priv->cancel.get(), &error));
  if (!address) {
    GErrorPtr owned(error);
    *detail = error->message;
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
               ? OpenError::kCancelled
               : OpenError::kNotFound;
  }

  GRef<GSocketAddress> splitter(
      g_inet_socket_address_new(address.get(), static_cast<guint16>(port)));
  GRef<GSocketClient> client(g_socket_client_new());
  g_socket_client_set_timeout(client.get(), connect_timeout_s);
  GST_DEBUG_OBJECT(self, "connecting to %s:%d", host.c_str(), port);
  GSocketConnection* stream = g_socket_client_connect(
      client.get(), G_SOCKET_CONNECTABLE(splitter.get()), priv->cancel.get(),
      &error);
  if (stream == nullptr) {
    GErrorPtr owned(error);
    *detail = error->message;
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
               ? OpenError::kCancelled
               : OpenError::kConnect;
  }
  priv->io.adopt_stream(stream);
  return OpenError::kNone;
}

// A UDP socket on the any-address of the splitter's family, any port.
OpenError open_udp(GstP2pspSrc* self, GSocketFamily family,
                   std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  GError* error = nullptr;
  GRef<GSocket> udp(g_socket_new(family, G_SOCKET_TYPE_DATAGRAM,
                                 G_SOCKET_PROTOCOL_UDP, &error));
  if (udp) {
    GRef<GInetAddress> any(g_inet_address_new_any(family));
    GRef<GSocketAddress> local(g_inet_socket_address_new(any.get(), 0));
    if (!g_socket_bind(udp.get(), local.get(), FALSE, &error)) udp.reset();
  }
  if (!udp) {
    GErrorPtr owned(error);
    *detail = error->message;
    return OpenError::kUdp;
  }
  std::unique_lock<std::mutex> lock(priv->core_lock);
  priv->io.adopt_udp(udp.release(), kReceiveBatch);
  priv->link.udp_kernel = priv->io.kernel_stats();
  return OpenError::kNone;
}

// The peer's own UDP endpoint on its LAN: the address its TCP connection
// to the splitter leaves from (behind a NAT, the private one) with the UDP
// socket's port. Reported in JOIN so that a member behind the same NAT can
// reach it directly (docs/protocol.md 3.2); invalid when unknown.
p2psp::Endpoint local_udp_endpoint(GstP2pspSrcPrivate* priv) {
  GRef<GSocketAddress> tcp_local(
      g_socket_connection_get_local_address(priv->io.stream(), nullptr));
  GRef<GSocketAddress> udp_local(
      g_socket_get_local_address(priv->io.udp(), nullptr));
  if (!tcp_local || !udp_local) return p2psp::Endpoint();
  const p2psp::Endpoint tcp = p2psp_gst::endpoint_from_address(tcp_local.get());
  const p2psp::Endpoint udp = p2psp_gst::endpoint_from_address(udp_local.get());
  if (!tcp.valid() || !udp.valid()) return p2psp::Endpoint();
  return tcp.with_port(udp.port);
}

OpenError start_peer(GstP2pspSrc* self, std::string* detail) {
  GstP2pspSrcPrivate* priv = self->priv;
  GError* error = nullptr;
  GRef<GSocketAddress> remote(
      g_socket_connection_get_remote_address(priv->io.stream(), &error));
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
  // A rejoin goes on from the live edge: a burst would replay what this run
  // already played.
  config.join_burst =
      priv->active.join_burst && !GST_CLOCK_TIME_IS_VALID(priv->out.out_end);
  config.passphrase = priv->active.passphrase;
  config.start_timeout_us =
      static_cast<Micros>(priv->active.start_timeout_ms) * 1000;
  config.upload_limit_bps = priv->active.upload_limit_bps;
  const p2psp::Endpoint local = local_udp_endpoint(priv);
  if (local.valid()) config.local_endpoints.push_back(local);
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

void close_sockets(GstP2pspSrcPrivate* priv);

// Opens TCP and UDP and starts a new core and its poll thread. On failure
// whatever was opened is closed again.
OpenError open_connection(GstP2pspSrc* self, guint connect_timeout_s,
                          std::string* detail) {
  OpenError ret = open_tcp(self, connect_timeout_s, detail);
  if (ret == OpenError::kNone) ret = start_peer(self, detail);
  if (ret != OpenError::kNone) {
    self->priv->io.stop();
    close_sockets(self->priv);
    std::unique_lock<std::mutex> lock(self->priv->core_lock);
    self->priv->link.peer.reset();
    self->priv->link.outbox.clear();
  }
  return ret;
}

// The first connection: any failure is an error (auto-reconnect is about
// keeping a team once joined).
GstFlowReturn connect_to_splitter(GstP2pspSrc* self) {
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
    case OpenError::kTracker:
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                        ("No team of P2PSP channel \"%s\" from the tracker at "
                         "%s:%d",
                         s.channel.c_str(), s.host.c_str(), s.port),
                        ("%s", detail.c_str()));
      break;
  }
  priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

// Stops the poll thread, closes the sockets and drops the core, keeping
// what the next connection needs to know.
void teardown_connection(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->io.stop();
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

// Gives queued TCP bytes (the goodbye) a bounded chance to leave.
void flush_tcp_bounded(GstP2pspSrcPrivate* priv) {
  p2psp_gst::TcpConnection* tcp = priv->io.tcp();
  if (!priv->io.tcp_open()) return;
  const Micros end = p2psp_gst::monotonic_now_us() + kLeaveFlushUs;
  while (tcp->wants_write()) {
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= end) break;
    g_socket_condition_timed_wait(tcp->socket(), G_IO_OUT,
                                  static_cast<gint64>(end - now), nullptr,
                                  nullptr);
    if (!tcp->flush()) break;
  }
}

void leave_team(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    if (!priv->link.peer) return;
    priv->link.peer->leave(p2psp_gst::monotonic_now_us(), &priv->link.outbox);
    dispatch_outbox(self);
  }
  flush_tcp_bounded(priv);
}

void close_sockets(GstP2pspSrcPrivate* priv) {
  priv->io.close();
  priv->io.reset();
}

}  // namespace p2psp_src
