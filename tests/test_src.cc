/* gst-p2psp: p2pspsrc in-process tests.
 *
 * Element-level checks (properties, URI handler, states, errors) need no
 * splitter. The team tests run a real p2pspsplittersink and several
 * p2pspsrc pipelines over loopback in this process. appsrc/appsink are used
 * through their signals so the test needs no gstreamer-app library. */
#include <gio/gio.h>
#include <gst/base/gstbasesrc.h>
#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>
#include <gst/p2psp/peer.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plugin/gstp2psputil.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr GstClockTime kPullTimeout = 5 * GST_SECOND;

struct GstObjectDeleter {
  void operator()(gpointer o) const { gst_object_unref(o); }
};
using ElementPtr = std::unique_ptr<GstElement, GstObjectDeleter>;

struct MessageDeleter {
  void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageDeleter>;

ElementPtr MakeSrc() {
  return ElementPtr(gst_element_factory_make("p2pspsrc", nullptr));
}

ElementPtr Launch(const std::string& description) {
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  if (error != nullptr) {
    ADD_FAILURE() << description << ": " << error->message;
    g_error_free(error);
  }
  return ElementPtr(pipeline);
}

GstElement* ByName(GstElement* pipeline, const char* name) {
  // The bin keeps its child alive; tests do not outlive the pipeline.
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), name);
  gst_object_unref(e);
  return e;
}

// A TCP port on 127.0.0.1 nobody listens on (bound, then released).
int ClosedPort() {
  GSocket* s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_TCP, nullptr);
  GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress* addr = g_inet_socket_address_new(lo, 0);
  g_socket_bind(s, addr, FALSE, nullptr);
  GSocketAddress* local = g_socket_get_local_address(s, nullptr);
  const int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  g_object_unref(local);
  g_object_unref(addr);
  g_object_unref(lo);
  g_socket_close(s, nullptr);
  g_object_unref(s);
  return port;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

MessagePtr WaitForError(GstElement* pipeline, GstClockTime timeout) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, timeout, GST_MESSAGE_ERROR);
  gst_object_unref(bus);
  return MessagePtr(m);
}

// Polls `done` every 10 ms for at most `seconds`.
template <typename Pred>
bool WaitFor(Pred done, double seconds) {
  const auto start = Clock::now();
  while (!done()) {
    if (SecondsSince(start) > seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

GstStructure* GetStats(GstElement* element) {
  GstStructure* stats = nullptr;
  g_object_get(element, "stats", &stats, nullptr);
  return stats;
}

guint64 StatU64(GstElement* element, const char* field) {
  GstStructure* stats = GetStats(element);
  guint64 value = 0;
  if (stats == nullptr || !gst_structure_get_uint64(stats, field, &value))
    ADD_FAILURE() << "stats field " << field << " missing";
  if (stats != nullptr) gst_structure_free(stats);
  return value;
}

/* --------------------------------------------------------- element ---- */

TEST(P2pspSrc, CreateDestroy) {
  for (int i = 0; i < 3; i++) {
    ElementPtr src = MakeSrc();
    ASSERT_TRUE(src);
    EXPECT_TRUE(GST_IS_PUSH_SRC(src.get()));
    EXPECT_TRUE(gst_base_src_is_live(GST_BASE_SRC(src.get())));
    EXPECT_TRUE(GST_IS_URI_HANDLER(src.get()));
  }
}

TEST(P2pspSrc, FactoryMetadata) {
  GstElementFactory* factory = gst_element_factory_find("p2pspsrc");
  ASSERT_NE(factory, nullptr);
  EXPECT_STREQ(
      gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS),
      "Source/Network");
  EXPECT_EQ(gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(factory)),
            static_cast<guint>(GST_RANK_PRIMARY));
  gst_object_unref(factory);
}

TEST(P2pspSrc, PropertyDefaults) {
  ElementPtr src = MakeSrc();
  gchar* host = nullptr;
  gchar* uri = nullptr;
  gint port = 0;
  guint latency = 0, timeout = 0;
  g_object_get(src.get(), "host", &host, "port", &port, "latency", &latency,
               "timeout", &timeout, "uri", &uri, nullptr);
  EXPECT_STREQ(host, "127.0.0.1");
  EXPECT_EQ(port, 4552);
  EXPECT_EQ(latency, 200u);
  EXPECT_EQ(timeout, 10u);
  EXPECT_STREQ(uri, "p2psp://127.0.0.1:4552");
  g_free(host);
  g_free(uri);
}

TEST(P2pspSrc, PropertyRanges) {
  ElementPtr src = MakeSrc();
  GObjectClass* klass = G_OBJECT_GET_CLASS(src.get());
  auto* port = G_PARAM_SPEC_INT(g_object_class_find_property(klass, "port"));
  EXPECT_EQ(port->minimum, 1);
  EXPECT_EQ(port->maximum, 65535);
  GParamSpec* stats = g_object_class_find_property(klass, "stats");
  ASSERT_NE(stats, nullptr);
  EXPECT_FALSE(stats->flags & G_PARAM_WRITABLE);
  for (const char* name : {"uri", "host", "port", "latency", "timeout"}) {
    GParamSpec* p = g_object_class_find_property(klass, name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_TRUE(p->flags & GST_PARAM_MUTABLE_READY) << name;
  }
  g_object_set(src.get(), "port", 1, "latency", 0u, "timeout", 0u, nullptr);
  gint value = 0;
  g_object_get(src.get(), "port", &value, nullptr);
  EXPECT_EQ(value, 1);
}

TEST(P2pspSrc, StatsNeverNullBeforeJoining) {
  ElementPtr src = MakeSrc();
  GstStructure* stats = GetStats(src.get());
  ASSERT_NE(stats, nullptr);
  EXPECT_TRUE(gst_structure_has_name(stats, "application/x-p2psp-peer-stats"));
  EXPECT_STREQ(gst_structure_get_string(stats, "state"), "idle");
  for (const char* field :
       {"chunks-from-splitter", "chunks-from-peers",
        "nack-answers-from-splitter", "chunks-forwarded", "duplicates", "lost",
        "late", "played", "bytes-up", "bytes-down", "rejected-datagrams",
        "neighbours", "buffer-fill", "chunk-delay-us", "chunk-delay-max-us"}) {
    guint64 v = 1;
    EXPECT_TRUE(gst_structure_get_uint64(stats, field, &v)) << field;
    EXPECT_EQ(v, 0u) << field;
  }
  const GValue* list = gst_structure_get_value(stats, "neighbours-list");
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(GST_VALUE_HOLDS_ARRAY(list));
  EXPECT_EQ(gst_value_array_get_size(list), 0u);
  gst_structure_free(stats);
}

/* ------------------------------------------------------------- URI ---- */

TEST(P2pspSrcUri, Protocols) {
  ElementPtr src = MakeSrc();
  GstURIHandler* handler = GST_URI_HANDLER(src.get());
  EXPECT_EQ(gst_uri_handler_get_uri_type(handler), GST_URI_SRC);
  const gchar* const* protocols = gst_uri_handler_get_protocols(handler);
  ASSERT_NE(protocols, nullptr);
  EXPECT_STREQ(protocols[0], "p2psp");
  EXPECT_EQ(protocols[1], nullptr);
  EXPECT_TRUE(gst_uri_protocol_is_supported(GST_URI_SRC, "p2psp"));
}

TEST(P2pspSrcUri, MakeFromUriPicksTheElement) {
  GError* error = nullptr;
  ElementPtr e(gst_element_make_from_uri(
      GST_URI_SRC, "p2psp://127.0.0.1:4999?latency=123", nullptr, &error));
  ASSERT_TRUE(e) << (error ? error->message : "");
  EXPECT_STREQ(GST_OBJECT_NAME(gst_element_get_factory(e.get())), "p2pspsrc");
  guint latency = 0;
  gint port = 0;
  g_object_get(e.get(), "latency", &latency, "port", &port, nullptr);
  EXPECT_EQ(latency, 123u);
  EXPECT_EQ(port, 4999);
}

TEST(P2pspSrcUri, RoundTripIPv4) {
  ElementPtr src = MakeSrc();
  GstURIHandler* handler = GST_URI_HANDLER(src.get());
  ASSERT_TRUE(
      gst_uri_handler_set_uri(handler, "p2psp://10.1.2.3:5000", nullptr));
  gchar* host = nullptr;
  gint port = 0;
  g_object_get(src.get(), "host", &host, "port", &port, nullptr);
  EXPECT_STREQ(host, "10.1.2.3");
  EXPECT_EQ(port, 5000);
  g_free(host);
  gchar* uri = gst_uri_handler_get_uri(handler);
  EXPECT_STREQ(uri, "p2psp://10.1.2.3:5000");
  g_free(uri);
}

TEST(P2pspSrcUri, RoundTripIPv6) {
  ElementPtr src = MakeSrc();
  GstURIHandler* handler = GST_URI_HANDLER(src.get());
  ASSERT_TRUE(gst_uri_handler_set_uri(handler, "p2psp://[::1]:4553", nullptr));
  gchar* host = nullptr;
  g_object_get(src.get(), "host", &host, nullptr);
  EXPECT_STREQ(host, "::1");
  g_free(host);
  gchar* uri = gst_uri_handler_get_uri(handler);
  EXPECT_STREQ(uri, "p2psp://[::1]:4553");
  // And back in: the same settings.
  ElementPtr again = MakeSrc();
  ASSERT_TRUE(
      gst_uri_handler_set_uri(GST_URI_HANDLER(again.get()), uri, nullptr));
  gint port = 0;
  g_object_get(again.get(), "port", &port, nullptr);
  EXPECT_EQ(port, 4553);
  g_free(uri);
}

TEST(P2pspSrcUri, HostPropertyChangesUri) {
  ElementPtr src = MakeSrc();
  g_object_set(src.get(), "host", "fe80::2", "port", 7000, nullptr);
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src.get()));
  EXPECT_STREQ(uri, "p2psp://[fe80::2]:7000");
  g_free(uri);
}

TEST(P2pspSrcUri, QueryKeysSetProperties) {
  ElementPtr src = MakeSrc();
  const char* text = "p2psp://127.0.0.1:4552?latency=300&timeout=5";
  g_object_set(src.get(), "uri", text, nullptr);
  guint latency = 0, timeout = 0;
  g_object_get(src.get(), "latency", &latency, "timeout", &timeout, nullptr);
  EXPECT_EQ(latency, 300u);
  EXPECT_EQ(timeout, 5u);
  gchar* uri = nullptr;
  g_object_get(src.get(), "uri", &uri, nullptr);
  EXPECT_STREQ(uri, text);
  g_free(uri);
}

TEST(P2pspSrcUri, MissingPortMeansDefault) {
  ElementPtr src = MakeSrc();
  g_object_set(src.get(), "port", 9, nullptr);
  ASSERT_TRUE(gst_uri_handler_set_uri(GST_URI_HANDLER(src.get()),
                                      "p2psp://example.org", nullptr));
  gint port = 0;
  g_object_get(src.get(), "port", &port, nullptr);
  EXPECT_EQ(port, 4552);
}

