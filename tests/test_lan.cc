// Peers behind one NAT (P2PSP's EMS, docs/protocol.md 3.2): JOIN's local
// endpoints and PEER_LOCAL on the wire, the splitter introducing members
// that share a public address, and a peer probing a named LAN endpoint
// before it floods there (a LAN endpoint nobody validated is never more
// than a few PROBEs' worth of traffic).
#include <gst/p2psp/egress.h>
#include <gst/p2psp/lan.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>
#include <gtest/gtest.h>

#include <variant>

#include "core_member.h"
#include "register_util.h"
#include "sent_util.h"

namespace p2psp {
namespace {

constexpr uint32_t kTeamId = 0x1a7;
constexpr Micros kSecond = 1000000;

Bytes body_of(const Bytes& frame) {
  return Bytes(frame.begin() + 4, frame.end());
}

std::optional<TcpMessage> round_trip(const TcpMessage& m) {
  const Bytes body = body_of(encode_tcp(m));
  return decode_tcp_body(body.data(), body.size());
}

Endpoint v6(uint8_t last, uint16_t port) {
  std::array<uint8_t, 16> a{};
  a[0] = 0xfd;
  a[15] = last;
  return Endpoint::ipv6(a, port);
}

// ------------------------------------------------------------ wire -------

TEST(LanWire, JoinCarriesLocalEndpointsOfBothFamilies) {
  JoinMsg join(kProtocolVersion, kFlagMonitor | kFlagLocalEndpoints);
  join.local_endpoints = {Endpoint::ipv4(192, 168, 1, 5, 40000), v6(5, 40001)};
  const auto back = round_trip(join);
  ASSERT_TRUE(back);
  const auto& j = std::get<JoinMsg>(*back);
  EXPECT_EQ(j.flags, kFlagMonitor | kFlagLocalEndpoints);
  ASSERT_EQ(j.local_endpoints.size(), 2u);
  EXPECT_EQ(j.local_endpoints[0], join.local_endpoints[0]);
  EXPECT_EQ(j.local_endpoints[1], join.local_endpoints[1]);
  // Layout: magic, version, flags, u8 count, 7 + 19 endpoint bytes.
  EXPECT_EQ(body_of(encode_tcp(join)).size(), 1u + 10 + 1 + 7 + 19);
  // Without the flag nothing follows the flags, as before.
  EXPECT_EQ(body_of(encode_tcp(JoinMsg(kProtocolVersion, 0))).size(), 11u);
}

TEST(LanWire, BadLocalEndpointListsAreRejected) {
  JoinMsg join(kProtocolVersion, kFlagLocalEndpoints);
  join.local_endpoints = {Endpoint::ipv4(192, 168, 1, 5, 40000)};
  const Bytes good = body_of(encode_tcp(join));
  ASSERT_TRUE(decode_tcp_body(good.data(), good.size()));
  for (uint8_t count : {0, 2, 5, 255}) {
    Bytes bad = good;
    bad[11] = count;  // the count byte
    EXPECT_FALSE(decode_tcp_body(bad.data(), bad.size())) << int{count};
  }
  for (size_t cut = 11; cut < good.size(); ++cut) {
    EXPECT_FALSE(decode_tcp_body(good.data(), cut)) << cut;
  }
  Bytes family = good;
  family[12] = 5;
  EXPECT_FALSE(decode_tcp_body(family.data(), family.size()));
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(decode_tcp_body(trailing.data(), trailing.size()));
  // The flag with no list at all.
  const Bytes bare = body_of(encode_tcp(JoinMsg(kProtocolVersion, 0)));
  Bytes flagged = bare;
  flagged[9 + 1] |= kFlagLocalEndpoints;  // low byte of the big-endian flags
  EXPECT_FALSE(decode_tcp_body(flagged.data(), flagged.size()));
}

TEST(LanWire, PeerLocalRoundTripsAndIsBoundsChecked) {
  for (const Endpoint& e : {Endpoint::ipv4(10, 1, 2, 3, 5000), v6(9, 5001)}) {
    const auto back = round_trip(PeerLocalMsg{42, e});
    ASSERT_TRUE(back);
    EXPECT_EQ(std::get<PeerLocalMsg>(*back).peer_id, 42u);
    EXPECT_EQ(std::get<PeerLocalMsg>(*back).endpoint, e);
    const Bytes body = body_of(encode_tcp(PeerLocalMsg{42, e}));
    EXPECT_EQ(body[0], static_cast<uint8_t>(TcpType::kPeerLocal));
    for (size_t cut = 0; cut < body.size(); ++cut) {
      EXPECT_FALSE(decode_tcp_body(body.data(), cut)) << cut;
    }
  }
}

TEST(LanEndpoints, OnlyThoseWorthTellingAreKept) {
  const Endpoint pub = Endpoint::ipv4(203, 0, 113, 7, 6000);
  const Endpoint lan = Endpoint::ipv4(192, 168, 1, 5, 6000);
  EXPECT_TRUE(usable_local_endpoints({pub}, pub).empty());
  EXPECT_TRUE(
      usable_local_endpoints({lan.with_port(0), Endpoint()}, pub).empty());
  EXPECT_EQ(usable_local_endpoints({lan, lan, pub}, pub),
            std::vector<Endpoint>{lan});
  std::vector<Endpoint> many;
  for (uint16_t p = 1; p <= 9; ++p) many.push_back(lan.with_port(p));
  EXPECT_EQ(usable_local_endpoints(many, pub).size(), kMaxLocalEndpoints);
  EXPECT_TRUE(behind_same_nat(pub, pub.with_port(1)));
  EXPECT_FALSE(behind_same_nat(pub, lan));
}

// ------------------------------------------------------------ splitter ---

SplitterConfig splitter_config() {
  SplitterConfig config;
  config.team_id = kTeamId;
  config.udp_port = 4553;
  config.chunk_size = 1000;
  config.max_joins_per_address = 0;
  config.max_handshakes = 0;
  return config;
}

struct Member {
  ConnId conn = 0;
  uint32_t id = 0;
};

struct SplitterBench {
  SplitterBench() : sp(splitter_config()) {}

