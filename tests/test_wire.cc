// Tests of the version 2 wire codec (gst/p2psp/wire.h), endpoints and
// wrap-safe chunk numbers. docs/protocol.md is the specification checked here.
#include <gst/p2psp/bytes_pool.h>
#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/wire.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace p2psp {
namespace {

// ------------------------------------------------------------ helpers ----

// Field-by-field equality, so a round trip is checked without trusting the
// encoder to judge its own output.
bool same(const JoinMsg& a, const JoinMsg& b) {
  return a.version == b.version && a.flags == b.flags;
}
bool same(const WelcomeMsg& a, const WelcomeMsg& b) {
  return a.version == b.version && a.team_id == b.team_id &&
         a.peer_id == b.peer_id && a.token == b.token &&
         a.chunk_size == b.chunk_size &&
         a.splitter_udp_port == b.splitter_udp_port && a.caps == b.caps;
}
bool same(const TeamMsg& a, const TeamMsg& b) {
  return a.public_endpoint == b.public_endpoint &&
         a.next_chunk == b.next_chunk && a.peers == b.peers;
}
bool same(const PeerJoinedMsg& a, const PeerJoinedMsg& b) {
  return a.peer == b.peer;
}
bool same(const PeerLeftMsg& a, const PeerLeftMsg& b) {
  return a.peer_id == b.peer_id;
}
bool same(const RemovedMsg& a, const RemovedMsg& b) {
  return a.reason == b.reason && a.text == b.text;
}
bool same(const TcpGoodbyeMsg&, const TcpGoodbyeMsg&) { return true; }
bool same(const RejectMsg& a, const RejectMsg& b) {
  return a.reason == b.reason && a.text == b.text;
}
bool same(const RoleMsg& a, const RoleMsg& b) { return a.flags == b.flags; }
bool same(const TcpMessage& a, const TcpMessage& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return same(x, std::get<T>(b));
      },
      a);
}

// value() throws (and fails the test) if the literal does not parse.
Endpoint v6(const char* text) { return Endpoint::parse(text).value(); }

std::vector<PeerInfo> make_peers(size_t n) {
  std::vector<PeerInfo> peers;
  for (size_t i = 0; i < n; ++i) {
    auto id = static_cast<uint32_t>(1000 + i * 7);
    auto port = static_cast<uint16_t>(4000 + i);
    Endpoint e;
    if (i % 2 == 0) {
      e = Endpoint::ipv4(10, 0, static_cast<uint8_t>(i >> 8),
                         static_cast<uint8_t>(i), port);
    } else {
      std::array<uint8_t, 16> a{};
      a[0] = 0x20;
      a[1] = 0x01;
      a[14] = static_cast<uint8_t>(i >> 8);
      a[15] = static_cast<uint8_t>(i);
      e = Endpoint::ipv6(a, port);
    }
    peers.push_back({id, e});
  }
  return peers;
}

// One message of every TCP type, with both address families, empty and
// large strings and large and empty peer lists.
std::vector<TcpMessage> sample_tcp_messages() {
  std::vector<TcpMessage> out;
  out.push_back(JoinMsg{});
  out.push_back(JoinMsg{kProtocolVersion, 0xA5A5A5A5u});
  WelcomeMsg w;
  w.team_id = 0xDEADBEEF;
  w.peer_id = 17;
  w.token = 0x0123456789ABCDEFull;
  w.chunk_size = 1024;
  w.splitter_udp_port = 4553;
  out.push_back(w);
  w.caps = "video/x-raw, format=(string)I420, width=(int)320";
  out.push_back(w);
  w.caps = std::string(200000, 'c');
  out.push_back(w);
  TeamMsg team;
  team.public_endpoint = Endpoint::ipv4(192, 0, 2, 1, 40000);
  team.next_chunk = 0xFFFFFFF0u;
  out.push_back(team);
  team.public_endpoint = v6("[2001:db8::1]:65535");
  team.peers = make_peers(300);
  out.push_back(team);
  out.push_back(PeerJoinedMsg{{5, Endpoint::ipv4(127, 0, 0, 1, 1)}});
  out.push_back(PeerJoinedMsg{{0xFFFFFFFFu, v6("[fe80::1:2]:9")}});
  out.push_back(PeerLeftMsg{42});
  out.push_back(RemovedMsg{RemoveReason::kExpelled, "too many losses"});
  out.push_back(RemovedMsg{RemoveReason::kUnknown, ""});
  out.push_back(TcpGoodbyeMsg{});
  out.push_back(RejectMsg{RemoveReason::kVersion, "version 1 only"});
  out.push_back(RejectMsg{RemoveReason::kTeamFull, std::string(5000, 'x')});
  out.push_back(RoleMsg{kFlagMonitor});
  out.push_back(RoleMsg{0});
  out.push_back(RoleMsg{kFlagMonitor | kRoleFlagEcho});
  return out;
}

Bytes body_of(const Bytes& frame) {
  return Bytes(frame.begin() + 4, frame.end());
}

uint32_t read_u32(const Bytes& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) |
         (uint32_t{b[at + 2]} << 8) | uint32_t{b[at + 3]};
}

Bytes sample_payload(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 31 + 7);
  return p;
}

std::vector<Bytes> sample_udp_datagrams() {
  Bytes payload = sample_payload(100);
  return {
      encode_chunk(1, 2, 3, 4, 0, payload.data(), payload.size()),
      encode_chunk(1, 2, kImplicitOrigin, 4, 0, payload.data(), payload.size()),
      encode_chunk(9, 0xFFFFFFFFu, 3, 4, kNoFrameStart, payload.data(), 1),
      encode_hello({77, 5, 0x0102030405060708ull}),
      encode_register({77, 5, 0xFEDCBA9876543210ull, 0x1122334455667788ull}),
      encode_goodbye({77, 5}),
      encode_lost({77, 5, 0x0102030405060708ull, {0xFFFFFFFFu, 0, 7}}),
      encode_nack({77, 5, {42}}),
      encode_request({77, 5, 6}),
      encode_prune({77, 5, 6}),
      encode_heartbeat({77, 5, 0xFEDCBA9876543210ull}),
      encode_probe({77, 0x8000000000000001ull, 5}),
  };
}

std::vector<ChunkNumber> numbers_from(ChunkNumber first, size_t count) {
  std::vector<ChunkNumber> numbers;
  for (size_t i = 0; i < count; ++i) {
    numbers.push_back(first + static_cast<ChunkNumber>(i));
  }
  return numbers;
}

// Drains a reader, returning the messages it yielded and its final status.
TcpReader::Status drain(TcpReader& reader, std::vector<TcpMessage>* out) {
  TcpMessage msg;
  TcpReader::Status status;
  while ((status = reader.next(&msg)) == TcpReader::Status::kMessage) {
    out->push_back(msg);
  }
  return status;
}

// ----------------------------------------------------------- endpoint ----

