/* gst-p2psp: the splitter's ConnectionTable (plugin/gstp2pspconnections.h):
 * hashed look-ups, the bounded per-connection backlog, and a poll list that
 * is only rebuilt when something changed. Real loopback sockets. */
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <vector>

#include "plugin/gstp2pspconnections.h"

namespace {

using p2psp_gst::ConnectionTable;
using p2psp_gst::GRef;

/* A connected TCP pair on loopback: the server side goes into the table,
 * the client side is never read (so output piles up). */
struct Pair {
  GRef<GSocket> listener, client;
  GSocket *server = nullptr; /* adopted by the table */

  Pair() {
    listener.reset(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, nullptr));
    GSocketAddress *any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    g_socket_bind(listener.get(), any, TRUE, nullptr);
    g_object_unref(any);
    g_socket_listen(listener.get(), nullptr);
    GSocketAddress *addr = g_socket_get_local_address(listener.get(), nullptr);
    client.reset(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_DEFAULT, nullptr));
    g_socket_connect(client.get(), addr, nullptr, nullptr);
    g_object_unref(addr);
    server = g_socket_accept(listener.get(), nullptr, nullptr);
    g_socket_set_blocking(server, FALSE);
  }
};

TEST(ConnectionTable, FindsByIdAndBySocket) {
  Pair a, b;
  ConnectionTable table;
  const p2psp::ConnId ia = table.add(a.server, p2psp::Endpoint());
  const p2psp::ConnId ib = table.add(b.server, p2psp::Endpoint());
  EXPECT_NE(ia, ib);
  EXPECT_EQ(table.find(a.server), ia);
  EXPECT_EQ(table.find(b.server), ib);
  ASSERT_NE(table.find(ia), nullptr);
  EXPECT_EQ(table.find(ia)->tcp->socket(), a.server);
  table.erase(ia);
  EXPECT_EQ(table.find(ia), nullptr);
  EXPECT_EQ(table.find(b.server), ib);
  EXPECT_EQ(table.size(), 1u);
}

TEST(ConnectionTable, BacklogIsBoundedButOneMessageAlwaysPasses) {
  Pair a;
  ConnectionTable table;
  const p2psp::ConnId id = table.add(a.server, p2psp::Endpoint());
  /* Larger than the bound, on an idle connection: accepted. */
  EXPECT_TRUE(table.queue(id, std::vector<uint8_t>(5000, 1), 1000));
  /* Anything more while that is unsent: over the bound. */
  EXPECT_FALSE(table.queue(id, std::vector<uint8_t>(10, 2), 1000));
  table.abandon(id);
  EXPECT_EQ(table.queued_bytes(), 0u);
  table.reap(0);
  EXPECT_EQ(table.find(id), nullptr);
}

TEST(ConnectionTable, PollListIsRebuiltOnlyOnChange) {
  Pair a;
  ConnectionTable table;
  p2psp_gst::PollThread::WatchList list;
  EXPECT_TRUE(table.watches(nullptr, nullptr, list));
  EXPECT_TRUE(list.empty());
  EXPECT_FALSE(table.watches(nullptr, nullptr, list));
  const p2psp::ConnId id = table.add(a.server, p2psp::Endpoint());
  ASSERT_TRUE(table.watches(nullptr, nullptr, list));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].second, G_IO_IN);
  EXPECT_FALSE(table.watches(nullptr, nullptr, list));
  /* Output to write: G_IO_OUT too. */
  table.queue(id, std::vector<uint8_t>(10, 1), 1000);
  ASSERT_TRUE(table.watches(nullptr, nullptr, list));
  EXPECT_EQ(list[0].second, G_IO_IN | G_IO_OUT);
  /* Written: back to G_IO_IN. */
  EXPECT_TRUE(table.flush(id));
  ASSERT_TRUE(table.watches(nullptr, nullptr, list));
  EXPECT_EQ(list[0].second, G_IO_IN);
  /* Closing once flushed: no more G_IO_IN, gone at the next reap. */
  table.close_when_flushed(id, UINT64_MAX);
  ASSERT_TRUE(table.watches(nullptr, nullptr, list));
  EXPECT_EQ(list[0].second, 0);
  table.reap(0);
  ASSERT_TRUE(table.watches(nullptr, nullptr, list));
  EXPECT_TRUE(list.empty());
}

}  // namespace
