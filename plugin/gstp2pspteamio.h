/* gst-p2psp: the team I/O object both elements share (issue 12), in the
 * shape of gst-plugins-bad's GstSRTObject: it owns the sockets (UDP, the
 * splitter's listener and connection table, a peer's one TCP connection and
 * its multicast socket), the poll thread and its watch list, batched UDP
 * reads and sends, the timer's scheduling, the dispatch of a core's Outbox
 * and the stats both elements report alike. The elements keep the GStreamer
 * glue and their role's callbacks (accepting peers, a peer's events).
 *
 * Locking: the poll thread's controls (start, stop, wake, run_again,
 * set_period) are thread-safe; everything else is guarded by the owning
 * element's core lock, the same lock its core runs under. Nothing here
 * knows the P2PSP protocol: it moves outboxes, whatever is in them. */
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/p2psp/outbox.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gstp2pspconnections.h"
#include "gstp2pspudp.h"
#include "gstp2psputil.h"

namespace p2psp_gst {

/* The kernel's side of the UDP socket, as both elements report it. */
struct UdpKernelStats {
  uint64_t kernel_drops = 0;
  int receive_buffer = 0;
  int send_buffer = 0;
};

/* kernel-drops, udp-receive-buffer, udp-send-buffer (docs/elements.md). */
void add_udp_kernel_stats(GstStructure *stats, const UdpKernelStats &k);

/* io-interval's automatic mode: coalescing fitted to the traffic, as NICs
 * moderate their interrupts (ethtool's adaptive-rx). While the UDP socket
 * moves few datagrams, a round for each: waking up costs little then, and
 * delay is all that counts. From kBusyPerS datagrams a second (in and out),
 * one round per interval: at 25 Mb/s waking up for every few datagrams was
 * most of a peer's CPU (docs/benchmarks.md, "Automatic io-interval"). The
 * rate is taken over windows of at least kWindowUs, and falls back below
 * kQuietPerS only, so a rate near the threshold does not flip it every
 * window. Not thread-safe: the owner's lock. */
class AdaptiveInterval {
 public:
  static constexpr uint64_t kBusyPerS = 1000;
  static constexpr uint64_t kQuietPerS = 500;
  static constexpr p2psp::Micros kWindowUs = 250000;

  /* Counts `datagrams` moved at `now`. TRUE when busy() changed. */
  bool count(size_t datagrams, p2psp::Micros now);
  /* Busy: rounds one interval apart; else a round per datagram. */
  bool busy() const { return busy_; }

 private:
  p2psp::Micros window_start_ = 0;
  uint64_t in_window_ = 0;
  bool busy_ = false;
};

/* What a dispatch did that the element must act on. */
struct Dispatched {
  /* TCP output queued or a close asked for: the poll thread must look. */
  bool wake = false;
  /* Connections of the table whose output went past max_backlog. */
  std::vector<p2psp::ConnId> slow;
  /* The single connection's write failed (it is marked closed). */
  bool tcp_failed = false;
};

class TeamIo {
 public:
  TeamIo() = default;
  TeamIo(const TeamIo &) = delete;
  TeamIo &operator=(const TeamIo &) = delete;

  /* ---- sockets ---- */

  /* Adopts the team's UDP socket: non-blocking, buffers sized from the
   * traffic, the kernel's drop counter on; reads in batches of `batch`. */
  void adopt_udp(GSocket *adopt, size_t batch);
  GSocket *udp() const { return net_.udp.get(); }
  /* The splitter: its TCP listener and the connections it accepted, each
   * bounded by max_backlog unsent bytes. */
  void adopt_listener(GSocket *adopt, size_t max_backlog);
  GSocket *listener() const { return net_.listener.get(); }
  ConnectionTable &connections() { return net_.connections; }
  size_t max_backlog() const { return net_.max_backlog; }
  /* A peer: its one TCP connection (to the splitter). */
  void adopt_stream(GSocketConnection *adopt);
  GSocketConnection *stream() const { return net_.tcp_stream.get(); }
  TcpConnection *tcp() const { return net_.tcp.get(); }
  bool tcp_open() const { return net_.tcp && !net_.tcp_closed; }
  bool tcp_closed() const { return net_.tcp_closed; }
  void set_tcp_closed() { net_.tcp_closed = true; }
  /* A peer: the multicast group's socket, once joined. */
  void adopt_multicast(GSocket *adopt) { net_.mcast.reset(adopt); }
  GSocket *multicast() const { return net_.mcast.get(); }

  /* Closes every socket. The counters stay for the stats until reset(). */
  void close();
  /* A fresh set (after close() or the poll thread stopped): no reset list. */
  void reset() { net_ = Net(); }

  /* ---- sending ---- */