  // A peer that reports `local` and whose datagrams come from `public_ep`.
  Member join(const Endpoint& public_ep, const std::vector<Endpoint>& local) {
    Member m;
    m.conn = next_conn++;
    sp.on_tcp_accepted(m.conn, public_ep.with_port(40000), now, &out);
    JoinMsg join(kProtocolVersion, local.empty() ? 0 : kFlagLocalEndpoints);
    join.local_endpoints = local;
    const Bytes bytes = encode_tcp(join);
    sp.on_tcp_data(m.conn, bytes.data(), bytes.size(), now, &out);
    uint64_t token = 0;
    for (const TcpMessage& msg : messages_to(m.conn)) {
      if (const auto* w = std::get_if<WelcomeMsg>(&msg)) {
        m.id = w->peer_id;
        token = w->token;
      }
    }
    EXPECT_TRUE(
        test::register_at(sp, public_ep, kTeamId, m.id, token, now, &out));
    return m;
  }

  std::vector<TcpMessage> messages_to(ConnId conn) const {
    std::vector<TcpMessage> all;
    for (const TcpSend& send : out.tcp) {
      if (send.conn != conn) continue;
      TcpReader reader;
      reader.feed(send.data.data(), send.data.size());
      TcpMessage msg;
      while (reader.next(&msg) == TcpReader::Status::kMessage) {
        all.push_back(msg);
      }
    }
    return all;
  }

  std::vector<PeerLocalMsg> locals_to(ConnId conn) const {
    std::vector<PeerLocalMsg> locals;
    for (const TcpMessage& msg : messages_to(conn)) {
      if (const auto* l = std::get_if<PeerLocalMsg>(&msg)) locals.push_back(*l);
    }
    return locals;
  }

