/* gst-p2psp: p2pspsplittersink in-process tests.
 *
 * The peers here are the core p2psp::Peer driven over real loopback sockets
 * by the test thread itself (no p2pspsrc), so a failure points at the sink. */
#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/wire.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plugin/gstp2psputil.h"

namespace {

using p2psp_gst::GRef;

constexpr int kTimeoutMs = 5000;
constexpr p2psp::Micros kPeerLatencyUs = 20000;

struct GstObjectDeleter {
  void operator()(gpointer o) const { gst_object_unref(o); }
};
using ElementPtr = std::unique_ptr<GstElement, GstObjectDeleter>;

/* ------------------------------------------------------- test peer ---- */

/* A team member made of the core Peer and two loopback sockets, pumped by
 * the calling thread. */
class TestPeer {
 public:
  explicit TestPeer(guint16 splitter_port, const char *host = "127.0.0.1",
                    bool monitor = false)
      : peer_(MakeConfig(monitor),
              *p2psp::Endpoint::parse(EndpointText(host, splitter_port))),
        splitter_port_(splitter_port),
        host_(host) {}

  ~TestPeer() {
    if (tcp_) g_socket_close(tcp_->socket(), nullptr);
    if (udp_) g_socket_close(udp_.get(), nullptr);
  }

  /* A small TCP receive buffer (set before connecting), for a peer that
   * stops reading: its control channel backs up in the splitter sooner. */
  void set_tcp_rcvbuf(int bytes) { rcvbuf_ = bytes; }

  bool Join() {
    GSocket *tcp = Connect(splitter_port_, host_.c_str(), rcvbuf_);
    if (tcp == nullptr) return false;
    tcp_.reset(new p2psp_gst::TcpConnection(tcp));
    udp_.reset(BindUdp(host_.c_str()));
    if (!udp_) return false;
    p2psp::Outbox out;
    peer_.start(p2psp_gst::monotonic_now_us(), &out);
    Dispatch(out);
    return true;
  }

  void Leave() {
    p2psp::Outbox out;
    peer_.leave(p2psp_gst::monotonic_now_us(), &out);
    Dispatch(out);
    /* Let the GOODBYE reach the kernel before the socket goes. */
    Pump(20);
    if (tcp_) {
      g_socket_close(tcp_->socket(), nullptr);
      tcp_.reset();
    }
  }

  /* One poll round of at most max_wait_ms. */
  void Pump(int max_wait_ms) {
    pollfd fds[2] = {{-1, 0, 0}, {-1, 0, 0}};
    if (tcp_) {
      fds[0].fd = g_socket_get_fd(tcp_->socket());
      fds[0].events = POLLIN | (tcp_->wants_write() ? POLLOUT : 0);
    }
    if (udp_) fds[1] = {g_socket_get_fd(udp_.get()), POLLIN, 0};
    poll(fds, 2, WaitMs(max_wait_ms));

    p2psp::Outbox out;
    if (tcp_ && fds[0].revents) ReadTcp(fds[0].revents, &out);
    if (udp_ && fds[1].revents) ReadUdp(&out);
    peer_.tick(p2psp_gst::monotonic_now_us(), &out);
    Dispatch(out);
    CollectItems();
    for (auto &ev : peer_.take_events()) events_.push_back(ev);
  }

  /* A NACK straight to the splitter's UDP endpoint (known once a chunk
   * came from it). */
  void SendNack(std::vector<p2psp::ChunkNumber> numbers) {
    p2psp::Outbox out;
    out.udp.push_back(p2psp::UdpSend{
        splitter_udp_,
        std::make_shared<p2psp::Bytes>(p2psp::encode_nack(
            p2psp::NackMsg{peer_.team_id(), peer_.id(), std::move(numbers)}))});
    Dispatch(out);
  }

  /* Pumps (and runs the GLib default context) until pred() holds. */
  bool PumpUntil(const std::function<bool()> &pred,
                 int timeout_ms = kTimeoutMs) {
    const gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
    while (!pred()) {
      if (g_get_monotonic_time() > end) return false;
      Pump(5);
    }
    return true;
  }

  std::vector<p2psp::MediaBuffer> Buffers() const {
    std::vector<p2psp::MediaBuffer> out;
    for (const auto &item : items_)
      if (item.kind == p2psp::StreamItem::Kind::kBuffer)
        out.push_back(item.buffer);
    return out;
  }

  const std::vector<p2psp::StreamItem> &Items() const { return items_; }
  p2psp::Peer &peer() { return peer_; }
  const std::vector<p2psp::PeerEvent> &events() const { return events_; }
  bool tcp_closed() const { return tcp_closed_; }
  guint16 udp_port() const {
    GSocketAddress *a = g_socket_get_local_address(udp_.get(), nullptr);
    guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(a));
    g_object_unref(a);
    return port;
  }

  /* "1.2.3.4:5" or "[::1]:5", as the sink names endpoints. */
  static std::string EndpointText(const char *host, guint16 port) {
    const bool v6 = strchr(host, ':') != nullptr;
    return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" +
           std::to_string(port);
  }

  static GSocket *Connect(guint16 port, const char *host = "127.0.0.1",
                          int rcvbuf = 0) {
    GSocketAddress *addr = g_inet_socket_address_new_from_string(host, port);
    GSocket *sock =
        g_socket_new(g_socket_address_get_family(addr), G_SOCKET_TYPE_STREAM,
                     G_SOCKET_PROTOCOL_DEFAULT, nullptr);
    if (rcvbuf > 0)
      g_socket_set_option(sock, SOL_SOCKET, SO_RCVBUF, rcvbuf, nullptr);
    gboolean ok = g_socket_connect(sock, addr, nullptr, nullptr);
    g_object_unref(addr);
    if (!ok) {
      g_object_unref(sock);
      return nullptr;
    }
    g_socket_set_blocking(sock, FALSE);
    return sock;
  }

  static GSocket *BindUdp(const char *host = "127.0.0.1") {
    GSocketAddress *addr = g_inet_socket_address_new_from_string(host, 0);
    GSocket *sock =
        g_socket_new(g_socket_address_get_family(addr), G_SOCKET_TYPE_DATAGRAM,
                     G_SOCKET_PROTOCOL_DEFAULT, nullptr);
    gboolean ok = sock && g_socket_bind(sock, addr, FALSE, nullptr);
    g_object_unref(addr);
    if (!ok) {
      if (sock) g_object_unref(sock);
      return nullptr;
    }
    g_socket_set_blocking(sock, FALSE);
    return sock;
  }

 private:
  static p2psp::PeerConfig MakeConfig(bool monitor) {
    p2psp::PeerConfig config;
    config.latency_us = kPeerLatencyUs;
    config.monitor = monitor;
    return config;
  }

  int WaitMs(int max_wait_ms) const {
    const p2psp::Micros now = p2psp_gst::monotonic_now_us();
    const p2psp::Micros deadline = peer_.next_deadline();
    if (deadline <= now) return 0;
    return static_cast<int>(
        std::min<p2psp::Micros>((deadline - now + 999) / 1000,
                                static_cast<p2psp::Micros>(max_wait_ms)));
  }

  void ReadTcp(short revents, p2psp::Outbox *out) {
    if (revents & POLLOUT) tcp_->flush();
    uint8_t buf[16384];
    for (;;) {
      gssize n = tcp_->read_some(buf, sizeof buf);
      if (n == -2) return;
      if (n <= 0) {
        tcp_closed_ = true;
        peer_.on_tcp_closed(p2psp_gst::monotonic_now_us(), out);
        g_socket_close(tcp_->socket(), nullptr);
        tcp_.reset();
        return;
      }
      peer_.on_tcp_data(buf, static_cast<size_t>(n),
                        p2psp_gst::monotonic_now_us(), out);
    }
  }

  void ReadUdp(p2psp::Outbox *out) {
    std::vector<p2psp_gst::ReceivedDatagram> batch(8);
    size_t got;
    while ((got = p2psp_gst::receive_datagrams(udp_.get(), batch)) > 0) {
      for (size_t i = 0; i < got; i++) {
        splitter_udp_ = batch[i].from;
        peer_.on_udp(batch[i].from, batch[i].data.data(), batch[i].size,
                     p2psp_gst::monotonic_now_us(), out);
      }
    }
  }