// p2psp://tracker[:port]/channel: a channel through a tracker (its HTTP
// port, 8000 unless given); no path names a splitter, as before.
TEST(P2pspSrcUri, ChannelUris) {
  ElementPtr src = MakeSrc();
  ASSERT_TRUE(gst_uri_handler_set_uri(
      GST_URI_HANDLER(src.get()), "p2psp://tracker.example/live.ogg", nullptr));
  gchar* channel = nullptr;
  gint port = 0;
  g_object_get(src.get(), "channel", &channel, "port", &port, nullptr);
  EXPECT_STREQ(channel, "live.ogg");
  EXPECT_EQ(port, 8000);
  g_free(channel);
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src.get()));
  EXPECT_STREQ(uri, "p2psp://tracker.example:8000/live.ogg");
  g_free(uri);

  ASSERT_TRUE(gst_uri_handler_set_uri(GST_URI_HANDLER(src.get()),
                                      "p2psp://10.0.0.1:9000/radio?latency=300",
                                      nullptr));
  g_object_get(src.get(), "channel", &channel, "port", &port, nullptr);
  EXPECT_STREQ(channel, "radio");
  EXPECT_EQ(port, 9000);
  g_free(channel);

  ASSERT_TRUE(gst_uri_handler_set_uri(GST_URI_HANDLER(src.get()),
                                      "p2psp://10.0.0.1:4552", nullptr));
  g_object_get(src.get(), "channel", &channel, nullptr);
  EXPECT_EQ(channel, nullptr);
}

TEST(P2pspSrcUri, BadUrisRejected) {
  ElementPtr src = MakeSrc();
  g_object_set(src.get(), "uri", "p2psp://10.0.0.1:1234?latency=77", nullptr);
  for (const char* bad :
       {"http://10.0.0.2:1234", "p2psp://", "p2psp:///path",
        "p2psp://host:99999", "p2psp://host:12x", "p2psp://host:1/a/b",
        "p2psp://host:1/.hidden", "p2psp://host:1/bad%20name",
        "p2psp://host:1/x?channel=y", "p2psp://user@host:1",
        "p2psp://host:1?bogus=1", "p2psp://host:1?latency=abc",
        "p2psp://host:1?latency=999999999", "p2psp://host:1?stats=1",
        "p2psp://host:1?port=2", "not a uri"}) {
    GError* error = nullptr;
    EXPECT_FALSE(
        gst_uri_handler_set_uri(GST_URI_HANDLER(src.get()), bad, &error))
        << bad;
    // A foreign scheme is refused by GstURIHandler before the element.
    EXPECT_TRUE(g_error_matches(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI) ||
                g_error_matches(error, GST_URI_ERROR,
                                GST_URI_ERROR_UNSUPPORTED_PROTOCOL))
        << bad;
    g_clear_error(&error);
  }
  // Nothing half-applied.
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src.get()));
  EXPECT_STREQ(uri, "p2psp://10.0.0.1:1234?latency=77");
  g_free(uri);
}

/* --------------------------------------------------- states, errors ---- */

TEST(P2pspSrcStates, CyclesWithoutSplitterDoNotBlock) {
  ElementPtr src = MakeSrc();
  g_object_set(src.get(), "port", ClosedPort(), nullptr);
  const auto start = Clock::now();
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(gst_element_set_state(src.get(), GST_STATE_READY),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_EQ(gst_element_set_state(src.get(), GST_STATE_PAUSED),
              GST_STATE_CHANGE_NO_PREROLL);
    EXPECT_EQ(gst_element_set_state(src.get(), GST_STATE_READY),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_EQ(gst_element_set_state(src.get(), GST_STATE_NULL),
              GST_STATE_CHANGE_SUCCESS);
  }
  EXPECT_LT(SecondsSince(start), 1.0);
}

TEST(P2pspSrcStates, LatencyQuery) {
  ElementPtr src = MakeSrc();
  g_object_set(src.get(), "latency", 350u, nullptr);
  ASSERT_NE(gst_element_set_state(src.get(), GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  GstQuery* query = gst_query_new_latency();
  ASSERT_TRUE(gst_element_query(src.get(), query));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(query, &live, &min, &max);
  EXPECT_TRUE(live);
  // latency, plus up to one round of the automatic io-interval (20 ms).
  EXPECT_EQ(min, 370 * GST_MSECOND);
  EXPECT_EQ(max, GST_CLOCK_TIME_NONE) << "downstream may add latency freely";
  gst_query_unref(query);
  gst_element_set_state(src.get(), GST_STATE_NULL);
}

TEST(P2pspSrcErrors, UnreachableSplitterIsOpenReadError) {
  const int port = ClosedPort();
  ElementPtr pipeline =
      Launch("p2pspsrc name=src timeout=3 host=127.0.0.1 port=" +
             std::to_string(port) + " ! fakesink");
  const auto start = Clock::now();
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  MessagePtr error = WaitForError(pipeline.get(), 5 * GST_SECOND);
  ASSERT_TRUE(error) << "no error within the timeout";
  EXPECT_LT(SecondsSince(start), 4.0);
  GError* gerror = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(error.get(), &gerror, &debug);
  EXPECT_TRUE(
      g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ))
      << gerror->message;
  const std::string where = "127.0.0.1:" + std::to_string(port);
  EXPECT_NE(std::string(gerror->message).find(where), std::string::npos)
      << gerror->message;
  EXPECT_EQ(GST_MESSAGE_SRC(error.get()),
            GST_OBJECT(ByName(pipeline.get(), "src")));
  g_error_free(gerror);
  g_free(debug);
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
}

TEST(P2pspSrcErrors, UnresolvableHostIsNotFound) {
  ElementPtr pipeline =
      Launch("p2pspsrc host=no-such-host.invalid timeout=3 ! fakesink");
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  MessagePtr error = WaitForError(pipeline.get(), 15 * GST_SECOND);
  ASSERT_TRUE(error);
  GError* gerror = nullptr;
  gst_message_parse_error(error.get(), &gerror, nullptr);
  EXPECT_TRUE(
      g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND))
      << gerror->message;
  EXPECT_NE(std::string(gerror->message).find("no-such-host.invalid"),
            std::string::npos);
  g_error_free(gerror);
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
}

// A "splitter" that accepts the connection and never answers.
class SilentListener {
 public:
  SilentListener() {
    socket_ = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                           G_SOCKET_PROTOCOL_TCP, nullptr);
    GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress* addr = g_inet_socket_address_new(lo, 0);
    g_socket_bind(socket_, addr, TRUE, nullptr);
    g_socket_listen(socket_, nullptr);
    GSocketAddress* local = g_socket_get_local_address(socket_, nullptr);
    port_ = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    g_object_unref(local);
    g_object_unref(addr);
    g_object_unref(lo);
  }
  ~SilentListener() {
    g_socket_close(socket_, nullptr);
    g_object_unref(socket_);
  }
  int port() const { return port_; }
  GSocket* socket() const { return socket_; }

 private:
  GSocket* socket_;
  int port_ = 0;
};

TEST(P2pspSrcErrors, SilentSplitterTimesOut) {
  SilentListener listener;
  ElementPtr pipeline =
      Launch("p2pspsrc timeout=1 port=" + std::to_string(listener.port()) +
             " ! fakesink");
  const auto start = Clock::now();
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  MessagePtr error = WaitForError(pipeline.get(), 5 * GST_SECOND);
  ASSERT_TRUE(error);
  EXPECT_GT(SecondsSince(start), 0.9);
  GError* gerror = nullptr;
  gst_message_parse_error(error.get(), &gerror, nullptr);
  EXPECT_TRUE(
      g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ))
      << gerror->message;
  EXPECT_NE(std::string(gerror->message).find("Timed out"), std::string::npos)
      << gerror->message;
  g_error_free(gerror);
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
}

// A "splitter" that accepts one connection and hangs up at once.
TEST(P2pspSrcErrors, SplitterHangingUpIsReadError) {
  SilentListener listener;
  std::thread hang_up([&] {
    GSocket* conn = g_socket_accept(listener.socket(), nullptr, nullptr);
    if (conn != nullptr) {
      g_socket_close(conn, nullptr);
      g_object_unref(conn);
    }
  });
  const std::string where = "127.0.0.1:" + std::to_string(listener.port());
  ElementPtr pipeline =
      Launch("p2pspsrc timeout=5 port=" + std::to_string(listener.port()) +
             " ! fakesink");
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  hang_up.join();
  MessagePtr error = WaitForError(pipeline.get(), 3 * GST_SECOND);
  ASSERT_TRUE(error);
  GError* gerror = nullptr;
  gst_message_parse_error(error.get(), &gerror, nullptr);
  EXPECT_TRUE(
      g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ))
      << gerror->message;
  EXPECT_NE(std::string(gerror->message).find("Lost the connection"),
            std::string::npos)
      << gerror->message;
  EXPECT_NE(std::string(gerror->message).find(where), std::string::npos)
      << gerror->message;
  g_error_free(gerror);
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
}

TEST(P2pspSrcStates, FlushWhileWaitingReturnsPromptly) {
  SilentListener listener;
  ElementPtr pipeline = Launch("p2pspsrc name=src timeout=60 port=" +
                               std::to_string(listener.port()) + " ! fakesink");
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  GstElement* src = ByName(pipeline.get(), "src");
  GstStructure* stats = GetStats(src);
  ASSERT_NE(stats, nullptr);
  EXPECT_STREQ(gst_structure_get_string(stats, "state"), "joining");
  gst_structure_free(stats);

  // The URI cannot change under a running element.
  GError* error = nullptr;
  EXPECT_FALSE(gst_uri_handler_set_uri(GST_URI_HANDLER(src),
                                       "p2psp://127.0.0.1:1", &error));
  EXPECT_TRUE(g_error_matches(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE));
  g_clear_error(&error);

  const auto start = Clock::now();
  EXPECT_EQ(gst_element_set_state(pipeline.get(), GST_STATE_NULL),
            GST_STATE_CHANGE_SUCCESS);
  EXPECT_LT(SecondsSince(start), 0.5);
  EXPECT_FALSE(WaitForError(pipeline.get(), 0));
}

/* ------------------------------------------------------------ team ---- */

struct TestBuffer {
  std::vector<uint8_t> data;
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime dts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = GST_CLOCK_TIME_NONE;
  guint flags = 0;  // GstBufferFlags
};

// The first 4 bytes are the buffer's index, the rest random.
TestBuffer MakeBuffer(std::mt19937* rng, uint32_t index, bool keyframe) {
  TestBuffer b;
  std::uniform_int_distribution<int> size(4, 3000);
  b.data.resize(size(*rng));
  for (auto& byte : b.data) byte = static_cast<uint8_t>((*rng)());
  std::memcpy(b.data.data(), &index, sizeof index);
  b.pts = GST_SECOND + index * 10 * GST_MSECOND;
  b.dts = b.pts - 5 * GST_MSECOND;
  b.duration = 10 * GST_MSECOND;
  if (!keyframe) b.flags |= GST_BUFFER_FLAG_DELTA_UNIT;
  return b;
}