  Splitter sp;
  Outbox out;
  Micros now = kSecond;
  ConnId next_conn = 1;
};

// Two members behind one NAT (one public address, two ports) learn each
// other's LAN endpoint, after TEAM / PEER_JOINED named them; a member
// elsewhere learns none, and tells none.
TEST(LanSplitter, MembersSharingAPublicAddressAreIntroduced) {
  SplitterBench bench;
  const Endpoint nat = Endpoint::ipv4(203, 0, 113, 7, 0);
  const Endpoint a_lan = Endpoint::ipv4(192, 168, 1, 11, 5000);
  const Endpoint b_lan = v6(12, 5001);
  const Endpoint c_lan = Endpoint::ipv4(192, 168, 9, 13, 5000);
  const Member a = bench.join(nat.with_port(7001), {a_lan});
  const Member c = bench.join(Endpoint::ipv4(198, 51, 100, 3, 7003), {c_lan});
  EXPECT_TRUE(bench.locals_to(a.conn).empty());
  const Member b = bench.join(nat.with_port(7002), {b_lan});
  const auto to_a = bench.locals_to(a.conn);
  const auto to_b = bench.locals_to(b.conn);
  ASSERT_EQ(to_a.size(), 1u);
  EXPECT_EQ(to_a[0].peer_id, b.id);
  EXPECT_EQ(to_a[0].endpoint, b_lan);
  ASSERT_EQ(to_b.size(), 1u);
  EXPECT_EQ(to_b[0].peer_id, a.id);
  EXPECT_EQ(to_b[0].endpoint, a_lan);
  EXPECT_TRUE(bench.locals_to(c.conn).empty());
  EXPECT_EQ(bench.sp.stats().lan_introductions, 2u);
  // PEER_LOCAL comes after the message that named the member.
  const auto all_b = bench.messages_to(b.conn);
  size_t team_at = all_b.size(), local_at = 0;
  for (size_t i = 0; i < all_b.size(); ++i) {
    if (std::holds_alternative<TeamMsg>(all_b[i])) team_at = i;
    if (std::holds_alternative<PeerLocalMsg>(all_b[i])) local_at = i;
  }
  EXPECT_LT(team_at, local_at);
}

// Peers with no NAT (or a loopback team) report their public endpoint as
// local: nothing to tell. Peers that report nothing get nothing either.
TEST(LanSplitter, NothingNewIsNotTold) {
  SplitterBench bench;
  const Endpoint host = Endpoint::ipv4(127, 0, 0, 1, 0);
  bench.join(host.with_port(7001), {host.with_port(7001)});
  bench.join(host.with_port(7002), {host.with_port(7002)});
  bench.join(host.with_port(7003), {});
  for (ConnId conn = 1; conn < bench.next_conn; ++conn) {
    EXPECT_TRUE(bench.locals_to(conn).empty()) << conn;
  }
  EXPECT_EQ(bench.sp.stats().lan_introductions, 0u);
}

// ------------------------------------------------------------ peer -------

using test::count_to;
using test::decode;

// A member with neighbours 2 and 3 at their public endpoints (one NAT).
struct PeerBench : test::CoreMember {
  PeerBench() : CoreMember(config(), kTeamId) {
    join(kPublic.with_port(7001), {PeerInfo{2, kPublic.with_port(7002)},
                                   PeerInfo{3, kPublic.with_port(7003)}});
  }
  static PeerConfig config() {
    PeerConfig c;
    c.local_endpoints = {Endpoint::ipv4(192, 168, 1, 11, 5000)};
    return c;
  }
  // Our own chunk, and the time to pass it on.
  void own_chunk(ChunkNumber number) {
    CoreMember::own_chunk(number);
    advance(10000);
  }

  const Endpoint kPublic = Endpoint::ipv4(203, 0, 113, 7, 0);
  const Endpoint kLan2 = Endpoint::ipv4(192, 168, 1, 12, 5000);
};

TEST(LanPeer, JoinReportsTheConfiguredLocalEndpoint) {
  PeerBench bench;
  ASSERT_FALSE(bench.join_frame.empty());
  const Bytes body = body_of(bench.join_frame);
  const auto msg = decode_tcp_body(body.data(), body.size());
  ASSERT_TRUE(msg);
  const auto& join = std::get<JoinMsg>(*msg);
  EXPECT_NE(join.flags & kFlagLocalEndpoints, 0u);
  EXPECT_EQ(join.local_endpoints, PeerBench::config().local_endpoints);
}

// PEER_LOCAL: a PROBE to the LAN endpoint, no chunk until it echoes from
// there; then the neighbour moves there, its chunks count as LAN chunks and
// a later PEER_JOINED (its NAT rebinding) does not pull it back.
TEST(LanPeer, ANamedLanEndpointIsProbedThenUsed) {
  PeerBench bench;
  bench.tcp(PeerLocalMsg{2, bench.kLan2});
  const auto cookie = test::take_probe(&bench.out, bench.kLan2);
  ASSERT_TRUE(cookie);
  bench.own_chunk(1);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, bench.kLan2), 0u);
  // A wrong cookie moves nothing (it draws a fresh PROBE).
  bench.udp(bench.kLan2, encode_hello(HelloMsg{kTeamId, 2, *cookie ^ 1}));
  EXPECT_FALSE(bench.neighbour(2)->lan);
  bench.udp(bench.kLan2, encode_hello(HelloMsg{kTeamId, 2, *cookie}));
  ASSERT_TRUE(bench.neighbour(2)->lan);
  EXPECT_EQ(bench.neighbour(2)->endpoint, bench.kLan2);
  EXPECT_EQ(bench.peer.stats().lan_neighbours, 1u);
  bench.out.clear();
  bench.own_chunk(2);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, bench.kLan2), 1u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, bench.kPublic.with_port(7002)), 0u);
  const Bytes payload(500, 0x66);
  bench.udp(bench.kLan2,
            encode_chunk(kTeamId, 3, kImplicitOrigin, 0, kNoFrameStart,
                         payload.data(), payload.size()));
  EXPECT_EQ(bench.peer.stats().chunks_from_lan, 1u);
  EXPECT_EQ(bench.neighbour(2)->path, NeighbourPath::kLan);
  EXPECT_EQ(bench.peer.stats().paths_lan, 1u);
  bench.tcp(PeerJoinedMsg{PeerInfo{2, bench.kPublic.with_port(9002)}});
  EXPECT_EQ(bench.neighbour(2)->endpoint, bench.kLan2);
}