  void Dispatch(p2psp::Outbox &out) {
    if (udp_) p2psp_gst::send_datagrams(udp_.get(), out.udp);
    if (tcp_) {
      for (const auto &send : out.tcp) tcp_->queue(send.data);
      tcp_->flush();
    }
    out.clear();
  }

  void CollectItems() {
    p2psp::StreamItem item;
    while (peer_.pop_item(p2psp_gst::monotonic_now_us(), &item))
      items_.push_back(item);
  }

  p2psp::Peer peer_;
  guint16 splitter_port_;
  std::string host_;
  int rcvbuf_ = 0;
  std::unique_ptr<p2psp_gst::TcpConnection> tcp_;
  GRef<GSocket> udp_;
  bool tcp_closed_ = false;
  p2psp::Endpoint splitter_udp_;
  std::vector<p2psp::StreamItem> items_;
  std::vector<p2psp::PeerEvent> events_;
};

/* ---------------------------------------------------------- helpers ---- */

ElementPtr MakeSink() {
  GstElement *sink = gst_element_factory_make("p2pspsplittersink", nullptr);
  if (sink) gst_object_ref_sink(sink);
  return ElementPtr(sink);
}

guint UintProp(GstElement *e, const char *name) {
  guint v = 0;
  g_object_get(e, name, &v, nullptr);
  return v;
}

gint IntProp(GstElement *e, const char *name) {
  gint v = 0;
  g_object_get(e, name, &v, nullptr);
  return v;
}

struct StatsPtr {
  GstStructure *s = nullptr;
  ~StatsPtr() {
    if (s) gst_structure_free(s);
  }
};

guint64 Stat(GstElement *sink, const char *field) {
  StatsPtr stats;
  g_object_get(sink, "stats", &stats.s, nullptr);
  guint64 v = G_MAXUINT64;
  if (stats.s) gst_structure_get_uint64(stats.s, field, &v);
  return v;
}

std::vector<uint8_t> Pattern(size_t size, uint32_t seed) {
  std::vector<uint8_t> data(size);
  for (size_t i = 0; i < size; i++)
    data[i] = static_cast<uint8_t>((seed * 131 + i * 7 + (i >> 8)) & 0xff);
  return data;
}

GstBuffer *MakeBuffer(const std::vector<uint8_t> &data, GstClockTime pts,
                      bool delta) {
  GstBuffer *buf = gst_buffer_new_memdup(data.data(), data.size());
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = 10 * GST_MSECOND;
  if (delta) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
  return buf;
}

/* appsrc ! p2pspsplittersink on loopback, port picked by the kernel. */
class SinkPipeline {
 public:
  explicit SinkPipeline(const char *sink_props = "") {
    std::string desc =
        std::string(
            "appsrc name=src format=time caps=application/x-test ! "
            "p2pspsplittersink name=sink host=127.0.0.1 port=0 "
            "sync=false ") +
        sink_props;
    GError *error = nullptr;
    pipeline_.reset(gst_parse_launch(desc.c_str(), &error));
    if (error) {
      ADD_FAILURE() << error->message;
      g_error_free(error);
    }
    src_.reset(gst_bin_get_by_name(GST_BIN(pipeline_.get()), "src"));
    sink_.reset(gst_bin_get_by_name(GST_BIN(pipeline_.get()), "sink"));
  }
  ~SinkPipeline() {
    if (pipeline_) gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
  }

  GstStateChangeReturn Play() {
    GstStateChangeReturn ret =
        gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING);
    return ret;
  }
  /* Action signals, so the test needs no gstreamer-app library. */
  void Push(GstBuffer *buf) {
    GstFlowReturn ret = GST_FLOW_ERROR;
    g_signal_emit_by_name(src_.get(), "push-buffer", buf, &ret);
    gst_buffer_unref(buf);
    ASSERT_EQ(ret, GST_FLOW_OK);
  }
  void EndOfStream() {
    GstFlowReturn ret = GST_FLOW_ERROR;
    g_signal_emit_by_name(src_.get(), "end-of-stream", &ret);
  }
  guint16 port() const {
    return static_cast<guint16>(IntProp(sink_.get(), "current-port"));
  }
  /* The next EOS or ERROR message, or NULL after timeout_ms. */
  GstMessage *WaitMessage(int timeout_ms) {
    GstBus *bus = gst_element_get_bus(pipeline_.get());
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, timeout_ms * GST_MSECOND,
        static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    gst_object_unref(bus);
    return msg;
  }

  GstElement *pipeline() const { return pipeline_.get(); }
  GstElement *src() const { return src_.get(); }
  GstElement *sink() const { return sink_.get(); }

 private:
  ElementPtr pipeline_;
  ElementPtr src_;
  ElementPtr sink_;
};

bool WaitFor(const std::function<bool()> &pred) {
  const gint64 end = g_get_monotonic_time() + kTimeoutMs * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() > end) return false;
    g_usleep(5000);
  }
  return true;
}

/* Joins a peer and waits until both sides agree it is in the team. */
bool JoinTeam(SinkPipeline &p, TestPeer &peer, guint expected_peers = 1) {
  if (!peer.Join()) return false;
  return peer.PumpUntil([&] {
    return peer.peer().state() == p2psp::PeerState::kMember &&
           UintProp(p.sink(), "num-peers") >= expected_peers;
  });
}

struct Sent {
  std::vector<uint8_t> data;
  GstClockTime pts;
  bool delta;
};

/* Pushes count buffers of varied sizes (some larger than a chunk), the first
 * a keyframe. */
std::vector<Sent> PushStream(SinkPipeline &p, int count, uint32_t seed) {
  std::vector<Sent> sent;
  for (int i = 0; i < count; i++) {
    Sent s{Pattern(1 + (i * 97 + seed) % 700, seed + i),
           static_cast<GstClockTime>(i) * 10 * GST_MSECOND, i % 5 != 0};
    p.Push(MakeBuffer(s.data, s.pts, s.delta));
    sent.push_back(std::move(s));
  }
  return sent;
}

void ExpectSameStream(const std::vector<Sent> &sent,
                      const std::vector<p2psp::MediaBuffer> &got) {
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); i++) {
    EXPECT_EQ(got[i].data, sent[i].data) << "buffer " << i;
    EXPECT_EQ(got[i].pts, sent[i].pts) << "buffer " << i;
    EXPECT_EQ((got[i].flags & p2psp::MediaBuffer::kDeltaUnit) != 0,
              sent[i].delta)
        << "buffer " << i;
  }
}

/* ------------------------------------------------------------ tests ---- */

TEST(SplitterSink, CreateDestroy) {
  ElementPtr sink = MakeSink();
  ASSERT_TRUE(sink);
  GstElementFactory *factory = gst_element_get_factory(sink.get());
  EXPECT_STREQ(
      gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS),
      "Sink/Network");
}

TEST(SplitterSink, PropertyDefaults) {
  ElementPtr sink = MakeSink();
  ASSERT_TRUE(sink);
  gchar *host = nullptr;
  g_object_get(sink.get(), "host", &host, nullptr);
  EXPECT_STREQ(host, "0.0.0.0");
  g_free(host);
  EXPECT_EQ(IntProp(sink.get(), "port"), 4552);
  EXPECT_EQ(IntProp(sink.get(), "current-port"), -1);
  EXPECT_EQ(UintProp(sink.get(), "chunk-size"), 1430u);
  EXPECT_EQ(UintProp(sink.get(), "max-peers"), 0u);
  EXPECT_EQ(UintProp(sink.get(), "num-peers"), 0u);
  EXPECT_EQ(UintProp(sink.get(), "wait-for-peers"), 0u);
  EXPECT_EQ(UintProp(sink.get(), "linger"), 500u);
  gboolean sync = FALSE;
  g_object_get(sink.get(), "sync", &sync, nullptr);
  EXPECT_TRUE(sync);

  StatsPtr stats;
  g_object_get(sink.get(), "stats", &stats.s, nullptr);
  ASSERT_NE(stats.s, nullptr);
  EXPECT_TRUE(
      gst_structure_has_name(stats.s, "application/x-p2psp-splitter-stats"));
  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  ASSERT_NE(peers, nullptr);
  EXPECT_EQ(gst_value_array_get_size(peers), 0u);
  guint64 chunks = 1;
  EXPECT_TRUE(gst_structure_get_uint64(stats.s, "chunks-cut", &chunks));
  EXPECT_EQ(chunks, 0u);
}

