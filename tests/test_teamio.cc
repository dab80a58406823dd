/* gst-p2psp: TeamIo (plugin/gstp2pspteamio.h), the I/O object under both
 * elements: dispatching an Outbox in the splitter's shape (bounded
 * per-connection queues) and in a peer's (one connection, written at once),
 * the UDP read loop, the watch list and the timer. Real loopback sockets. */
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "plugin/gstp2pspteamio.h"
#include "tests/loopback_sockets.h"

namespace {

using p2psp_gst::AdaptiveInterval;
using p2psp_gst::GRef;
using p2psp_gst::TeamIo;

using Pair = LoopbackPair;

p2psp::UdpSend Datagram(const p2psp::Endpoint &to, size_t size) {
  return {to, std::make_shared<const p2psp::Bytes>(size, 7)};
}

TEST(TeamIo, SplitterDispatchBoundsEachConnection) {
  TeamIo io;
  GRef<GSocket> receiver(LoopbackUdp());
  io.adopt_listener(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, nullptr),
                    1000);
  io.adopt_udp(LoopbackUdp(), 16);
  Pair a;
  const p2psp::ConnId id = io.connections().add(a.server, p2psp::Endpoint());

  p2psp::Outbox out;
  out.udp.push_back(Datagram(LocalEndpoint(receiver.get()), 100));
  out.tcp.push_back({id, p2psp::Bytes(5000, 1)}); /* one message passes */
  p2psp_gst::Dispatched done = io.dispatch(out);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(done.wake);
  EXPECT_TRUE(done.slow.empty());
  EXPECT_EQ(io.connections().queued_bytes(), 5000u);
  gchar buf[200];
  EXPECT_EQ(g_socket_receive(receiver.get(), buf, sizeof buf, nullptr, nullptr),
            100);

  out.tcp.push_back({id, p2psp::Bytes(10, 2)}); /* past the bound */
  done = io.dispatch(out);
  ASSERT_EQ(done.slow.size(), 1u);
  EXPECT_EQ(done.slow[0], id);

  /* A close: the connection stays until flushed (or due), then reaped. */
  out.tcp_close.push_back(id);
  EXPECT_TRUE(io.dispatch(out).wake);
  ASSERT_NE(io.connections().find(id), nullptr);
  EXPECT_TRUE(io.connections().find(id)->close_when_flushed);
}

TEST(TeamIo, PeerConnectionIsWrittenAtOnceAndUnwatchedAfterClose) {
  TeamIo io;
  Pair a;
  io.adopt_stream(g_socket_connection_factory_create_connection(a.server));
  g_object_unref(a.server);
  io.adopt_udp(LoopbackUdp(), 32);

  p2psp_gst::PollThread::WatchList list;
  ASSERT_TRUE(io.watches(list));
  ASSERT_EQ(list.size(), 2u); /* the connection, UDP */
  EXPECT_EQ(list[0].second, G_IO_IN);
  EXPECT_FALSE(io.watches(list)); /* nothing changed */

  p2psp::Outbox out;
  out.tcp.push_back({0, p2psp::Bytes{1, 2, 3}});
  out.tcp_close.push_back(0);
  const p2psp_gst::Dispatched done = io.dispatch(out);
  EXPECT_FALSE(done.tcp_failed);
  guint8 buf[8];
  EXPECT_EQ(g_socket_receive(a.client.get(), reinterpret_cast<gchar *>(buf),
                             sizeof buf, nullptr, nullptr),
            3);
  EXPECT_EQ(buf[2], 3);
  /* Flushed and asked to close: no longer watched, UDP still is. */
  ASSERT_TRUE(io.watches(list));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].first, io.udp());
  EXPECT_TRUE(io.tcp_closed());
  EXPECT_FALSE(io.tcp_open());
}

TEST(TeamIo, ReceiveHandsEveryDatagramWithItsBatch) {
  TeamIo io;
  io.adopt_udp(LoopbackUdp(), 4);
  GRef<GSocket> sender(LoopbackUdp());
  GSocketAddress *to = g_socket_get_local_address(io.udp(), nullptr);
  for (int i = 0; i < 10; i++) {
    const gchar byte = static_cast<gchar>(i);
    g_socket_send_to(sender.get(), to, &byte, 1, nullptr, nullptr);
  }
  g_object_unref(to);
  std::vector<int> got;
  int batches = 0;
  /* Two rounds of 4: both full, so more may wait. */
  EXPECT_TRUE(io.receive(
      io.udp(), 2,
      [&](const p2psp_gst::DatagramView &d, p2psp::Micros) {
        EXPECT_EQ(d.from, LocalEndpoint(sender.get()));
        got.push_back(d.data[0]);
      },
      [&](p2psp::Micros) { batches++; }));
  EXPECT_EQ(batches, 2);
  EXPECT_FALSE(io.receive(
      io.udp(), 8,
      [&](const p2psp_gst::DatagramView &d, p2psp::Micros) {
        got.push_back(d.data[0]);
      },
      [&](p2psp::Micros) { batches++; }));
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; i++) EXPECT_EQ(got[i], i);
  EXPECT_GT(io.kernel_stats().receive_buffer, 0);
}