GstBuffer* ToGst(const TestBuffer& b) {
  GstBuffer* buffer = gst_buffer_new_memdup(b.data.data(), b.data.size());
  GST_BUFFER_PTS(buffer) = b.pts;
  GST_BUFFER_DTS(buffer) = b.dts;
  GST_BUFFER_DURATION(buffer) = b.duration;
  GST_BUFFER_FLAGS(buffer) = b.flags;
  return buffer;
}

TestBuffer FromGst(GstBuffer* buffer) {
  TestBuffer b;
  b.data.resize(gst_buffer_get_size(buffer));
  gst_buffer_extract(buffer, 0, b.data.data(), b.data.size());
  b.pts = GST_BUFFER_PTS(buffer);
  b.dts = GST_BUFFER_DTS(buffer);
  b.duration = GST_BUFFER_DURATION(buffer);
  b.flags = GST_BUFFER_FLAGS(buffer);
  return b;
}

uint32_t IndexOf(const TestBuffer& b) {
  uint32_t index = UINT32_MAX;
  if (b.data.size() >= sizeof index)
    std::memcpy(&index, b.data.data(), sizeof index);
  return index;
}

// appsrc ! p2pspsplittersink on 127.0.0.1, any port.
class TestSplitter {
 public:
  explicit TestSplitter(const char* caps, const std::string& options = "") {
    pipeline_ = Launch(
        "appsrc name=in is-live=true format=time ! "
        "p2pspsplittersink name=split host=127.0.0.1 port=0 sync=false " +
        options);
    appsrc_ = ByName(pipeline_.get(), "in");
    splitter_ = ByName(pipeline_.get(), "split");
    GstCaps* c = gst_caps_from_string(caps);
    g_object_set(appsrc_, "caps", c, nullptr);
    gst_caps_unref(c);
    gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING);
    g_object_get(splitter_, "current-port", &port_, nullptr);
  }
  ~TestSplitter() { Stop(); }

  int port() const { return port_; }
  GstElement* element() const { return splitter_; }
  guint num_peers() const {
    guint n = 0;
    g_object_get(splitter_, "num-peers", &n, nullptr);
    return n;
  }
  void SetCaps(const char* caps) {
    GstCaps* c = gst_caps_from_string(caps);
    g_object_set(appsrc_, "caps", c, nullptr);
    gst_caps_unref(c);
  }
  void Push(const TestBuffer& b) {
    GstBuffer* buffer = ToGst(b);
    GstFlowReturn ret = GST_FLOW_OK;
    g_signal_emit_by_name(appsrc_, "push-buffer", buffer, &ret);
    gst_buffer_unref(buffer);
    EXPECT_EQ(ret, GST_FLOW_OK);
  }
  void Stop() { gst_element_set_state(pipeline_.get(), GST_STATE_NULL); }
  GstElement* pipeline() const { return pipeline_.get(); }

 private:
  ElementPtr pipeline_;
  GstElement* appsrc_ = nullptr;
  GstElement* splitter_ = nullptr;
  int port_ = -1;
};

// p2pspsrc ! appsink, with counters of the neighbour signals.
class TestPeer {
 public:
  explicit TestPeer(int port, bool sync = false,
                    const std::string& options = "timeout=10") {
    pipeline_ = Launch(
        "p2pspsrc name=src host=127.0.0.1 port=" + std::to_string(port) + " " +
        options + " ! appsink name=out sync=" + (sync ? "true" : "false"));
    src_ = ByName(pipeline_.get(), "src");
    sink_ = ByName(pipeline_.get(), "out");
    g_signal_connect(src_, "peer-added", G_CALLBACK(OnPeerAdded), this);
    g_signal_connect(src_, "peer-removed", G_CALLBACK(OnPeerRemoved), this);
  }
  ~TestPeer() { gst_element_set_state(pipeline_.get(), GST_STATE_NULL); }

  void Start() { gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING); }
  GstElement* src() const { return src_; }
  GstElement* pipeline() const { return pipeline_.get(); }
  int added() const { return added_; }
  int removed() const { return removed_; }

  // The next buffer, or false on timeout/EOS.
  bool Pull(TestBuffer* out, GstCaps** caps = nullptr,
            GstClockTime timeout = kPullTimeout) {
    GstSample* sample = nullptr;
    g_signal_emit_by_name(sink_, "try-pull-sample", timeout, &sample);
    if (sample == nullptr) return false;
    *out = FromGst(gst_sample_get_buffer(sample));
    if (caps != nullptr) *caps = gst_caps_ref(gst_sample_get_caps(sample));
    gst_sample_unref(sample);
    return true;
  }
  bool eos() const {
    gboolean eos = FALSE;
    g_object_get(sink_, "eos", &eos, nullptr);
    return eos;
  }
  guint64 neighbours() const { return StatU64(src_, "neighbours"); }
  GstClockTime running_time() const {
    GstClock* clock = gst_element_get_clock(pipeline_.get());
    if (clock == nullptr) return GST_CLOCK_TIME_NONE;
    GstClockTime now = gst_clock_get_time(clock);
    gst_object_unref(clock);
    return now - gst_element_get_base_time(pipeline_.get());
  }

 private:
  static void OnPeerAdded(GstElement*, guint, const gchar*, TestPeer* self) {
    self->added_++;
  }
  static void OnPeerRemoved(GstElement*, guint, const gchar*, TestPeer* self) {
    self->removed_++;
  }
  ElementPtr pipeline_;
  GstElement* src_ = nullptr;
  GstElement* sink_ = nullptr;
  std::atomic<int> added_{0};
  std::atomic<int> removed_{0};
};

std::string ErrorsOf(GstElement* pipeline) {
  MessagePtr m = WaitForError(pipeline, 0);
  if (!m) {
    GstElement* src = ByName(pipeline, "src");
    GstStructure* stats = src ? GetStats(src) : nullptr;
    gchar* text = stats ? gst_structure_to_string(stats) : nullptr;
    std::string result = text ? text : "";
    g_free(text);
    if (stats) gst_structure_free(stats);
    return result;
  }
  GError* e = nullptr;
  gst_message_parse_error(m.get(), &e, nullptr);
  std::string text = e->message;
  g_error_free(e);
  return text;
}

// Starts `n` peers and waits until they all know each other.
std::vector<std::unique_ptr<TestPeer>> JoinTeam(
    TestSplitter* splitter, int n, const std::string& options = "timeout=10") {
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < n; i++) {
    peers.push_back(
        std::make_unique<TestPeer>(splitter->port(), false, options));
    peers.back()->Start();
  }
  const bool joined = WaitFor(
      [&] {
        if (splitter->num_peers() != static_cast<guint>(n)) return false;
        for (auto& p : peers)
          if (p->neighbours() != static_cast<guint64>(n - 1) ||
              p->added() != n - 1)
            return false;
        return true;
      },
      10);
  EXPECT_TRUE(joined) << "team of " << n
                      << " did not form: " << ErrorsOf(peers[0]->pipeline());
  return peers;
}

void PushPaced(TestSplitter* splitter, const std::vector<TestBuffer>& in) {
  for (const TestBuffer& b : in) {
    splitter->Push(b);
    // Loopback drops datagrams too when a burst overflows a socket buffer.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

constexpr guint kCheckedFlags =
    GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_GAP;

TEST(P2pspSrcTeam, EveryPeerGetsTheStreamInOrder) {
  TestSplitter splitter("application/x-p2psp-test");
  auto peers = JoinTeam(&splitter, 3);

  std::mt19937 rng(1234);
  std::vector<TestBuffer> in;
  for (uint32_t i = 0; i < 150; i++)
    in.push_back(MakeBuffer(&rng, i, i % 10 == 0 || rng() % 7 == 0));
  PushPaced(&splitter, in);

  for (size_t p = 0; p < peers.size(); p++) {
    TestBuffer out;
    GstCaps* caps = nullptr;
    GstClockTimeDiff offset = 0;
    for (size_t i = 0; i < in.size(); i++) {
      ASSERT_TRUE(peers[p]->Pull(&out, i == 0 ? &caps : nullptr))
          << "peer " << p << " buffer " << i << " "
          << ErrorsOf(peers[p]->pipeline());
      ASSERT_EQ(IndexOf(out), i) << "peer " << p;
      EXPECT_EQ(out.data, in[i].data) << "peer " << p << " buffer " << i;
      EXPECT_EQ(out.flags & kCheckedFlags, in[i].flags & kCheckedFlags)
          << "peer " << p << " buffer " << i;
      EXPECT_EQ(out.duration, in[i].duration);
      if (i == 0) {
        EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_DISCONT);
        ASSERT_NE(caps, nullptr);
        EXPECT_TRUE(gst_structure_has_name(gst_caps_get_structure(caps, 0),
                                           "application/x-p2psp-test"));
        gst_caps_unref(caps);
      }
      // The splitter's timeline, moved onto the peer's clock.
      ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(out.pts));
      if (i == 0) offset = GST_CLOCK_DIFF(in[0].pts, out.pts);
      EXPECT_EQ(GST_CLOCK_DIFF(in[i].pts, out.pts), offset) << i;
      EXPECT_EQ(GST_CLOCK_DIFF(in[i].dts, out.dts), offset) << i;
    }
  }

  for (auto& p : peers) {
    GstStructure* stats = GetStats(p->src());
    ASSERT_NE(stats, nullptr);
    EXPECT_STREQ(gst_structure_get_string(stats, "state"), "member");
    guint id = 0;
    EXPECT_TRUE(gst_structure_get_uint(stats, "peer-id", &id));
    guint64 from_splitter = 0, from_peers = 0, played = 0, down = 0, up = 0;
    gst_structure_get_uint64(stats, "chunks-from-splitter", &from_splitter);
    gst_structure_get_uint64(stats, "chunks-from-peers", &from_peers);
    gst_structure_get_uint64(stats, "played", &played);
    gst_structure_get_uint64(stats, "bytes-down", &down);
    gst_structure_get_uint64(stats, "bytes-up", &up);
    EXPECT_GT(from_splitter, 0u);
    EXPECT_GT(from_peers, 0u);
    EXPECT_EQ(played, from_splitter + from_peers);
    EXPECT_GT(down, 0u);
    EXPECT_GT(up, 0u);
    const GValue* list = gst_structure_get_value(stats, "neighbours-list");
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(gst_value_array_get_size(list), 2u);
    const GstStructure* n =
        gst_value_get_structure(gst_value_array_get_value(list, 0));
    guint n_id = 0;
    guint64 received = 0;
    EXPECT_TRUE(gst_structure_get_uint(n, "id", &n_id));
    EXPECT_NE(n_id, id);
    EXPECT_NE(gst_structure_get_string(n, "endpoint"), nullptr);
    EXPECT_TRUE(gst_structure_has_field(n, "debt"));
    EXPECT_TRUE(gst_structure_has_field(n, "chunks-sent"));
    EXPECT_TRUE(gst_structure_get_uint64(n, "chunks-received", &received));
    EXPECT_GT(received, 0u);
    gst_structure_free(stats);
  }

  // The splitter leaving ends the stream at every peer.
  splitter.Stop();
  for (size_t p = 0; p < peers.size(); p++) {
    EXPECT_TRUE(WaitFor([&] { return peers[p]->eos(); }, 5))
        << "peer " << p << " " << ErrorsOf(peers[p]->pipeline());
    EXPECT_FALSE(WaitForError(peers[p]->pipeline(), 0)) << "peer " << p;
  }
}