/* Out-of-range values are refused by the param specs (GObject keeps the old
 * value); boundaries are accepted. */
TEST(SplitterSink, PropertyRanges) {
  ElementPtr sink = MakeSink();
  ASSERT_TRUE(sink);
  auto *klass = G_OBJECT_GET_CLASS(sink.get());
  struct Case {
    const char *name;
    gint64 bad;
  };
  for (Case c : {Case{"chunk-size", 63}, Case{"chunk-size", 65001},
                 Case{"port", -1}, Case{"port", 65536}}) {
    GParamSpec *pspec = g_object_class_find_property(klass, c.name);
    ASSERT_NE(pspec, nullptr) << c.name;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(pspec));
    if (G_VALUE_HOLDS_INT(&v))
      g_value_set_int(&v, static_cast<gint>(c.bad));
    else
      g_value_set_uint(&v, static_cast<guint>(c.bad));
    /* TRUE: the value had to be changed to fit, i.e. it is invalid. */
    EXPECT_TRUE(g_param_value_validate(pspec, &v)) << c.name << "=" << c.bad;
    g_value_unset(&v);
  }
  g_object_set(sink.get(), "chunk-size", 64u, "port", 0, nullptr);
  EXPECT_EQ(UintProp(sink.get(), "chunk-size"), 64u);
  g_object_set(sink.get(), "chunk-size", 65000u, "port", 65535, nullptr);
  EXPECT_EQ(UintProp(sink.get(), "chunk-size"), 65000u);
  EXPECT_EQ(IntProp(sink.get(), "port"), 65535);

  GParamSpec *current = g_object_class_find_property(klass, "current-port");
  EXPECT_FALSE(current->flags & G_PARAM_WRITABLE);
  GParamSpec *stats = g_object_class_find_property(klass, "stats");
  EXPECT_FALSE(stats->flags & G_PARAM_WRITABLE);
}

/* The sockets open on NULL->READY and close on READY->NULL. */
TEST(SplitterSink, StateCycles) {
  SinkPipeline p;
  for (int round = 0; round < 3; round++) {
    EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_READY),
              GST_STATE_CHANGE_SUCCESS);
    const gint port = IntProp(p.sink(), "current-port");
    EXPECT_GT(port, 0);
    EXPECT_NE(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
              GST_STATE_CHANGE_FAILURE);
    EXPECT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
    p.Push(MakeBuffer(Pattern(100, round), 0, false));
    EXPECT_EQ(gst_element_get_state(p.pipeline(), nullptr, nullptr,
                                    kTimeoutMs * GST_MSECOND),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_TRUE(WaitFor([&] { return Stat(p.sink(), "buffers-in") == 1; }));
    /* ASYNC: back in PAUSED the sink waits for a new preroll buffer. */
    EXPECT_NE(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
              GST_STATE_CHANGE_FAILURE);
    EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_READY),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_EQ(IntProp(p.sink(), "current-port"), port);
    EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_NULL),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_EQ(IntProp(p.sink(), "current-port"), -1);
    GSocket *gone = TestPeer::Connect(static_cast<guint16>(port));
    EXPECT_EQ(gone, nullptr) << "port " << port << " still listening";
    if (gone) g_object_unref(gone);
  }
}

void CountNotify(GObject *, GParamSpec *, gpointer counter) {
  g_atomic_int_inc(static_cast<gint *>(counter));
}

TEST(SplitterSink, PortZeroPublishesCurrentPort) {
  SinkPipeline p;
  gint notified = 0;
  g_signal_connect(p.sink(), "notify::current-port", G_CALLBACK(CountNotify),
                   &notified);
  EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_READY),
            GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(g_atomic_int_get(&notified), 1);
  const gint port = IntProp(p.sink(), "current-port");
  ASSERT_GT(port, 0);
  GSocket *sock = TestPeer::Connect(static_cast<guint16>(port));
  EXPECT_NE(sock, nullptr) << "nothing listens on current-port " << port;
  if (sock) g_object_unref(sock);
  gst_element_set_state(p.pipeline(), GST_STATE_NULL);
  EXPECT_EQ(IntProp(p.sink(), "current-port"), -1);
  EXPECT_EQ(g_atomic_int_get(&notified), 2);
}

TEST(SplitterSink, PortInUseIsAResourceError) {
  GSocket *taken = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, nullptr);
  GSocketAddress *any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  ASSERT_TRUE(g_socket_bind(taken, any, TRUE, nullptr));
  ASSERT_TRUE(g_socket_listen(taken, nullptr));
  g_object_unref(any);
  GSocketAddress *bound = g_socket_get_local_address(taken, nullptr);
  const guint16 port =
      g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);

  SinkPipeline p;
  g_object_set(p.sink(), "port", static_cast<gint>(port), nullptr);
  EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  ASSERT_NE(msg, nullptr);
  ASSERT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_ERROR);
  GError *error = nullptr;
  gst_message_parse_error(msg, &error, nullptr);
  EXPECT_EQ(error->domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(error->code, GST_RESOURCE_ERROR_OPEN_READ_WRITE);
  EXPECT_NE(std::string(error->message).find(std::to_string(port)),
            std::string::npos)
      << error->message;
  g_error_free(error);
  gst_message_unref(msg);
  g_object_unref(taken);
}

TEST(SplitterSink, UnresolvableHostIsNotFound) {
  SinkPipeline p;
  g_object_set(p.sink(), "host", "no-such-host.invalid", nullptr);
  EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  ASSERT_NE(msg, nullptr);
  GError *error = nullptr;
  gst_message_parse_error(msg, &error, nullptr);
  EXPECT_TRUE(
      g_error_matches(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  EXPECT_NE(std::string(error->message).find("no-such-host.invalid"),
            std::string::npos);
  g_error_free(error);
  gst_message_unref(msg);
}

TEST(SplitterSink, PeerRebuildsTheStream) {
  SinkPipeline p("chunk-size=256");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));

  const std::vector<Sent> sent = PushStream(p, 60, 1);
  p.EndOfStream();
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 60; }))
      << "got " << peer.Buffers().size();
  ExpectSameStream(sent, peer.Buffers());

  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
}

/* The EOS message waits out `linger` while a team can still NACK the last
 * chunks, and a NACK sent then is answered. */
TEST(SplitterSink, EndOfStreamLingersAndAnswersNacks) {
  SinkPipeline p("chunk-size=256 linger=600");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  PushStream(p, 20, 3);
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 20; }));
  const guint64 retransmits = Stat(p.sink(), "retransmits");

  const gint64 start = g_get_monotonic_time();
  p.EndOfStream();
  ASSERT_TRUE(WaitFor([&] { return Stat(p.sink(), "chunks-cut") > 0; }));
  g_usleep(100 * 1000);
  peer.SendNack({0u});  // chunk 0: the splitter still holds it
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  const gint64 waited_ms = (g_get_monotonic_time() - start) / 1000;
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
  EXPECT_GE(waited_ms, 600);
  EXPECT_GT(Stat(p.sink(), "retransmits"), retransmits);
}

/* linger=0 ends at once; a state change ends a linger early. */
TEST(SplitterSink, LingerZeroOrAStateChangeEndsAtOnce) {
  for (const char *props : {"linger=0", "linger=60000"}) {
    SCOPED_TRACE(props);
    SinkPipeline p(props);
    ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
    TestPeer peer(p.port());
    ASSERT_TRUE(JoinTeam(p, peer));
    PushStream(p, 5, 4);
    const gint64 start = g_get_monotonic_time();
    p.EndOfStream();
    GstMessage *msg = p.WaitMessage(300);
    if (msg) gst_message_unref(msg);
    EXPECT_EQ(msg != nullptr, g_str_equal(props, "linger=0"));
    EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_NULL),
              GST_STATE_CHANGE_SUCCESS);
    EXPECT_LT(g_get_monotonic_time() - start, 2 * G_USEC_PER_SEC);
  }
}

