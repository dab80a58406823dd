/* gst-p2psp: p2pspsplittersink's network side over the shared TeamIo
 * (gstp2pspteamio.h): binding the sockets, the poll thread's callbacks that
 * drive p2psp::Splitter (accepting peers, reading connections, the timer),
 * dropping slow peers, and the stats. */
#include <gst/p2psp/tracker.h>

#include "gstp2pspmulticast.h"
#include "gstp2pspsplittersinkpriv.h"

namespace p2psp_sink {

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
void drop_slow_locked(SplitterSinkPrivate *priv, p2psp::ConnId conn,
                      p2psp::Outbox *out) {
  Run &run = priv->run;
  p2psp_gst::ConnectionTable &connections = priv->io.connections();
  p2psp_gst::ConnectionTable::Connection *c = connections.find(conn);
  /* Gone, abandoned already, or closing anyway (its reap is bounded). */
  if (c == nullptr || c->close_when_flushed) return;
  GST_WARNING("connection %" G_GUINT64_FORMAT
              " (%s) has over %zu bytes of "
              "control output queued: dropping it",
              static_cast<guint64>(conn), c->remote.to_string().c_str(),
              priv->io.max_backlog());
  for (const auto &p : run.splitter->peer_stats())
    if (p.tcp_endpoint == c->remote) run.slow_peers.insert(p.id);
  run.peers_slow++;
  connections.abandon(conn);
  run.splitter->on_tcp_closed(conn, p2psp_gst::monotonic_now_us(), out);
}

/* Carries out what the core asked for. Called with core_mutex held. Returns
 * TRUE when the poll thread must be woken (TCP output, a connection to
 * close, or an earlier deadline). */
bool dispatch_locked(SplitterSinkPrivate *priv, p2psp::Outbox &out) {
  Run &run = priv->run;
  const p2psp_gst::Dispatched done = priv->io.dispatch(out);
  bool wake = done.wake;
  if (!run.splitter) return wake;
  p2psp::Outbox more;
  for (p2psp::ConnId conn : done.slow) drop_slow_locked(priv, conn, &more);
  take_events_locked(run);
  /* PEER_LEFT for the dropped ones; each round drops connections, so this
   * ends. */
  if (!more.empty()) wake |= dispatch_locked(priv, more);
  if (priv->io.deadline_moved_up(run.splitter->next_deadline())) wake = true;
  return wake;
}

/* ------------------------------------------------------- poll thread ---- */

/* Closes what is due and returns the poll list, rebuilt only when a
 * connection came, went or changed what it waits for. */
bool collect_watches(SplitterSinkPrivate *priv,
                     p2psp_gst::PollThread::WatchList &list) {
  std::lock_guard<std::mutex> lock(priv->core_mutex);
  return priv->io.watches(list);
}

void accept_connections(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  for (;;) {
    GError *error = nullptr;
    GSocket *sock = g_socket_accept(priv->io.listener(), nullptr, &error);
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
                          static_cast<gint>(priv->io.max_backlog()), nullptr);
      conn = priv->io.connections().add(sock, remote);
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
    if (priv->io.connections().find(conn) == nullptr) return;
    priv->io.connections().erase(conn);
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
      auto *c = priv->io.connections().find(conn);
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
    conn = priv->io.connections().find(sock);
    if (conn == 0) return;
    if ((cond & G_IO_OUT) && !priv->io.connections().flush(conn)) broken = true;
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
    /* Everything queued, batch by batch (the splitter's datagrams are
     * small control messages); each batch's outbox leaves after it. */
    p2psp::Outbox out;
    priv->io.receive(
        priv->io.udp(), G_MAXINT,
        [&](const p2psp_gst::DatagramView &d, p2psp::Micros now) {
          priv->run.splitter->on_udp(d.from, d.data, d.size, now, &out);
        },
        [&](p2psp::Micros) { wake |= dispatch_locked(priv, out); });
  }
  if (wake) priv->io.wake();
  emit_pending_events(self);
}