TEST(Endpoint, ParsesAndFormatsIPv4) {
  auto e = Endpoint::parse("192.168.1.20:4552");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->family, Endpoint::Family::kIPv4);
  EXPECT_EQ(e->addr[0], 192);
  EXPECT_EQ(e->addr[3], 20);
  EXPECT_EQ(e->port, 4552);
  EXPECT_EQ(e->to_string(), "192.168.1.20:4552");
  EXPECT_EQ(*e, Endpoint::ipv4(192, 168, 1, 20, 4552));
}

TEST(Endpoint, ParsesAndFormatsIPv6) {
  auto e = Endpoint::parse("[2001:db8::42]:65535");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->family, Endpoint::Family::kIPv6);
  EXPECT_EQ(e->addr[0], 0x20);
  EXPECT_EQ(e->addr[1], 0x01);
  EXPECT_EQ(e->addr[15], 0x42);
  EXPECT_EQ(e->port, 65535);
  EXPECT_EQ(e->to_string(), "[2001:db8::42]:65535");
  EXPECT_EQ(Endpoint::parse("[::1]:0")->to_string(), "[::1]:0");
}

TEST(Endpoint, FormatThenParseIsIdentity) {
  for (const PeerInfo& p : make_peers(50)) {
    auto back = Endpoint::parse(p.endpoint.to_string());
    ASSERT_TRUE(back) << p.endpoint.to_string();
    EXPECT_EQ(*back, p.endpoint);
  }
}

TEST(Endpoint, RejectsMalformedText) {
  for (const char* bad : {"",
                          "1.2.3.4",
                          "1.2.3.4:",
                          "1.2.3:5",
                          "1.2.3.4.5:6",
                          "256.1.1.1:5",
                          "1.2.3.4:65536",
                          "1.2.3.4:-1",
                          "1.2.3.4:+5",
                          "1.2.3.4:5x",
                          " 1.2.3.4:5",
                          "a.b.c.d:5",
                          "::1:5",
                          "[::1]",
                          "[::1]:",
                          "[::1]5",
                          "[::1:5",
                          "[zz::1]:5",
                          "[1.2.3.4]:5",
                          "[::1]:123456",
                          "[]:5",
                          "host:80",
                          ":80"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
}

TEST(Endpoint, InvalidFormatsAsNone) {
  Endpoint e;
  EXPECT_FALSE(e.valid());
  EXPECT_EQ(e.to_string(), "none");
}

TEST(Endpoint, NormalizedMapsV4MappedToIPv4) {
  Endpoint mapped = v6("[::ffff:10.1.2.3]:99");
  EXPECT_EQ(mapped.family, Endpoint::Family::kIPv6);
  EXPECT_EQ(mapped.normalized(), Endpoint::ipv4(10, 1, 2, 3, 99));
  // Only the exact ::ffff:0:0/96 prefix is mapped.
  for (const char* other : {"[::1]:99", "[::fffe:10.1.2.3]:99",
                            "[1::ffff:10.1.2.3]:99", "[2001:db8::1]:99"}) {
    Endpoint e = v6(other);
    EXPECT_EQ(e.normalized(), e) << other;
  }
  Endpoint plain = Endpoint::ipv4(1, 2, 3, 4, 5);
  EXPECT_EQ(plain.normalized(), plain);
}

TEST(Endpoint, PortAndAddressHelpers) {
  Endpoint a = Endpoint::ipv4(1, 2, 3, 4, 5);
  Endpoint b = a.with_port(6);
  EXPECT_EQ(b.port, 6);
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.same_address(b));
  EXPECT_FALSE(a.same_address(Endpoint::ipv4(1, 2, 3, 5, 5)));
  // The same four bytes in another family are another address.
  std::array<uint8_t, 16> raw{1, 2, 3, 4};
  EXPECT_FALSE(a.same_address(Endpoint::ipv6(raw, 5)));
}

TEST(Endpoint, OrderingIsStrictAndTotal) {
  std::vector<PeerInfo> peers = make_peers(40);
  std::vector<Endpoint> all;
  for (const auto& p : peers) all.push_back(p.endpoint);
  all.push_back(Endpoint());
  for (const Endpoint& x : all) {
    EXPECT_FALSE(x < x);
    for (const Endpoint& y : all) {
      if (x == y) continue;
      EXPECT_NE(x < y, y < x) << x.to_string() << " " << y.to_string();
    }
  }
  std::set<Endpoint> ordered(all.begin(), all.end());
  EXPECT_EQ(ordered.size(), all.size());
}

TEST(Endpoint, HashAgreesWithEquality) {
  EndpointHash hash;
  Endpoint a = v6("[2001:db8::7]:1234");
  EXPECT_EQ(hash(a), hash(*Endpoint::parse("[2001:db8:0::7]:1234")));
  std::unordered_set<Endpoint, EndpointHash> set;
  for (const auto& p : make_peers(300)) set.insert(p.endpoint);
  for (const auto& p : make_peers(300)) set.insert(p.endpoint);
  EXPECT_EQ(set.size(), 300u);
  EXPECT_EQ(set.count(make_peers(300)[123].endpoint), 1u);
}

// ---------------------------------------------------------------- seq ----

TEST(Seq, OrdersAcrossTheWrap) {
  EXPECT_TRUE(seq_before(1, 2));
  EXPECT_FALSE(seq_before(2, 1));
  EXPECT_FALSE(seq_before(5, 5));
  EXPECT_FALSE(seq_after(5, 5));
  EXPECT_TRUE(seq_before(0xFFFFFFFFu, 0));
  EXPECT_TRUE(seq_after(0, 0xFFFFFFFFu));
  EXPECT_TRUE(seq_before(0xFFFFFF00u, 0x100));
  EXPECT_TRUE(seq_after(0x100, 0xFFFFFF00u));
  EXPECT_EQ(seq_distance(0xFFFFFFFEu, 3), 5);
  EXPECT_EQ(seq_distance(3, 0xFFFFFFFEu), -5);
  // Half the space apart is the limit of a meaningful comparison.
  EXPECT_TRUE(seq_before(0, 0x7FFFFFFFu));
  EXPECT_FALSE(seq_before(0, 0x80000001u));
}

TEST(Seq, ConsistentForEveryBaseNearTheWrap) {
  for (uint32_t base = 0xFFFFFF00u; base != 0x100; ++base) {
    for (uint32_t d = 1; d < 1000; d += 37) {
      EXPECT_TRUE(seq_before(base, base + d));
      EXPECT_TRUE(seq_after(base + d, base));
      EXPECT_EQ(seq_distance(base, base + d), static_cast<int32_t>(d));
    }
  }
}

// ---------------------------------------------------------------- UDP ----

TEST(Udp, ChunkRoundTrip) {
  Bytes payload = sample_payload(1024);
  Bytes dgram = encode_chunk(0xCAFEBABE, 0xFFFFFFFFu, 12, 345678, 1023,
                             payload.data(), payload.size());
  ASSERT_EQ(dgram.size(), kChunkHeaderSize + kChunkOriginSize + payload.size());
  auto msg = decode_udp(dgram.data(), dgram.size());
  ASSERT_TRUE(msg);
  const auto& c = std::get<ChunkMsg>(*msg);
  EXPECT_EQ(c.team_id, 0xCAFEBABE);
  EXPECT_EQ(c.number, 0xFFFFFFFFu);
  EXPECT_EQ(c.origin, 12u);
  EXPECT_EQ(c.send_time_ms, 345678u % 65536);  // sent mod 65536
  EXPECT_EQ(c.first_frame_offset, 1023);
  ASSERT_EQ(c.payload_size, payload.size());
  // A view into the datagram, not a copy.
  EXPECT_EQ(c.payload, dgram.data() + kChunkHeaderSize + kChunkOriginSize);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), c.payload));
}