TEST(SplitterSink, PeerRebuildsTheStreamOverIPv6) {
  GSocket *probe = TestPeer::BindUdp("::1");
  if (probe == nullptr) GTEST_SKIP() << "no IPv6 loopback";
  g_object_unref(probe);
  SinkPipeline p("host=::1 chunk-size=300");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port(), "::1");
  ASSERT_TRUE(JoinTeam(p, peer));
  const std::vector<Sent> sent = PushStream(p, 20, 11);
  p.EndOfStream();
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 20; }));
  ExpectSameStream(sent, peer.Buffers());
  StatsPtr stats;
  g_object_get(p.sink(), "stats", &stats.s, nullptr);
  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  ASSERT_EQ(gst_value_array_get_size(peers), 1u);
  const GstStructure *ps =
      gst_value_get_structure(gst_value_array_get_value(peers, 0));
  EXPECT_EQ(std::string(gst_structure_get_string(ps, "endpoint")),
            "[::1]:" + std::to_string(peer.udp_port()));
}

/* Two peers each get half the chunks from the splitter and the other half
 * from each other; both rebuild the whole stream. */
TEST(SplitterSink, TwoPeersBothRebuildTheStream) {
  SinkPipeline p("chunk-size=128");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer a(p.port()), b(p.port());
  ASSERT_TRUE(JoinTeam(p, a));
  ASSERT_TRUE(b.Join());
  ASSERT_TRUE(b.PumpUntil([&] {
    a.Pump(0);
    return b.peer().state() == p2psp::PeerState::kMember &&
           a.peer().neighbours().size() == 1 &&
           UintProp(p.sink(), "num-peers") == 2;
  }));

  const std::vector<Sent> sent = PushStream(p, 40, 2);
  p.EndOfStream();
  ASSERT_TRUE(a.PumpUntil([&] {
    b.Pump(0);
    return a.Buffers().size() >= 40 && b.Buffers().size() >= 40;
  }));
  ExpectSameStream(sent, a.Buffers());
  ExpectSameStream(sent, b.Buffers());
  EXPECT_GT(a.peer().stats().chunks_from_peers, 0u);
  EXPECT_GT(b.peer().stats().chunks_from_peers, 0u);
}

GstCaps *CapsWithStreamheader() {
  GstCaps *caps = gst_caps_new_empty_simple("application/x-test");
  GValue array = G_VALUE_INIT;
  gst_value_array_init(&array, 1);
  GValue v = G_VALUE_INIT;
  g_value_init(&v, GST_TYPE_BUFFER);
  const std::vector<uint8_t> header = Pattern(40, 99);
  GstBuffer *buf = gst_buffer_new_memdup(header.data(), header.size());
  GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_HEADER);
  g_value_take_boxed(&v, buf);
  gst_value_array_append_and_take_value(&array, &v);
  gst_caps_set_value(caps, "streamheader", &array);
  g_value_unset(&array);
  return caps;
}

TEST(SplitterSink, LateJoinerGetsStreamheaderInWelcome) {
  SinkPipeline p;
  GstCaps *caps = CapsWithStreamheader();
  g_object_set(p.src(), "caps", caps, nullptr);
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  PushStream(p, 5, 3);
  /* The caps reach the sink with the first buffer. */
  ASSERT_TRUE(WaitFor([&] { return Stat(p.sink(), "buffers-in") == 5; }));

  TestPeer late(p.port());
  ASSERT_TRUE(JoinTeam(p, late));
  GstCaps *received = gst_caps_from_string(late.peer().welcome_caps().c_str());
  ASSERT_NE(received, nullptr) << late.peer().welcome_caps();
  EXPECT_TRUE(gst_caps_is_equal(received, caps)) << late.peer().welcome_caps();
  gst_caps_unref(received);
  gst_caps_unref(caps);
}

std::vector<uint8_t> ReadTestData(const std::string &name) {
  gchar *contents = nullptr;
  gsize size = 0;
  const std::string path = std::string(P2PSP_TEST_DATA) + "/" + name;
  if (!g_file_get_contents(path.c_str(), &contents, &size, nullptr)) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::vector<uint8_t> data(contents, contents + size);
  g_free(contents);
  return data;
}

/* stream with an ICY metadata block (length byte, text, NUL padding) after
 * every interval bytes, as a radio server sends it to a client that asked
 * for metadata. */
std::vector<uint8_t> WithIcyMetadata(const std::vector<uint8_t> &stream,
                                     size_t interval, const std::string &text) {
  std::vector<uint8_t> wire;
  for (size_t at = 0; at < stream.size(); at += interval) {
    const size_t n = std::min(interval, stream.size() - at);
    wire.insert(wire.end(), stream.begin() + at, stream.begin() + at + n);
    if (n < interval) break;
    const bool first = at == 0;
    const size_t units = first ? (text.size() + 15) / 16 : 0;
    wire.push_back(static_cast<uint8_t>(units));
    if (first) {
      wire.insert(wire.end(), text.begin(), text.end());
      wire.resize(wire.size() + units * 16 - text.size(), 0);
    }
  }
  return wire;
}

/* souphttpsrc's default iradio-mode on a radio mount: caps
 * application/x-icy and metadata blocks in the bytes. The peer gets the MP3
 * alone, with caps typefound from it; the title is a tag on the bus. */
TEST(SplitterSink, IcyMetadataIsStrippedAndTheAudioTypefound) {
  SinkPipeline p;
  GstCaps *caps =
      gst_caps_from_string("application/x-icy, metadata-interval=(int)1000");
  g_object_set(p.src(), "caps", caps, nullptr);
  gst_caps_unref(caps);
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));

  const std::vector<uint8_t> mp3 = ReadTestData("startpoints/tone.mp3");
  ASSERT_GT(mp3.size(), 3000u);
  const std::vector<uint8_t> wire =
      WithIcyMetadata(mp3, 1000, "StreamTitle='Tone in A';");
  for (size_t at = 0; at < wire.size(); at += 777) {
    const std::vector<uint8_t> piece(
        wire.begin() + at, wire.begin() + std::min(wire.size(), at + 777));
    p.Push(MakeBuffer(piece, GST_CLOCK_TIME_NONE, false));
  }
  p.EndOfStream();
  std::vector<uint8_t> got;
  ASSERT_TRUE(peer.PumpUntil([&] {
    got.clear();
    for (const auto &b : peer.Buffers())
      got.insert(got.end(), b.data.begin(), b.data.end());
    return got.size() >= mp3.size();
  })) << "got "
      << got.size() << " of " << mp3.size();
  EXPECT_EQ(got, mp3);
  std::string received_caps;
  for (const auto &item : peer.Items())
    if (item.kind == p2psp::StreamItem::Kind::kCaps) received_caps = item.caps;
  EXPECT_EQ(received_caps.rfind("audio/mpeg", 0), 0u) << received_caps;

  GstBus *bus = gst_element_get_bus(p.pipeline());
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, kTimeoutMs * GST_MSECOND,
                                               GST_MESSAGE_TAG);
  gst_object_unref(bus);
  ASSERT_NE(msg, nullptr);
  GstTagList *tags = nullptr;
  gst_message_parse_tag(msg, &tags);
  gchar *title = nullptr;
  EXPECT_TRUE(gst_tag_list_get_string(tags, GST_TAG_TITLE, &title));
  EXPECT_STREQ(title, "Tone in A");
  g_free(title);
  gst_tag_list_unref(tags);
  gst_message_unref(msg);
}

struct SignalLog {
  std::mutex lock;
  std::vector<std::pair<guint, std::string>> added, removed;
};

void OnPeerAdded(GstElement *, guint id, const gchar *endpoint,
                 SignalLog *log) {
  std::lock_guard<std::mutex> l(log->lock);
  log->added.emplace_back(id, endpoint);
}

void OnPeerRemoved(GstElement *, guint id, const gchar *endpoint,
                   SignalLog *log) {
  std::lock_guard<std::mutex> l(log->lock);
  log->removed.emplace_back(id, endpoint);
}

size_t Count(SignalLog &log, bool added) {
  std::lock_guard<std::mutex> l(log.lock);
  return added ? log.added.size() : log.removed.size();
}