constexpr const char* kHeaderCaps =
    "application/x-p2psp-test, streamheader=(buffer)< 48454144455231, "
    "4845414445523232 >";

std::vector<std::vector<uint8_t>> HeaderBytes() {
  return {{'H', 'E', 'A', 'D', 'E', 'R', '1'},
          {'H', 'E', 'A', 'D', 'E', 'R', '2', '2'}};
}

// The streamheader buffers also travel in-stream, as muxers send them.
std::vector<TestBuffer> InStreamHeaders() {
  std::vector<TestBuffer> headers;
  for (const auto& bytes : HeaderBytes()) {
    TestBuffer h;
    h.data = bytes;
    h.flags = GST_BUFFER_FLAG_HEADER;
    headers.push_back(h);
  }
  return headers;
}

void ExpectStreamheaderFirst(TestPeer* peer) {
  TestBuffer out;
  const auto headers = HeaderBytes();
  for (size_t i = 0; i < headers.size(); i++) {
    ASSERT_TRUE(peer->Pull(&out)) << ErrorsOf(peer->pipeline());
    EXPECT_EQ(out.data, headers[i]) << i;
    EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_HEADER) << i;
    EXPECT_EQ((out.flags & GST_BUFFER_FLAG_DISCONT) != 0, i == 0) << i;
  }
}

TEST(P2pspSrcTeam, StreamheaderFirstAndNotDuplicated) {
  TestSplitter splitter(kHeaderCaps);
  auto peers = JoinTeam(&splitter, 2);
  std::mt19937 rng(99);
  std::vector<TestBuffer> in = InStreamHeaders();
  for (uint32_t i = 0; i < 60; i++)
    in.push_back(MakeBuffer(&rng, i, i % 20 == 0));
  PushPaced(&splitter, in);

  for (auto& peer : peers) {
    ExpectStreamheaderFirst(peer.get());
    TestBuffer out;
    for (uint32_t i = 0; i < 60; i++) {
      ASSERT_TRUE(peer->Pull(&out)) << i;
      EXPECT_FALSE(out.flags & GST_BUFFER_FLAG_HEADER) << i;
      EXPECT_EQ(IndexOf(out), i);
      EXPECT_EQ(out.data, in[i + 2].data);
    }
    // Nothing else: the in-stream headers were not passed on.
    EXPECT_FALSE(peer->Pull(&out, nullptr, 300 * GST_MSECOND));
  }
}

// mpegtsmux flags keyframe packets HEADER too: only copies of the caps'
// streamheader are redundant.
TEST(P2pspSrcTeam, OtherHeaderBuffersPassThrough) {
  TestSplitter splitter(kHeaderCaps);
  auto peers = JoinTeam(&splitter, 1);
  std::mt19937 rng(11);
  std::vector<TestBuffer> in = InStreamHeaders();
  for (uint32_t i = 0; i < 10; i++) {
    in.push_back(MakeBuffer(&rng, i, i % 5 == 0));
    if (i == 3 || i == 5) in.back().flags |= GST_BUFFER_FLAG_HEADER;
  }
  PushPaced(&splitter, in);

  ExpectStreamheaderFirst(peers[0].get());
  TestBuffer out;
  for (uint32_t i = 0; i < 10; i++) {
    ASSERT_TRUE(peers[0]->Pull(&out)) << i;
    EXPECT_EQ(IndexOf(out), i);
    EXPECT_EQ((out.flags & GST_BUFFER_FLAG_HEADER) != 0, i == 3 || i == 5) << i;
    EXPECT_EQ(out.data, in[i + 2].data) << i;
  }
}

