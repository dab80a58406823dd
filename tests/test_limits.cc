// gst-p2psp: the splitter's limits on what strangers can make it hold
// (docs/security.md, "Limits"): joins per address, handshakes in progress,
// message length before a peer is in the team.
#include <gst/p2psp/join_limiter.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>
#include <gst/p2psp/wire.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <variant>

namespace p2psp {
namespace {

constexpr Micros kSecond = 1000000;

Endpoint office(uint16_t port) { return Endpoint::ipv4(192, 0, 2, 7, port); }

bool closed(const Outbox& out, ConnId conn) {
  return std::find(out.tcp_close.begin(), out.tcp_close.end(), conn) !=
         out.tcp_close.end();
}

// The REJECT the splitter sent on conn, if any.
const RejectMsg* reject_in(const Outbox& out, ConnId conn, TcpMessage* store) {
  for (const TcpSend& send : out.tcp) {
    if (send.conn != conn) continue;
    TcpReader reader;
    reader.feed(send.data.data(), send.data.size());
    if (reader.next(store) != TcpReader::Status::kMessage) continue;
    if (const auto* r = std::get_if<RejectMsg>(store)) return r;
  }
  return nullptr;
}

SplitterConfig config_with(uint32_t per_address, uint32_t handshakes) {
  SplitterConfig config;
  config.team_id = 0x1234;
  config.max_joins_per_address = per_address;
  config.join_window_us = 10 * kSecond;
  config.max_handshakes = handshakes;
  return config;
}

TEST(JoinLimiter, BurstThenRefillOverTheWindow) {
  JoinLimiter limiter(4, 10 * kSecond, 16);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.admit(office(1000 + i), 0));
  EXPECT_FALSE(limiter.admit(office(2000), 0));
  // Another address has its own bucket.
  EXPECT_TRUE(limiter.admit(Endpoint::ipv4(198, 51, 100, 1, 5), 0));
  // One token back every window / 4.
  EXPECT_FALSE(limiter.admit(office(2001), 2 * kSecond));
  EXPECT_TRUE(limiter.admit(office(2002), 3 * kSecond));
  EXPECT_FALSE(limiter.admit(office(2003), 3 * kSecond));
}

TEST(JoinLimiter, CountsIpv6ByTheSlash64) {
  JoinLimiter limiter(2, 10 * kSecond, 16);
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
  a[15] = 1;
  std::array<uint8_t, 16> b = a;
  b[15] = 2;  // same /64, another host
  std::array<uint8_t, 16> c = a;
  c[7] = 2;  // another /64
  EXPECT_TRUE(limiter.admit(Endpoint::ipv6(a, 1), 0));
  EXPECT_TRUE(limiter.admit(Endpoint::ipv6(b, 1), 0));
  EXPECT_FALSE(limiter.admit(Endpoint::ipv6(a, 2), 0));
  EXPECT_TRUE(limiter.admit(Endpoint::ipv6(c, 1), 0));
}

TEST(JoinLimiter, TableStaysBoundedUnderManyAddresses) {
  JoinLimiter limiter(8, 10 * kSecond, 100);
  for (uint32_t i = 0; i < 10000; ++i) {
    const Endpoint from =
        Endpoint::ipv4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i), 1);
    EXPECT_TRUE(limiter.admit(from, i));
    ASSERT_LE(limiter.tracked(), 100u);
  }
}