/* Something with a deadline, like a core. */
struct FakeCore {
  p2psp::Micros deadline = 100;
  int ticks = 0;
  p2psp::Micros next_deadline() const { return deadline; }
};

TEST(TeamIo, TimerTicksOnlyWhenDueAndRemembersTheDeadline) {
  TeamIo io;
  FakeCore core;
  auto tick = [&] {
    core.ticks++;
    core.deadline += 100;
  };
  EXPECT_EQ(io.on_timer(core, 50, tick), 100u);
  EXPECT_EQ(core.ticks, 0);
  EXPECT_EQ(io.on_timer(core, 100, tick), 200u);
  EXPECT_EQ(core.ticks, 1);
  EXPECT_TRUE(io.deadline_moved_up(150));
  EXPECT_FALSE(io.deadline_moved_up(250));
}

/* ------------------------------------------------ automatic interval ---- */

/* `per_s` datagrams a second for `seconds`, counted every millisecond from
 * `*now`; returns how often busy() changed. */
int Feed(AdaptiveInterval *a, p2psp::Micros *now, double per_s,
         double seconds) {
  int changes = 0;
  double owed = 0;
  for (int ms = 0; ms < seconds * 1000; ms++) {
    *now += 1000;
    owed += per_s / 1000;
    const size_t n = static_cast<size_t>(owed);
    owed -= n;
    if (n > 0 && a->count(n, *now)) changes++;
  }
  return changes;
}

TEST(AdaptiveInterval, BusyFromAThousandDatagramsASecondQuietBelowFiveHundred) {
  AdaptiveInterval a;
  p2psp::Micros now = 1000000;
  EXPECT_EQ(Feed(&a, &now, 900, 2), 0);
  EXPECT_FALSE(a.busy());
  EXPECT_EQ(Feed(&a, &now, 1100, 2), 1);
  EXPECT_TRUE(a.busy());
  /* Between the two thresholds it stays as it was. */
  EXPECT_EQ(Feed(&a, &now, 700, 2), 0);
  EXPECT_TRUE(a.busy());
  EXPECT_EQ(Feed(&a, &now, 400, 2), 1);
  EXPECT_FALSE(a.busy());
  EXPECT_EQ(Feed(&a, &now, 700, 2), 0);
  EXPECT_FALSE(a.busy());
}

TEST(AdaptiveInterval, DecidesOnWholeWindowsOnly) {
  AdaptiveInterval a;
  /* 100 datagrams at once, then nothing: a burst is not a rate. */
  EXPECT_FALSE(a.count(100, 1000000));
  EXPECT_FALSE(a.count(1, 1000000 + AdaptiveInterval::kWindowUs - 1));
  EXPECT_FALSE(a.busy());
  /* A long quiet gap after a busy time: the first count ends it. */
  p2psp::Micros now = 2000000;
  Feed(&a, &now, 5000, 1);
  ASSERT_TRUE(a.busy());
  EXPECT_TRUE(a.count(1, now + 5000000));
  EXPECT_FALSE(a.busy());
}

/* TeamIo's poll thread on its UDP socket, `interval` automatic with a cap
 * of 20 ms: `per_s` datagrams a second for `seconds` from another socket,
 * each read through receive(). Returns the rounds run while they came. */
int AutoRounds(double per_s, double seconds) {
  TeamIo io;
  io.adopt_udp(LoopbackUdp(), 32);
  io.set_interval(0, 20000);
  std::atomic<int> rounds{0}, read{0};
  io.start(
      "test-auto",
      [&io](p2psp_gst::PollThread::WatchList &list) {
        if (!list.empty()) return false;
        list.emplace_back(io.udp(), G_IO_IN);
        return true;
      },
      [&](GSocket *socket, GIOCondition) {
        io.receive(
            socket, 4,
            [&](const p2psp_gst::DatagramView &, p2psp::Micros) { read++; },
            [](p2psp::Micros) {});
      },
      [&](p2psp::Micros now) {
        rounds++;
        return now + 10 * G_USEC_PER_SEC;
      });
  GRef<GSocket> sender(LoopbackUdp());
  GSocketAddress *to = g_socket_get_local_address(io.udp(), nullptr);
  const int total = static_cast<int>(per_s * seconds);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < total; i++) {
    std::this_thread::sleep_until(
        start +
        std::chrono::microseconds(static_cast<int64_t>(i * 1e6 / per_s)));
    g_socket_send_to(sender.get(), to, "x", 1, nullptr, nullptr);
  }
  g_object_unref(to);
  const int during = rounds;
  for (int i = 0; i < 100 && read < total; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(read, total);
  io.stop();
  return during;
}

TEST(TeamIo, AutomaticIntervalCoalescesBusyTrafficOnly) {
  /* 2000 a second for 1.5 s: a round per datagram for the first quarter
   * second (about 500), then one per 20 ms (about 63), not 3000. */
  EXPECT_LE(AutoRounds(2000, 1.5), 500 + 2 * 63 + 100);
  /* 100 a second: a round for each. */
  EXPECT_GE(AutoRounds(100, 1.0), 90);
}

}  // namespace