// join_burst: the late peer asks for the stream from the latest keyframe;
// the splitter is held while it joins, so that keyframe is 125 (else the
// next, 150).
void LatePeerStartsAtKeyframe(bool join_burst) {
  TestSplitter splitter(kHeaderCaps);
  auto peers = JoinTeam(&splitter, 2);
  std::mt19937 rng(7);
  for (const TestBuffer& h : InStreamHeaders()) splitter.Push(h);

  std::vector<TestBuffer> in;
  for (uint32_t i = 0; i < 400; i++)
    in.push_back(MakeBuffer(&rng, i, i % 25 == 0));
  std::unique_ptr<TestPeer> late;
  for (uint32_t i = 0; i < in.size(); i++) {
    if (i == 130) {
      late = std::make_unique<TestPeer>(splitter.port(), false,
                                        std::string("timeout=10 join-burst=") +
                                            (join_burst ? "true" : "false"));
      late->Start();
      ASSERT_TRUE(WaitFor([&] { return late->neighbours() == 2u; }, 5));
    }
    splitter.Push(in[i]);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(late->neighbours(), 2u) << ErrorsOf(late->pipeline());

  ExpectStreamheaderFirst(late.get());
  TestBuffer out;
  ASSERT_TRUE(late->Pull(&out)) << ErrorsOf(late->pipeline());
  const uint32_t first = IndexOf(out);
  ASSERT_LT(first, in.size());
  EXPECT_EQ(first, join_burst ? 125u : 150u);
  EXPECT_EQ(first % 25, 0u) << "not a keyframe";
  EXPECT_FALSE(out.flags & GST_BUFFER_FLAG_DELTA_UNIT);
  EXPECT_EQ(out.data, in[first].data);
  // From there on, everything in order.
  for (uint32_t i = first + 1; i < in.size(); i++) {
    ASSERT_TRUE(late->Pull(&out)) << i << " " << ErrorsOf(late->pipeline());
    ASSERT_EQ(IndexOf(out), i);
    EXPECT_EQ(out.data, in[i].data);
  }
  // The early peers saw the newcomer.
  for (auto& p : peers) EXPECT_EQ(p->added(), 2);
}

TEST(P2pspSrcTeam, LatePeerStartsAtNextKeyframeWithoutBurst) {
  LatePeerStartsAtKeyframe(false);
}

TEST(P2pspSrcTeam, LatePeerStartsAtLatestKeyframeWithBurst) {
  LatePeerStartsAtKeyframe(true);
}

TEST(P2pspSrcTeam, FlushWhileJoinedReturnsPromptly) {
  TestSplitter splitter("application/x-p2psp-test");
  auto peers = JoinTeam(&splitter, 1);
  const auto start = Clock::now();
  peers[0].reset();  // set_state(NULL) while create() waits for data
  EXPECT_LT(SecondsSince(start), 0.5);
  // It said goodbye: the splitter drops it without waiting for a timeout.
  EXPECT_TRUE(WaitFor([&] { return splitter.num_peers() == 0; }, 2));
}

TEST(P2pspSrcTeam, NeighbourLeavingIsSignalled) {
  TestSplitter splitter("application/x-p2psp-test");
  auto peers = JoinTeam(&splitter, 2);
  peers[1].reset();
  EXPECT_TRUE(WaitFor([&] { return peers[0]->removed() == 1; }, 3));
  EXPECT_EQ(peers[0]->neighbours(), 0u);
}

TEST(P2pspSrcTeam, TimestampsPlayInRealTimeWithSync) {
  TestSplitter splitter("application/x-p2psp-test");
  TestPeer peer(splitter.port(), /*sync=*/true);
  peer.Start();
  ASSERT_TRUE(WaitFor([&] { return splitter.num_peers() == 1; }, 5));
  std::mt19937 rng(5);
  std::thread pusher([&] {
    for (uint32_t i = 0; i < 60; i++) {
      splitter.Push(MakeBuffer(&rng, i, i % 10 == 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  // The sink renders each buffer `latency` (200 ms) after it was due: a
  // smaller margin means the mapping is in the past (late, choppy), a larger
  // one that buffers pile up.
  TestBuffer out;
  for (uint32_t i = 0; i < 60; i++) {
    ASSERT_TRUE(peer.Pull(&out)) << i << " " << ErrorsOf(peer.pipeline());
    const GstClockTimeDiff margin =
        GST_CLOCK_DIFF(out.pts, peer.running_time());
    EXPECT_GE(margin, 170 * GST_MSECOND) << i;
    EXPECT_LE(margin, 450 * GST_MSECOND) << i;
  }
  pusher.join();
}

TEST(P2pspSrcTeam, NewStreamheaderFollowsCapsChange) {
  TestSplitter splitter(kHeaderCaps);
  auto peers = JoinTeam(&splitter, 1);
  TestPeer* peer = peers[0].get();
  std::mt19937 rng(3);
  for (uint32_t i = 0; i < 5; i++) splitter.Push(MakeBuffer(&rng, i, i == 0));
  splitter.SetCaps("application/x-p2psp-test, streamheader=(buffer)< 4e4557 >");
  for (uint32_t i = 5; i < 10; i++) splitter.Push(MakeBuffer(&rng, i, i == 5));

  ExpectStreamheaderFirst(peer);
  TestBuffer out;
  for (uint32_t i = 0; i < 5; i++) {
    ASSERT_TRUE(peer->Pull(&out)) << i;
    EXPECT_EQ(IndexOf(out), i);
  }
  GstCaps* caps = nullptr;
  ASSERT_TRUE(peer->Pull(&out, &caps));
  EXPECT_EQ(out.data, std::vector<uint8_t>({'N', 'E', 'W'}));
  EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_HEADER);
  const GValue* header =
      gst_structure_get_value(gst_caps_get_structure(caps, 0), "streamheader");
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(gst_value_array_get_size(header), 1u);
  gst_caps_unref(caps);
  for (uint32_t i = 5; i < 10; i++) {
    ASSERT_TRUE(peer->Pull(&out)) << i;
    EXPECT_EQ(IndexOf(out), i);
  }
}

TEST(P2pspSrcTeam, RejectedJoinIsRemovedError) {
  TestSplitter splitter("application/x-p2psp-test", "max-peers=1");
  auto peers = JoinTeam(&splitter, 1);
  TestPeer extra(splitter.port());
  extra.Start();
  MessagePtr error = WaitForError(extra.pipeline(), 5 * GST_SECOND);
  ASSERT_TRUE(error);
  GError* gerror = nullptr;
  gst_message_parse_error(error.get(), &gerror, nullptr);
  EXPECT_TRUE(
      g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ))
      << gerror->message;
  EXPECT_NE(std::string(gerror->message).find("Removed from the P2PSP team"),
            std::string::npos)
      << gerror->message;
  g_error_free(gerror);
  EXPECT_FALSE(WaitForError(peers[0]->pipeline(), 0));
}

/* ---------------------------------------------------- team health ---- */

TEST(P2pspSrcHealth, PropertyDefaultsAndUri) {
  ElementPtr src = MakeSrc();
  gboolean monitor = TRUE, auto_reconnect = FALSE;
  g_object_get(src.get(), "monitor", &monitor, "auto-reconnect",
               &auto_reconnect, nullptr);
  EXPECT_FALSE(monitor);
  EXPECT_TRUE(auto_reconnect);
  GObjectClass* klass = G_OBJECT_GET_CLASS(src.get());
  for (const char* name : {"monitor", "auto-reconnect"}) {
    GParamSpec* p = g_object_class_find_property(klass, name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->value_type, G_TYPE_BOOLEAN) << name;
    EXPECT_TRUE(p->flags & GST_PARAM_MUTABLE_READY) << name;
  }
  // Both travel in the URI, and only when not the default.
  ASSERT_TRUE(gst_uri_handler_set_uri(
      GST_URI_HANDLER(src.get()),
      "p2psp://10.0.0.1:1234?monitor=true&auto-reconnect=false", nullptr));
  g_object_get(src.get(), "monitor", &monitor, "auto-reconnect",
               &auto_reconnect, nullptr);
  EXPECT_TRUE(monitor);
  EXPECT_FALSE(auto_reconnect);
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src.get()));
  EXPECT_STREQ(uri, "p2psp://10.0.0.1:1234?monitor=true&auto-reconnect=false");
  g_free(uri);
}

TEST(P2pspSrcHealth, StatsHaveTheHealthCounters) {
  ElementPtr src = MakeSrc();
  GstStructure* stats = GetStats(src.get());
  ASSERT_NE(stats, nullptr);
  for (const char* field :
       {"heartbeats-sent", "control-bytes-up", "nacks-sent",
        "nacks-to-splitter", "recovered", "lost-reports-sent",
        "retransmits-sent", "retransmits-limited", "relayed", "requests-sent",
        "prunes-sent", "relays-served"}) {
    guint64 v = 1;
    EXPECT_TRUE(gst_structure_get_uint64(stats, field, &v)) << field;
    EXPECT_EQ(v, 0u) << field;
  }
  gboolean monitor = TRUE;
  guint reconnects = 1;
  EXPECT_TRUE(gst_structure_get_boolean(stats, "monitor", &monitor));
  EXPECT_FALSE(monitor);
  EXPECT_TRUE(gst_structure_get_uint(stats, "reconnects", &reconnects));
  EXPECT_EQ(reconnects, 0u);
  gst_structure_free(stats);
}

// Paths (docs/protocol.md 3.2, 3.3): every counter is there, at 0, before
// joining.
TEST(P2pspSrcHealth, StatsHaveThePathCounters) {
  ElementPtr src = MakeSrc();
  GstStructure* stats = GetStats(src.get());
  ASSERT_NE(stats, nullptr);
  for (const char* field :
       {"probes-sent", "endpoints-moved", "lan-neighbours", "paths-direct",
        "paths-predicted", "paths-lan", "paths-relayed", "paths-splitter",
        "predict-probes-sent", "predicted-neighbours"}) {
    guint64 v = 1;
    EXPECT_TRUE(gst_structure_get_uint64(stats, field, &v)) << field;
    EXPECT_EQ(v, 0u) << field;
  }
  gst_structure_free(stats);
}

// monitor=true reaches the splitter (JOIN flag) and comes back in both
// elements' stats; heartbeats flow.
TEST(P2pspSrcHealth, MonitorPropertyMakesAMonitor) {
  TestSplitter splitter("application/x-p2psp-test");
  TestPeer peer(splitter.port(), false, "timeout=10 monitor=true");
  peer.Start();
  ASSERT_TRUE(WaitFor(
      [&] {
        GstStructure* st = GetStats(peer.src());
        gboolean monitor = FALSE;
        gst_structure_get_boolean(st, "monitor", &monitor);
        gst_structure_free(st);
        // ROLE comes before TEAM: wait for the splitter's side too.
        return monitor != FALSE && splitter.num_peers() == 1;
      },
      5))
      << ErrorsOf(peer.pipeline());
  GstStructure* st = GetStats(splitter.element());
  const GValue* peers = gst_structure_get_value(st, "peers");
  ASSERT_EQ(gst_value_array_get_size(peers), 1u);
  gboolean monitor = FALSE;
  gst_structure_get_boolean(
      gst_value_get_structure(gst_value_array_get_value(peers, 0)), "monitor",
      &monitor);
  EXPECT_TRUE(monitor);
  gst_structure_free(st);
  EXPECT_TRUE(
      WaitFor([&] { return StatU64(peer.src(), "heartbeats-sent") > 0; }, 2));
}

// Collects a pipeline's element, warning and error messages.
class BusLog {
 public:
  explicit BusLog(GstElement* pipeline) : bus_(gst_element_get_bus(pipeline)) {}
  ~BusLog() {
    for (Entry& e : entries_)
      if (e.s) gst_structure_free(e.s);
    gst_object_unref(bus_);
  }
  struct Entry {
    GstMessageType type;
    std::string name;  // element message name, or the error/warning text
    GstStructure* s = nullptr;
    GError* error = nullptr;
  };
  // Index of the first entry at or after `from` of that type whose name
  // contains `name`, waiting up to `seconds`; -1 if none came.
  int WaitFor(GstMessageType type, const std::string& name, double seconds,
              size_t from = 0) {
    const auto start = Clock::now();
    for (;;) {
      for (size_t i = from; i < entries_.size(); i++)
        if (entries_[i].type == type &&
            entries_[i].name.find(name) != std::string::npos)
          return static_cast<int>(i);
      const double left = seconds - SecondsSince(start);
      if (left < 0) return -1;
      Pop(static_cast<GstClockTime>(left * GST_SECOND));
    }
  }
  int Count(GstMessageType type, const std::string& name) {
    Pop(0);
    int n = 0;
    for (const Entry& e : entries_)
      n += e.type == type && e.name.find(name) != std::string::npos;
    return n;
  }
  const Entry& at(int i) const { return entries_[i]; }
  size_t size() const { return entries_.size(); }

 private:
  void Pop(GstClockTime timeout) {
    const auto types = static_cast<GstMessageType>(
        GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING | GST_MESSAGE_ERROR);
    GstMessage* m = gst_bus_timed_pop_filtered(bus_, timeout, types);
    while (m != nullptr) {
      Entry e;
      e.type = GST_MESSAGE_TYPE(m);
      if (e.type == GST_MESSAGE_ELEMENT) {
        e.s = gst_structure_copy(gst_message_get_structure(m));
        e.name = gst_structure_get_name(e.s);
      } else {
        GError* error = nullptr;
        if (e.type == GST_MESSAGE_ERROR)
          gst_message_parse_error(m, &error, nullptr);
        else
          gst_message_parse_warning(m, &error, nullptr);
        e.name = error->message;
        e.s = gst_structure_new("error", "domain", G_TYPE_UINT,
                                (guint)error->domain, "code", G_TYPE_INT,
                                error->code, nullptr);
        g_error_free(error);
      }
      gst_message_unref(m);
      entries_.push_back(e);
      m = gst_bus_pop_filtered(bus_, types);
    }
  }
  GstBus* bus_;
  std::vector<Entry> entries_;
};

// A splitter in a process of its own (gst-launch-1.0), so that it can die
// like a crashed or killed one: no shutdown notice. Live raw frames, sent
// with caps whose streamheader is the same in every run: a restarted stream
// has the very same caps, and the peer must send the header again anyway.
constexpr const char* kChildCaps =
    "application/x-p2psp-test,streamheader=(buffer)<48454144>";

class ChildSplitter {
 public:
  explicit ChildSplitter(int port) {
    const std::string port_arg = "port=" + std::to_string(port);
    const std::string caps_arg = std::string("caps=") + kChildCaps;
    const char* argv[] = {"gst-launch-1.0",
                          "-q",
                          "videotestsrc",
                          "is-live=true",
                          "!",
                          "video/x-raw,format=GRAY8,width=64,height=64,"
                          "framerate=25/1",
                          "!",
                          "capssetter",
                          "join=false",
                          "replace=true",
                          caps_arg.c_str(),
                          "!",
                          "p2pspsplittersink",
                          "host=127.0.0.1",
                          port_arg.c_str(),
                          nullptr};
    GError* error = nullptr;
    if (!g_spawn_async(nullptr, const_cast<gchar**>(argv), nullptr,
                       static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH |
                                                G_SPAWN_DO_NOT_REAP_CHILD),
                       nullptr, nullptr, &pid_, &error)) {
      ADD_FAILURE() << "gst-launch-1.0: " << error->message;
      g_error_free(error);
      pid_ = 0;
      return;
    }
    // Ready when it accepts a connection (which it then drops as garbage).
    listening_ = WaitFor([&] { return Accepts(port); }, 10);
  }
  ~ChildSplitter() { Kill(); }
  bool listening() const { return listening_; }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    g_spawn_close_pid(pid_);
    pid_ = 0;
  }

 private:
  static bool Accepts(int port) {
    GSocket* s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_TCP, nullptr);
    GSocketAddress* addr =
        g_inet_socket_address_new_from_string("127.0.0.1", port);
    const bool ok = g_socket_connect(s, addr, nullptr, nullptr);
    g_object_unref(addr);
    g_socket_close(s, nullptr);
    g_object_unref(s);
    return ok;
  }
  GPid pid_ = 0;
  bool listening_ = false;
};

// Pulls until `count` buffers came; returns the largest timestamp end.
GstClockTime PullSome(TestPeer* peer, int count) {
  GstClockTime end = 0;
  TestBuffer out;
  for (int i = 0; i < count; i++) {
    if (!peer->Pull(&out)) {
      ADD_FAILURE() << "buffer " << i << ": " << ErrorsOf(peer->pipeline());
      break;
    }
    if (GST_CLOCK_TIME_IS_VALID(out.pts)) end = std::max(end, out.pts);
  }
  return end;
}