TEST(Udp, ChunkWithImplicitOriginRoundTrip) {
  Bytes payload = sample_payload(1024);
  Bytes dgram = encode_chunk(7, 42, kImplicitOrigin, 65535, kNoFrameStart,
                             payload.data(), payload.size());
  ASSERT_EQ(dgram.size(), kChunkHeaderSize + payload.size());
  auto msg = decode_udp(dgram.data(), dgram.size());
  ASSERT_TRUE(msg);
  const auto& c = std::get<ChunkMsg>(*msg);
  EXPECT_EQ(c.origin, kImplicitOrigin);
  EXPECT_EQ(c.number, 42u);
  EXPECT_EQ(c.send_time_ms, 65535u);
  EXPECT_EQ(c.payload, dgram.data() + kChunkHeaderSize);
  // Stating the origin afterwards changes nothing else.
  Bytes stated = encode_chunk(c, 9);
  auto again = decode_udp(stated.data(), stated.size());
  ASSERT_TRUE(again);
  const auto& s = std::get<ChunkMsg>(*again);
  EXPECT_EQ(s.origin, 9u);
  EXPECT_EQ(s.number, 42u);
  EXPECT_EQ(s.send_time_ms, 65535u);
  EXPECT_EQ(s.first_frame_offset, kNoFrameStart);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), s.payload));
  EXPECT_EQ(encode_chunk(s, kImplicitOrigin), dgram);
}

TEST(Udp, ChunkLayoutIsBigEndian) {
  Bytes payload = sample_payload(3);
  Bytes d = encode_chunk(0x01020304, 0x05060708, 0x090A0B0C, 0x0D0E0F10, 0x0002,
                         payload.data(), payload.size(), nullptr, 0x1112);
  ASSERT_EQ(d.size(), 22u + 3);
  EXPECT_EQ(d[0], 0x50);
  EXPECT_EQ(d[1], kUdpFlagOrigin);
  EXPECT_EQ(d[2], kProtocolVersion);
  EXPECT_EQ(d[3], static_cast<uint8_t>(UdpType::kChunk));
  EXPECT_EQ(read_u32(d, 4), 0x01020304u);
  EXPECT_EQ(read_u32(d, 8), 0x05060708u);
  EXPECT_EQ(d[12], 0x00);  // first frame offset
  EXPECT_EQ(d[13], 0x02);
  EXPECT_EQ(d[14], 0x0F);  // send time, low 16 bits
  EXPECT_EQ(d[15], 0x10);
  EXPECT_EQ(d[16], 0x11);  // the origin's previous chunk, backwards
  EXPECT_EQ(d[17], 0x12);
  EXPECT_EQ(read_u32(d, 18), 0x090A0B0Cu);
  EXPECT_EQ(d[22], payload[0]);
  Bytes implicit = encode_chunk(0x01020304, 0x05060708, kImplicitOrigin,
                                0x0D0E0F10, 0x0002, payload.data(), 3);
  ASSERT_EQ(implicit.size(), 18u + 3);
  EXPECT_EQ(implicit[1], 0);
  EXPECT_EQ(implicit[16], 0);  // no previous chunk named
  EXPECT_EQ(implicit[17], 0);
  EXPECT_EQ(implicit[18], payload[0]);
}

// Whoever sends a chunk on (relay, NACK answer, the splitter's group)
// re-encodes it: the previous chunk the splitter named goes along.
TEST(Udp, PreviousSurvivesStatingTheOrigin) {
  Bytes payload = sample_payload(8);
  Bytes d = encode_chunk(1, 500, kImplicitOrigin, 4, 0, payload.data(),
                         payload.size(), nullptr, 12);
  auto msg = decode_udp(d.data(), d.size());
  ASSERT_TRUE(msg);
  EXPECT_EQ(std::get<ChunkMsg>(*msg).previous, 12);
  Bytes stated = encode_chunk(std::get<ChunkMsg>(*msg), 7);
  auto again = decode_udp(stated.data(), stated.size());
  ASSERT_TRUE(again);
  EXPECT_EQ(std::get<ChunkMsg>(*again).previous, 12);
  EXPECT_EQ(std::get<ChunkMsg>(*again).origin, 7u);
}

// A re-dealt chunk (protocol.md 10.7): FLOOD goes with a stated origin
// only, survives the round trip, and a plain re-encoding (a NACK answer,
// a relay of it) drops it, so that nobody floods it twice.
TEST(Udp, FloodChunkNamesItsOriginAndIsNotPassedOn) {
  Bytes payload = sample_payload(8);
  const Bytes plain = encode_chunk(1, 2, kImplicitOrigin, 4, 0, payload.data(),
                                   payload.size(), nullptr, 3);
  auto decoded = decode_udp(plain.data(), plain.size());
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(std::get<ChunkMsg>(*decoded).flood);
  const Bytes flood = encode_flood_chunk(std::get<ChunkMsg>(*decoded), 9);
  ASSERT_EQ(flood.size(), plain.size() + kChunkOriginSize);
  EXPECT_EQ(flood[1], kUdpFlagOrigin | kUdpFlagFlood);
  auto again = decode_udp(flood.data(), flood.size());
  ASSERT_TRUE(again);
  const ChunkMsg& chunk = std::get<ChunkMsg>(*again);
  EXPECT_TRUE(chunk.flood);
  EXPECT_EQ(chunk.origin, 9u);
  EXPECT_EQ(chunk.previous, 3);
  EXPECT_EQ(Bytes(chunk.payload, chunk.payload + chunk.payload_size), payload);
  const Bytes answer = encode_chunk(chunk, chunk.origin);
  EXPECT_EQ(answer[1], kUdpFlagOrigin);
  // Without a stated origin FLOOD would name nobody: dropped.
  Bytes implicit = plain;
  implicit[1] |= kUdpFlagFlood;
  EXPECT_FALSE(decode_udp(implicit.data(), implicit.size()));
  EXPECT_TRUE(encode_flood_chunk(chunk, kImplicitOrigin).empty());
  // The flag means nothing outside CHUNK.
  Bytes hello = encode_hello({1, 2});
  hello[1] = kUdpFlagFlood;
  EXPECT_FALSE(decode_udp(hello.data(), hello.size()));
}

