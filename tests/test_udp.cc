/* gst-p2psp: the UDP side shared by both elements (plugin/gstp2pspudp.h):
 * the kernel's drop counter as receive_datagrams reports it, buffers that
 * grow with the measured rate, and the pacing of a late backlog. Real
 * loopback sockets. */
#include <gio/gio.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "plugin/gstp2pspudp.h"
#include "plugin/gstp2psputil.h"
#include "tests/loopback_sockets.h"

namespace {

using p2psp_gst::CatchUpPacer;
using p2psp_gst::GRef;
using p2psp_gst::UdpBuffers;

GSocket *BoundUdp() {
  GSocket *s = LoopbackUdp();
  g_socket_set_blocking(s, FALSE);
  return s;
}

int BufferSize(GSocket *s, int option) {
  int v = 0;
  socklen_t len = sizeof v;
  getsockopt(g_socket_get_fd(s), SOL_SOCKET, option, &v, &len);
  return v;
}

/* Sends `count` datagrams of `size` bytes to `to` from `from`. */
size_t Flood(GSocket *from, const p2psp::Endpoint &to, size_t count,
             size_t size) {
  auto data = std::make_shared<const std::vector<uint8_t>>(size, 0x5a);
  std::vector<p2psp::UdpSend> sends;
  for (size_t i = 0; i < count; i++) sends.push_back({to, data});
  return count - p2psp_gst::send_datagrams(from, sends);
}

/* The same, one send each: no GSO run, so no GRO message at the receiver. */
size_t FloodOneByOne(GSocket *from, const p2psp::Endpoint &to, size_t count,
                     size_t size) {
  size_t sent = 0;
  for (size_t i = 0; i < count; i++) sent += Flood(from, to, 1, size);
  return sent;
}

TEST(UdpBuffers, AttachAsksForTheFloor) {
  GRef<GSocket> s(BoundUdp());
  UdpBuffers b;
  b.attach(s.get());
  /* The kernel may cap it (rmem_max), never below its own default. */
  EXPECT_EQ(b.receive_buffer(), BufferSize(s.get(), SO_RCVBUF));
  EXPECT_EQ(b.send_buffer(), BufferSize(s.get(), SO_SNDBUF));
  EXPECT_GT(b.receive_buffer(), 0);
  EXPECT_EQ(b.kernel_drops(), 0u);
}

/* The receive floor (4 MiB asked) may already be all that rmem_max allows,
 * so growth is checked on the send buffer (512 KiB asked). */
TEST(UdpBuffers, GrowsWithTheRateOnlyAfterAPeriod) {
  GRef<GSocket> s(BoundUdp());
  UdpBuffers b;
  b.attach(s.get());
  const int before = b.send_buffer();
  const int receive_before = b.receive_buffer();
  /* 4 MB sent in a quarter of a second (128 Mb/s): half a second of it is
   * 8 MB, more than the floor; little received. */
  p2psp::Micros t = 1000000;
  b.count(0, 0, t);
  b.count(1000, 4 * 1024 * 1024, t + 100000);
  EXPECT_EQ(b.send_buffer(), before) << "grew before a period ended";
  b.count(0, 0, t + 250000);
  /* Grown, unless the system's maximum is already what it had. */
  int wmem_max = 0;
  if (FILE *f = fopen("/proc/sys/net/core/wmem_max", "r")) {
    if (fscanf(f, "%d", &wmem_max) != 1) wmem_max = 0;
    fclose(f);
  }
  if (wmem_max * 2 > before) {
    EXPECT_GT(b.send_buffer(), before);
  }
  EXPECT_EQ(b.send_buffer(), BufferSize(s.get(), SO_SNDBUF));
  EXPECT_EQ(b.receive_buffer(), receive_before) << "a trickle must not grow it";
  /* Never shrinks when the rate falls. */
  const int grown = b.send_buffer();
  b.count(0, 10, t + 600000);
  EXPECT_EQ(b.send_buffer(), grown);
}

/* The point of the counter: datagrams the kernel drops for a full receive
 * buffer are invisible to the application otherwise. Sent one by one: a
 * GSO run the kernel drops whole counts once (docs/elements.md). */
TEST(UdpBuffers, CountsWhatTheKernelDropped) {
  GRef<GSocket> rx(BoundUdp()), tx(BoundUdp());
  UdpBuffers b;
  b.attach(rx.get());
  /* The smallest buffer the kernel allows, so a burst overflows it. */
  const int tiny = 1;
  setsockopt(g_socket_get_fd(rx.get()), SOL_SOCKET, SO_RCVBUF, &tiny,
             sizeof tiny);
  const size_t sent =
      FloodOneByOne(tx.get(), LocalEndpoint(rx.get()), 200, 1400);
  ASSERT_GT(sent, 0u);
  std::vector<p2psp_gst::ReceivedDatagram> batch(64);
  size_t received = 0;
  for (;;) {
    const size_t n =
        p2psp_gst::receive_datagrams(rx.get(), batch, b.drop_counter());
    received += n;
    if (n == 0) break;
  }
  ASSERT_GT(received, 0u);
  ASSERT_LT(received, sent) << "the tiny buffer held the whole burst";
  /* The kernel stamps its count on a datagram as it queues it: the drops
   * after the last one queued show with the next one. */
  ASSERT_EQ(Flood(tx.get(), LocalEndpoint(rx.get()), 1, 1400), 1u);
  g_usleep(10000);
  ASSERT_EQ(p2psp_gst::receive_datagrams(rx.get(), batch, b.drop_counter()),
            1u);
  EXPECT_EQ(b.kernel_drops(), sent - received);
}

TEST(UdpBuffers, NoCounterWithoutAttach) {
  GRef<GSocket> rx(BoundUdp()), tx(BoundUdp());
  ASSERT_EQ(Flood(tx.get(), LocalEndpoint(rx.get()), 3, 100), 3u);
  std::vector<p2psp_gst::ReceivedDatagram> batch(8);
  uint32_t drops = 77;
  g_usleep(10000);
  EXPECT_EQ(p2psp_gst::receive_datagrams(rx.get(), batch, &drops), 3u);
  EXPECT_EQ(drops, 77u) << "no SO_RXQ_OVFL, no counter";
  EXPECT_EQ(batch[0].size, 100u);
}

/* Everything a socket has now, as (first byte, size) pairs in order. */
std::vector<std::pair<uint8_t, size_t>> Drain(GSocket *s) {
  std::vector<std::pair<uint8_t, size_t>> got;
  std::vector<p2psp_gst::ReceivedDatagram> batch(64);
  g_usleep(20000);
  for (;;) {
    const size_t n = p2psp_gst::receive_datagrams(s, batch);
    for (size_t i = 0; i < n; i++) {
      /* A datagram cut at the wrong place ends in another's byte. */
      const auto &d = batch[i].data;
      const bool whole = batch[i].size > 0 && d[batch[i].size - 1] == d[0];
      got.emplace_back(whole ? d[0] : 0xEE, batch[i].size);
    }
    if (n == 0) break;
  }
  return got;
}

/* gtest prints long vectors cut short: say where they part. */
void ExpectSame(const std::vector<std::pair<uint8_t, size_t>> &got,
                const std::vector<std::pair<uint8_t, size_t>> &want) {
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); i++) {
    if (got[i] == want[i]) continue;
    ADD_FAILURE() << "datagram " << i << ": got #" << int(got[i].first)
                  << " of " << got[i].second << " bytes, want #"
                  << int(want[i].first) << " of " << want[i].second;
    return;
  }
}