void on_socket_io(GstP2pspSplitterSink *self, GSocket *sock,
                  GIOCondition cond) {
  SplitterSinkPrivate *priv = self->priv;
  if (sock == priv->io.listener()) {
    accept_connections(self);
  } else if (sock == priv->io.udp()) {
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
    p2psp::Splitter &splitter = *priv->run.splitter;
    next = priv->io.on_timer(splitter, now, [&] {
      p2psp::Outbox out;
      splitter.tick(now, &out);
      dispatch_locked(priv, out);
    });
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
p2psp::SplitterConfig splitter_config(const Settings &settings,
                                      guint16 udp_port) {
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
  config.learn_shares = settings.learn_shares;
  config.max_joins_per_address = settings.max_joins_per_address;
  config.max_handshakes = settings.max_handshakes;
  config.handshake_timeout_us =
      static_cast<p2psp::Micros>(settings.handshake_timeout_ms) * 1000;
  config.burst_max_bytes = settings.burst_max_bytes;
  config.burst_rate = settings.burst_rate / 8;
  std::string ignored; /* open_sockets checked it */
  config.multicast_group = p2psp_gst::multicast_group_endpoint(
      settings.multicast_group, settings.multicast_port, udp_port, &ignored);
  return config;
}

/* IMS (docs/protocol.md 8.5): the UDP socket also sends to the group. */
gboolean setup_multicast(GstP2pspSplitterSink *self, const Settings &settings,
                         GSocket *udp) {
  if (settings.multicast_group.empty()) return TRUE;
  std::string error;
  const p2psp::Endpoint group = p2psp_gst::multicast_group_endpoint(
      settings.multicast_group, settings.multicast_port, local_port(udp),
      &error);
  if (!group.valid() ||
      !p2psp_gst::multicast_sender_setup(udp, group, settings.multicast_iface,
                                         settings.ttl_mc, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("Could not send to multicast group \"%s\"",
                       settings.multicast_group.c_str()),
                      ("%s", error.c_str()));
    return FALSE;
  }
  GST_INFO_OBJECT(self, "chunks of members on the LAN go to %s",
                  group.to_string().c_str());
  return TRUE;
}

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
  if (!setup_multicast(self, settings, udp->get())) {
    listener->reset();
    udp->reset();
    return FALSE;
  }
  return TRUE;
}

gboolean start_poll_thread(GstP2pspSplitterSink *self) {
  return self->priv->io.start(
      "p2psp-splitter",
      [self](p2psp_gst::PollThread::WatchList &list) {
        return collect_watches(self->priv, list);
      },
      [self](GSocket *sock, GIOCondition cond) {
        on_socket_io(self, sock, cond);
      },
      [self](p2psp::Micros now) { return on_timer(self, now); });
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
      pending = priv->io.connections().wants_write();
    }
    if (!pending) return;
    priv->io.wake();
    g_usleep(kStopFlushPollUs);
  }
}

/* ------------------------------------------------------------- stats ---- */