// The splitter process is killed (no shutdown notice) and a new one starts
// on the same port: the peer warns, rejoins by itself and goes on with a
// DISCONT, the stream headers again (a new stream), and timestamps that
// keep growing.
TEST(P2pspSrcReconnect, RejoinsARestartedSplitter) {
  const int port = ClosedPort();
  auto first = std::make_unique<ChildSplitter>(port);
  ASSERT_TRUE(first->listening());
  TestPeer peer(port, false, "timeout=10");
  BusLog bus(peer.pipeline());
  peer.Start();
  GstClockTime before = PullSome(&peer, 15);

  first->Kill();
  const int warning = bus.WaitFor(GST_MESSAGE_WARNING, "", 5);
  ASSERT_GE(warning, 0) << ErrorsOf(peer.pipeline());
  EXPECT_NE(bus.at(warning).name.find("Lost the connection"), std::string::npos)
      << bus.at(warning).name;
  ASSERT_GE(bus.WaitFor(GST_MESSAGE_ELEMENT, "GstP2pspSrcReconnecting", 2),
            warning);
  // The warning came from the streaming thread before it tore the old
  // connection down: what is queued now is from before the restart.
  TestBuffer out;
  while (peer.Pull(&out, nullptr, 0))
    if (GST_CLOCK_TIME_IS_VALID(out.pts)) before = std::max(before, out.pts);

  ChildSplitter second(port);
  ASSERT_TRUE(second.listening());
  const int rejoined =
      bus.WaitFor(GST_MESSAGE_ELEMENT, "GstP2pspSrcRejoined", 8, warning);
  ASSERT_GE(rejoined, 0) << ErrorsOf(peer.pipeline());
  guint reconnects = 0, id = 0;
  EXPECT_TRUE(
      gst_structure_get_uint(bus.at(rejoined).s, "reconnects", &reconnects));
  EXPECT_TRUE(gst_structure_get_uint(bus.at(rejoined).s, "peer-id", &id));
  EXPECT_EQ(reconnects, 1u);
  EXPECT_GT(id, 0u);

  // A new stream with the same caps: the streamheader first again
  // (DISCONT), then the data, in the same run: not DISCONT again (tsdemux
  // would flush the headers it was just given); timestamps never go back.
  ASSERT_TRUE(peer.Pull(&out)) << ErrorsOf(peer.pipeline());
  EXPECT_EQ(out.data, std::vector<uint8_t>({'H', 'E', 'A', 'D'}));
  EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_HEADER);
  EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_DISCONT);
  ASSERT_TRUE(peer.Pull(&out)) << ErrorsOf(peer.pipeline());
  EXPECT_FALSE(out.flags & GST_BUFFER_FLAG_HEADER);
  EXPECT_EQ(out.data.size(), 64u * 64u);
  EXPECT_FALSE(out.flags & GST_BUFFER_FLAG_DISCONT);
  GstClockTime last = before;
  for (int i = 0; i < 15; i++) {
    if (GST_CLOCK_TIME_IS_VALID(out.pts)) {
      EXPECT_GE(out.pts, last) << i;
      last = out.pts;
    }
    ASSERT_TRUE(peer.Pull(&out)) << i << " " << ErrorsOf(peer.pipeline());
  }
  EXPECT_EQ(bus.Count(GST_MESSAGE_ERROR, ""), 0);
  GstStructure* st = GetStats(peer.src());
  guint n = 0;
  gst_structure_get_uint(st, "reconnects", &n);
  EXPECT_EQ(n, 1u);
  EXPECT_STREQ(gst_structure_get_string(st, "state"), "member");
  gst_structure_free(st);
}

TEST(P2pspSrcReconnect, AutoReconnectOffMakesAnError) {
  const int port = ClosedPort();
  ChildSplitter splitter(port);
  ASSERT_TRUE(splitter.listening());
  TestPeer peer(port, false, "timeout=10 auto-reconnect=false");
  BusLog bus(peer.pipeline());
  peer.Start();
  PullSome(&peer, 3);
  splitter.Kill();
  const int error = bus.WaitFor(GST_MESSAGE_ERROR, "", 3);
  ASSERT_GE(error, 0);
  EXPECT_NE(bus.at(error).name.find("Lost the connection"), std::string::npos)
      << bus.at(error).name;
  EXPECT_EQ(bus.Count(GST_MESSAGE_ELEMENT, "GstP2pspSrcReconnecting"), 0);
  EXPECT_EQ(bus.Count(GST_MESSAGE_WARNING, ""), 0);
}

// Nobody to rejoin: attempts (with backoff) until `timeout`, then an error.
TEST(P2pspSrcReconnect, NoRejoinWithinTimeoutIsAnError) {
  const int port = ClosedPort();
  ChildSplitter splitter(port);
  ASSERT_TRUE(splitter.listening());
  TestPeer peer(port, false, "timeout=2");
  BusLog bus(peer.pipeline());
  peer.Start();
  PullSome(&peer, 3);
  splitter.Kill();
  const auto killed = Clock::now();
  ASSERT_GE(bus.WaitFor(GST_MESSAGE_WARNING, "Lost the connection", 3), 0);
  const int error = bus.WaitFor(GST_MESSAGE_ERROR, "", 5);
  ASSERT_GE(error, 0);
  const double seconds = SecondsSince(killed);
  EXPECT_NE(bus.at(error).name.find("Could not rejoin"), std::string::npos)
      << bus.at(error).name;
  guint domain = 0;
  gint code = 0;
  gst_structure_get_uint(bus.at(error).s, "domain", &domain);
  gst_structure_get_int(bus.at(error).s, "code", &code);
  EXPECT_EQ(domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(code, GST_RESOURCE_ERROR_READ);
  EXPECT_GE(seconds, 1.8);
  EXPECT_LT(seconds, 4.0);
  // 200, 400, 800 ms apart: 3 or 4 attempts in 2 s.
  const int attempts =
      bus.Count(GST_MESSAGE_ELEMENT, "GstP2pspSrcReconnecting");
  EXPECT_GE(attempts, 3);
  EXPECT_LE(attempts, 5);
}

// A raw core peer, pumped by a thread of its own, that asks to be a monitor
// and never hears one given endpoint: the chunks that peer floods are lost
// to it, and it reports them to the splitter. Mute, it hears that endpoint
// but never sends to it instead (a free rider, as far as that peer knows),
// and is no monitor.
class DeafMonitor {
 public:
  DeafMonitor(int port, const p2psp::Endpoint& deaf_to, bool mute = false)
      : peer_(Config(!mute), p2psp::Endpoint::ipv4(127, 0, 0, 1, port)),
        deaf_to_(deaf_to),
        mute_(mute) {
    GSocketAddress* addr =
        g_inet_socket_address_new_from_string("127.0.0.1", port);
    GSocket* tcp = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_TCP, nullptr);
    const bool ok = g_socket_connect(tcp, addr, nullptr, nullptr);
    g_object_unref(addr);
    g_socket_set_blocking(tcp, FALSE);
    tcp_ = std::make_unique<p2psp_gst::TcpConnection>(tcp);
    GSocketAddress* any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    udp_.reset(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                            G_SOCKET_PROTOCOL_UDP, nullptr));
    g_socket_bind(udp_.get(), any, FALSE, nullptr);
    g_object_unref(any);
    g_socket_set_blocking(udp_.get(), FALSE);
    EXPECT_TRUE(ok);
    p2psp::Outbox out;
    peer_.start(p2psp_gst::monotonic_now_us(), &out);
    Dispatch(&out);
    thread_ = std::thread([this] { Run(); });
  }
  ~DeafMonitor() {
    stop_ = true;
    thread_.join();
    g_socket_close(tcp_->socket(), nullptr);
    g_socket_close(udp_.get(), nullptr);
  }
  bool member() const { return member_; }
  uint64_t lost_reports() const { return lost_reports_; }

 private:
  static p2psp::PeerConfig Config(bool monitor) {
    p2psp::PeerConfig c;
    c.monitor = monitor;
    c.latency_us = 100000;
    return c;
  }
  void Dispatch(p2psp::Outbox* out) {
    if (mute_) {
      auto& udp = out->udp;
      udp.erase(std::remove_if(
                    udp.begin(), udp.end(),
                    [&](const p2psp::UdpSend& u) { return u.to == deaf_to_; }),
                udp.end());
    }
    p2psp_gst::send_datagrams(udp_.get(), out->udp);
    for (const auto& send : out->tcp) tcp_->queue(send.data);
    tcp_->flush();
    out->clear();
  }
  void Run() {
    std::vector<p2psp_gst::ReceivedDatagram> batch(16);
    uint8_t buf[16384];
    while (!stop_) {
      pollfd fds[2] = {{g_socket_get_fd(tcp_->socket()), POLLIN, 0},
                       {g_socket_get_fd(udp_.get()), POLLIN, 0}};
      poll(fds, 2, 5);
      const p2psp::Micros now = p2psp_gst::monotonic_now_us();
      p2psp::Outbox out;
      gssize n;
      while (!tcp_closed_ && (n = tcp_->read_some(buf, sizeof buf)) != -2) {
        if (n <= 0) {
          tcp_closed_ = true;
          break;
        }
        peer_.on_tcp_data(buf, static_cast<size_t>(n), now, &out);
      }
      size_t got;
      while ((got = p2psp_gst::receive_datagrams(udp_.get(), batch)) > 0)
        for (size_t i = 0; i < got; i++)
          if (mute_ || batch[i].from != deaf_to_)
            peer_.on_udp(batch[i].from, batch[i].data.data(), batch[i].size,
                         now, &out);
      peer_.tick(now, &out);
      Dispatch(&out);
      p2psp::StreamItem item;
      while (peer_.pop_item(now, &item)) {
      }
      peer_.take_events();
      member_ = peer_.state() == p2psp::PeerState::kMember;
      lost_reports_ = peer_.stats().lost_reports_sent;
    }
  }
  p2psp::Peer peer_;
  p2psp::Endpoint deaf_to_;
  bool mute_;
  std::unique_ptr<p2psp_gst::TcpConnection> tcp_;
  p2psp_gst::GRef<GSocket> udp_;
  bool tcp_closed_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> member_{false};
  std::atomic<uint64_t> lost_reports_{0};
};