TEST(SplitterSink, PeerSignalsAndNumPeers) {
  SinkPipeline p;
  SignalLog log;
  gint num_peers_notified = 0;
  g_signal_connect(p.sink(), "peer-added", G_CALLBACK(OnPeerAdded), &log);
  g_signal_connect(p.sink(), "peer-removed", G_CALLBACK(OnPeerRemoved), &log);
  g_signal_connect(p.sink(), "notify::num-peers", G_CALLBACK(CountNotify),
                   &num_peers_notified);
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);

  TestPeer first(p.port());
  ASSERT_TRUE(JoinTeam(p, first));
  ASSERT_TRUE(first.PumpUntil([&] { return Count(log, true) == 1; }));
  const std::string first_endpoint =
      "127.0.0.1:" + std::to_string(first.udp_port());
  {
    std::lock_guard<std::mutex> l(log.lock);
    EXPECT_EQ(log.added[0].first, first.peer().id());
    EXPECT_EQ(log.added[0].second, first_endpoint);
  }
  EXPECT_GE(g_atomic_int_get(&num_peers_notified), 1);

  first.Leave();
  ASSERT_TRUE(first.PumpUntil([&] {
    return Count(log, false) == 1 && UintProp(p.sink(), "num-peers") == 0;
  }));
  {
    std::lock_guard<std::mutex> l(log.lock);
    EXPECT_EQ(log.removed[0].first, log.added[0].first);
    EXPECT_EQ(log.removed[0].second, first_endpoint);
  }

  /* Stopping the splitter removes the rest, and tells them why. */
  TestPeer second(p.port());
  ASSERT_TRUE(JoinTeam(p, second));
  EXPECT_NE(second.peer().id(), first.peer().id());
  gst_element_set_state(p.pipeline(), GST_STATE_NULL);
  EXPECT_EQ(Count(log, false), 2u);
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 0u);
  ASSERT_TRUE(second.PumpUntil(
      [&] { return second.peer().state() == p2psp::PeerState::kRemoved; }));
  bool told_shutdown = false;
  for (const auto &ev : second.events())
    told_shutdown |= ev.kind == p2psp::PeerEvent::Kind::kRemoved &&
                     ev.reason == p2psp::RemoveReason::kShutdown;
  EXPECT_TRUE(told_shutdown);
}

TEST(SplitterSink, StatsCountTheStream) {
  SinkPipeline p("chunk-size=200");
  /* The team forms in READY, so even the caps frame has a peer to go to. */
  ASSERT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_READY),
            GST_STATE_CHANGE_SUCCESS);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  const std::vector<Sent> sent = PushStream(p, 30, 4);
  p.EndOfStream();
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 30; }));

  guint64 bytes = 0;
  for (const Sent &s : sent) bytes += s.data.size();
  StatsPtr stats;
  g_object_get(p.sink(), "stats", &stats.s, nullptr);
  ASSERT_NE(stats.s, nullptr);
  guint64 v = 0;
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "buffers-in", &v));
  EXPECT_EQ(v, 30u);
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "bytes-in", &v));
  EXPECT_EQ(v, bytes);
  guint64 cut = 0, chunks_sent = 0, dropped = 0, joined = 0;
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "chunks-cut", &cut));
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "chunks-sent", &chunks_sent));
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "chunks-dropped", &dropped));
  ASSERT_TRUE(gst_structure_get_uint64(stats.s, "peers-joined", &joined));
  /* Frame headers make the chunked stream longer than the media bytes. */
  EXPECT_GT(cut, bytes / 200);
  EXPECT_EQ(chunks_sent, cut);
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(joined, 1u);
  EXPECT_EQ(peer.peer().stats().chunks_from_splitter, chunks_sent);
  for (const char *field : {"bytes-sent", "peers-left", "rejected-datagrams",
                            "rejected-connections", "datagrams-dropped"})
    EXPECT_TRUE(gst_structure_has_field(stats.s, field)) << field;

  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  ASSERT_EQ(gst_value_array_get_size(peers), 1u);
  const GstStructure *ps =
      gst_value_get_structure(gst_value_array_get_value(peers, 0));
  ASSERT_TRUE(gst_structure_has_name(ps, "application/x-p2psp-peer"));
  guint id = 0;
  EXPECT_TRUE(gst_structure_get_uint(ps, "id", &id));
  EXPECT_EQ(id, peer.peer().id());
  EXPECT_STREQ(gst_structure_get_string(ps, "endpoint"),
               ("127.0.0.1:" + std::to_string(peer.udp_port())).c_str());
  guint64 peer_chunks = 0;
  EXPECT_TRUE(gst_structure_get_uint64(ps, "chunks-sent", &peer_chunks));
  EXPECT_EQ(peer_chunks, chunks_sent);
}

TEST(SplitterSink, NoPeersDropsChunksAndRunsOn) {
  SinkPipeline p("chunk-size=64");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  PushStream(p, 50, 5);
  p.EndOfStream();
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 50u);
  const guint64 cut = Stat(p.sink(), "chunks-cut");
  EXPECT_GT(cut, 50u);
  EXPECT_EQ(Stat(p.sink(), "chunks-dropped"), cut);
  EXPECT_EQ(Stat(p.sink(), "chunks-sent"), 0u);
}

void SendGarbageDatagrams(guint16 port, int count) {
  GSocket *sock = TestPeer::BindUdp();
  GSocketAddress *to = g_inet_socket_address_new_from_string("127.0.0.1", port);
  for (int i = 0; i < count; i++) {
    const std::vector<uint8_t> junk = Pattern(10 + i * 30, 1000 + i);
    g_socket_send_to(sock, to, reinterpret_cast<const gchar *>(junk.data()),
                     junk.size(), nullptr, nullptr);
  }
  g_object_unref(to);
  g_object_unref(sock);
}

TEST(SplitterSink, GarbageIsCountedAndHarmless) {
  SinkPipeline p("chunk-size=256");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));

  /* An HTTP client knocking on the wrong door. */
  GSocket *raw = TestPeer::Connect(p.port());
  ASSERT_NE(raw, nullptr);
  const char request[] = "GET / HTTP/1.0\r\n\r\n";
  g_socket_set_blocking(raw, TRUE);
  ASSERT_GT(g_socket_send(raw, request, sizeof request - 1, nullptr, nullptr),
            0);
  SendGarbageDatagrams(p.port(), 5);

  const std::vector<Sent> sent = PushStream(p, 40, 6);
  p.EndOfStream();
  ASSERT_TRUE(peer.PumpUntil([&] {
    return peer.Buffers().size() >= 40 &&
           Stat(p.sink(), "rejected-connections") == 1 &&
           Stat(p.sink(), "rejected-datagrams") == 5;
  })) << "buffers "
      << peer.Buffers().size() << " rejected-connections "
      << Stat(p.sink(), "rejected-connections") << " rejected-datagrams "
      << Stat(p.sink(), "rejected-datagrams");
  ExpectSameStream(sent, peer.Buffers());
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 1u);

  /* The garbage connection was closed by the splitter. */
  g_socket_set_timeout(raw, 5);
  char buf[64];
  gssize n;
  do {
    n = g_socket_receive(raw, buf, sizeof buf, nullptr, nullptr);
  } while (n > 0);
  EXPECT_EQ(n, 0);
  g_object_unref(raw);
}

TEST(SplitterSink, WaitForPeersHoldsTheStream) {
  SinkPipeline p("wait-for-peers=1");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  const std::vector<Sent> sent = PushStream(p, 10, 7);
  p.EndOfStream();

  g_usleep(300 * 1000);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 0u);
  /* Not even the caps frame is cut for nobody. */
  EXPECT_EQ(Stat(p.sink(), "chunks-dropped"), 0u);

  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 10; }));
  ExpectSameStream(sent, peer.Buffers());
  /* The caps waited with the stream: the peer gets them in-band, first. */
  ASSERT_FALSE(peer.Items().empty());
  EXPECT_EQ(peer.Items().front().kind, p2psp::StreamItem::Kind::kCaps);
  EXPECT_EQ(peer.Items().front().caps, "application/x-test");
  EXPECT_EQ(Stat(p.sink(), "chunks-dropped"), 0u);
  /* And in WELCOME: a peer that joins as the team fills up may be told to
   * start after the caps frame. */
  EXPECT_EQ(peer.peer().welcome_caps(), "application/x-test");
}

