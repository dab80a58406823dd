/* gst-p2psp: the thin I/O layer shared by both elements. */
#include "gstp2psputil.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace p2psp_gst {

namespace {

/* The poll loop wakes at least this often, so a deadline the callbacks moved
 * without calling wake() is never missed for long. */
constexpr p2psp::Micros kMaxPollWaitUs = 100000;

bool is_would_block(const GError *error) {
  return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
}

}  // namespace

p2psp::Micros monotonic_now_us() {
  return static_cast<p2psp::Micros>(g_get_monotonic_time());
}

p2psp::Endpoint endpoint_from_address(GSocketAddress *addr) {
  if (addr == nullptr || !G_IS_INET_SOCKET_ADDRESS(addr)) return {};
  auto *inet_sa = G_INET_SOCKET_ADDRESS(addr);
  GInetAddress *inet = g_inet_socket_address_get_address(inet_sa);
  const guint16 port = g_inet_socket_address_get_port(inet_sa);
  const guint8 *bytes = g_inet_address_to_bytes(inet);
  switch (g_inet_address_get_family(inet)) {
    case G_SOCKET_FAMILY_IPV4:
      return p2psp::Endpoint::ipv4(bytes[0], bytes[1], bytes[2], bytes[3],
                                   port);
    case G_SOCKET_FAMILY_IPV6: {
      std::array<uint8_t, 16> a{};
      std::copy_n(bytes, a.size(), a.begin());
      return p2psp::Endpoint::ipv6(a, port).normalized();
    }
    default:
      return {};
  }
}

GSocketAddress *address_from_endpoint(const p2psp::Endpoint &ep) {
  GSocketFamily family;
  switch (ep.family) {
    case p2psp::Endpoint::Family::kIPv4:
      family = G_SOCKET_FAMILY_IPV4;
      break;
    case p2psp::Endpoint::Family::kIPv6:
      family = G_SOCKET_FAMILY_IPV6;
      break;
    default:
      return nullptr;
  }
  GInetAddress *inet = g_inet_address_new_from_bytes(ep.addr.data(), family);
  GSocketAddress *sa = g_inet_socket_address_new(inet, ep.port);
  g_object_unref(inet);
  return sa;
}

GInetAddress *resolve_host(const std::string &host, GCancellable *cancel,
                           GError **error) {
  GInetAddress *literal = g_inet_address_new_from_string(host.c_str());
  if (literal != nullptr) return literal;

  GResolver *resolver = g_resolver_get_default();
  GList *results =
      g_resolver_lookup_by_name(resolver, host.c_str(), cancel, error);
  g_object_unref(resolver);
  if (results == nullptr) return nullptr;
  auto *first = G_INET_ADDRESS(g_object_ref(results->data));
  g_resolver_free_addresses(results);
  return first;
}

TcpConnection::TcpConnection(GSocket *adopt) : socket_(adopt) {}

