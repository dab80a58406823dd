/* gst-p2psp: the team I/O object both elements share; see the header. */
#include "gstp2pspteamio.h"

namespace p2psp_gst {

namespace {
/* A connection the core asked to close gets this long to write what it
 * still has queued (a REMOVED, a REJECT) before it is closed anyway. */
constexpr p2psp::Micros kCloseGraceUs = 2000000;
}  // namespace

void add_udp_kernel_stats(GstStructure *stats, const UdpKernelStats &k) {
  gst_structure_set(stats, "kernel-drops", G_TYPE_UINT64,
                    static_cast<guint64>(k.kernel_drops), "udp-receive-buffer",
                    G_TYPE_INT, k.receive_buffer, "udp-send-buffer", G_TYPE_INT,
                    k.send_buffer, nullptr);
}

/* ---------------------------------------------------------- interval ---- */

bool AdaptiveInterval::count(size_t datagrams, p2psp::Micros now) {
  if (window_start_ == 0) window_start_ = now;
  in_window_ += datagrams;
  const p2psp::Micros span = now - window_start_;
  if (span < kWindowUs) return false;
  const uint64_t per_s = in_window_ * 1000000 / span;
  window_start_ = now;
  in_window_ = 0;
  const bool was = busy_;
  if (per_s >= kBusyPerS) busy_ = true;
  if (per_s < kQuietPerS) busy_ = false;
  return busy_ != was;
}

void TeamIo::set_interval(p2psp::Micros fixed, p2psp::Micros auto_cap) {
  std::lock_guard<std::mutex> lock(interval_lock_);
  fixed_interval_ = fixed;
  auto_cap_ = auto_cap;
  apply_interval();
}

void TeamIo::note_traffic(size_t datagrams, p2psp::Micros now) {
  if (auto_cap_.load(std::memory_order_relaxed) == 0) return;
  if (!adaptive_.count(datagrams, now)) return;
  std::lock_guard<std::mutex> lock(interval_lock_);
  busy_ = adaptive_.busy();
  apply_interval();
}

void TeamIo::apply_interval() {
  const p2psp::Micros cap = auto_cap_.load();
  poll_.set_period(cap > 0 ? (busy_ ? cap : 0) : fixed_interval_);
}

/* ----------------------------------------------------------- sockets ---- */

void TeamIo::adopt_udp(GSocket *adopt, size_t batch) {
  net_.udp.reset(adopt);
  g_socket_set_blocking(adopt, FALSE);
  net_.udp_buffers.attach(adopt);
  net_.rx_batch.resize(batch);
}

void TeamIo::adopt_listener(GSocket *adopt, size_t max_backlog) {
  net_.listener.reset(adopt);
  net_.max_backlog = max_backlog;
}

void TeamIo::adopt_stream(GSocketConnection *adopt) {
  net_.tcp_stream.reset(adopt);
  GSocket *socket = g_socket_connection_get_socket(adopt);
  /* A client's timeout was for connecting; the poll thread never blocks. */
  g_socket_set_timeout(socket, 0);
  g_socket_set_blocking(socket, FALSE);
  net_.tcp = std::make_unique<TcpConnection>(G_SOCKET(g_object_ref(socket)));
}

void TeamIo::close() {
  net_.connections.close_all();
  net_.tcp.reset();
  if (net_.tcp_stream)
    g_io_stream_close(G_IO_STREAM(net_.tcp_stream.get()), nullptr, nullptr);
  net_.tcp_stream.reset();
  if (net_.listener) g_socket_close(net_.listener.get(), nullptr);
  if (net_.udp) g_socket_close(net_.udp.get(), nullptr);
  net_.listener.reset();
  net_.udp.reset();
  net_.mcast.reset();
}

UdpKernelStats TeamIo::kernel_stats() const {
  UdpKernelStats k;
  k.kernel_drops = net_.udp_buffers.kernel_drops();
  k.receive_buffer = net_.udp_buffers.receive_buffer();
  k.send_buffer = net_.udp_buffers.send_buffer();
  return k;
}

/* ---------------------------------------------------------- dispatch ---- */

Dispatched TeamIo::dispatch(p2psp::Outbox &out) {
  Dispatched done;
  if (!out.udp.empty() && net_.udp) {
    size_t bytes = 0;
    for (const p2psp::UdpSend &send : out.udp)
      bytes += send.data ? send.data->size() : 0;
    const p2psp::Micros now = monotonic_now_us();
    net_.udp_buffers.count(0, bytes, now);
    note_traffic(out.udp.size(), now);
    net_.datagrams_dropped += send_datagrams(net_.udp.get(), out.udp);
  }
  dispatch_tcp(out, &done);
  out.clear();
  return done;
}

/* The splitter's output waits in the table for the poll thread; a peer's
 * one connection is written at once (it is mostly on the poll thread). */
void TeamIo::dispatch_tcp(p2psp::Outbox &out, Dispatched *done) {
  if (net_.listener) {
    for (const p2psp::TcpSend &send : out.tcp) {
      if (!net_.connections.queue(send.conn, send.data, net_.max_backlog))
        done->slow.push_back(send.conn);
      done->wake = true;
    }
    for (p2psp::ConnId conn : out.tcp_close) {
      net_.connections.close_when_flushed(conn,
                                          monotonic_now_us() + kCloseGraceUs);
      done->wake = true;
    }
    return;
  }
  if (!tcp_open()) return;
  for (const p2psp::TcpSend &send : out.tcp) net_.tcp->queue(send.data);
  if (!out.tcp_close.empty()) net_.tcp_close_requested = true;
  if (net_.tcp->wants_write() && !net_.tcp->flush()) {
    net_.tcp_closed = true;
    done->tcp_failed = true;
  }
}

/* ------------------------------------------------------- poll thread ---- */

bool TeamIo::watches(PollThread::WatchList &list) {
  return net_.listener ? table_watches(list) : connection_watches(list);
}

bool TeamIo::table_watches(PollThread::WatchList &list) {
  /* Connections are only destroyed here, on the poll thread, so the sockets
   * of a watch list stay alive for the whole poll round. */
  net_.connections.reap(monotonic_now_us());
  return net_.connections.watches(net_.listener.get(), net_.udp.get(), list);
}

/* Rewrites the list only when what is watched changed (the connection's
 * write interest, its end, a multicast socket): most rounds keep it. */
bool TeamIo::connection_watches(PollThread::WatchList &list) {
  if (net_.tcp_close_requested && !net_.tcp->wants_write() &&
      !net_.tcp_closed) {
    /* Done with the splitter: stop watching, close in close(). */
    net_.tcp_closed = true;
  }
  int condition = 0;
  if (!net_.tcp_closed) {
    condition = G_IO_IN;
    if (net_.tcp->wants_write()) condition |= G_IO_OUT;
  }
  const bool mcast = static_cast<bool>(net_.mcast);
  if (!list.empty() && condition == net_.watched_tcp &&
      mcast == net_.watched_mcast)
    return false;
  net_.watched_tcp = condition;
  net_.watched_mcast = mcast;
  list.clear();
  if (condition != 0)
    list.emplace_back(net_.tcp->socket(), static_cast<GIOCondition>(condition));
  list.emplace_back(net_.udp.get(), G_IO_IN);
  if (net_.mcast) list.emplace_back(net_.mcast.get(), G_IO_IN);
  return true;
}

}  // namespace p2psp_gst