TEST(SplitterSink, StateChangeInterruptsWaitForPeers) {
  SinkPipeline p("wait-for-peers=1");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  PushStream(p, 3, 8);
  ASSERT_EQ(gst_element_get_state(p.pipeline(), nullptr, nullptr,
                                  kTimeoutMs * GST_MSECOND),
            GST_STATE_CHANGE_SUCCESS);
  g_usleep(200 * 1000);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 0u);

  const gint64 before = g_get_monotonic_time();
  EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_NULL),
            GST_STATE_CHANGE_SUCCESS);
  EXPECT_LT(g_get_monotonic_time() - before, 2 * G_USEC_PER_SEC);
}

/* A pause while render() waits must not leave it stuck once playing again. */
TEST(SplitterSink, WaitForPeersSurvivesPause) {
  SinkPipeline p("wait-for-peers=1");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  const std::vector<Sent> sent = PushStream(p, 5, 10);
  p.EndOfStream();
  ASSERT_EQ(gst_element_get_state(p.pipeline(), nullptr, nullptr,
                                  kTimeoutMs * GST_MSECOND),
            GST_STATE_CHANGE_SUCCESS);
  g_usleep(100 * 1000);
  ASSERT_NE(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  ASSERT_EQ(gst_element_get_state(p.pipeline(), nullptr, nullptr,
                                  kTimeoutMs * GST_MSECOND),
            GST_STATE_CHANGE_SUCCESS);
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  ASSERT_EQ(gst_element_get_state(p.pipeline(), nullptr, nullptr,
                                  kTimeoutMs * GST_MSECOND),
            GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 0u);

  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 5; }))
      << "got " << peer.Buffers().size();
  ExpectSameStream(sent, peer.Buffers());
}

/* wait-for-peers is about the start: a peer leaving later must not stall
 * the stream for the others. */
TEST(SplitterSink, WaitForPeersHoldsOnlyTheStart) {
  SinkPipeline p("wait-for-peers=2");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer a(p.port()), b(p.port());
  ASSERT_TRUE(JoinTeam(p, a));
  ASSERT_TRUE(b.Join());
  ASSERT_TRUE(b.PumpUntil([&] {
    a.Pump(0);
    return UintProp(p.sink(), "num-peers") == 2;
  }));
  PushStream(p, 5, 12);
  ASSERT_TRUE(a.PumpUntil([&] { return Stat(p.sink(), "buffers-in") == 5; }));

  b.Leave();
  ASSERT_TRUE(
      a.PumpUntil([&] { return UintProp(p.sink(), "num-peers") == 1; }));
  PushStream(p, 5, 13);
  ASSERT_TRUE(a.PumpUntil([&] { return Stat(p.sink(), "buffers-in") == 10; }))
      << "the stream stalled when the team shrank";
}

TEST(SplitterSink, LoweringWaitForPeersReleasesTheStream) {
  SinkPipeline p("wait-for-peers=2");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  PushStream(p, 3, 9);
  p.EndOfStream();
  g_usleep(200 * 1000);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 0u);
  g_object_set(p.sink(), "wait-for-peers", 0u, nullptr);
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
  EXPECT_EQ(Stat(p.sink(), "buffers-in"), 3u);
}

}  // namespace

/* ------------------------------------------------------ team health ---- */

TEST(SplitterSinkHealth, PropertyDefaultsAndRanges) {
  ElementPtr sink = MakeSink();
  ASSERT_TRUE(sink);
  EXPECT_EQ(UintProp(sink.get(), "monitors"), 0u);
  EXPECT_EQ(UintProp(sink.get(), "max-chunk-loss"), 32u);
  EXPECT_EQ(UintProp(sink.get(), "peer-timeout"), 1500u);
  auto *klass = G_OBJECT_GET_CLASS(sink.get());
  for (const char *name : {"monitors", "max-chunk-loss", "peer-timeout"}) {
    GParamSpec *pspec = g_object_class_find_property(klass, name);
    ASSERT_NE(pspec, nullptr) << name;
    EXPECT_TRUE(pspec->flags & GST_PARAM_MUTABLE_READY) << name;
    EXPECT_EQ(G_PARAM_SPEC_UINT(pspec)->minimum, 0u) << name;
  }
  /* An hour of silence at most: longer is a mistake, 0 is "never". */
  auto *timeout =
      G_PARAM_SPEC_UINT(g_object_class_find_property(klass, "peer-timeout"));
  EXPECT_EQ(timeout->maximum, 3600000u);
  g_object_set(sink.get(), "monitors", 3u, "max-chunk-loss", 0u, "peer-timeout",
               0u, nullptr);
  EXPECT_EQ(UintProp(sink.get(), "monitors"), 3u);
  EXPECT_EQ(UintProp(sink.get(), "max-chunk-loss"), 0u);
  EXPECT_EQ(UintProp(sink.get(), "peer-timeout"), 0u);
}

/* The next GstP2pspSplitterPeerRemoved on the pipeline's bus: its reason,
 * or "" after timeout_ms. */
std::string NextPeerRemoved(GstElement *pipeline, int timeout_ms,
                            guint *peer_id = nullptr) {
  GstBus *bus = gst_element_get_bus(pipeline);
  const gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
  std::string reason;
  while (reason.empty()) {
    const gint64 left = std::max<gint64>(0, end - g_get_monotonic_time());
    GstMessage *m = gst_bus_timed_pop_filtered(bus, left * GST_USECOND,
                                               GST_MESSAGE_ELEMENT);
    if (m == nullptr) break;
    const GstStructure *s = gst_message_get_structure(m);
    if (gst_structure_has_name(s, "GstP2pspSplitterPeerRemoved")) {
      reason = gst_structure_get_string(s, "reason");
      EXPECT_NE(gst_structure_get_string(s, "endpoint"), nullptr);
      if (peer_id) gst_structure_get_uint(s, "peer-id", peer_id);
    }
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return reason;
}

/* A peer whose process froze (sockets open, nothing sent: no heartbeat) is
 * removed after peer-timeout, 1.5 s by default: well within 2 s. */
TEST(SplitterSinkHealth, FrozenPeerIsRemovedWithinTwoSeconds) {
  SinkPipeline p;
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer frozen(p.port());
  TestPeer alive(p.port());
  ASSERT_TRUE(JoinTeam(p, frozen));
  ASSERT_TRUE(JoinTeam(p, alive, 2));
  /* Both heartbeat for a while: a live peer is never removed. */
  ASSERT_FALSE(alive.PumpUntil(
      [&] {
        frozen.Pump(0);
        return UintProp(p.sink(), "num-peers") != 2;
      },
      2000));
  const gint64 frozen_at = g_get_monotonic_time();
  guint removed_id = 0;
  std::string reason;
  /* The live one keeps pumping (heartbeats); the frozen one never again. */
  ASSERT_TRUE(alive.PumpUntil(
      [&] {
        reason = NextPeerRemoved(p.pipeline(), 0, &removed_id);
        return !reason.empty();
      },
      3000));
  const double seconds = (g_get_monotonic_time() - frozen_at) / 1e6;
  EXPECT_EQ(reason, "timeout");
  EXPECT_EQ(removed_id, frozen.peer().id());
  EXPECT_LT(seconds, 2.0);
  EXPECT_GT(seconds, 1.0);
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 1u);
  EXPECT_EQ(Stat(p.sink(), "peers-timed-out"), 1u);
}

TEST(SplitterSinkHealth, PeerTimeoutZeroNeverRemoves) {
  SinkPipeline p("peer-timeout=0");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer frozen(p.port());
  ASSERT_TRUE(JoinTeam(p, frozen));
  g_usleep(2000000);
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 1u);
  EXPECT_EQ(NextPeerRemoved(p.pipeline(), 0), "");
}

TEST(SplitterSinkHealth, LeavingPeerIsRemovedAsLeft) {
  SinkPipeline p;
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  peer.Leave();
  guint id = 0;
  EXPECT_EQ(NextPeerRemoved(p.pipeline(), kTimeoutMs, &id), "left");
  EXPECT_EQ(id, peer.peer().id());
}