void TcpConnection::queue(const std::vector<uint8_t> &bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

bool TcpConnection::flush() {
  while (pos_ < out_.size()) {
    GError *error = nullptr;
    gssize n = g_socket_send(socket_.get(),
                             reinterpret_cast<const gchar *>(&out_[pos_]),
                             out_.size() - pos_, nullptr, &error);
    GErrorPtr owned(error);
    if (n < 0) {
      if (is_would_block(error)) break;
      return false;
    }
    pos_ += static_cast<size_t>(n);
  }
  if (pos_ == out_.size()) {
    out_.clear();
    pos_ = 0;
  } else if (pos_ > out_.size() / 2) {
    /* Keeps memory proportional to what is still unsent. */
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  return true;
}

gssize TcpConnection::read_some(uint8_t *buf, size_t size) {
  GError *error = nullptr;
  gssize n = g_socket_receive(socket_.get(), reinterpret_cast<gchar *>(buf),
                              size, nullptr, &error);
  GErrorPtr owned(error);
  if (n >= 0) return n;
  return is_would_block(error) ? -2 : -1;
}

struct PollThread::Impl {
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<p2psp::Micros> period{0};
  std::atomic<bool> again{false};
  int wake_fd = -1;
  /* The sockets stay registered in it from round to round: the set is
   * only changed when the watch callback rewrote its list, where poll()
   * was handed the whole list on every round. */
  int epoll_fd = -1;
  std::vector<int> registered;
  CachedWatchCallback watches;
  SocketCallback on_io;
  TimerCallback on_timer;

  void run();
  void drain_wake_fd() const;
  int poll_timeout_ms(p2psp::Micros deadline) const;
  void sleep_until_round(p2psp::Micros round) const;
  void register_list(const WatchList &list);
};

/* Replaces the registered set with `list`; data.u32 is the index in the
 * list plus one (0: the wake-up fd). A socket closed since the last list
 * left the set by itself, so failures to remove are expected. */
void PollThread::Impl::register_list(const WatchList &list) {
  for (int fd : registered) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  registered.clear();
  for (size_t i = 0; i < list.size(); i++) {
    epoll_event ev{};
    /* GIOCondition values are the poll() bits, and the EPOLL* bits are
     * the same numbers. */
    ev.events = static_cast<uint32_t>(list[i].second);
    ev.data.u32 = static_cast<uint32_t>(i + 1);
    const int fd = g_socket_get_fd(list[i].first);
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
      registered.push_back(fd);
  }
}

void PollThread::Impl::drain_wake_fd() const {
  uint64_t value;
  while (read(wake_fd, &value, sizeof value) == sizeof value) {
  }
}

int PollThread::Impl::poll_timeout_ms(p2psp::Micros deadline) const {
  const p2psp::Micros now = monotonic_now_us();
  if (deadline <= now) return 0;
  const p2psp::Micros wait = std::min(deadline - now, kMaxPollWaitUs);
  /* Round up: waking a little late beats spinning until the deadline. */
  return static_cast<int>((wait + 999) / 1000);
}

/* Sleeps until `round`, or until wake(): the wake-up fd is only looked at,
 * the round that follows drains it. */
void PollThread::Impl::sleep_until_round(p2psp::Micros round) const {
  const p2psp::Micros now = monotonic_now_us();
  if (round <= now) return;
  const p2psp::Micros wait = round - now;
  timespec ts{static_cast<time_t>(wait / 1000000),
              static_cast<long>(wait % 1000000) * 1000};
  pollfd wake{wake_fd, POLLIN, 0};
  while (ppoll(&wake, 1, &ts, nullptr) < 0 && errno == EINTR) {
  }
}

void PollThread::Impl::run() {
  WatchList list;
  constexpr int kMaxEvents = 16;
  epoll_event events[kMaxEvents];
  p2psp::Micros deadline = on_timer(monotonic_now_us());
  p2psp::Micros last_round = 0;
  bool sockets_quiet = false;
  while (!stopping.load()) {
    if (watches(list)) register_list(list);

    int timeout = poll_timeout_ms(deadline);
    const p2psp::Micros p = period.load();
    /* After a round that found the sockets quiet, sleeping out the period
     * and looking again would only add wake-ups: wait for the next event
     * as without a period, and let the period pace the rounds after it. */
    if (p > 0 && !sockets_quiet) {
      /* Whatever is due waits for the round: that is the point. What a
       * callback left unread (run_again()) does not. */
      if (!again.exchange(false)) sleep_until_round(last_round + p);
      timeout = 0;
    }
    int ready = epoll_wait(epoll_fd, events, kMaxEvents, timeout);
    if (p > 0) last_round = monotonic_now_us();
    if (ready < 0 && errno != EINTR) break;
    if (stopping.load()) break;
    sockets_quiet = true;
    for (int i = 0; i < ready; i++) {
      const uint32_t index = events[i].data.u32;
      if (index == 0) {
        drain_wake_fd();
        continue;
      }
      if (index > list.size()) continue;
      sockets_quiet = false;
      on_io(list[index - 1].first, static_cast<GIOCondition>(events[i].events));
    }
    /* I/O and other threads (that called wake()) can move the deadline, so
     * the timer callback is asked again every round, not only when due. */
    deadline = on_timer(monotonic_now_us());
  }
}

PollThread::PollThread() : impl_(new Impl) {}

PollThread::~PollThread() { stop(); }

bool PollThread::start(const char *name, WatchCallback watches,
                       SocketCallback on_io, TimerCallback on_timer) {
  return start_cached(
      name,
      [watches = std::move(watches)](WatchList &list) {
        list.clear();
        watches(list);
        return true;
      },
      std::move(on_io), std::move(on_timer));
}

bool PollThread::start_cached(const char *name, CachedWatchCallback watches,
                              SocketCallback on_io, TimerCallback on_timer) {
  if (impl_->thread.joinable()) return false;
  impl_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0) return false;
  impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u32 = 0;
  if (impl_->epoll_fd < 0 ||
      epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wake_fd, &wake) != 0) {
    if (impl_->epoll_fd >= 0) close(impl_->epoll_fd);
    close(impl_->wake_fd);
    impl_->wake_fd = impl_->epoll_fd = -1;
    return false;
  }
  impl_->registered.clear();
  impl_->stopping = false;
  impl_->watches = std::move(watches);
  impl_->on_io = std::move(on_io);
  impl_->on_timer = std::move(on_timer);
  std::string thread_name = name ? name : "p2psp-poll";
  impl_->thread = std::thread([this, thread_name] {
    /* Linux limits thread names to 15 characters. */
    pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
    impl_->run();
  });
  return true;
}

void PollThread::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  wake();
  /* From a callback, only ask: the loop ends when the callback returns and
   * a later stop() from another thread joins it. */
  if (impl_->thread.get_id() == std::this_thread::get_id()) return;
  impl_->thread.join();
  close(impl_->wake_fd);
  close(impl_->epoll_fd);
  impl_->wake_fd = impl_->epoll_fd = -1;
  impl_->watches = nullptr;
  impl_->on_io = nullptr;
  impl_->on_timer = nullptr;
}

void PollThread::set_period(p2psp::Micros period) { impl_->period = period; }

void PollThread::run_again() { impl_->again = true; }

void PollThread::wake() {
  if (impl_->wake_fd < 0) return;
  const uint64_t one = 1;
  /* A full counter already means "wake up": nothing to do on failure. */
  ssize_t ignored = write(impl_->wake_fd, &one, sizeof one);
  (void)ignored;
}

}  // namespace p2psp_gst