// Expelled for losses (a monitor reports every chunk of ours lost): the
// bus says so (Removed, reason expelled, and a warning), and the peer
// rejoins the same team and goes on with a DISCONT.
TEST(P2pspSrcReconnect, ExpelledPeerWarnsAndRejoins) {
  TestSplitter splitter("application/x-p2psp-test",
                        "max-chunk-loss=2 chunk-size=64");
  BusLog splitter_bus(splitter.pipeline());
  TestPeer victim(splitter.port());
  BusLog bus(victim.pipeline());
  victim.Start();
  ASSERT_TRUE(WaitFor([&] { return splitter.num_peers() == 1; }, 5));
  GstStructure* st = GetStats(splitter.element());
  const GstStructure* first = gst_value_get_structure(
      gst_value_array_get_value(gst_structure_get_value(st, "peers"), 0));
  const auto victim_endpoint =
      p2psp::Endpoint::parse(gst_structure_get_string(first, "endpoint"));
  gst_structure_free(st);
  ASSERT_TRUE(victim_endpoint);
  DeafMonitor monitor(splitter.port(), *victim_endpoint);
  ASSERT_TRUE(WaitFor([&] { return monitor.member(); }, 5));
  ASSERT_TRUE(WaitFor([&] { return victim.neighbours() == 1; }, 5));

  std::mt19937 rng(8);
  uint32_t index = 0;
  int removed = -1;
  for (; index < 300 && removed < 0; index++) {
    splitter.Push(MakeBuffer(&rng, index, index % 10 == 0));
    removed = bus.WaitFor(GST_MESSAGE_ELEMENT, "GstP2pspSrcRemoved", 0.01);
  }
  ASSERT_GE(removed, 0) << "monitor reported " << monitor.lost_reports();
  EXPECT_STREQ(gst_structure_get_string(bus.at(removed).s, "reason"),
               "expelled");
  EXPECT_NE(gst_structure_get_string(bus.at(removed).s, "text"), nullptr);
  const int warning =
      bus.WaitFor(GST_MESSAGE_WARNING, "Removed from the P2PSP team", 3);
  ASSERT_GE(warning, 0);
  const int splitter_removed = splitter_bus.WaitFor(
      GST_MESSAGE_ELEMENT, "GstP2pspSplitterPeerRemoved", 2);
  ASSERT_GE(splitter_removed, 0);
  EXPECT_STREQ(
      gst_structure_get_string(splitter_bus.at(splitter_removed).s, "reason"),
      "expelled");

  ASSERT_GE(bus.WaitFor(GST_MESSAGE_ELEMENT, "GstP2pspSrcRejoined", 5, warning),
            0)
      << ErrorsOf(victim.pipeline());
  // Drop what was queued before; what comes after the rejoin is DISCONT.
  TestBuffer out;
  while (victim.Pull(&out, nullptr, 0)) {
  }
  for (uint32_t i = 0; i < 20; i++) {
    splitter.Push(MakeBuffer(&rng, index + i, i % 10 == 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(victim.Pull(&out)) << ErrorsOf(victim.pipeline());
  EXPECT_GE(IndexOf(out), index);
  EXPECT_TRUE(out.flags & GST_BUFFER_FLAG_DISCONT);
  EXPECT_EQ(bus.Count(GST_MESSAGE_ERROR, ""), 0);
}

// A neighbour that never floods to us: its chunks come back by NACK (from
// the splitter), and the bus hears about it at most once a second.
TEST(P2pspSrcHealth, RecoveriesArePostedAtMostOnceASecond) {
  TestSplitter splitter("application/x-p2psp-test");
  TestPeer peer(splitter.port());
  BusLog bus(peer.pipeline());
  peer.Start();
  ASSERT_TRUE(WaitFor([&] { return splitter.num_peers() == 1; }, 5));
  GstStructure* st = GetStats(splitter.element());
  const auto endpoint = p2psp::Endpoint::parse(gst_structure_get_string(
      gst_value_get_structure(
          gst_value_array_get_value(gst_structure_get_value(st, "peers"), 0)),
      "endpoint"));
  gst_structure_free(st);
  ASSERT_TRUE(endpoint);
  DeafMonitor free_rider(splitter.port(), *endpoint, /*mute=*/true);
  ASSERT_TRUE(WaitFor([&] { return peer.neighbours() == 1; }, 5));

  std::mt19937 rng(21);
  const auto start = Clock::now();
  std::thread pusher([&] {
    for (uint32_t i = 0; i < 250; i++) {
      splitter.Push(MakeBuffer(&rng, i, i % 10 == 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  TestBuffer out;
  uint32_t got = 0;
  while (got < 250 && peer.Pull(&out, nullptr, GST_SECOND)) got++;
  pusher.join();
  const double seconds = SecondsSince(start);
  EXPECT_GT(got, 240u) << ErrorsOf(peer.pipeline());
  std::cerr << "got " << got << " buffers in " << seconds << " s\n";
  const int first = bus.WaitFor(GST_MESSAGE_ELEMENT, "GstP2pspSrcLoss", 2);
  ASSERT_GE(first, 0) << ErrorsOf(peer.pipeline());
  const GstStructure* loss = bus.at(first).s;
  guint64 recovered = 0, delta = 0, nacks = 0, lost = G_MAXUINT64;
  EXPECT_TRUE(gst_structure_get_uint64(loss, "recovered", &recovered));
  EXPECT_TRUE(gst_structure_get_uint64(loss, "recovered-delta", &delta));
  EXPECT_TRUE(gst_structure_get_uint64(loss, "nacks-sent", &nacks));
  EXPECT_TRUE(gst_structure_get_uint64(loss, "lost", &lost));
  EXPECT_TRUE(gst_structure_has_field(loss, "lost-delta"));
  EXPECT_TRUE(gst_structure_has_field(loss, "nacks-sent-delta"));
  EXPECT_GT(recovered, 0u);
  EXPECT_EQ(delta, recovered);  // the first message: deltas from zero
  EXPECT_GE(nacks, recovered);
  const int count = bus.Count(GST_MESSAGE_ELEMENT, "GstP2pspSrcLoss");
  EXPECT_GE(count, 2);
  EXPECT_LE(count, static_cast<int>(seconds) + 2);
  EXPECT_GT(StatU64(peer.src(), "recovered"), 0u);
  EXPECT_GT(StatU64(peer.src(), "nacks-to-splitter"), 0u);
}

/* ------------------------------------------------ authenticated team ---- */

constexpr const char* kTeamPassphrase = "0123456789-team";

std::string ErrorMatching(GstElement* pipeline, GQuark domain, gint code) {
  MessagePtr error = WaitForError(pipeline, 10 * GST_SECOND);
  if (!error) return "no error";
  GError* e = nullptr;
  gst_message_parse_error(error.get(), &e, nullptr);
  std::string text = e->message;
  if (!g_error_matches(e, domain, code)) text = "wrong error: " + text;
  g_error_free(e);
  return text;
}

TEST(P2pspSrcAuth, PassphraseIsWriteOnlyAndNotInTheUri) {
  ElementPtr src = MakeSrc();
  GParamSpec* pspec =
      g_object_class_find_property(G_OBJECT_GET_CLASS(src.get()), "passphrase");
  ASSERT_NE(pspec, nullptr);
  EXPECT_TRUE(pspec->flags & G_PARAM_WRITABLE);
  EXPECT_FALSE(pspec->flags & G_PARAM_READABLE);
  ASSERT_TRUE(gst_uri_handler_set_uri(
      GST_URI_HANDLER(src.get()),
      (std::string("p2psp://127.0.0.1:4552?passphrase=") + kTeamPassphrase)
          .c_str(),
      nullptr));
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src.get()));
  EXPECT_EQ(std::string(uri).find(kTeamPassphrase), std::string::npos) << uri;
  g_free(uri);
  ElementPtr sink(gst_element_factory_make("p2pspsplittersink", nullptr));
  pspec = g_object_class_find_property(G_OBJECT_GET_CLASS(sink.get()),
                                       "passphrase");
  ASSERT_NE(pspec, nullptr);
  EXPECT_FALSE(pspec->flags & G_PARAM_READABLE);
}

TEST(P2pspSrcAuth, SamePassphraseStreamsTheSameBytes) {
  TestSplitter splitter("application/x-p2psp-test",
                        std::string("passphrase=") + kTeamPassphrase);
  // One peer sets the property, the other the URI query key.
  TestPeer by_property(splitter.port(), false,
                       std::string("timeout=10 passphrase=") + kTeamPassphrase);
  TestPeer by_uri(splitter.port(), false, "timeout=10");
  g_object_set(by_uri.src(), "uri",
               ("p2psp://127.0.0.1:" + std::to_string(splitter.port()) +
                "?passphrase=" + kTeamPassphrase)
                   .c_str(),
               nullptr);
  by_property.Start();
  by_uri.Start();
  ASSERT_TRUE(WaitFor([&] { return splitter.num_peers() == 2; }, 10))
      << ErrorsOf(by_property.pipeline()) << " / "
      << ErrorsOf(by_uri.pipeline());
  ASSERT_TRUE(WaitFor([&] { return by_uri.neighbours() == 1; }, 10));
  std::mt19937 rng(99);
  std::vector<TestBuffer> in;
  for (uint32_t i = 0; i < 100; i++)
    in.push_back(MakeBuffer(&rng, i, i % 10 == 0));
  PushPaced(&splitter, in);
  for (TestPeer* peer : {&by_property, &by_uri}) {
    for (size_t i = 0; i < in.size(); i++) {
      TestBuffer out;
      ASSERT_TRUE(peer->Pull(&out)) << i << " " << ErrorsOf(peer->pipeline());
      ASSERT_EQ(out.data, in[i].data) << i;
    }
    EXPECT_EQ(StatU64(peer->src(), "unauthenticated-datagrams"), 0u);
  }
  EXPECT_EQ(StatU64(splitter.element(), "auth-failures"), 0u);
  EXPECT_EQ(StatU64(splitter.element(), "unauthenticated-datagrams"), 0u);
}

TEST(P2pspSrcAuth, WrongPassphraseIsNotAuthorized) {
  TestSplitter splitter("application/x-p2psp-test",
                        std::string("passphrase=") + kTeamPassphrase);
  TestPeer peer(splitter.port(), false, "timeout=10 passphrase=9876543210x");
  peer.Start();
  const std::string error = ErrorMatching(peer.pipeline(), GST_RESOURCE_ERROR,
                                          GST_RESOURCE_ERROR_NOT_AUTHORIZED);
  EXPECT_NE(error.find("wrong passphrase"), std::string::npos) << error;
  EXPECT_EQ(StatU64(splitter.element(), "auth-failures"), 1u);
  EXPECT_EQ(splitter.num_peers(), 0u);
}

TEST(P2pspSrcAuth, PassphraseOnOneSideOnlyIsAClearError) {
  {
    TestSplitter splitter("application/x-p2psp-test",
                          std::string("passphrase=") + kTeamPassphrase);
    TestPeer peer(splitter.port());
    peer.Start();
    const std::string error = ErrorMatching(peer.pipeline(), GST_RESOURCE_ERROR,
                                            GST_RESOURCE_ERROR_NOT_AUTHORIZED);
    EXPECT_NE(error.find("team needs a passphrase"), std::string::npos)
        << error;
  }
  {
    TestSplitter splitter("application/x-p2psp-test");
    TestPeer peer(splitter.port(), false,
                  std::string("timeout=10 passphrase=") + kTeamPassphrase);
    peer.Start();
    const std::string error = ErrorMatching(peer.pipeline(), GST_RESOURCE_ERROR,
                                            GST_RESOURCE_ERROR_NOT_AUTHORIZED);
    EXPECT_NE(error.find("splitter has no passphrase but one was set"),
              std::string::npos)
        << error;
    EXPECT_EQ(splitter.num_peers(), 0u);
  }
}

TEST(P2pspSrcAuth, TooShortPassphraseIsASettingsError) {
  TestPeer peer(ClosedPort(), false, "timeout=1 passphrase=short");
  peer.Start();
  const std::string error = ErrorMatching(peer.pipeline(), GST_RESOURCE_ERROR,
                                          GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_NE(error.find("Invalid passphrase"), std::string::npos) << error;
}

/* --------------------------------------------------- start-timeout ---- */

// The late joiner's bounded wait: a property, a URI query key, round trip.
TEST(P2pspSrcStartTimeout, PropertyAndUri) {
  ElementPtr src = MakeSrc();
  guint timeout_ms = 0;
  g_object_get(src.get(), "start-timeout", &timeout_ms, nullptr);
  EXPECT_EQ(timeout_ms, 3000u);
  const char* text = "p2psp://127.0.0.1:4552?start-timeout=0";
  g_object_set(src.get(), "uri", text, nullptr);
  g_object_get(src.get(), "start-timeout", &timeout_ms, nullptr);
  EXPECT_EQ(timeout_ms, 0u);
  gchar* uri = nullptr;
  g_object_get(src.get(), "uri", &uri, nullptr);
  EXPECT_STREQ(uri, text);
  g_free(uri);
}

/* ---------------------------------------------------- upload-limit ---- */

// What the peer may upload (issue 15): -1 (no limit) by default, a
// property and a URI query key, and it round-trips through the URI.
TEST(P2pspSrcUploadLimit, PropertyAndUri) {
  ElementPtr src = MakeSrc();
  gint64 limit = 0;
  g_object_get(src.get(), "upload-limit", &limit, nullptr);
  EXPECT_EQ(limit, -1);
  const char* text = "p2psp://127.0.0.1:4552?upload-limit=300000";
  g_object_set(src.get(), "uri", text, nullptr);
  g_object_get(src.get(), "upload-limit", &limit, nullptr);
  EXPECT_EQ(limit, 300000);
  gchar* uri = nullptr;
  g_object_get(src.get(), "uri", &uri, nullptr);
  EXPECT_STREQ(uri, text);
  g_free(uri);
  g_object_set(src.get(), "upload-limit", G_GINT64_CONSTANT(0), nullptr);
  g_object_get(src.get(), "upload-limit", &limit, nullptr);
  EXPECT_EQ(limit, 0);
}

/* ----------------------------------------------------- io-interval ---- */

// The minimum latency p2pspsrc answers in PAUSED.
GstClockTime QueriedLatency(GstElement* src) {
  EXPECT_NE(gst_element_set_state(src, GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  GstQuery* query = gst_query_new_latency();
  GstClockTime min = 0, max = 0;
  if (gst_element_query(src, query))
    gst_query_parse_latency(query, nullptr, &min, &max);
  gst_query_unref(query);
  gst_element_set_state(src, GST_STATE_NULL);
  return min;
}

TEST(P2pspSrcIoInterval, PropertyUriAndLatency) {
  ElementPtr src = MakeSrc();
  gint interval = 99;
  g_object_get(src.get(), "io-interval", &interval, nullptr);
  EXPECT_EQ(interval, -1) << "automatic by default";
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(src.get()),
                                                  "io-interval");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(G_PARAM_SPEC_INT(spec)->minimum, -1);
  EXPECT_EQ(G_PARAM_SPEC_INT(spec)->maximum, 100);
  EXPECT_TRUE(spec->flags & GST_PARAM_MUTABLE_PLAYING);
  // Automatic: up to a tenth of latency (20 ms at most) more.
  EXPECT_EQ(QueriedLatency(src.get()), 220 * GST_MSECOND);
  g_object_set(src.get(), "latency", 100u, nullptr);
  EXPECT_EQ(QueriedLatency(src.get()), 110 * GST_MSECOND);
  g_object_set(src.get(), "latency", 1000u, nullptr);
  EXPECT_EQ(QueriedLatency(src.get()), 1020 * GST_MSECOND);

  const char* text = "p2psp://127.0.0.1:4552?latency=300&io-interval=30";
  g_object_set(src.get(), "uri", text, nullptr);
  g_object_get(src.get(), "io-interval", &interval, nullptr);
  EXPECT_EQ(interval, 30);
  gchar* uri = nullptr;
  g_object_get(src.get(), "uri", &uri, nullptr);
  EXPECT_STREQ(uri, text);
  g_free(uri);

  // A buffer may leave up to one interval after it is due.
  EXPECT_EQ(QueriedLatency(src.get()), 330 * GST_MSECOND);
}

// Voluntary context switches (sleeps) of this process's p2pspsrc network
// threads so far.
guint64 NetworkThreadSleeps() {
  guint64 total = 0;
  GDir* dir = g_dir_open("/proc/self/task", 0, nullptr);
  if (dir == nullptr) return 0;
  while (const gchar* tid = g_dir_read_name(dir)) {
    const std::string base = std::string("/proc/self/task/") + tid;
    gchar* comm = nullptr;
    gchar* status = nullptr;
    if (g_file_get_contents((base + "/comm").c_str(), &comm, nullptr,
                            nullptr) &&
        g_str_has_prefix(comm, "p2pspsrc-io") &&
        g_file_get_contents((base + "/status").c_str(), &status, nullptr,
                            nullptr)) {
      const char* field = strstr(status, "\nvoluntary_ctxt_switches:");
      if (field != nullptr)
        total += g_ascii_strtoull(strchr(field, ':') + 1, nullptr, 10);
    }
    g_free(comm);
    g_free(status);
  }
  g_dir_close(dir);
  return total;
}

// io-interval=N: a team still streams every byte in order, and each peer's
// network thread sleeps about once per interval, however many datagrams
// arrive (about 1500 per peer here, one every 2 ms from the splitter and
// as many from the neighbours).
TEST(P2pspSrcIoInterval, TeamStreamsEverythingWithFewerWakeUps) {
  constexpr guint kIntervalMs = 40;
  constexpr int kPeers = 3;
  TestSplitter splitter("application/x-p2psp-test");
  auto peers =
      JoinTeam(&splitter, kPeers,
               "timeout=10 io-interval=" + std::to_string(kIntervalMs));
  ASSERT_FALSE(HasFailure()) << "the team did not form";

  std::mt19937 rng(4040);
  std::vector<TestBuffer> in;
  for (uint32_t i = 0; i < 500; i++)
    in.push_back(MakeBuffer(&rng, i, i % 10 == 0));
  const guint64 sleeps_before = NetworkThreadSleeps();
  const auto start = std::chrono::steady_clock::now();
  PushPaced(&splitter, in);
  for (auto& peer : peers) {
    for (size_t i = 0; i < in.size(); i++) {
      TestBuffer out;
      ASSERT_TRUE(peer->Pull(&out)) << i << " " << ErrorsOf(peer->pipeline());
      ASSERT_EQ(IndexOf(out), i);
      ASSERT_EQ(out.data, in[i].data) << i;
    }
  }
  const double seconds = SecondsSince(start);
  const guint64 sleeps = NetworkThreadSleeps() - sleeps_before;
  const guint64 received = StatU64(peers[0]->src(), "chunks-from-splitter") +
                           StatU64(peers[0]->src(), "chunks-from-peers");
  // One sleep per round, plus a few on the core lock when the streaming
  // thread holds it.
  const double rounds = seconds * 1000 / kIntervalMs;
  EXPECT_LE(sleeps, kPeers * (2 * rounds + 20))
      << "over " << seconds << " s, " << received << " chunks per peer";
  EXPECT_GT(received, 4 * rounds) << "the test must outpace the interval";
}

// A non-blocking UDP socket on 127.0.0.1:0 and a socket that sends to it.
struct LoopbackUdpPair {
  GSocket* rx = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                             G_SOCKET_PROTOCOL_UDP, nullptr);
  GSocket* tx = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                             G_SOCKET_PROTOCOL_UDP, nullptr);
  GSocketAddress* to = nullptr;

  LoopbackUdpPair() {
    GSocketAddress* any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    EXPECT_TRUE(g_socket_bind(rx, any, FALSE, nullptr));
    g_object_unref(any);
    g_socket_set_blocking(rx, FALSE);
    to = g_socket_get_local_address(rx, nullptr);
  }
  ~LoopbackUdpPair() {
    g_clear_object(&to);
    g_object_unref(tx);
    g_object_unref(rx);
  }
  void send_byte() { g_socket_send_to(tx, to, "x", 1, nullptr, nullptr); }
};

// Starts `poll` with `period`, watching `udp`'s receiving socket.
void WatchWithPeriod(p2psp_gst::PollThread* poll, p2psp::Micros period,
                     LoopbackUdpPair* udp,
                     p2psp_gst::PollThread::SocketCallback on_io,
                     p2psp_gst::PollThread::TimerCallback on_timer) {
  poll->set_period(period);
  poll->start(
      "test-period",
      [udp](p2psp_gst::PollThread::WatchList& list) {
        list.emplace_back(udp->rx, G_IO_IN);
      },
      std::move(on_io), std::move(on_timer));
}

// PollThread with a period: one datagram read per round, as a callback
// that reads bounded batches would leave a backlog. Returns how many of
// `count` datagrams sent at once were read within `seconds`.
int ReadWithPeriod(bool run_again, int count, double seconds) {
  LoopbackUdpPair udp;
  std::atomic<int> read{0};
  p2psp_gst::PollThread poll;
  WatchWithPeriod(
      &poll, 200000, &udp,
      [&](GSocket* socket, GIOCondition) {
        char byte;
        if (g_socket_receive(socket, &byte, 1, nullptr, nullptr) >= 0) {
          read++;
          if (run_again) poll.run_again();
        }
      },
      [](p2psp::Micros) { return UINT64_MAX; });
  for (int i = 0; i < count; i++) udp.send_byte();
  WaitFor([&] { return read == count; }, seconds);
  poll.stop();
  return read;
}

// PollThread with a 10 ms period watching a socket that gets `datagrams`
// datagrams `gap_ms` apart; returns how many rounds it ran.
int RoundsWithPeriod(int datagrams, int gap_ms) {
  LoopbackUdpPair udp;
  std::atomic<int> rounds{0}, read{0};
  p2psp_gst::PollThread poll;
  WatchWithPeriod(
      &poll, 10000, &udp,
      [&](GSocket* socket, GIOCondition) {
        char byte;
        while (g_socket_receive(socket, &byte, 1, nullptr, nullptr) >= 0)
          read++;
      },
      [&](p2psp::Micros now) {
        rounds++;
        return now + 10 * G_USEC_PER_SEC;
      });
  g_usleep(300 * 1000);
  for (int i = 0; i < datagrams; i++) {
    udp.send_byte();
    g_usleep(gap_ms * 1000);
  }
  WaitFor([&] { return read == datagrams; }, 1.0);
  EXPECT_EQ(read, datagrams);
  poll.stop();
  return rounds;
}

TEST(P2pspSrcIoInterval, QuietSocketsDoNotWakeTheThreadEveryInterval) {
  // 300 ms with nothing to do: about 30 rounds if every period woke it, 4
  // with the 100 ms cap on a wait.
  EXPECT_LE(RoundsWithPeriod(0, 0), 8) << "(a round at least every 100 ms)";
  // 10 datagrams 40 ms apart: a round for each, and one more after it that
  // finds the socket quiet (plus the idle 300 ms before); not one every
  // 10 ms (about 70).
  EXPECT_LE(RoundsWithPeriod(10, 40), 2 * 10 + 15);
}

TEST(P2pspSrcIoInterval, BacklogIsReadWithoutWaitingForTheNextInterval) {
  // 20 rounds of 200 ms would take 4 s.
  EXPECT_EQ(ReadWithPeriod(true, 20, 1.0), 20);
  // Without run_again() the period holds every round back.
  EXPECT_LE(ReadWithPeriod(false, 20, 1.0), 7);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
