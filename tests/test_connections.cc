/* gst-p2psp: the splitter's ConnectionTable (plugin/gstp2pspconnections.h):
 * hashed look-ups, the bounded per-connection backlog, and a poll list that
 * is only rebuilt when something changed. Real loopback sockets. */
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <vector>

#include "plugin/gstp2pspconnections.h"
#include "tests/loopback_sockets.h"

namespace {

using p2psp_gst::ConnectionTable;
using p2psp_gst::GRef;

using Pair = LoopbackPair;

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
