/* gst-p2psp: the UDP side shared by both elements: batched send and
 * receive straight on the socket's fd, the kernel's receive-drop counter,
 * and socket buffers sized from the stream's rate. A step towards one I/O
 * object for both elements (issue 12): nothing here knows which element,
 * or the P2PSP protocol, it serves. */
#pragma once

#include <gio/gio.h>
#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace p2psp_gst {

p2psp::Micros monotonic_now_us();

/* Sends datagrams with sendmmsg on a non-blocking socket, each
 * destination's in the order given (datagrams to different destinations
 * may change places: runs of equal ones to one destination go as one UDP
 * GSO send). Datagrams the kernel refuses (full buffer, unreachable) are
 * dropped, not retried: returns how many were dropped. */
size_t send_datagrams(GSocket *sock, const std::vector<p2psp::UdpSend> &sends);
/* Whether send_datagrams() still sends runs of equal datagrams to one
 * destination as one UDP GSO send (FALSE once a kernel refused one). */
bool gso_enabled();

struct ReceivedDatagram {
  p2psp::Endpoint from;
  std::vector<uint8_t> data;
  size_t size = 0;
  /* On a socket with UDP_GRO (UdpBuffers::attach) the kernel may hand over
   * several datagrams of one sender in one message, each `segment` bytes
   * but the last; 0 when the message is one datagram. for_each_datagram()
   * cuts them apart. */
  size_t segment = 0;
};

/* One datagram of a received message. */
struct DatagramView {
  const p2psp::Endpoint &from;
  const uint8_t *data;
  size_t size;
};

/* fn(DatagramView) for each datagram in d, in the order they were sent. */
template <typename Fn>
void for_each_datagram(const ReceivedDatagram &d, Fn fn) {
  if (d.segment == 0 || d.segment >= d.size) {
    fn(DatagramView{d.from, d.data.data(), d.size});
    return;
  }
  for (size_t at = 0; at < d.size; at += d.segment)
    fn(DatagramView{d.from, d.data.data() + at,
                    std::min(d.segment, d.size - at)});
}

/* Receives up to batch.size() (at most 64) messages without blocking, with a
 * single recvmmsg; a message is one datagram, or with UDP_GRO a run of them
 * (for_each_datagram). Returns the number received (0 when none). A batch
 * that came back full may have more behind it: only then is it worth
 * calling again before the next poll. With kernel_drops, and SO_RXQ_OVFL
 * enabled on the socket (UdpBuffers::attach), *kernel_drops is set to the
 * kernel's count of datagrams (a GRO run counting once) it dropped for this
 * socket (receive buffer full), when the batch carried it. The kernel stamps
 * the count on each datagram it queues: drops after the last queued datagram
 * show with the next one. */
size_t receive_datagrams(GSocket *sock, std::vector<ReceivedDatagram> &batch,
                         uint32_t *kernel_drops = nullptr);

/* The UDP read loop of both elements: receives batches into `batch` and
 * hands each to on_batch(count, now), `now` being the batch's time of
 * receipt (one time for a whole backlog would make later datagrams look
 * older than they are). Stops at a batch that was not full, or after
 * max_rounds batches: then returns TRUE, as more may be waiting. */
template <typename OnBatch>
bool drain_datagrams(GSocket *sock, std::vector<ReceivedDatagram> &batch,
                     int max_rounds, OnBatch on_batch,
                     uint32_t *kernel_drops = nullptr) {
  for (int round = 0; round < max_rounds; round++) {
    const size_t n = receive_datagrams(sock, batch, kernel_drops);
    if (n > 0) on_batch(n, monotonic_now_us());
    if (n < batch.size()) return false;
  }
  return true;
}

/* A UDP socket's kernel buffers, sized from the traffic it carries, and
 * its drop counter. The kernel's defaults (net.core.rmem_default, 208 KiB
 * on most systems: about 90 datagrams of 1452 bytes) hold 40 ms of a
 * 25 Mb/s team's traffic, less than one scheduling hiccup of a loaded
 * machine: the datagrams past it are dropped by the kernel, unseen by the
 * application (docs/benchmarks.md, "High rates"). The rate is measured, not
 * announced: a peer often joins before the stream flows (wait-for-peers),
 * when the splitter does not know it either. Buffers only grow; each
 * direction holds kHoldUs of the highest rate seen, within the kernel's
 * limits (net.core.rmem_max / wmem_max). Not thread-safe: the owner's lock
 * or thread. */
