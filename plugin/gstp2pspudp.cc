/* gst-p2psp: the UDP side shared by both elements (see gstp2pspudp.h). */
#include "gstp2pspudp.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace p2psp_gst {

namespace {

/* Enough for sendmmsg to amortise the syscall, small enough for the
 * message arrays to live on the stack. */
constexpr size_t kSendBatch = 64;
constexpr size_t kMaxDatagram = 65536;
/* receive_datagrams() reads at most this many datagrams per call. */
constexpr size_t kReceiveBatchMax = 64;

/* The kernel's cumulative drop count, which it attaches (SO_RXQ_OVFL) to
 * the datagrams it delivers once it has dropped any. */
void read_drop_counter(const msghdr &hdr, uint32_t *kernel_drops) {
  for (const cmsghdr *c = CMSG_FIRSTHDR(&hdr); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr *>(&hdr), const_cast<cmsghdr *>(c))) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
        c->cmsg_len >= CMSG_LEN(sizeof(uint32_t)))
      std::memcpy(kernel_drops, CMSG_DATA(c), sizeof(uint32_t));
  }
}

/* The size of each datagram UDP_GRO joined into this message (the last may
 * be shorter), or 0 for a message that is one datagram. */
size_t gro_segment(const msghdr &hdr) {
  for (const cmsghdr *c = CMSG_FIRSTHDR(&hdr); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr *>(&hdr), const_cast<cmsghdr *>(c))) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int size = 0;
      std::memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? static_cast<size_t>(size) : 0;
    }
  }
  return 0;
}

}  // namespace

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

