/* gst-p2psp: the thin I/O layer shared by both elements: GIO sockets,
 * endpoint conversion, RAII holders, and a poll thread that drives a core
 * state machine. Nothing here knows the P2PSP protocol. */
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gstp2pspudp.h"

namespace p2psp_gst {

/* RAII for GObject refs (GSocket, GSocketAddress, GCancellable, ...). */
template <typename T>
class GRef {
 public:
  GRef() = default;
  explicit GRef(T *adopt) : p_(adopt) {}
  GRef(const GRef &) = delete;
  GRef &operator=(const GRef &) = delete;
  GRef(GRef &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  GRef &operator=(GRef &&o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~GRef() { reset(); }
  void reset(T *adopt = nullptr) {
    if (p_) g_object_unref(p_);
    p_ = adopt;
  }
  T *get() const { return p_; }
  /* Gives the reference away (transfer full). */
  T *release() {
    T *p = p_;
    p_ = nullptr;
    return p;
  }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T *p_ = nullptr;
};

struct GErrorDeleter {
  void operator()(GError *e) const { g_error_free(e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorDeleter>;

struct GstStructureDeleter {
  void operator()(GstStructure *s) const { gst_structure_free(s); }
};
using GstStructurePtr = std::unique_ptr<GstStructure, GstStructureDeleter>;

/* Microseconds on the monotonic clock (the core's notion of "now"). */
p2psp::Micros monotonic_now_us();

p2psp::Endpoint endpoint_from_address(GSocketAddress *addr);
/* Transfer full; NULL for an invalid endpoint. */
GSocketAddress *address_from_endpoint(const p2psp::Endpoint &ep);

/* Resolves host (name or literal) and returns the first address; NULL and
 * *error set on failure. Blocking, cancellable. */
GInetAddress *resolve_host(const std::string &host, GCancellable *cancel,
                           GError **error);

/* A TCP connection with an output queue, written without blocking. The
 * queue has no bound of its own: its owner watches queued() (the splitter's
 * ConnectionTable drops a connection past max-control-backlog). */
class TcpConnection {
 public:
  explicit TcpConnection(GSocket *adopt);
  GSocket *socket() const { return socket_.get(); }
  void queue(const std::vector<uint8_t> &bytes);
  /* Writes what the kernel takes now. FALSE on a fatal error. */
  bool flush();
  bool wants_write() const { return pos_ < out_.size(); }
  size_t queued() const { return out_.size() - pos_; }
  /* Forgets the unsent output and frees its memory. */
  void discard() {
    std::vector<uint8_t>().swap(out_);
    pos_ = 0;
  }
  /* Reads what is available now into buf; returns bytes read, 0 on EOF, -1 on
   * error, -2 when nothing is available. */
  gssize read_some(uint8_t *buf, size_t size);

 private:
  GRef<GSocket> socket_;
  std::vector<uint8_t> out_;
  size_t pos_ = 0;
};

/* A thread that polls a set of sockets and a timer, and calls back. All
 * callbacks run on that thread. wake() interrupts the poll (e.g. after
 * another thread queued TCP output or changed the deadline).
 *
 * The timer callback runs once at start and then after every poll round
 * (I/O, wake() or timeout; rounds are at most 100 ms apart), so it must cope
 * with being called before its deadline (the core's tick() does). The socket
 * callback gets the GSocket* from the latest watch list: look it up before
 * using it, since an earlier callback of the same round may have closed it.
 * stop() joins the thread; called from a callback it only asks the loop to
 * end. */
class PollThread {
 public:
  using SocketCallback = std::function<void(GSocket *, GIOCondition)>;
  /* Returns the next absolute deadline (monotonic us) it wants on_timer at. */
  using TimerCallback = std::function<p2psp::Micros(p2psp::Micros now)>;
  /* Called each round (with an empty list) to learn which sockets to poll
   * and for what. */
  using WatchList = std::vector<std::pair<GSocket *, GIOCondition>>;
  using WatchCallback = std::function<void(WatchList &)>;
  /* Same, but it gets the previous round's list and returns TRUE when it
   * rewrote it, FALSE to poll the same sockets again (nothing rebuilt). */
  using CachedWatchCallback = std::function<bool(WatchList &)>;

  PollThread();
  ~PollThread();
  bool start(const char *name, WatchCallback watches, SocketCallback on_io,
             TimerCallback on_timer);
  bool start_cached(const char *name, CachedWatchCallback watches,
                    SocketCallback on_io, TimerCallback on_timer);
  void stop();
  void wake();
  /* 0 (the default): a round on every readable socket or due timer. Else
   * at most one round per `period` (each round starts a period after the
   * previous one, or at once after wake()): a round then serves all the
   * datagrams and timers of the period, for fewer wake-ups at the price of
   * up to `period` of delay. A round that finds no socket ready makes the
   * next wait last until an event, as without a period (a quiet or sparse
   * stream is not woken up every period). Any thread, any time. */
  void set_period(p2psp::Micros period);
  /* From a callback that left data unread (it reads bounded batches): the
   * next round starts at once, even with a period. */
  void run_again();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2psp_gst