GstStructure *peer_structure(const p2psp::SplitterPeerStats &p) {
  const std::string endpoint = p.endpoint.to_string();
  const p2psp::Micros now = p2psp_gst::monotonic_now_us();
  const guint64 silent_ms =
      now > p.last_heard_us ? (now - p.last_heard_us) / 1000 : 0;
  GstStructure *s = gst_structure_new(
      "application/x-p2psp-peer", "id", G_TYPE_UINT, p.id, "endpoint",
      G_TYPE_STRING, endpoint.c_str(), "chunks-sent", G_TYPE_UINT64,
      static_cast<guint64>(p.chunks_sent), "bytes-sent", G_TYPE_UINT64,
      static_cast<guint64>(p.bytes_sent), "monitor", G_TYPE_BOOLEAN,
      static_cast<gboolean>(p.monitor), "loss-counter", G_TYPE_UINT,
      static_cast<guint>(p.loss_counter), "retransmits", G_TYPE_UINT64,
      static_cast<guint64>(p.retransmits), "silent-ms", G_TYPE_UINT64,
      silent_ms, "burst-chunks", G_TYPE_UINT64,
      static_cast<guint64>(p.burst_chunks), nullptr);
  // Adaptive chunk shares (docs/elements.md).
  gst_structure_set(
      s, "share", G_TYPE_DOUBLE, p.share, "forwarding", G_TYPE_DOUBLE,
      p.forwarding, "upload-limit", G_TYPE_INT64,
      static_cast<gint64>(p.upload_limit_kbps < 0 ? -1
                                                  : p.upload_limit_kbps * 1000),
      "proven", G_TYPE_BOOLEAN, static_cast<gboolean>(p.proven),
      "learned-upload", G_TYPE_INT64,
      static_cast<gint64>(
          p.learned_upload_kbps < 0 ? -1 : p.learned_upload_kbps * 1000),
      nullptr);
  return s;
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

/* The core's traffic counters, and the element's own about the sockets. */
GstStructure *traffic_stats(const p2psp::SplitterStats &st, const Run &run,
                            const p2psp_gst::TeamIo &io, guint num_peers) {
  return gst_structure_new(
      "application/x-p2psp-splitter-stats", "buffers-in", G_TYPE_UINT64,
      st.buffers_in, "bytes-in", G_TYPE_UINT64, st.bytes_in, "chunks-cut",
      G_TYPE_UINT64, st.chunks_cut, "chunks-sent", G_TYPE_UINT64,
      st.chunks_sent, "bytes-sent", G_TYPE_UINT64, st.bytes_sent,
      "chunks-dropped", G_TYPE_UINT64, st.chunks_dropped, "datagrams-dropped",
      G_TYPE_UINT64, static_cast<guint64>(io.datagrams_dropped()),
      "peers-joined", G_TYPE_UINT64, st.peers_joined, "peers-left",
      G_TYPE_UINT64, st.peers_left, "rejected-datagrams", G_TYPE_UINT64,
      st.rejected_datagrams, "rejected-connections", G_TYPE_UINT64,
      static_cast<guint64>(st.rejected_connections + run.rejected_accepts),
      "num-peers", G_TYPE_UINT, num_peers, nullptr);
}

/* Team health (docs/protocol.md section 10) and security. */
void add_health_stats(GstStructure *s, const p2psp::SplitterStats &st) {
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
  // Address validation (docs/security.md).
  gst_structure_set(s, "probes-sent", G_TYPE_UINT64, st.probes_sent,
                    "addresses-validated", G_TYPE_UINT64,
                    st.addresses_validated, "endpoints-moved", G_TYPE_UINT64,
                    st.endpoints_moved, "amplification-limited", G_TYPE_UINT64,
                    st.amplification_limited, "lan-introductions",
                    G_TYPE_UINT64, st.lan_introductions, "multicast-chunks",
                    G_TYPE_UINT64, st.multicast_chunks, "multicast-members",
                    G_TYPE_UINT64, st.multicast_members, nullptr);
  gst_structure_set(s, "chunks-signed", G_TYPE_UINT64, st.chunks_signed,
                    "pollution-reports", G_TYPE_UINT64, st.pollution_reports,
                    "polluters-expelled", G_TYPE_UINT64, st.polluters_expelled,
                    nullptr);
  // Flood checks of learn-shares (docs/protocol.md 10.7).
  gst_structure_set(s, "echoes", G_TYPE_UINT64, st.echoes, "echoes-late",
                    G_TYPE_UINT64, st.echoes_late, "echoes-missed",
                    G_TYPE_UINT64, st.echoes_missed, "redeals", G_TYPE_UINT64,
                    st.redeals, "redeal-bytes", G_TYPE_UINT64, st.redeal_bytes,
                    "uplinks-timed", G_TYPE_UINT64, st.uplinks_timed, nullptr);
}

/* Join bursts, limits on strangers, slow peers, the UDP socket. */
void add_io_stats(GstStructure *s, const p2psp::SplitterStats &st,
                  const Run &run, p2psp_gst::TeamIo &io, guint64 paced) {
  gst_structure_set(s, "bursts", G_TYPE_UINT64, st.bursts, "bursts-unavailable",
                    G_TYPE_UINT64, st.bursts_unavailable, "burst-chunks",
                    G_TYPE_UINT64, st.burst_chunks, "burst-bytes",
                    G_TYPE_UINT64, st.burst_bytes, nullptr);
  gst_structure_set(s, "handshake-timeouts", G_TYPE_UINT64,
                    st.handshake_timeouts, "joins-limited", G_TYPE_UINT64,
                    st.joins_limited, nullptr);
  gst_structure_set(
      s, "peers-slow", G_TYPE_UINT64, static_cast<guint64>(run.peers_slow),
      "control-backlog-bytes", G_TYPE_UINT64,
      static_cast<guint64>(io.connections().queued_bytes()), nullptr);
  p2psp_gst::add_udp_kernel_stats(s, io.kernel_stats());
  gst_structure_set(s, "buffers-paced", G_TYPE_UINT64, paced, nullptr);
}

GstStructure *build_stats(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  guint64 paced;
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    paced = priv->paced_buffers;
  }
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
  GstStructure *s = traffic_stats(st, priv->run, priv->io, num_peers);
  add_health_stats(s, st);
  add_io_stats(s, st, priv->run, priv->io, paced);
  add_peer_array(s, peers);
  return s;
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

/* ----------------------------------------------------------- tracker ---- */

gboolean check_tracker_settings(GstP2pspSplitterSink *self,
                                const Settings &settings) {
  if (settings.tracker.empty() && settings.channel.empty()) return TRUE;
  if (settings.tracker.empty() ||
      !p2psp::Tracker::valid_channel(settings.channel) ||
      !g_str_has_prefix(settings.tracker.c_str(), "http")) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("A channel needs both \"tracker\" (http://host:port) "
                       "and \"channel\" (letters, digits, '.', '_', '-')"),
                      ("tracker \"%s\", channel \"%s\"",
                       settings.tracker.c_str(), settings.channel.c_str()));
    return FALSE;
  }
  return TRUE;
}