// A member that names a victim as its LAN endpoint gets the victim a few
// PROBEs, never a chunk, and the probing stops.
TEST(LanPeer, AnEndpointThatNeverAnswersGetsAFewProbesOnly) {
  PeerBench bench;
  const Endpoint victim = Endpoint::ipv4(192, 168, 1, 99, 53);
  bench.tcp(PeerLocalMsg{3, victim});
  size_t bytes = 0, probes = 0, chunks = 0;
  // 1.2 s; 120 chunks stay below the debt at which 3 would be dropped.
  for (int i = 0; i < 120; ++i) {
    bench.own_chunk(static_cast<ChunkNumber>(i));
    for (const UdpSend& send : bench.out.udp) {
      if (send.to != victim) continue;
      bytes += send.data->size();
      const auto msg = decode(send);
      probes += msg && std::holds_alternative<ProbeMsg>(*msg);
      chunks += msg && std::holds_alternative<ChunkMsg>(*msg);
    }
    bench.out.clear();
  }
  EXPECT_EQ(probes, static_cast<size_t>(LanCandidates::kAttempts));
  EXPECT_EQ(chunks, 0u);
  EXPECT_EQ(bytes, probes * encode_probe(ProbeMsg{kTeamId, 1, 0}).size());
  ASSERT_TRUE(bench.neighbour(3));
  EXPECT_FALSE(bench.neighbour(3)->lan);
  EXPECT_EQ(bench.peer.stats().probes_sent, probes);
}

// PEER_LOCAL for someone who is no neighbour, or naming the splitter: no
// PROBE.
TEST(LanPeer, PeerLocalForStrangersIsIgnored) {
  PeerBench bench;
  bench.tcp(PeerLocalMsg{99, bench.kLan2});
  bench.tcp(PeerLocalMsg{2, bench.splitter});
  bench.advance(kSecond);
  EXPECT_EQ(count_to<ProbeMsg>(bench.out, bench.kLan2), 0u);
  EXPECT_EQ(count_to<ProbeMsg>(bench.out, bench.splitter), 0u);
}

// Path per member: 3 stays silent, so we ask 2 to relay its chunks; a
// chunk of origin 3 from 2 then says "relayed", its own from 3 "direct".
TEST(LanPeer, PathsFollowWhoBroughtAMembersChunks) {
  PeerBench bench;
  const Bytes payload(500, 0x77);
  const Endpoint two = bench.kPublic.with_port(7002);
  const Endpoint three = bench.kPublic.with_port(7003);
  ChunkNumber number = 0;
  for (int i = 0; i < 100 && bench.peer.stats().requests_sent == 0; ++i) {
    bench.own_chunk(number++);
    bench.udp(two, encode_chunk(kTeamId, number++, kImplicitOrigin, 0,
                                kNoFrameStart, payload.data(), payload.size()));
    bench.advance(10000);
  }
  ASSERT_GT(bench.peer.stats().requests_sent, 0u);
  EXPECT_EQ(bench.neighbour(2)->path, NeighbourPath::kDirect);
  EXPECT_EQ(bench.neighbour(3)->path, NeighbourPath::kUnknown);
  bench.udp(two, encode_chunk(kTeamId, number++, 3, 0, kNoFrameStart,
                              payload.data(), payload.size()));
  EXPECT_EQ(bench.neighbour(3)->path, NeighbourPath::kRelayed);
  EXPECT_EQ(bench.peer.stats().paths_relayed, 1u);
  bench.udp(three, encode_chunk(kTeamId, number++, kImplicitOrigin, 0,
                                kNoFrameStart, payload.data(), payload.size()));
  EXPECT_EQ(bench.neighbour(3)->path, NeighbourPath::kDirect);
  EXPECT_EQ(bench.peer.stats().paths_direct, 2u);
}

}  // namespace
}  // namespace p2psp