TEST(Udp, ExplicitOriginZeroAndUnknownFlagsAreRejected) {
  Bytes payload = sample_payload(8);
  Bytes d = encode_chunk(1, 2, 3, 4, 0, payload.data(), payload.size());
  Bytes zero = d;
  for (int i = 18; i < 22; ++i) zero[i] = 0;
  EXPECT_FALSE(decode_udp(zero.data(), zero.size()));
  for (int bit = 3; bit < 8; ++bit) {
    Bytes flagged = d;
    flagged[1] |= static_cast<uint8_t>(1 << bit);
    EXPECT_FALSE(decode_udp(flagged.data(), flagged.size())) << bit;
  }
  // The origin flag means nothing outside CHUNK.
  Bytes hello = encode_hello({1, 2});
  hello[1] = kUdpFlagOrigin;
  EXPECT_FALSE(decode_udp(hello.data(), hello.size()));
}

TEST(Udp, ChunkPayloadBounds) {
  Bytes big = sample_payload(kMaxChunkPayload + 1);
  Bytes max =
      encode_chunk(1, 1, 1, 1, kNoFrameStart, big.data(), kMaxChunkPayload);
  EXPECT_TRUE(decode_udp(max.data(), max.size()));
  Bytes over = encode_chunk(1, 1, 1, 1, kNoFrameStart, big.data(), big.size());
  EXPECT_FALSE(decode_udp(over.data(), over.size()));
  Bytes empty = encode_chunk(1, 1, 1, 1, kNoFrameStart, nullptr, 0);
  EXPECT_FALSE(decode_udp(empty.data(), empty.size()));
}

TEST(Udp, FirstFrameOffsetMustLieInThePayload) {
  Bytes payload = sample_payload(10);
  for (uint16_t offset : {0, 5, 9}) {
    Bytes d = encode_chunk(1, 1, 1, 1, offset, payload.data(), 10);
    auto msg = decode_udp(d.data(), d.size());
    ASSERT_TRUE(msg) << offset;
    EXPECT_EQ(std::get<ChunkMsg>(*msg).first_frame_offset, offset);
  }
  for (uint16_t offset : {10, 11, 0xFFFE}) {
    Bytes d = encode_chunk(1, 1, 1, 1, offset, payload.data(), 10);
    EXPECT_FALSE(decode_udp(d.data(), d.size())) << offset;
  }
  Bytes none = encode_chunk(1, 1, 1, 1, kNoFrameStart, payload.data(), 10);
  EXPECT_TRUE(decode_udp(none.data(), none.size()));
}

TEST(Udp, ControlRoundTrips) {
  Bytes hello = encode_hello({0x11223344, 0x55667788, 0x0A0B0C0D0E0F1011ull});
  ASSERT_EQ(hello.size(), 20u);
  auto h = decode_udp(hello.data(), hello.size());
  ASSERT_TRUE(h);
  EXPECT_EQ(std::get<HelloMsg>(*h).team_id, 0x11223344u);
  EXPECT_EQ(std::get<HelloMsg>(*h).peer_id, 0x55667788u);
  EXPECT_EQ(std::get<HelloMsg>(*h).cookie, 0x0A0B0C0D0E0F1011ull);

  Bytes reg = encode_register({7, 8, 0x8000000000000001ull, 0x99ull});
  ASSERT_EQ(reg.size(), 28u);
  EXPECT_EQ(reg[3], static_cast<uint8_t>(UdpType::kRegister));
  auto r = decode_udp(reg.data(), reg.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<RegisterMsg>(*r).team_id, 7u);
  EXPECT_EQ(std::get<RegisterMsg>(*r).peer_id, 8u);
  EXPECT_EQ(std::get<RegisterMsg>(*r).token, 0x8000000000000001ull);
  EXPECT_EQ(std::get<RegisterMsg>(*r).cookie, 0x99ull);

  Bytes probe = encode_probe({7, 0xC00C1Eull, 8});
  ASSERT_EQ(probe.size(), 24u);
  EXPECT_EQ(probe[3], static_cast<uint8_t>(UdpType::kProbe));
  auto b = decode_udp(probe.data(), probe.size());
  ASSERT_TRUE(b);
  EXPECT_EQ(std::get<ProbeMsg>(*b).cookie, 0xC00C1Eull);
  EXPECT_EQ(std::get<ProbeMsg>(*b).peer_id, 8u);
  // A cookie of 0 means "none": a PROBE never carries it.
  probe = encode_probe({7, 0, 8});
  EXPECT_FALSE(decode_udp(probe.data(), probe.size()));

  Bytes bye = encode_goodbye({9, 10});
  ASSERT_EQ(bye.size(), 12u);
  auto g = decode_udp(bye.data(), bye.size());
  ASSERT_TRUE(g);
  EXPECT_EQ(std::get<GoodbyeMsg>(*g).team_id, 9u);
  EXPECT_EQ(std::get<GoodbyeMsg>(*g).peer_id, 10u);
}

TEST(Udp, HealthMessagesRoundTripWithTheirLayout) {
  Bytes lost = encode_lost({1, 2, 0x1122334455667788ull, {0xFFFFFFFFu, 0, 9}});
  ASSERT_EQ(lost.size(), 8u + 4 + 8 + 2 + 3 * 4);
  EXPECT_EQ(lost[3], static_cast<uint8_t>(UdpType::kLost));
  EXPECT_EQ(read_u32(lost, 8), 2u);
  EXPECT_EQ(read_u32(lost, 12), 0x11223344u);
  EXPECT_EQ(lost[20], 0);
  EXPECT_EQ(lost[21], 3);
  EXPECT_EQ(read_u32(lost, 22), 0xFFFFFFFFu);
  auto l = decode_udp(lost.data(), lost.size());
  ASSERT_TRUE(l);
  const auto& lm = std::get<LostMsg>(*l);
  EXPECT_EQ(lm.team_id, 1u);
  EXPECT_EQ(lm.peer_id, 2u);
  EXPECT_EQ(lm.token, 0x1122334455667788ull);
  EXPECT_EQ(lm.numbers, (std::vector<ChunkNumber>{0xFFFFFFFFu, 0, 9}));

  Bytes nack = encode_nack({3, 4, {5}});
  ASSERT_EQ(nack.size(), 8u + 4 + 2 + 4);
  EXPECT_EQ(nack[3], static_cast<uint8_t>(UdpType::kNack));
  EXPECT_EQ(read_u32(nack, 14), 5u);
  auto n = decode_udp(nack.data(), nack.size());
  ASSERT_TRUE(n);
  EXPECT_EQ(std::get<NackMsg>(*n).peer_id, 4u);
  EXPECT_EQ(std::get<NackMsg>(*n).numbers, std::vector<ChunkNumber>{5});

  Bytes request = encode_request({6, 7, 8});
  ASSERT_EQ(request.size(), 16u);
  EXPECT_EQ(request[3], static_cast<uint8_t>(UdpType::kRequest));
  auto q = decode_udp(request.data(), request.size());
  ASSERT_TRUE(q);
  EXPECT_EQ(std::get<RequestMsg>(*q).peer_id, 7u);
  EXPECT_EQ(std::get<RequestMsg>(*q).origin, 8u);

  Bytes prune = encode_prune({6, 7, 8});
  ASSERT_EQ(prune.size(), 16u);
  EXPECT_EQ(prune[3], static_cast<uint8_t>(UdpType::kPrune));
  auto p = decode_udp(prune.data(), prune.size());
  ASSERT_TRUE(p);
  EXPECT_EQ(std::get<PruneMsg>(*p).origin, 8u);

  Bytes beat = encode_heartbeat({9, 10, 0x8000000000000001ull});
  ASSERT_EQ(beat.size(), 20u);
  EXPECT_EQ(beat[3], static_cast<uint8_t>(UdpType::kHeartbeat));
  auto h = decode_udp(beat.data(), beat.size());
  ASSERT_TRUE(h);
  EXPECT_EQ(std::get<HeartbeatMsg>(*h).peer_id, 10u);
  EXPECT_EQ(std::get<HeartbeatMsg>(*h).token, 0x8000000000000001ull);
}