/* What the tracker is told every second. */
static p2psp_gst::Announcement snapshot(GstP2pspSplitterSink *self,
                                        const Settings &settings,
                                        guint16 tcp_port, guint32 team_id,
                                        p2psp::Micros started_us) {
  SplitterSinkPrivate *priv = self->priv;
  p2psp_gst::Announcement a;
  a.channel = settings.channel;
  a.team_id = team_id;
  a.port = tcp_port;
  /* A wildcard listening address: the tracker takes the request's source. */
  if (settings.host != "0.0.0.0" && settings.host != "::")
    a.host = settings.host;
  a.max_peers = settings.max_peers;
  const p2psp::Micros up = p2psp_gst::monotonic_now_us() - started_us;
  a.uptime_ms = up / 1000;
  std::lock_guard<std::mutex> lock(priv->core_mutex);
  if (priv->run.splitter) {
    const p2psp::SplitterStats &st = priv->run.splitter->stats();
    a.peers = static_cast<guint>(priv->run.splitter->num_peers());
    a.chunks_cut = st.chunks_cut;
    a.lost_reports = st.lost_reports;
    a.bitrate = up > 0 ? st.bytes_in * 8 * 1000000 / up : 0;
    a.members = p2psp_gst::team_members(*priv->run.splitter);
  }
  return a;
}

void start_announcing(GstP2pspSplitterSink *self, const Settings &settings,
                      guint16 tcp_port, guint32 team_id) {
  if (settings.channel.empty()) return;
  const p2psp::Micros started_us = p2psp_gst::monotonic_now_us();
  gchar **uris = g_strsplit(settings.tracker.c_str(), ",", -1);
  for (gchar **uri = uris; *uri != nullptr; ++uri) {
    const std::string tracker = g_strstrip(*uri);
    if (tracker.empty()) continue;
    auto on_result = [self, tracker, settings](guint status,
                                               const std::string &error) {
      if (status == 200) {
        GST_INFO_OBJECT(self, "channel %s announced to %s",
                        settings.channel.c_str(), tracker.c_str());
        return;
      }
      GST_ELEMENT_WARNING(
          self, RESOURCE, WRITE,
          ("The tracker at %s does not take channel %s", tracker.c_str(),
           settings.channel.c_str()),
          ("HTTP status %u (0: unreachable): %s", status, error.c_str()));
    };
    self->priv->announcers.push_back(
        std::make_unique<p2psp_gst::TrackerAnnouncer>(
            tracker, settings.announce_key,
            [self, settings, tcp_port, team_id, started_us] {
              return snapshot(self, settings, tcp_port, team_id, started_us);
            },
            on_result,
            /* Moves: the first tracker's only, so trackers that each ask
             * do not move twice as many members. */
            [self, first = self->priv->announcers.empty()](guint count) {
              if (!first) return;
              run_core(self, [count](p2psp::Splitter &s, p2psp::Micros,
                                     p2psp::Outbox *out) {
                p2psp_gst::move_members(s, count, out);
              });
            }));
    self->priv->announcers.back()->start();
  }
  g_strfreev(uris);
}

void stop_announcing(GstP2pspSplitterSink *self) {
  for (auto &announcer : self->priv->announcers) announcer->stop();
  self->priv->announcers.clear();
}

}  // namespace p2psp_sink