/* monitors=1: the first peer to register is made a monitor (ROLE), the
 * second is not; the stats say so. */
TEST(SplitterSinkHealth, MonitorsMakesTheFirstPeersMonitors) {
  SinkPipeline p("monitors=1");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer first(p.port());
  TestPeer second(p.port());
  ASSERT_TRUE(JoinTeam(p, first));
  ASSERT_TRUE(JoinTeam(p, second, 2));
  EXPECT_TRUE(first.PumpUntil([&] { return first.peer().monitor(); }));
  EXPECT_FALSE(second.peer().monitor());

  StatsPtr stats;
  g_object_get(p.sink(), "stats", &stats.s, nullptr);
  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  ASSERT_EQ(gst_value_array_get_size(peers), 2u);
  for (guint i = 0; i < 2; i++) {
    const GstStructure *ps =
        gst_value_get_structure(gst_value_array_get_value(peers, i));
    guint id = 0;
    gboolean monitor = FALSE;
    ASSERT_TRUE(gst_structure_get_uint(ps, "id", &id));
    ASSERT_TRUE(gst_structure_get_boolean(ps, "monitor", &monitor));
    EXPECT_EQ(monitor != FALSE, id == first.peer().id()) << id;
  }
}

/* A monitor's LOST reports count against the peer that had the chunk from
 * the splitter; over max-chunk-loss it is expelled, told so, and the bus
 * says why. */
TEST(SplitterSinkHealth, LossReportsExpelAndAreCounted) {
  SinkPipeline p("max-chunk-loss=2 chunk-size=64");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer victim(p.port());
  ASSERT_TRUE(JoinTeam(p, victim));
  /* The victim is not pumped while the stream flows, so it floods none of
   * the chunks the splitter gives it: the monitor misses every one of them
   * and reports them LOST. */
  TestPeer monitor(p.port(), "127.0.0.1", /*monitor=*/true);
  ASSERT_TRUE(JoinTeam(p, monitor, 2));
  /* About 12 chunks for the victim: over 2, far below the default 32. */
  for (int i = 0; i < 12; i++) {
    p.Push(MakeBuffer(Pattern(100, i), i * 10 * GST_MSECOND, i % 5 != 0));
    monitor.Pump(5);
  }
  std::string reason;
  guint id = 0;
  ASSERT_TRUE(monitor.PumpUntil([&] {
    reason = NextPeerRemoved(p.pipeline(), 0, &id);
    return !reason.empty();
  }));
  EXPECT_EQ(reason, "expelled");
  EXPECT_EQ(id, victim.peer().id());
  EXPECT_EQ(Stat(p.sink(), "peers-expelled"), 1u);
  EXPECT_GT(Stat(p.sink(), "lost-reports"), 2u);
  EXPECT_GT(monitor.peer().stats().lost_reports_sent, 2u);
  /* The victim, pumped again, learns it was expelled. */
  ASSERT_TRUE(victim.PumpUntil(
      [&] { return victim.peer().state() == p2psp::PeerState::kRemoved; }));
  bool told = false;
  for (const auto &ev : victim.events())
    told |= ev.kind == p2psp::PeerEvent::Kind::kRemoved &&
            ev.reason == p2psp::RemoveReason::kExpelled;
  EXPECT_TRUE(told);
}

TEST(SplitterSinkHealth, StatsHaveTheHealthCounters) {
  SinkPipeline p;
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  StatsPtr stats;
  g_object_get(p.sink(), "stats", &stats.s, nullptr);
  ASSERT_NE(stats.s, nullptr);
  for (const char *field : {"peers-timed-out", "peers-expelled", "lost-reports",
                            "nacks-received", "retransmits", "retransmit-bytes",
                            "retransmits-unavailable", "retransmits-limited"}) {
    guint64 v = 1;
    EXPECT_TRUE(gst_structure_get_uint64(stats.s, field, &v)) << field;
    EXPECT_EQ(v, 0u) << field;
  }
  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  ASSERT_EQ(gst_value_array_get_size(peers), 1u);
  const GstStructure *ps =
      gst_value_get_structure(gst_value_array_get_value(peers, 0));
  guint loss = 1;
  guint64 retransmits = 1, silent = G_MAXUINT64;
  gboolean monitor = TRUE;
  EXPECT_TRUE(gst_structure_get_uint(ps, "loss-counter", &loss));
  EXPECT_TRUE(gst_structure_get_uint64(ps, "retransmits", &retransmits));
  EXPECT_TRUE(gst_structure_get_uint64(ps, "silent-ms", &silent));
  EXPECT_TRUE(gst_structure_get_boolean(ps, "monitor", &monitor));
  EXPECT_EQ(loss, 0u);
  EXPECT_EQ(retransmits, 0u);
  EXPECT_LT(silent, 1500u);
  EXPECT_FALSE(monitor);
}

/* learn-shares reaches the core: the peer is asked to echo its first chunk
 * (flood checks) and the echo proves it; without it nobody echoes. */
bool PeerProven(GstElement *sink, guint64 *echoes) {
  StatsPtr stats;
  g_object_get(sink, "stats", &stats.s, nullptr);
  if (!stats.s || !gst_structure_get_uint64(stats.s, "echoes", echoes))
    return false;
  const GValue *peers = gst_structure_get_value(stats.s, "peers");
  if (!peers || gst_value_array_get_size(peers) != 1) return false;
  gboolean proven = FALSE;
  gst_structure_get_boolean(
      gst_value_get_structure(gst_value_array_get_value(peers, 0)), "proven",
      &proven);
  return proven;
}

void StreamToOnePeer(bool learn, guint64 *echoes, bool *proven) {
  SinkPipeline p(learn ? "chunk-size=256 learn-shares=true" : "chunk-size=256");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  gboolean set = !learn;
  g_object_get(p.sink(), "learn-shares", &set, nullptr);
  EXPECT_EQ(set, learn ? TRUE : FALSE);
  TestPeer peer(p.port());
  ASSERT_TRUE(JoinTeam(p, peer));
  const std::vector<Sent> sent = PushStream(p, 30, 7);
  ASSERT_TRUE(peer.PumpUntil([&] { return peer.Buffers().size() >= 30; }));
  ExpectSameStream(sent, peer.Buffers());
  // Without learn-shares there is nothing to wait for: a second of pumping
  // gives an echo time to come (it comes within milliseconds when asked).
  *proven = peer.PumpUntil([&] { return PeerProven(p.sink(), echoes); },
                           learn ? kTimeoutMs : 1000);
  PeerProven(p.sink(), echoes);
}

TEST(SplitterSinkShares, LearnSharesProvesAPeerByItsEcho) {
  guint64 echoes = 0;
  bool proven = false;
  StreamToOnePeer(true, &echoes, &proven);
  EXPECT_TRUE(proven);
  // A team of one has nobody else to deal to while its chunk is on trial:
  // the chunks pushed before the first echo came are all on trial.
  EXPECT_GE(echoes, 1u);
}

TEST(SplitterSinkShares, WithoutLearnSharesNobodyEchoes) {
  guint64 echoes = 1;
  bool proven = true;
  StreamToOnePeer(false, &echoes, &proven);
  EXPECT_FALSE(proven);
  EXPECT_EQ(echoes, 0u);
}

/* ------------------------------------------ backlog and remove-peer ---- */

/* Pops element messages until a GstP2pspSplitterPeerRemoved with `reason`
 * (others, e.g. "left", are skipped); FALSE after timeout_ms. */
bool FindPeerRemoved(GstElement *pipeline, const char *reason, int timeout_ms,
                     guint *peer_id) {
  const gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
  for (;;) {
    const gint64 left = std::max<gint64>(0, end - g_get_monotonic_time());
    std::string got = NextPeerRemoved(pipeline, left / 1000, peer_id);
    if (got.empty()) return false;
    if (got == reason) return true;
  }
}