TEST(Udp, NackAndLostCountsAreBounded) {
  const auto full = numbers_from(0xFFFFFFF0u, kMaxNackNumbers);
  Bytes nack = encode_nack({1, 2, full});
  auto n = decode_udp(nack.data(), nack.size());
  ASSERT_TRUE(n);
  EXPECT_EQ(std::get<NackMsg>(*n).numbers, full);
  Bytes lost = encode_lost({1, 2, 3, full});
  EXPECT_TRUE(decode_udp(lost.data(), lost.size()));

  const auto over = numbers_from(0, kMaxNackNumbers + 1);
  Bytes long_nack = encode_nack({1, 2, over});
  EXPECT_FALSE(decode_udp(long_nack.data(), long_nack.size()));
  Bytes long_lost = encode_lost({1, 2, 3, over});
  EXPECT_FALSE(decode_udp(long_lost.data(), long_lost.size()));
  Bytes empty_nack = encode_nack({1, 2, {}});
  EXPECT_FALSE(decode_udp(empty_nack.data(), empty_nack.size()));
  Bytes empty_lost = encode_lost({1, 2, 3, {}});
  EXPECT_FALSE(decode_udp(empty_lost.data(), empty_lost.size()));
}

TEST(Udp, NackCountMustMatchTheNumbersPresent) {
  Bytes nack = encode_nack({1, 2, {10, 11, 12}});
  // The count claims one number more, or one less, than the datagram holds.
  Bytes more = nack;
  more[13] = 4;
  EXPECT_FALSE(decode_udp(more.data(), more.size()));
  Bytes fewer = nack;
  fewer[13] = 2;
  EXPECT_FALSE(decode_udp(fewer.data(), fewer.size()));
  // A count that would run far past the datagram is refused, not read.
  Bytes huge = nack;
  huge[12] = 0xFF;
  EXPECT_FALSE(decode_udp(huge.data(), huge.size()));
  // Half a number at the end.
  Bytes ragged = nack;
  ragged.push_back(0);
  ragged.push_back(0);
  EXPECT_FALSE(decode_udp(ragged.data(), ragged.size()));
}

TEST(Udp, EveryStrictPrefixIsRejected) {
  for (const Bytes& d : sample_udp_datagrams()) {
    ASSERT_TRUE(decode_udp(d.data(), d.size()));
    for (size_t n = 0; n < d.size(); ++n) {
      // A chunk's payload may be shortened and stay valid; its header not.
      bool chunk = d[3] == static_cast<uint8_t>(UdpType::kChunk);
      const size_t header =
          kChunkHeaderSize + ((d[1] & kUdpFlagOrigin) ? kChunkOriginSize : 0);
      if (chunk && n > header) continue;
      Bytes prefix(d.begin(), d.begin() + static_cast<ptrdiff_t>(n));
      EXPECT_FALSE(decode_udp(prefix.data(), prefix.size()))
          << "type " << int{d[3]} << " cut at " << n;
    }
  }
}

TEST(Udp, BitFlipsInMagicFlagsVersionOrTypeAreRejected) {
  for (const Bytes& d : sample_udp_datagrams()) {
    for (size_t byte = 0; byte < 4; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes flipped = d;
        flipped[byte] ^= static_cast<uint8_t>(1 << bit);
        // A flipped type bit may name another valid type, but never one of
        // the same size: HELLO (2) and GOODBYE (4) are two bits apart.
        // Only CHUNK, whose payload is any bytes, can take in another
        // message (LOST 5 -> CHUNK 1); receivers judge it by its origin.
        // Likewise a chunk's origin flag turns 4 payload bytes into an
        // origin, or an origin into payload, and its signed flag 64 bytes
        // of payload into a signature (which a signed team then checks).
        auto msg = decode_udp(flipped.data(), flipped.size());
        // Flag FLOOD on a chunk with an origin is a re-dealt chunk.
        const bool chunk_flag = byte == 1 && (bit == 0 || bit == 1 || bit == 2);
        const bool as_chunk = (byte == 3 || chunk_flag) && msg &&
                              std::holds_alternative<ChunkMsg>(*msg);
        EXPECT_TRUE(!msg || as_chunk)
            << "byte " << byte << " bit " << bit << " type " << int{d[3]};
      }
    }
  }
}

TEST(Udp, OtherVersionsAreDropped) {
  for (const Bytes& d : sample_udp_datagrams()) {
    for (int version : {0, 1, kProtocolVersion + 1, 255}) {
      Bytes other = d;
      other[2] = static_cast<uint8_t>(version);
      EXPECT_FALSE(decode_udp(other.data(), other.size()));
    }
  }
}

TEST(Udp, TrailingBytesRejectedForFixedSizeMessages) {
  for (Bytes d : {encode_hello({1, 2}), encode_register({1, 2, 3}),
                  encode_goodbye({1, 2}), encode_request({1, 2, 3}),
                  encode_prune({1, 2, 3}), encode_heartbeat({1, 2, 3}),
                  encode_nack({1, 2, {3}}), encode_lost({1, 2, 3, {4}})}) {
    d.push_back(0);
    EXPECT_FALSE(decode_udp(d.data(), d.size())) << int{d[3]};
  }
}

TEST(Udp, TeamIdIsCarriedNotJudged) {
  // The decoder reports the team id; the state machines compare it.
  Bytes d = encode_hello({0xFFFFFFFFu, 0});
  auto m = decode_udp(d.data(), d.size());
  ASSERT_TRUE(m);
  EXPECT_EQ(std::get<HelloMsg>(*m).team_id, 0xFFFFFFFFu);
}

// ---------------------------------------------------------------- TCP ----

TEST(Tcp, EveryMessageRoundTrips) {
  for (const TcpMessage& m : sample_tcp_messages()) {
    Bytes frame = encode_tcp(m);
    ASSERT_GE(frame.size(), 5u);
    EXPECT_EQ(read_u32(frame, 0), frame.size() - 4);
    EXPECT_EQ(frame[4], m.index() + 1) << "type byte follows TcpType";
    Bytes body = body_of(frame);
    auto back = decode_tcp_body(body.data(), body.size());
    ASSERT_TRUE(back) << "type " << int{frame[4]};
    EXPECT_TRUE(same(m, *back)) << "type " << int{frame[4]};
  }
}

