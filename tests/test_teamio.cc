/* gst-p2psp: TeamIo (plugin/gstp2pspteamio.h), the I/O object under both
 * elements: dispatching an Outbox in the splitter's shape (bounded
 * per-connection queues) and in a peer's (one connection, written at once),
 * the UDP read loop, the watch list and the timer. Real loopback sockets. */
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "plugin/gstp2pspteamio.h"
#include "tests/loopback_sockets.h"

namespace {

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

}  // namespace