TEST(JoinLimiter, ZeroMeansNoLimit) {
  JoinLimiter limiter(0, 10 * kSecond, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.admit(office(1), 0));
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(SplitterLimits, ConnectionsOverThePerAddressLimitAreRefusedAtOnce) {
  Splitter splitter(config_with(3, 0));
  Outbox out;
  for (ConnId conn = 1; conn <= 3; ++conn) {
    splitter.on_tcp_accepted(conn, office(uint16_t(4000 + conn)), 0, &out);
    EXPECT_FALSE(closed(out, conn));
  }
  splitter.on_tcp_accepted(4, office(4004), 0, &out);
  EXPECT_TRUE(closed(out, 4));
  TcpMessage store;
  const RejectMsg* reject = reject_in(out, 4, &store);
  ASSERT_NE(reject, nullptr);
  EXPECT_NE(reject->text.find("address"), std::string::npos);
  // Data on a refused connection is ignored, not parsed.
  const Bytes join = encode_tcp(JoinMsg{});
  out.clear();
  splitter.on_tcp_data(4, join.data(), join.size(), 0, &out);
  EXPECT_TRUE(out.tcp.empty());
  // Honest peers from another address are not affected.
  splitter.on_tcp_accepted(5, Endpoint::ipv4(198, 51, 100, 9, 1), 0, &out);
  EXPECT_FALSE(closed(out, 5));
  EXPECT_EQ(splitter.stats().joins_limited, 1u);
  EXPECT_EQ(splitter.stats().rejected_connections, 1u);
}

TEST(SplitterLimits, HandshakesInProgressAreCapped) {
  Splitter splitter(config_with(0, 2));
  Outbox out;
  splitter.on_tcp_accepted(1, office(1), 0, &out);
  splitter.on_tcp_accepted(2, Endpoint::ipv4(198, 51, 100, 1, 1), 0, &out);
  splitter.on_tcp_accepted(3, Endpoint::ipv4(198, 51, 100, 2, 1), 0, &out);
  EXPECT_FALSE(closed(out, 1));
  EXPECT_FALSE(closed(out, 2));
  EXPECT_TRUE(closed(out, 3));
  EXPECT_EQ(splitter.stats().joins_limited, 1u);
  // A finished handshake frees its place.
  out.clear();
  splitter.on_tcp_closed(1, 1000, &out);
  splitter.on_tcp_accepted(4, office(2), 1000, &out);
  EXPECT_FALSE(closed(out, 4));
}

TEST(SplitterLimits, SilentConnectionsTimeOutAndAreCounted) {
  SplitterConfig config = config_with(0, 0);
  config.handshake_timeout_us = kSecond;
  Splitter splitter(config);
  Outbox out;
  for (ConnId conn = 1; conn <= 5; ++conn) {
    splitter.on_tcp_accepted(conn, office(uint16_t(conn)), 0, &out);
  }
  EXPECT_EQ(splitter.next_deadline(), kSecond);
  splitter.tick(kSecond, &out);
  for (ConnId conn = 1; conn <= 5; ++conn) EXPECT_TRUE(closed(out, conn));
  EXPECT_EQ(splitter.stats().handshake_timeouts, 5u);
  EXPECT_EQ(splitter.stats().rejected_connections, 5u);
}

TEST(SplitterLimits, LongMessageBeforeJoinIsRejectedBeforeItArrives) {
  Splitter splitter(config_with(0, 0));
  Outbox out;
  splitter.on_tcp_accepted(1, office(1), 0, &out);
  // A legal frame length for the splitter -> peer direction, far too long
  // for anything a peer sends: refused on the prefix alone.
  const uint8_t prefix[4] = {0x00, 0x01, 0x00, 0x00};
  splitter.on_tcp_data(1, prefix, sizeof prefix, 0, &out);
  EXPECT_TRUE(closed(out, 1));
  EXPECT_EQ(splitter.stats().rejected_connections, 1u);
}

TEST(SplitterLimits, DefaultsLetAnOfficeJoinTogether) {
  // 50 peers behind one NAT starting at the same moment all get in.
  Splitter splitter(SplitterConfig{});
  Outbox out;
  for (ConnId conn = 1; conn <= 50; ++conn) {
    splitter.on_tcp_accepted(conn, office(uint16_t(conn)), 0, &out);
    const Bytes join = encode_tcp(JoinMsg{});
    splitter.on_tcp_data(conn, join.data(), join.size(), 0, &out);
    EXPECT_FALSE(closed(out, conn)) << "connection " << conn;
  }
  EXPECT_EQ(splitter.stats().rejected_connections, 0u);
}

// In an open team the team id is in every datagram: whoever sees one can
// send HELLOs from anywhere. A HELLO introduces nobody (only the splitter's
// TEAM and PEER_JOINED name members), so no stranger becomes a neighbour
// that would be flooded with the stream, and the splitter's word is never
// capped.
TEST(PeerLimits, HellosFromStrangersIntroduceNobody) {
  constexpr uint32_t kTeam = 0xabcdef;
  Peer peer(PeerConfig{}, Endpoint::ipv4(10, 0, 0, 1, 4552));
  Outbox out;
  peer.start(0, &out);
  WelcomeMsg welcome;
  welcome.team_id = kTeam;
  welcome.peer_id = 1;
  welcome.token = 7;
  welcome.chunk_size = 1024;
  welcome.splitter_udp_port = 4553;
  Bytes bytes = encode_tcp(welcome);
  peer.on_tcp_data(bytes.data(), bytes.size(), 1000, &out);
  TeamMsg team;
  team.public_endpoint = Endpoint::ipv4(10, 0, 0, 2, 5000);
  bytes = encode_tcp(team);
  peer.on_tcp_data(bytes.data(), bytes.size(), 2000, &out);
  ASSERT_EQ(peer.state(), PeerState::kMember);

  out.clear();
  for (uint32_t i = 0; i < 1000; ++i) {
    const Bytes hello = encode_hello(HelloMsg{kTeam, 100 + i, 0});
    peer.on_udp(Endpoint::ipv4(203, 0, 113, 5, uint16_t(10000 + i)),
                hello.data(), hello.size(), 3000, &out);
  }
  EXPECT_EQ(peer.neighbours().size(), 0u);
  EXPECT_TRUE(out.udp.empty()) << "nothing goes back to a stranger";

  // The splitter names a peer that said HELLO first, from another address
  // than the one it names: the neighbour is the named address, and the
  // HELLO's address only gets a PROBE (which its owner must echo).
  const Endpoint named = Endpoint::ipv4(198, 51, 100, 9, 7000);
  const Endpoint hello_from = Endpoint::ipv4(203, 0, 113, 5, 10999);
  bytes = encode_tcp(PeerJoinedMsg{PeerInfo{1099, named}});
  peer.on_tcp_data(bytes.data(), bytes.size(), 4000, &out);
  ASSERT_EQ(peer.neighbours().size(), 1u);
  EXPECT_EQ(peer.neighbours()[0].endpoint, named);
  size_t probes = 0;
  for (const UdpSend& send : out.udp) {
    const auto msg = decode_udp(send.data->data(), send.data->size());
    if (msg && std::holds_alternative<ProbeMsg>(*msg)) {
      EXPECT_EQ(send.to, hello_from);
      ++probes;
    }
  }
  EXPECT_EQ(probes, 1u);

  // The splitter's word is never capped.
  for (uint32_t i = 0; i < 100; ++i) {
    bytes = encode_tcp(PeerJoinedMsg{
        PeerInfo{6000 + i, Endpoint::ipv4(198, 51, 100, 1, uint16_t(i + 1))}});
    peer.on_tcp_data(bytes.data(), bytes.size(), 6000, &out);
  }
  EXPECT_EQ(peer.neighbours().size(), 101u);
}

}  // namespace
}  // namespace p2psp