/* Runs of equal datagrams to one destination leave as one GSO send where
 * the kernel has it (send_datagrams groups each destination's datagrams):
 * every datagram must still arrive whole, each destination's in the order
 * given, a shorter one closing a run, a longer one after it starting the
 * next, and a run longer than one GSO send carries. */
TEST(SendDatagrams, InterleavedRunsArriveWholeAndInOrder) {
  GRef<GSocket> a(BoundUdp()), b(BoundUdp()), tx(BoundUdp());
  /* Room for all of it (the default holds about 90 such datagrams). */
  for (GSocket *s : {a.get(), b.get()}) {
    const int room = 1 << 20;
    setsockopt(g_socket_get_fd(s), SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
  }
  std::vector<p2psp::UdpSend> sends;
  std::vector<std::pair<uint8_t, size_t>> want_a, want_b;
  for (int i = 0; i < 150; i++) {
    const bool to_b = i % 3 == 0;
    const size_t size = i == 40 ? 700 : i == 41 ? 1452 : 1448;
    auto data = std::make_shared<std::vector<uint8_t>>(size, 0x11);
    (*data)[0] = static_cast<uint8_t>(i);
    (*data)[size - 1] = static_cast<uint8_t>(i);
    sends.push_back({LocalEndpoint(to_b ? b.get() : a.get()), data});
    (to_b ? want_b : want_a).emplace_back(static_cast<uint8_t>(i), size);
  }
  EXPECT_EQ(p2psp_gst::send_datagrams(tx.get(), sends), 0u);
  ExpectSame(Drain(a.get()), want_a);
  ExpectSame(Drain(b.get()), want_b);
  std::printf("UDP GSO %s\n", p2psp_gst::gso_enabled() ? "used" : "refused");
}

/* A send marked in_order (a flood-check echo, protocol.md 10.7) leaves
 * after everything queued before it, though grouping by destination would
 * put it first: its destination sorts first. One socket bound to every
 * address receives on 127.0.0.1 and 127.0.0.2, so it sees the order the
 * datagrams left in. */
TEST(SendDatagrams, InOrderSendsAreNotMovedAhead) {
  GError *error = nullptr;
  GRef<GSocket> rx(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                G_SOCKET_PROTOCOL_UDP, &error));
  ASSERT_TRUE(rx) << error->message;
  GRef<GInetAddress> any(g_inet_address_new_any(G_SOCKET_FAMILY_IPV4));
  GRef<GSocketAddress> bind_to(g_inet_socket_address_new(any.get(), 0));
  ASSERT_TRUE(g_socket_bind(rx.get(), bind_to.get(), FALSE, &error))
      << error->message;
  g_socket_set_blocking(rx.get(), FALSE);
  const uint16_t port = LocalEndpoint(rx.get()).port;
  const auto copy_to = p2psp::Endpoint::ipv4(127, 0, 0, 2, port);
  const auto echo_to = p2psp::Endpoint::ipv4(127, 0, 0, 1, port);
  GRef<GSocket> tx(BoundUdp());
  std::vector<p2psp::UdpSend> sends;
  std::vector<std::pair<uint8_t, size_t>> want;
  for (int i = 0; i < 6; i++) {
    auto data = std::make_shared<std::vector<uint8_t>>(1000, i);
    const bool echo = i == 3;
    sends.push_back({echo ? echo_to : copy_to, data, echo});
    want.emplace_back(static_cast<uint8_t>(i), 1000);
  }
  EXPECT_EQ(p2psp_gst::send_datagrams(tx.get(), sends), 0u);
  ExpectSame(Drain(rx.get()), want);
}