TEST(Tcp, EveryReasonRoundTrips) {
  for (int r = 0; r <= static_cast<int>(RemoveReason::kExpelled); ++r) {
    auto reason = static_cast<RemoveReason>(r);
    for (TcpMessage m : {TcpMessage{RemovedMsg{reason, "why"}},
                         TcpMessage{RejectMsg{reason, "why"}}}) {
      Bytes body = body_of(encode_tcp(m));
      auto back = decode_tcp_body(body.data(), body.size());
      ASSERT_TRUE(back) << r;
      EXPECT_TRUE(same(m, *back)) << r;
    }
  }
}

TEST(Tcp, ReasonsBeyondAuthAreRejected) {
  for (TcpMessage m : {TcpMessage{RemovedMsg{RemoveReason::kShutdown, "x"}},
                       TcpMessage{RejectMsg{RemoveReason::kShutdown, "x"}}}) {
    Bytes body = body_of(encode_tcp(m));
    for (int bad : {8, 9, 200, 255}) {
      body[1] = static_cast<uint8_t>(bad);
      EXPECT_FALSE(decode_tcp_body(body.data(), body.size())) << bad;
    }
  }
}

TEST(Tcp, JoinLayout) {
  Bytes frame = encode_tcp(JoinMsg{kProtocolVersion, 0x01020304});
  ASSERT_EQ(frame.size(), 4u + 1 + 5 + 1 + 4);
  EXPECT_EQ(std::string(frame.begin() + 5, frame.begin() + 10), "P2PSP");
  EXPECT_EQ(frame[10], kProtocolVersion);
  EXPECT_EQ(read_u32(frame, 11), 0x01020304u);
}

TEST(Tcp, MonitorFlagAndRoleLayout) {
  EXPECT_EQ(kFlagMonitor, 1u);
  Bytes join = encode_tcp(JoinMsg{kProtocolVersion, kFlagMonitor});
  EXPECT_EQ(read_u32(join, 11), 1u);
  Bytes role = encode_tcp(RoleMsg{kFlagMonitor});
  ASSERT_EQ(role.size(), 4u + 1 + 4);
  EXPECT_EQ(role[4], static_cast<uint8_t>(TcpType::kRole));
  EXPECT_EQ(read_u32(role, 5), kFlagMonitor);
}

TEST(Tcp, JoinUploadLimitRoundTripsAndIsBoundsChecked) {
  EXPECT_EQ(kFlagUploadLimit, 8u);
  const JoinMsg join{kProtocolVersion, kFlagUploadLimit | kFlagMonitor, 300};
  Bytes frame = encode_tcp(join);
  ASSERT_EQ(frame.size(), 4u + 1 + 5 + 1 + 4 + 4);
  EXPECT_EQ(read_u32(frame, 15), 300u);
  Bytes body = body_of(frame);
  auto back = decode_tcp_body(body.data(), body.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<JoinMsg>(*back).flags, kFlagUploadLimit | kFlagMonitor);
  EXPECT_EQ(std::get<JoinMsg>(*back).upload_limit_kbps, 300u);
  // The flag promises four more bytes: a body without them is refused.
  for (size_t cut = 1; cut <= 4; ++cut) {
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size() - cut)) << cut;
  }
  // Without the flag nothing follows the flags, and a limit is not sent.
  Bytes plain = encode_tcp(JoinMsg{kProtocolVersion, 0, 300});
  EXPECT_EQ(plain.size(), 4u + 1 + 5 + 1 + 4);
}

TEST(Tcp, JoinWithAnotherVersionStillDecodes) {
  for (int version : {0, 2, 200, 255}) {
    JoinMsg join{static_cast<uint8_t>(version), 0};
    Bytes body = body_of(encode_tcp(join));
    auto back = decode_tcp_body(body.data(), body.size());
    ASSERT_TRUE(back) << version;
    EXPECT_EQ(std::get<JoinMsg>(*back).version, version);
  }
}

TEST(Tcp, JoinWithWrongMagicIsRejected) {
  Bytes body = body_of(encode_tcp(JoinMsg{}));
  for (size_t i = 1; i <= 5; ++i) {
    Bytes bad = body;
    bad[i] ^= 0x20;  // "p2PSP", "P2pSP", ...
    EXPECT_FALSE(decode_tcp_body(bad.data(), bad.size())) << i;
  }
}

TEST(Tcp, EveryStrictPrefixOfABodyIsRejected) {
  for (const TcpMessage& m : sample_tcp_messages()) {
    Bytes body = body_of(encode_tcp(m));
    // Large bodies: every cut in the first and last 2000 bytes, a stride
    // through the middle, to keep the test fast.
    for (size_t n = 0; n < body.size(); ++n) {
      if (n > 2000 && n + 2000 < body.size() && n % 97 != 0) continue;
      EXPECT_FALSE(decode_tcp_body(body.data(), n))
          << "type " << int{body[0]} << " cut at " << n;
    }
  }
}

TEST(Tcp, TrailingBytesAreRejected) {
  for (const TcpMessage& m : sample_tcp_messages()) {
    Bytes body = body_of(encode_tcp(m));
    body.push_back(0);
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size()))
        << "type " << int{body[0]};
  }
}

TEST(Tcp, UnknownTypesAreRejected) {
  for (int type : {0, 10, 11, 127, 255}) {
    Bytes body = {static_cast<uint8_t>(type)};
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size())) << type;
    body.resize(64, 0);
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size())) << type;
  }
}

TEST(Tcp, UnknownAddressFamilyIsRejected) {
  Bytes body =
      body_of(encode_tcp(PeerJoinedMsg{{1, Endpoint::ipv4(1, 2, 3, 4, 5)}}));
  ASSERT_EQ(body[5], 4);  // type, u32 id, then the family byte
  for (int family : {0, 5, 16, 255}) {
    body[5] = static_cast<uint8_t>(family);
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size())) << family;
  }
}

TEST(Tcp, StringLengthBeyondTheBodyIsRejected) {
  Bytes body = body_of(encode_tcp(RejectMsg{RemoveReason::kTimeout, "abc"}));
  // type, reason, u32 length = 3, "abc"
  ASSERT_EQ(body.size(), 1u + 1 + 4 + 3);
  for (uint32_t len : {4u, 0xFFFFFFFFu, 0x80000000u}) {
    Bytes bad = body;
    for (int i = 0; i < 4; ++i)
      bad[2 + i] = static_cast<uint8_t>(len >> (24 - 8 * i));
    EXPECT_FALSE(decode_tcp_body(bad.data(), bad.size())) << len;
  }
}