  /* Sends the datagrams (what the kernel refuses is dropped and counted),
   * queues the TCP bytes (the table bounded; the single connection flushed
   * at once), marks the closes, and clears `out`. */
  Dispatched dispatch(p2psp::Outbox &out);
  uint64_t datagrams_dropped() const { return net_.datagrams_dropped; }

  /* ---- receiving ---- */

  /* The UDP read loop: on_datagram(d, now) for each datagram of each batch,
   * then after_batch(now); `now` is the batch's time of receipt. The team
   * socket's traffic sizes its buffers. Returns TRUE when max_rounds full
   * batches came (more may be waiting). */
  template <typename OnDatagram, typename AfterBatch>
  bool receive(GSocket *sock, int max_rounds, OnDatagram on_datagram,
               AfterBatch after_batch) {
    const bool team = sock == net_.udp.get();
    return drain_datagrams(
        sock, net_.rx_batch, max_rounds,
        [&](size_t n, p2psp::Micros now) {
          size_t bytes = 0;
          size_t datagrams = 0;
          for (size_t i = 0; i < n; i++) {
            bytes += net_.rx_batch[i].size;
            for_each_datagram(net_.rx_batch[i], [&](const DatagramView &d) {
              datagrams++;
              on_datagram(d, now);
            });
          }
          if (team) {
            net_.udp_buffers.count(bytes, 0, now);
            note_traffic(datagrams, now);
          }
          after_batch(now);
        },
        team ? net_.udp_buffers.drop_counter() : nullptr);
  }
  UdpKernelStats kernel_stats() const;

  /* ---- the poll thread ---- */

  /* The list the poll thread watches: the splitter's listener, UDP and
   * connections (closing those due first), or a peer's connection, UDP and
   * multicast socket. FALSE when it did not change since the last round. */
  bool watches(PollThread::WatchList &list);
  bool start(const char *name, PollThread::CachedWatchCallback watches,
             PollThread::SocketCallback on_io,
             PollThread::TimerCallback on_timer) {
    return poll_.start_cached(name, std::move(watches), std::move(on_io),
                              std::move(on_timer));
  }
  void stop() { poll_.stop(); }
  void wake() { poll_.wake(); }
  void run_again() { poll_.run_again(); }
  /* A fixed interval between rounds (0: a round per datagram), or with
   * `auto_cap` > 0, AdaptiveInterval's: `auto_cap` while the traffic is
   * busy, none while it is not. Any thread, any time. */
  void set_interval(p2psp::Micros fixed, p2psp::Micros auto_cap);

  /* The timer: runs tick() when the core's deadline is due (the poll thread
   * asks after every round) and returns the next one, which it remembers. */
  template <typename Core, typename Tick>
  p2psp::Micros on_timer(Core &core, p2psp::Micros now, Tick tick) {
    if (now >= core.next_deadline()) tick();
    net_.armed_deadline = core.next_deadline();
    return net_.armed_deadline;
  }
  /* The core now wants the timer earlier than the poll thread waits for. */
  bool deadline_moved_up(p2psp::Micros next) const {
    return next < net_.armed_deadline;
  }

 private:
  /* Counts datagrams for the automatic interval (core lock). */
  void note_traffic(size_t datagrams, p2psp::Micros now);
  /* Hands the period to the poll thread (interval_lock_). */
  void apply_interval();
  bool connection_watches(PollThread::WatchList &list);
  bool table_watches(PollThread::WatchList &list);
  void dispatch_tcp(p2psp::Outbox &out, Dispatched *done);

  /* One run's sockets and counters, replaced whole by reset(). */
  struct Net {
    GRef<GSocket> udp;
    UdpBuffers udp_buffers;
    std::vector<ReceivedDatagram> rx_batch;
    uint64_t datagrams_dropped = 0;
    p2psp::Micros armed_deadline = UINT64_MAX;
    /* The splitter. */
    GRef<GSocket> listener;
    ConnectionTable connections;
    size_t max_backlog = 0;
    /* A peer. */
    GRef<GSocketConnection> tcp_stream;
    std::unique_ptr<TcpConnection> tcp;
    bool tcp_close_requested = false;
    bool tcp_closed = false;
    int watched_tcp = -1; /* conditions in the current list, 0: none */
    bool watched_mcast = false;
    GRef<GSocket> mcast;
  };
  Net net_;
  PollThread poll_;
  /* The interval settings (set_interval) and, with auto_cap_, the
   * traffic's state; the mutex orders set_interval() against the poll
   * thread applying a change of state. */
  std::mutex interval_lock_;
  p2psp::Micros fixed_interval_ = 0;
  std::atomic<p2psp::Micros> auto_cap_{0};
  bool busy_ = false;         /* adaptive_.busy(), under interval_lock_ */
  AdaptiveInterval adaptive_; /* the core lock */
};

}  // namespace p2psp_gst