/* On a socket with UDP_GRO (attach) a GSO run may come as one message:
 * for_each_datagram must hand out each datagram of it whole and in order,
 * the shorter last one included, from the run's sender. */
TEST(ReceiveDatagrams, JoinedRunsAreCutBackIntoTheirDatagrams) {
  GRef<GSocket> rx(BoundUdp()), tx(BoundUdp());
  UdpBuffers buffers;
  buffers.attach(rx.get());
  std::vector<p2psp::UdpSend> sends;
  std::vector<std::pair<uint8_t, size_t>> want;
  for (int i = 0; i < 40; i++) {
    const size_t size = i == 39 ? 300 : 1448;
    auto data = std::make_shared<std::vector<uint8_t>>(size, 0x22);
    (*data)[0] = static_cast<uint8_t>(i);
    (*data)[size - 1] = static_cast<uint8_t>(i);
    sends.push_back({LocalEndpoint(rx.get()), data});
    want.emplace_back(static_cast<uint8_t>(i), size);
  }
  ASSERT_EQ(p2psp_gst::send_datagrams(tx.get(), sends), 0u);
  g_usleep(20000);
  std::vector<p2psp_gst::ReceivedDatagram> batch(64);
  std::vector<std::pair<uint8_t, size_t>> got;
  size_t messages = 0;
  for (;;) {
    const size_t n = p2psp_gst::receive_datagrams(rx.get(), batch);
    for (size_t i = 0; i < n; i++) {
      messages++;
      p2psp_gst::for_each_datagram(
          batch[i], [&](const p2psp_gst::DatagramView &d) {
            EXPECT_EQ(d.from, LocalEndpoint(tx.get()));
            const bool whole = d.size > 0 && d.data[d.size - 1] == d.data[0];
            got.emplace_back(whole ? d.data[0] : 0xEE, d.size);
          });
    }
    if (n == 0) break;
  }
  ExpectSame(got, want);
  /* One message for the run where both GSO and GRO work here. */
  std::printf("%zu datagrams in %zu messages\n", got.size(), messages);
}