namespace {

/* Linux's limit on the segments of one GSO send (UDP_MAX_SEGMENTS). */
constexpr size_t kMaxGsoSegments = 64;
/* A GSO send is one UDP datagram to the kernel: its payload's limit. */
constexpr size_t kMaxGsoBytes = 65000;

/* Set once a kernel refused a GSO send (no UDP_SEGMENT before Linux 4.18,
 * a device without checksum offload, datagrams over the path's MTU): every
 * send is plain from then. */
std::atomic<bool> gso_refused{false};

/* One sendmmsg message: `count` datagrams to one destination, of `size`
 * bytes each but the last (which may be shorter), sent as one GSO send
 * when count > 1. */
struct SendRun {
  size_t first = 0;  // index into the grouped order
  size_t count = 0;
  size_t size = 0;
};

void sort_by_destination(const std::vector<p2psp::UdpSend> &sends,
                         std::vector<size_t>::iterator begin,
                         std::vector<size_t>::iterator end) {
  std::stable_sort(begin, end, [&](size_t a, size_t b) {
    return sends[a].to < sends[b].to;
  });
}

/* The sends grouped by destination (stable: each destination's datagrams
 * keep their order; only datagrams to different destinations change
 * places), then cut into runs a GSO send can carry. A send marked in_order
 * starts a new group: nothing crosses it (a flood-check echo must leave
 * behind the copies queued before it; sorted by destination, the echo to
 * the splitter went out first and timed nothing). */
void plan_runs(const std::vector<p2psp::UdpSend> &sends, bool gso,
               std::vector<size_t> *order, std::vector<SendRun> *runs) {
  order->resize(sends.size());
  for (size_t i = 0; i < sends.size(); i++) (*order)[i] = i;
  if (gso) {
    auto first = order->begin();
    for (auto it = order->begin(); it != order->end(); ++it) {
      if (!sends[*it].in_order || it == first) continue;
      sort_by_destination(sends, first, it);
      first = it;
    }
    sort_by_destination(sends, first, order->end());
  }
  runs->clear();
  for (size_t k = 0; k < order->size(); k++) {
    const p2psp::UdpSend &send = sends[(*order)[k]];
    const size_t size = send.data ? send.data->size() : 0;
    if (!runs->empty() && gso) {
      SendRun &run = runs->back();
      const p2psp::UdpSend &head = sends[(*order)[run.first]];
      const p2psp::UdpSend &tail = sends[(*order)[run.first + run.count - 1]];
      const size_t tail_size = tail.data ? tail.data->size() : 0;
      /* Equal segments; a shorter one only last. */
      if (send.data && send.to == head.to && size > 0 && size <= run.size &&
          tail_size == run.size && run.count < kMaxGsoSegments &&
          (run.count + 1) * run.size <= kMaxGsoBytes) {
        run.count++;
        continue;
      }
    }
    runs->push_back(SendRun{k, 1, size});
  }
}

/* The planning arrays of send_datagrams(), kept per thread so that their
 * room is reused: one dispatch per network round, at high rates hundreds a
 * second. */
struct SendScratch {
  std::vector<size_t> order;
  std::vector<SendRun> runs;
  std::vector<iovec> vectors;
};

SendScratch &send_scratch() {
  thread_local SendScratch scratch;
  return scratch;
}

/* One non-blocking sendmmsg of messages[0, count). */
int send_messages(int fd, mmsghdr *messages, size_t count) {
  return sendmmsg(fd, messages, static_cast<unsigned>(count),
                  MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A GSO message refused: its datagrams one message each. Returns how many
 * the kernel did not take. */
size_t send_one_by_one(int fd, const msghdr &run) {
  mmsghdr messages[kMaxGsoSegments];
  const size_t count = std::min<size_t>(run.msg_iovlen, kMaxGsoSegments);
  for (size_t k = 0; k < count; k++) {
    messages[k] = mmsghdr{};
    messages[k].msg_hdr.msg_name = run.msg_name;
    messages[k].msg_hdr.msg_namelen = run.msg_namelen;
    messages[k].msg_hdr.msg_iov = &run.msg_iov[k];
    messages[k].msg_hdr.msg_iovlen = 1;
  }
  size_t done = 0;
  while (done < count) {
    const int sent = send_messages(fd, messages + done, count - done);
    if (sent > 0) {
      done += static_cast<size_t>(sent);
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return count - done; /* full: the rest is lost, as in the caller */
    } else {
      done++; /* that one datagram */
    }
  }
  return 0;
}

}  // namespace

/* Straight sendmmsg on the socket's fd: g_socket_send_messages() wanted a
 * GSocketAddress per datagram, two GObjects built and freed for every chunk
 * copy, which showed in the peers' profile (docs/benchmarks.md). Datagrams
 * of equal size to one destination go as one UDP GSO send (UDP_SEGMENT,
 * Linux 4.18): one trip through the stack, cut into datagrams at the end of
 * it (or delivered whole to a socket with UDP_GRO). */
size_t send_datagrams(GSocket *sock, const std::vector<p2psp::UdpSend> &sends) {
  const int fd = g_socket_get_fd(sock);
  const bool ipv6_socket = g_socket_get_family(sock) == G_SOCKET_FAMILY_IPV6;
  SendScratch &scratch = send_scratch();
  std::vector<size_t> &order = scratch.order;
  std::vector<SendRun> &runs = scratch.runs;
  plan_runs(sends, !gso_refused.load(std::memory_order_relaxed), &order, &runs);
  mmsghdr messages[kSendBatch];
  sockaddr_storage addresses[kSendBatch];
  alignas(cmsghdr) char control[kSendBatch][CMSG_SPACE(sizeof(uint16_t))];
  std::vector<iovec> &vectors = scratch.vectors;
  vectors.resize(sends.size());
  size_t dropped = 0;
  size_t next = 0;
  while (next < runs.size()) {
    /* A batch of sendable runs; a datagram without an address is skipped
     * rather than sent to whatever the socket is connected to. */
    size_t count = 0;
    size_t batch_runs[kSendBatch];
    while (next < runs.size() && count < kSendBatch) {
      const SendRun &run = runs[next++];
      const p2psp::UdpSend &head = sends[order[run.first]];
      const socklen_t len =
          sockaddr_from_endpoint(head.to, ipv6_socket, &addresses[count]);
      if (len == 0 || !head.data) {
        dropped += run.count;
        continue;
      }
      for (size_t k = 0; k < run.count; k++) {
        const p2psp::UdpSend &send = sends[order[run.first + k]];
        vectors[run.first + k].iov_base =
            const_cast<uint8_t *>(send.data->data());
        vectors[run.first + k].iov_len = send.data->size();
      }
      messages[count] = mmsghdr{};
      msghdr &hdr = messages[count].msg_hdr;
      hdr.msg_name = &addresses[count];
      hdr.msg_namelen = len;
      hdr.msg_iov = &vectors[run.first];
      hdr.msg_iovlen = run.count;
      if (run.count > 1) {
        hdr.msg_control = control[count];
        hdr.msg_controllen = sizeof control[count];
        cmsghdr *c = CMSG_FIRSTHDR(&hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t segment = static_cast<uint16_t>(run.size);
        std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
      }
      batch_runs[count] = next - 1;
      count++;
    }
    size_t done = 0;
    while (done < count) {
      const int sent = send_messages(fd, messages + done, count - done);
      if (sent > 0) {
        done += static_cast<size_t>(sent);
        continue;
      }
      const int err = errno;
      const SendRun &run = runs[batch_runs[done]];
      if (sent < 0 && err == EINTR) continue;
      if (sent < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
        /* The kernel buffer is full: the rest of this batch is lost; the
         * next batch (and the next round) tries again. */
        for (size_t k = done; k < count; k++)
          dropped += runs[batch_runs[k]].count;
        break;
      }
      if (run.count > 1 && (err == EIO || err == EINVAL || err == ENOPROTOOPT ||
                            err == EOPNOTSUPP || err == EMSGSIZE)) {
        /* No GSO here: this run one by one, and all later sends plain.
         * EMSGSIZE: the datagrams are larger than the path's MTU (a VPN,
         * a tunnel), which GSO cannot cut but IP fragments plain sends
         * for; it says nothing of which other destinations it concerns. */
        gso_refused.store(true, std::memory_order_relaxed);
        dropped += send_one_by_one(fd, messages[done].msg_hdr);
        done++;
        continue;
      }
      /* Anything else (unreachable, wrong family) concerns that one
       * destination only. */
      dropped += run.count;
      done++;
    }
  }
  return dropped;
}

bool gso_enabled() { return !gso_refused.load(std::memory_order_relaxed); }

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
size_t receive_datagrams(GSocket *sock, std::vector<ReceivedDatagram> &batch,
                         uint32_t *kernel_drops) {
  if (batch.empty()) return 0;
  const size_t n = std::min(batch.size(), kReceiveBatchMax);
  mmsghdr messages[kReceiveBatchMax];
  iovec vectors[kReceiveBatchMax];
  sockaddr_storage addresses[kReceiveBatchMax];
  /* Room for the SO_RXQ_OVFL counter and UDP_GRO's segment size. */
  alignas(cmsghdr) char control[kReceiveBatchMax][CMSG_SPACE(sizeof(uint32_t)) +
                                                  CMSG_SPACE(sizeof(int))];
  for (size_t i = 0; i < n; i++) {
    if (batch[i].data.size() < kMaxDatagram) batch[i].data.resize(kMaxDatagram);
    vectors[i].iov_base = batch[i].data.data();
    vectors[i].iov_len = batch[i].data.size();
    messages[i] = mmsghdr{};
    messages[i].msg_hdr.msg_name = &addresses[i];
    messages[i].msg_hdr.msg_namelen = sizeof addresses[i];
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
    messages[i].msg_hdr.msg_control = control[i];
    messages[i].msg_hdr.msg_controllen = sizeof control[i];
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
    batch[i].segment = gro_segment(messages[i].msg_hdr);
  }
  if (kernel_drops != nullptr)
    read_drop_counter(messages[got - 1].msg_hdr, kernel_drops);
  return static_cast<size_t>(got);
}

void UdpBuffers::attach(GSocket *sock) {
  *this = UdpBuffers();
  fd_ = g_socket_get_fd(sock);
  const int on = 1;
  /* Without it (very old kernels) the counter stays 0. */
  setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
  /* A sender's GSO send then arrives whole, one message for its run of
   * datagrams (Linux 5.0): one trip through the receiving stack instead of
   * one per datagram. Older kernels ignore it and hand them one by one. */
  setsockopt(fd_, SOL_UDP, UDP_GRO, &on, sizeof on);

  grow(SO_RCVBUF, kReceiveFloorBytes, &asked_rcv_, &granted_rcv_);
  grow(SO_SNDBUF, kSendFloorBytes, &asked_snd_, &granted_snd_);
}

/* Asks for `wanted` bytes if more than asked before. The kernel takes the
 * request silently capped at its maximum, and reports twice that (its
 * bookkeeping), which is what stats show. */
void UdpBuffers::grow(int option, int wanted, int *asked, int *granted) {
  wanted = std::min(wanted, kCeilingBytes);
  if (fd_ < 0 || wanted <= *asked) return;
  int current = 0;
  socklen_t len = sizeof current;
  /* Never below what the system already gives (rmem_default may be big). */
  if (getsockopt(fd_, SOL_SOCKET, option, &current, &len) == 0 &&
      current / 2 >= wanted && *asked == 0) {
    *asked = current / 2;
    *granted = current;
    return;
  }
  *asked = wanted;
  setsockopt(fd_, SOL_SOCKET, option, &wanted, sizeof wanted);
  len = sizeof current;
  if (getsockopt(fd_, SOL_SOCKET, option, &current, &len) == 0)
    *granted = current;
}

void UdpBuffers::count(size_t bytes_in, size_t bytes_out, p2psp::Micros now) {
  if (fd_ < 0) return;
  if (period_start_ == 0) period_start_ = now;
  period_in_ += bytes_in;
  period_out_ += bytes_out;
  /* A quarter of a second: the buffers follow a stream that starts or
   * speeds up within the time they are meant to hold. */
  constexpr p2psp::Micros kPeriodUs = 250000;
  if (now < period_start_ + kPeriodUs) return;
  const double seconds = static_cast<double>(now - period_start_) / 1e6;
  const double hold = static_cast<double>(kHoldUs) / 1e6;
  auto need = [&](uint64_t bytes) {
    return static_cast<int>(
        std::min(static_cast<double>(bytes) / seconds * hold,
                 static_cast<double>(kCeilingBytes)));
  };
  grow(SO_RCVBUF, need(period_in_), &asked_rcv_, &granted_rcv_);
  grow(SO_SNDBUF, need(period_out_), &asked_snd_, &granted_snd_);
  period_start_ = now;
  period_in_ = period_out_ = 0;
}

}  // namespace p2psp_gst