/* VmRSS of this process, in kB. */
long RssKb() {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

/* A member that never reads its TCP control channel, while others join and
 * leave (each join and leave queues PEER_JOINED / PEER_LEFT for every
 * member): its backlog in the splitter stays within max-control-backlog
 * (plus a message), the splitter drops it with reason "slow" and counts it,
 * and the rest of the team plays on. */
TEST(SplitterSinkBacklog, PeerThatNeverReadsIsDroppedAsSlow) {
  constexpr guint kMaxBacklog = 4096;
  SinkPipeline p(
      "peer-timeout=0 max-joins-per-address=0 "
      "max-control-backlog=4096");
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  EXPECT_EQ(UintProp(p.sink(), "max-control-backlog"), kMaxBacklog);
  TestPeer stuck(p.port());
  stuck.set_tcp_rcvbuf(1); /* the kernel's minimum */
  TestPeer alive(p.port());
  ASSERT_TRUE(JoinTeam(p, stuck));
  ASSERT_TRUE(JoinTeam(p, alive, 2));
  const guint stuck_id = stuck.peer().id();
  const long rss_before = RssKb();

  /* From here on `stuck` is never pumped again. */
  guint64 max_seen = 0;
  int churns = 0;
  const gint64 give_up = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
  while (Stat(p.sink(), "peers-slow") == 0 &&
         g_get_monotonic_time() < give_up) {
    TestPeer churn(p.port());
    ASSERT_TRUE(JoinTeam(p, churn, 2));
    churn.Leave();
    alive.Pump(0);
    ASSERT_TRUE(WaitFor([&] { return UintProp(p.sink(), "num-peers") <= 2; }));
    max_seen = std::max(max_seen, Stat(p.sink(), "control-backlog-bytes"));
    churns++;
  }
  const long rss_after = RssKb();
  g_print("%d joins and leaves; backlog at most %" G_GUINT64_FORMAT
          " bytes; RSS %ld -> %ld kB\n",
          churns, max_seen, rss_before, rss_after);
  ASSERT_EQ(Stat(p.sink(), "peers-slow"), 1u) << "after " << churns;
  guint removed = 0;
  EXPECT_TRUE(FindPeerRemoved(p.pipeline(), "slow", kTimeoutMs, &removed));
  EXPECT_EQ(removed, stuck_id);
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 1u);
  /* A message's worth above the bound at most (these are tiny). */
  EXPECT_LE(max_seen, kMaxBacklog + 64) << "after " << churns << " churns";
  /* Bounded memory: the splitter did not keep what the peer never read.
   * (Not under AddressSanitizer, whose quarantine keeps freed memory.) */
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(rss_after - rss_before, 32 * 1024) << rss_before << " kB before";
#endif
  EXPECT_TRUE(WaitFor(
      [&] { return Stat(p.sink(), "control-backlog-bytes") < kMaxBacklog; }));

  /* The rest of the team plays. */
  std::vector<Sent> sent = PushStream(p, 60, 7);
  p.EndOfStream();
  EXPECT_TRUE(alive.PumpUntil([&] { return alive.Buffers().size() >= 60; }));
  ExpectSameStream(sent, alive.Buffers());
}

gboolean RemovePeer(GstElement *sink, guint id) {
  gboolean removed = FALSE;
  g_signal_emit_by_name(sink, "remove-peer", id, &removed);
  return removed;
}

/* The remove-peer action signal: the member is told REMOVED (expelled), the
 * others PEER_LEFT, and the usual signal and message follow. */
TEST(SplitterSinkActions, RemovePeerRemovesAMember) {
  /* Outlives the pipeline: stopping it emits peer-removed too. */
  SignalLog log;
  SinkPipeline p;
  ASSERT_NE(p.Play(), GST_STATE_CHANGE_FAILURE);
  g_signal_connect(p.sink(), "peer-removed", G_CALLBACK(OnPeerRemoved), &log);
  TestPeer first(p.port());
  TestPeer second(p.port());
  ASSERT_TRUE(JoinTeam(p, first));
  ASSERT_TRUE(JoinTeam(p, second, 2));
  const guint id = first.peer().id();

  EXPECT_FALSE(RemovePeer(p.sink(), id + 1000));
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 2u);
  EXPECT_TRUE(RemovePeer(p.sink(), id));
  guint removed = 0;
  EXPECT_EQ(NextPeerRemoved(p.pipeline(), kTimeoutMs, &removed), "expelled");
  EXPECT_EQ(removed, id);
  EXPECT_EQ(UintProp(p.sink(), "num-peers"), 1u);
  EXPECT_EQ(Count(log, false), 1u);
  /* The removed peer learns it (REMOVED, reason expelled)... */
  EXPECT_TRUE(first.PumpUntil(
      [&] { return first.peer().state() == p2psp::PeerState::kRemoved; }));
  /* ...and the other one drops it from its neighbours (PEER_LEFT). */
  EXPECT_TRUE(second.PumpUntil([&] {
    for (const auto &ev : second.events())
      if (ev.kind == p2psp::PeerEvent::Kind::kNeighbourRemoved &&
          ev.peer_id == id)
        return true;
    return false;
  }));
  EXPECT_FALSE(RemovePeer(p.sink(), id));
}

/* Stopped, there is no one to remove. */
TEST(SplitterSinkActions, RemovePeerWhenStoppedReturnsFalse) {
  ElementPtr sink = MakeSink();
  ASSERT_TRUE(sink);
  EXPECT_FALSE(RemovePeer(sink.get(), 1));
}

/* The remove reasons are a registered enum, one table for both elements. */
TEST(SplitterSinkActions, RemoveReasonIsARegisteredEnum) {
  ElementPtr sink = MakeSink();
  GType type = g_type_from_name("GstP2pspRemoveReason");
  ASSERT_NE(type, G_TYPE_INVALID);
  GEnumClass *klass = static_cast<GEnumClass *>(g_type_class_ref(type));
  for (const char *nick :
       {"unknown", "shutdown", "protocol-error", "timeout", "team-full",
        "version", "expelled", "auth", "left", "slow"})
    EXPECT_NE(g_enum_get_value_by_nick(klass, nick), nullptr) << nick;
  EXPECT_EQ(g_enum_get_value_by_nick(klass, "expelled")->value, 6);
  g_type_class_unref(klass);
  EXPECT_NE(g_type_from_name("GstP2pspPeerState"), G_TYPE_INVALID);
}

/* IMS (docs/protocol.md 8.5): the group must be a multicast address, the
 * interface must exist; a good one starts and is counted in the stats. */
GError *StartError(const char *props) {
  SinkPipeline p(props);
  EXPECT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_PAUSED),
            GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = p.WaitMessage(kTimeoutMs);
  GError *error = nullptr;
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error(msg, &error, nullptr);
  if (msg) gst_message_unref(msg);
  return error;
}

TEST(SplitterSinkMulticast, BadGroupsAndInterfacesDoNotStart) {
  for (const char *props :
       {"multicast-group=10.0.0.1", "multicast-group=nonsense",
        "multicast-group=239.255.14.7 multicast-iface=nosuchif0"}) {
    GError *error = StartError(props);
    ASSERT_NE(error, nullptr) << props;
    EXPECT_EQ(error->domain, GST_RESOURCE_ERROR) << props;
    EXPECT_EQ(error->code, GST_RESOURCE_ERROR_SETTINGS) << props;
    g_error_free(error);
  }
}

TEST(SplitterSinkMulticast, AGroupOnLoopbackStarts) {
  SinkPipeline p(
      "multicast-group=239.255.14.7 multicast-port=0 multicast-iface=lo "
      "ttl-mc=0");
  ASSERT_EQ(gst_element_set_state(p.pipeline(), GST_STATE_READY),
            GST_STATE_CHANGE_SUCCESS);
  gchar *group = nullptr;
  gint ttl = -1;
  g_object_get(p.sink(), "multicast-group", &group, "ttl-mc", &ttl, nullptr);
  EXPECT_STREQ(group, "239.255.14.7");
  EXPECT_EQ(ttl, 0);
  g_free(group);
  StatsPtr stats;
  g_object_get(p.sink(), "stats", &stats.s, nullptr);
  guint64 chunks = 1, members = 1;
  EXPECT_TRUE(gst_structure_get_uint64(stats.s, "multicast-chunks", &chunks));
  EXPECT_TRUE(gst_structure_get_uint64(stats.s, "multicast-members", &members));
  EXPECT_EQ(chunks, 0u);
  EXPECT_EQ(members, 0u);
  gst_element_set_state(p.pipeline(), GST_STATE_NULL);
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