class UdpBuffers {
 public:
  /* Time of traffic each buffer should hold. */
  static constexpr p2psp::Micros kHoldUs = 500000;
  /* What the buffers are asked for before any rate is known (the kernel
   * doubles it for its bookkeeping, and caps it at rmem_max / wmem_max).
   * Receiving asks for 4 MiB at once: the first seconds are the burstiest
   * (a join, a backlog caught up at 1.5 x) while the rate is not measured
   * yet, and a peer descheduled for 40 ms overflowed the 1 MiB it had at
   * 150 Mb/s (docs/benchmarks.md, "High rates"). The memory is the
   * kernel's, taken only while datagrams wait in it. */
  static constexpr int kReceiveFloorBytes = 4 * 1024 * 1024;
  /* Sending: enough for a start-up burst of a stream of about 10 Mb/s. */
  static constexpr int kSendFloorBytes = 512 * 1024;
  /* Asking more is pointless: the kernel caps it at rmem_max anyway. */
  static constexpr int kCeilingBytes = 64 * 1024 * 1024;

  /* Enables the drop counter (SO_RXQ_OVFL) and asks for the floor sizes. */
  void attach(GSocket *sock);
  /* Bytes received / sent; once per measuring period the buffers grow to
   * what the rate of that period needs. */
  void count(size_t bytes_in, size_t bytes_out, p2psp::Micros now);
  /* The latest cumulative counter from receive_datagrams. */
  uint32_t *drop_counter() { return &drops_; }
  uint64_t kernel_drops() const { return drops_; }
  /* What the kernel granted (getsockopt), bytes. */
  int receive_buffer() const { return granted_rcv_; }
  int send_buffer() const { return granted_snd_; }

 private:
  void grow(int option, int wanted, int *asked, int *granted);

  int fd_ = -1;
  uint32_t drops_ = 0;
  int asked_rcv_ = 0, asked_snd_ = 0;
  int granted_rcv_ = 0, granted_snd_ = 0;
  p2psp::Micros period_start_ = 0;
  uint64_t period_in_ = 0, period_out_ = 0;
};

/* Paces a backlog. After a stall (wait-for-peers held the stream, or
 * upstream blocked), a live source hands over what it produced meanwhile
 * as fast as it is taken, and basesink renders late buffers at once: the
 * splitter sent a second of a 25 Mb/s stream (over 2000 datagrams) in one
 * burst, more than the peers' sockets hold, and the dropped datagrams
 * wrecked the team's chunk debts for good (docs/benchmarks.md, "High
 * rates"). While buffers come late, they leave at most kSpeedPercent % as
 * fast as real time, counted from the first late one; a buffer on time ends the
 * catch-up. Times in microseconds; running times of the stream. */
class CatchUpPacer {
 public:
  /* Catch-up speed, percent of real time. A team's load during the
   * catch-up is this much of its steady load: 2x broke a team of 10 at
   * 100 Mb/s on a loaded 2-core machine (docs/benchmarks.md). */
  static constexpr uint64_t kSpeedPercent = 150;
  /* How long to wait before sending the buffer of running time `rt`, which
   * the clock says is late (or not), at monotonic time `now`. */
  p2psp::Micros delay(bool late, p2psp::Micros rt, p2psp::Micros now) {
    if (!late) {
      active_ = false;
      return 0;
    }
    if (!active_ || rt < rt0_) {
      active_ = true;
      rt0_ = rt;
      wall0_ = now;
      return 0;
    }
    const p2psp::Micros due = wall0_ + (rt - rt0_) * 100 / kSpeedPercent;
    return due > now ? due - now : 0;
  }
  bool active() const { return active_; }

 private:
  bool active_ = false;
  p2psp::Micros rt0_ = 0, wall0_ = 0;
};

}  // namespace p2psp_gst