/* A message cut by hand: the last datagram may be shorter, a segment as
 * large as the message is one datagram. */
TEST(ReceiveDatagrams, ForEachDatagramCutsAtTheSegmentSize) {
  p2psp_gst::ReceivedDatagram d;
  d.data.assign(10, 0);
  for (uint8_t i = 0; i < 10; i++) d.data[i] = i;
  auto sizes = [&](size_t size, size_t segment) {
    d.size = size;
    d.segment = segment;
    std::vector<std::pair<uint8_t, size_t>> got;
    p2psp_gst::for_each_datagram(d, [&](const p2psp_gst::DatagramView &v) {
      got.emplace_back(v.data[0], v.size);
    });
    return got;
  };
  using V = std::vector<std::pair<uint8_t, size_t>>;
  EXPECT_EQ(sizes(10, 4), (V{{0, 4}, {4, 4}, {8, 2}}));
  EXPECT_EQ(sizes(8, 4), (V{{0, 4}, {4, 4}}));
  EXPECT_EQ(sizes(10, 0), (V{{0, 10}}));
  EXPECT_EQ(sizes(10, 10), (V{{0, 10}}));
  EXPECT_EQ(sizes(7, 20), (V{{0, 7}}));
}

TEST(CatchUpPacer, OnTimeBuffersAreNeverHeld) {
  CatchUpPacer p;
  for (p2psp::Micros i = 0; i < 100; i++)
    EXPECT_EQ(p.delay(false, i * 10000, 5000000 + i * 10000), 0u);
  EXPECT_FALSE(p.active());
}

/* A late buffer's wait, at the pacer's speed. */
p2psp::Micros Paced(p2psp::Micros stream_us) {
  return stream_us * 100 / CatchUpPacer::kSpeedPercent;
}

TEST(CatchUpPacer, ALateBacklogLeavesFasterThanRealTimeButNotAtOnce) {
  static_assert(CatchUpPacer::kSpeedPercent > 100, "never catches up");
  CatchUpPacer p;
  const p2psp::Micros now = 7000000;
  /* A second of 10 ms buffers, all late, all offered at once. */
  EXPECT_EQ(p.delay(true, 0, now), 0u);
  EXPECT_TRUE(p.active());
  EXPECT_EQ(p.delay(true, 10000, now), Paced(10000));
  EXPECT_EQ(p.delay(true, 1000000, now), Paced(1000000));
  EXPECT_GT(Paced(1000000), 0u);
  EXPECT_LT(Paced(1000000), 1000000u);
  /* Offered later than its pace: no wait. */
  EXPECT_EQ(p.delay(true, 20000, now + Paced(20000) + 1), 0u);
  /* A buffer on time ends the catch-up; the next late one starts anew. */
  EXPECT_EQ(p.delay(false, 1010000, now + 600000), 0u);
  EXPECT_FALSE(p.active());
  EXPECT_EQ(p.delay(true, 3000000, now + 700000), 0u);
  EXPECT_EQ(p.delay(true, 3100000, now + 700000), Paced(100000));
}

TEST(CatchUpPacer, RunningTimeGoingBackRestarts) {
  CatchUpPacer p;
  EXPECT_EQ(p.delay(true, 5000000, 100), 0u);
  /* A new segment: running time starts over; no wait computed from the
   * old origin (it would underflow). */
  EXPECT_EQ(p.delay(true, 0, 200), 0u);
  EXPECT_EQ(p.delay(true, 40000, 200), Paced(40000));
}

}  // namespace
