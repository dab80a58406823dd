/* gst-p2psp: the thin I/O layer shared by both elements. */
#include "gstp2psputil.h"

#include <netinet/in.h>
#include <poll.h>
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

/* Enough for sendmmsg to amortise the syscall, small enough for the
 * message arrays to live on the stack. */
constexpr size_t kSendBatch = 64;
constexpr size_t kMaxDatagram = 65536;
/* receive_datagrams() reads at most this many datagrams per call. */
constexpr size_t kReceiveBatchMax = 64;
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

/* The native address of ep for a socket of this family (IPv4 destinations
 * of a dual-stack IPv6 socket as v4-mapped); 0 when it cannot be reached
 * through such a socket. */
static socklen_t sockaddr_from_endpoint(const p2psp::Endpoint &ep,
                                        bool ipv6_socket,
                                        sockaddr_storage *out) {
  *out = sockaddr_storage{};
  if (ep.family == p2psp::Endpoint::Family::kIPv4 && !ipv6_socket) {
    auto *in = reinterpret_cast<sockaddr_in *>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(ep.port);
    std::memcpy(&in->sin_addr, ep.addr.data(), 4);
    return sizeof *in;
  }
  if (!ipv6_socket || ep.family == p2psp::Endpoint::Family::kNone) return 0;
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(ep.port);
  if (ep.family == p2psp::Endpoint::Family::kIPv4) {
    in6->sin6_addr.s6_addr[10] = 0xff;
    in6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(in6->sin6_addr.s6_addr + 12, ep.addr.data(), 4);
  } else {
    std::memcpy(in6->sin6_addr.s6_addr, ep.addr.data(), 16);
  }
  return sizeof *in6;
}

/* Straight sendmmsg on the socket's fd: g_socket_send_messages() wanted a
 * GSocketAddress per datagram, two GObjects built and freed for every chunk
 * copy, which showed in the peers' profile (docs/benchmarks.md). */
size_t send_datagrams(GSocket *sock, const std::vector<p2psp::UdpSend> &sends) {
  const int fd = g_socket_get_fd(sock);
  const bool ipv6_socket = g_socket_get_family(sock) == G_SOCKET_FAMILY_IPV6;
  mmsghdr messages[kSendBatch];
  iovec vectors[kSendBatch];
  sockaddr_storage addresses[kSendBatch];
  size_t dropped = 0;
  size_t next = 0;
  while (next < sends.size()) {
    /* A batch of sendable datagrams; one without an address is skipped
     * rather than sent to whatever the socket is connected to. */
    size_t count = 0;
    while (next < sends.size() && count < kSendBatch) {
      const p2psp::UdpSend &send = sends[next++];
      const socklen_t len =
          sockaddr_from_endpoint(send.to, ipv6_socket, &addresses[count]);
      if (len == 0 || !send.data) {
        dropped++;
        continue;
      }
      vectors[count].iov_base = const_cast<uint8_t *>(send.data->data());
      vectors[count].iov_len = send.data->size();
      messages[count] = mmsghdr{};
      messages[count].msg_hdr.msg_name = &addresses[count];
      messages[count].msg_hdr.msg_namelen = len;
      messages[count].msg_hdr.msg_iov = &vectors[count];
      messages[count].msg_hdr.msg_iovlen = 1;
      count++;
    }
    size_t done = 0;
    while (done < count) {
      const int sent =
          sendmmsg(fd, messages + done, static_cast<unsigned>(count - done),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent > 0) {
        done += static_cast<size_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* The kernel buffer is full: the rest of this batch is lost; the
         * next batch (and the next round) tries again. */
        dropped += count - done;
        break;
      } else {
        /* Anything else (unreachable, wrong family) concerns that one
         * destination only. */
        dropped++;
        done++;
      }
    }
  }
  return dropped;
}