TEST(Tcp, HugeTeamCountIsRejectedWithoutAllocating) {
  TeamMsg team;
  team.public_endpoint = Endpoint::ipv4(1, 2, 3, 4, 5);
  team.peers = make_peers(2);
  Bytes body = body_of(encode_tcp(team));
  // type(1) + endpoint(7) + next_chunk(4), then the count.
  const size_t count_at = 1 + 7 + 4;
  ASSERT_EQ(read_u32(body, count_at), 2u);
  for (uint32_t count : {3u, 1000000u, 0xFFFFFFFFu}) {
    for (int i = 0; i < 4; ++i) {
      body[count_at + i] = static_cast<uint8_t>(count >> (24 - 8 * i));
    }
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size())) << count;
  }
}

// ---------------------------------------------------------- TcpReader ----

Bytes concatenated_stream() {
  Bytes stream;
  for (const TcpMessage& m : sample_tcp_messages()) {
    Bytes frame = encode_tcp(m);
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  return stream;
}

void expect_all_samples(const std::vector<TcpMessage>& got) {
  std::vector<TcpMessage> want = sample_tcp_messages();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(same(got[i], want[i])) << "message " << i;
  }
}

TEST(TcpReader, WholeStreamAtOnce) {
  Bytes stream = concatenated_stream();
  TcpReader reader;
  reader.feed(stream.data(), stream.size());
  std::vector<TcpMessage> got;
  EXPECT_EQ(drain(reader, &got), TcpReader::Status::kNeedMore);
  expect_all_samples(got);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(TcpReader, ByteByByte) {
  Bytes stream = concatenated_stream();
  TcpReader reader;
  std::vector<TcpMessage> got;
  for (uint8_t byte : stream) {
    reader.feed(&byte, 1);
    ASSERT_EQ(drain(reader, &got), TcpReader::Status::kNeedMore);
    // Memory stays bounded: never more than one unfinished frame held.
    ASSERT_LE(reader.buffered(), 4 + kMaxTcpMessage);
  }
  expect_all_samples(got);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(TcpReader, RandomSplits) {
  Bytes stream = concatenated_stream();
  std::mt19937 rng(1234);
  for (int round = 0; round < 50; ++round) {
    TcpReader reader;
    std::vector<TcpMessage> got;
    size_t at = 0;
    while (at < stream.size()) {
      size_t max = round % 2 ? 16 : 20000;
      size_t n = std::min(stream.size() - at,
                          std::uniform_int_distribution<size_t>(0, max)(rng));
      reader.feed(stream.data() + at, n);
      at += n;
      ASSERT_EQ(drain(reader, &got), TcpReader::Status::kNeedMore);
    }
    expect_all_samples(got);
  }
}

TEST(TcpReader, PartialFrameNeedsMore) {
  Bytes frame = encode_tcp(PeerLeftMsg{3});
  TcpReader reader;
  TcpMessage msg;
  EXPECT_EQ(reader.next(&msg), TcpReader::Status::kNeedMore);
  reader.feed(frame.data(), frame.size() - 1);
  EXPECT_EQ(reader.next(&msg), TcpReader::Status::kNeedMore);
  EXPECT_EQ(reader.buffered(), frame.size() - 1);
  reader.feed(&frame.back(), 1);
  ASSERT_EQ(reader.next(&msg), TcpReader::Status::kMessage);
  EXPECT_EQ(std::get<PeerLeftMsg>(msg).peer_id, 3u);
}

void expect_sticky_error(TcpReader& reader) {
  TcpMessage msg;
  EXPECT_EQ(reader.next(&msg), TcpReader::Status::kError);
  // Valid bytes after garbage do not revive the stream.
  Bytes good = encode_tcp(TcpGoodbyeMsg{});
  reader.feed(good.data(), good.size());
  EXPECT_EQ(reader.next(&msg), TcpReader::Status::kError);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(TcpReader, ZeroLengthIsAnError) {
  Bytes bytes = {0, 0, 0, 0};
  TcpReader reader;
  reader.feed(bytes.data(), bytes.size());
  expect_sticky_error(reader);
}

TEST(TcpReader, OversizedLengthIsAnErrorBeforeTheBodyArrives) {
  uint32_t len = kMaxTcpMessage + 1;
  Bytes bytes = {static_cast<uint8_t>(len >> 24),
                 static_cast<uint8_t>(len >> 16),
                 static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
  TcpReader reader;
  reader.feed(bytes.data(), bytes.size());
  expect_sticky_error(reader);
}

TEST(TcpReader, MaximumLengthIsAcceptedAsFraming) {
  // A kMaxTcpMessage body is legal framing: the reader waits for it.
  WelcomeMsg w;
  w.caps.assign(kMaxTcpMessage - (1 + 1 + 4 + 4 + 8 + 4 + 2 + 4), 'z');
  Bytes frame = encode_tcp(w);
  ASSERT_EQ(read_u32(frame, 0), kMaxTcpMessage);
  TcpReader reader;
  reader.feed(frame.data(), frame.size() - 1);
  TcpMessage msg;
  EXPECT_EQ(reader.next(&msg), TcpReader::Status::kNeedMore);
  reader.feed(&frame.back(), 1);
  ASSERT_EQ(reader.next(&msg), TcpReader::Status::kMessage);
  EXPECT_EQ(std::get<WelcomeMsg>(msg).caps, w.caps);
}

TEST(TcpReader, UndecodableBodyIsAnError) {
  Bytes stream = encode_tcp(PeerLeftMsg{1});
  Bytes bad = encode_tcp(PeerLeftMsg{2});
  bad.push_back(0xEE);  // one trailing byte inside the frame ...
  bad[3] += 1;          // ... that the length covers
  stream.insert(stream.end(), bad.begin(), bad.end());
  TcpReader reader;
  reader.feed(stream.data(), stream.size());
  TcpMessage msg;
  ASSERT_EQ(reader.next(&msg), TcpReader::Status::kMessage);
  EXPECT_EQ(std::get<PeerLeftMsg>(msg).peer_id, 1u);
  expect_sticky_error(reader);
}

// ------------------------------------------------------------ garbage ----

// Decoding is canonical: any datagram that decodes re-encodes to the same
// bytes. This
// catches a decoder that reads a field from the wrong place or accepts
// bytes it does not account for.
void expect_udp_canonical(const Bytes& input, const UdpMessage& msg) {
  Bytes again;
  if (const auto* c = std::get_if<ChunkMsg>(&msg)) {
    // The signature, if any, too.
    again = c->flood ? encode_flood_chunk(*c, c->origin)
                     : encode_chunk(*c, c->origin);
  } else if (const auto* h = std::get_if<HelloMsg>(&msg)) {
    again = encode_hello(*h);
  } else if (const auto* r = std::get_if<RegisterMsg>(&msg)) {
    again = encode_register(*r);
  } else if (const auto* g = std::get_if<GoodbyeMsg>(&msg)) {
    again = encode_goodbye(*g);
  } else if (const auto* l = std::get_if<LostMsg>(&msg)) {
    again = encode_lost(*l);
  } else if (const auto* n = std::get_if<NackMsg>(&msg)) {
    again = encode_nack(*n);
  } else if (const auto* q = std::get_if<RequestMsg>(&msg)) {
    again = encode_request(*q);
  } else if (const auto* p = std::get_if<PruneMsg>(&msg)) {
    again = encode_prune(*p);
  } else if (const auto* b = std::get_if<ProbeMsg>(&msg)) {
    again = encode_probe(*b);
  } else {
    again = encode_heartbeat(std::get<HeartbeatMsg>(msg));
  }
  EXPECT_EQ(again, input);
}

void expect_tcp_canonical(const Bytes& body, const TcpMessage& msg) {
  EXPECT_EQ(body_of(encode_tcp(msg)), body);
}

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Garbage that often gets past the first checks: a valid message with a few
// random bytes overwritten, or cut, or extended.
Bytes mutate(std::mt19937& rng, Bytes b) {
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !b.empty(); ++i) {
    switch (rng() % 4) {
      case 0:
      case 1:
        b[rng() % b.size()] = static_cast<uint8_t>(rng());
        break;
      case 2:
        b.resize(rng() % (b.size() + 1));
        break;
      default:
        b.push_back(static_cast<uint8_t>(rng()));
        break;
    }
  }
  return b;
}

// Written into a used buffer, a chunk is the same datagram as written
// into a new one: nothing of the buffer's last use is left in it.
TEST(ChunkEncoding, IntoAUsedBufferIsTheSameDatagram) {
  const std::vector<uint8_t> payload(700, 0x42);
  ChunkMsg m;
  m.team_id = 9;
  m.number = 123456789;
  m.first_frame_offset = 3;
  m.previous = 4;
  m.payload = payload.data();
  m.payload_size = payload.size();
  Bytes used(1500, 0xEE);
  encode_chunk(m, 77, &used);
  EXPECT_EQ(used, encode_chunk(m, 77));
  encode_chunk(m, kImplicitOrigin, &used);
  EXPECT_EQ(used, encode_chunk(m, kImplicitOrigin));
  const auto decoded = decode_udp(used.data(), used.size());
  ASSERT_TRUE(decoded && std::holds_alternative<ChunkMsg>(*decoded));
  EXPECT_EQ(std::get<ChunkMsg>(*decoded).payload_size, payload.size());
}

// A buffer is handed out again once nobody else holds it, empty but with
// its capacity: in a steady stream the pool stops growing.
TEST(BytesPool, ABufferNobodyHoldsIsHandedOutAgain) {
  BytesPool pool;
  std::shared_ptr<Bytes> a = pool.take();
  a->assign(1400, 1);
  const uint8_t* storage = a->data();
  SharedBytes kept = a;
  a.reset();
  std::shared_ptr<Bytes> b = pool.take();
  EXPECT_NE(b->data(), storage) << "still held: not handed out";
  kept.reset();
  b.reset();
  std::shared_ptr<Bytes> again = pool.take();
  EXPECT_TRUE(again->empty());
  EXPECT_GE(again->capacity(), 1400u);
  again.reset();
  // A window of 50 chunks kept, the oldest let go as each new one comes.
  BytesPool window_pool;
  std::deque<SharedBytes> window;
  for (int i = 0; i < 10000; i++) {
    std::shared_ptr<Bytes> chunk = window_pool.take();
    chunk->assign(1400, static_cast<uint8_t>(i));
    window.push_back(std::move(chunk));
    if (window.size() > 50) window.pop_front();
  }
  EXPECT_LE(window_pool.size(), 60u);
  for (const SharedBytes& c : window) EXPECT_EQ(c->size(), 1400u);
}

// One chunk held for long (a keyframe kept for late joiners) does not stop
// the others from being used again, and past its limit the pool hands out
// buffers it does not keep.
TEST(BytesPool, OneBufferHeldLongDoesNotStopTheRest) {
  BytesPool pool(100);
  SharedBytes held = pool.take();
  for (int i = 0; i < 1000; i++) pool.take();
  EXPECT_LE(pool.size(), 3u);
  std::vector<SharedBytes> all;
  for (int i = 0; i < 150; i++) all.push_back(pool.take());
  EXPECT_EQ(pool.size(), 100u);
  EXPECT_EQ(all.back().use_count(), 1) << "not kept by the pool";
}

// A buffer may outlive its pool (a datagram still queued for sending when
// the peer goes) and be let go from another thread.
TEST(BytesPool, ABufferMayOutliveItsPool) {
  std::shared_ptr<Bytes> survivor;
  {
    BytesPool pool;
    survivor = pool.take();
    survivor->assign(10, 7);
  }
  EXPECT_EQ(survivor.use_count(), 1);
  std::thread([b = std::move(survivor)]() mutable { b.reset(); }).join();
  EXPECT_FALSE(survivor);
}

TEST(Garbage, UdpDecoderNeverCrashesAndIsCanonical) {
  std::mt19937 rng(20240601);
  std::vector<Bytes> seeds = sample_udp_datagrams();
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    Bytes b = (i % 2) ? mutate(rng, seeds[rng() % seeds.size()])
                      : random_bytes(rng, rng() % 64);
    auto msg = decode_udp(b.data(), b.size());
    if (msg) {
      ++accepted;
      expect_udp_canonical(b, *msg);
    }
  }
  // The mutated half must reach the deep checks, not die at the magic.
  EXPECT_GT(accepted, 1000);
}

TEST(Garbage, TcpBodyDecoderNeverCrashesAndIsCanonical) {
  std::mt19937 rng(777);
  std::vector<Bytes> seeds;
  for (const TcpMessage& m : sample_tcp_messages()) {
    Bytes body = body_of(encode_tcp(m));
    if (body.size() < 4096) seeds.push_back(body);
  }
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    Bytes b = (i % 2) ? mutate(rng, seeds[rng() % seeds.size()])
                      : random_bytes(rng, rng() % 48);
    auto msg = decode_tcp_body(b.data(), b.size());
    if (msg) {
      ++accepted;
      expect_tcp_canonical(b, *msg);
    }
  }
  EXPECT_GT(accepted, 1000);
}

TEST(Garbage, TcpReaderNeverCrashesOnGarbageStreams) {
  std::mt19937 rng(99);
  Bytes valid = concatenated_stream();
  int errors = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes stream = (i % 2)
                       ? mutate(rng, Bytes(valid.begin(), valid.begin() + 300))
                       : random_bytes(rng, 1 + rng() % 512);
    TcpReader reader;
    std::vector<TcpMessage> got;
    TcpReader::Status status = TcpReader::Status::kNeedMore;
    for (size_t at = 0; at < stream.size();) {
      size_t n = std::min(stream.size() - at, size_t{1} + rng() % 64);
      reader.feed(stream.data() + at, n);
      at += n;
      status = drain(reader, &got);
    }
    if (status == TcpReader::Status::kError) {
      ++errors;
      EXPECT_EQ(reader.buffered(), 0u);
    }
  }
  EXPECT_GT(errors, 500);
}

}  // namespace
}  // namespace p2psp