static p2psp::Endpoint endpoint_from_sockaddr(const sockaddr_storage &sa) {
  if (sa.ss_family == AF_INET) {
    const auto *in = reinterpret_cast<const sockaddr_in *>(&sa);
    const auto *b = reinterpret_cast<const uint8_t *>(&in->sin_addr.s_addr);
    return p2psp::Endpoint::ipv4(b[0], b[1], b[2], b[3], ntohs(in->sin_port));
  }
  if (sa.ss_family == AF_INET6) {
    const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&sa);
    std::array<uint8_t, 16> a{};
    std::copy_n(in6->sin6_addr.s6_addr, a.size(), a.begin());
    return p2psp::Endpoint::ipv6(a, ntohs(in6->sin6_port)).normalized();
  }
  return {};
}

/* One recvmmsg per call, on purpose: g_socket_receive_messages() loops until
 * the whole batch is filled, so on a non-blocking socket nearly every call
 * ended with an extra recvmmsg failing with EAGAIN (half of the calls in the
 * benchmark profile). Callers read again only when a batch came back full.
 * The source address is converted straight from the sockaddr, without a
 * GSocketAddress per datagram. */
size_t receive_datagrams(GSocket *sock, std::vector<ReceivedDatagram> &batch) {
  if (batch.empty()) return 0;
  const size_t n = std::min(batch.size(), kReceiveBatchMax);
  mmsghdr messages[kReceiveBatchMax];
  iovec vectors[kReceiveBatchMax];
  sockaddr_storage addresses[kReceiveBatchMax];
  for (size_t i = 0; i < n; i++) {
    if (batch[i].data.size() < kMaxDatagram) batch[i].data.resize(kMaxDatagram);
    vectors[i].iov_base = batch[i].data.data();
    vectors[i].iov_len = batch[i].data.size();
    messages[i] = mmsghdr{};
    messages[i].msg_hdr.msg_name = &addresses[i];
    messages[i].msg_hdr.msg_namelen = sizeof addresses[i];
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  int got;
  do {
    got = recvmmsg(g_socket_get_fd(sock), messages, static_cast<unsigned>(n),
                   MSG_DONTWAIT, nullptr);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return 0;
  for (int i = 0; i < got; i++) {
    batch[i].from = endpoint_from_sockaddr(addresses[i]);
    batch[i].size = messages[i].msg_len;
  }
  return static_cast<size_t>(got);
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
  CachedWatchCallback watches;
  SocketCallback on_io;
  TimerCallback on_timer;

  void run();
  void drain_wake_fd() const;
  int poll_timeout_ms(p2psp::Micros deadline) const;
  void sleep_until_round(p2psp::Micros round) const;
};

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
  std::vector<pollfd> fds;
  p2psp::Micros deadline = on_timer(monotonic_now_us());
  p2psp::Micros last_round = 0;
  bool sockets_quiet = false;
  fds.assign(1, pollfd{wake_fd, POLLIN, 0});
  while (!stopping.load()) {
    if (watches(list)) {
      fds.assign(1, pollfd{wake_fd, POLLIN, 0});
      for (const auto &watch : list) {
        /* GIOCondition values are the poll() bits on every platform GLib
         * supports with poll(). */
        fds.push_back(pollfd{g_socket_get_fd(watch.first),
                             static_cast<short>(watch.second), 0});
      }
    } else {
      /* The same list as last round: poll() only rewrites revents. */
      for (pollfd &fd : fds) fd.revents = 0;
    }

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
    int ready = poll(fds.data(), fds.size(), timeout);
    if (p > 0) last_round = monotonic_now_us();
    if (ready < 0 && errno != EINTR) break;
    if (stopping.load()) break;
    if (fds[0].revents != 0) drain_wake_fd();
    sockets_quiet = true;
    for (size_t i = 1; ready > 0 && i < fds.size(); i++) {
      if (fds[i].revents == 0) continue;
      sockets_quiet = false;
      on_io(list[i - 1].first, static_cast<GIOCondition>(fds[i].revents));
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
  impl_->wake_fd = -1;
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
