// IP multicast on the splitter's LAN (P2PSP's IMS, docs/protocol.md 8.5):
// MULTICAST and MULTICAST_RECEIVING on the wire, the splitter sending a
// receiving member's chunks once to the group, and a peer taking from the
// group only the splitter's chunks with their origin stated, flooding its
// own only to members that do not receive the group.
#include <gst/p2psp/multicast.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>
#include <gtest/gtest.h>

#include <map>
#include <variant>

#include "core_member.h"
#include "register_util.h"

namespace p2psp {
namespace {

constexpr uint32_t kTeamId = 0x3c;
constexpr Micros kSecond = 1000000;
const Endpoint kGroup = Endpoint::ipv4(239, 255, 42, 1, 5004);

Bytes body_of(const Bytes& frame) {
  return Bytes(frame.begin() + 4, frame.end());
}

std::vector<TcpMessage> tcp_messages(const Outbox& out, ConnId conn) {
  std::vector<TcpMessage> all;
  for (const TcpSend& send : out.tcp) {
    if (send.conn != conn) continue;
    TcpReader reader;
    reader.feed(send.data.data(), send.data.size());
    TcpMessage msg;
    while (reader.next(&msg) == TcpReader::Status::kMessage) all.push_back(msg);
  }
  return all;
}

// Chunks in `out`, by destination: (number, origin as stated).
std::multimap<Endpoint, std::pair<ChunkNumber, uint32_t>> chunks(
    const Outbox& out) {
  std::multimap<Endpoint, std::pair<ChunkNumber, uint32_t>> all;
  for (const UdpSend& send : out.udp) {
    const auto msg = decode_udp(send.data->data(), send.data->size());
    if (const auto* c = msg ? std::get_if<ChunkMsg>(&*msg) : nullptr) {
      all.emplace(send.to, std::make_pair(c->number, c->origin));
    }
  }
  return all;
}

TEST(MulticastWire, MessagesRoundTripAndAreBoundsChecked) {
  std::array<uint8_t, 16> v6{0xff, 0x15};
  v6[15] = 1;
  for (const Endpoint& g : {kGroup, Endpoint::ipv6(v6, 5004)}) {
    const Bytes body = body_of(encode_tcp(MulticastMsg{g}));
    EXPECT_EQ(body[0], static_cast<uint8_t>(TcpType::kMulticast));
    const auto back = decode_tcp_body(body.data(), body.size());
    ASSERT_TRUE(back);
    EXPECT_EQ(std::get<MulticastMsg>(*back).group, g);
    for (size_t cut = 1; cut < body.size(); ++cut) {
      EXPECT_FALSE(decode_tcp_body(body.data(), cut)) << cut;
    }
  }
  const Bytes member = body_of(encode_tcp(MulticastMemberMsg{7}));
  ASSERT_EQ(member.size(), 5u);
  const auto back = decode_tcp_body(member.data(), member.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<MulticastMemberMsg>(*back).peer_id, 7u);
  EXPECT_FALSE(decode_tcp_body(member.data(), 4));
  Bytes receiving = body_of(encode_tcp(MulticastReceivingMsg{}));
  ASSERT_EQ(receiving.size(), 1u);
  EXPECT_TRUE(decode_tcp_body(receiving.data(), receiving.size()));
  receiving.push_back(0);
  EXPECT_FALSE(decode_tcp_body(receiving.data(), receiving.size()));
}

TEST(MulticastRoute, OnlyReceivingMembersAndNewcomersUseTheGroup) {
  EXPECT_FALSE(multicast_route(false, true, 0).group);
  EXPECT_TRUE(multicast_route(false, true, 0).unicast);
  const MulticastRoute receiving = multicast_route(true, true, 10 * kSecond);
  EXPECT_TRUE(receiving.group);
  EXPECT_FALSE(receiving.unicast);
  const MulticastRoute newcomer = multicast_route(true, false, 0);
  EXPECT_TRUE(newcomer.group);
  EXPECT_TRUE(newcomer.unicast);
  const MulticastRoute elsewhere =
      multicast_route(true, false, kMulticastDiscoveryUs);
  EXPECT_FALSE(elsewhere.group);
  EXPECT_TRUE(elsewhere.unicast);
}

// ------------------------------------------------------------ splitter ---

struct Member {
  ConnId conn = 0;
  uint32_t id = 0;
  Endpoint udp;
};

struct SplitterBench {
  explicit SplitterBench(bool group) : sp(config(group)) {}
  static SplitterConfig config(bool group) {
    SplitterConfig c;
    c.team_id = kTeamId;
    c.udp_port = 4553;
    c.chunk_size = 1000;
    c.max_joins_per_address = 0;
    c.max_handshakes = 0;
    if (group) c.multicast_group = kGroup;
    return c;
  }
  Member join(uint8_t host) {
    Member m;
    m.conn = next_conn++;
    m.udp = Endpoint::ipv4(10, 0, 0, host, 5000);
    sp.on_tcp_accepted(m.conn, m.udp.with_port(40000), now, &out);
    const Bytes join = encode_tcp(JoinMsg{});
    sp.on_tcp_data(m.conn, join.data(), join.size(), now, &out);
    uint64_t token = 0;
    for (const TcpMessage& msg : tcp_messages(out, m.conn)) {
      if (const auto* w = std::get_if<WelcomeMsg>(&msg)) {
        m.id = w->peer_id;
        token = w->token;
      }
    }
    EXPECT_TRUE(test::register_at(sp, m.udp, kTeamId, m.id, token, now, &out));
    return m;
  }
  void receiving(const Member& m) {
    const Bytes b = encode_tcp(MulticastReceivingMsg{});
    sp.on_tcp_data(m.conn, b.data(), b.size(), now, &out);
  }
  void stream(size_t chunks) {
    MediaBuffer buffer;
    buffer.data.assign(chunks * 1000, 0xAB);
    sp.push_buffer(buffer, now, &out);
  }
  Splitter sp;
  Outbox out;
  Micros now = kSecond;
  ConnId next_conn = 1;
};

TEST(MulticastSplitter, TheGroupIsNamedAfterWelcome) {
  SplitterBench with(true);
  const Member a = with.join(2);
  const auto msgs = tcp_messages(with.out, a.conn);
  size_t welcome_at = msgs.size(), group_at = msgs.size();
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (std::holds_alternative<WelcomeMsg>(msgs[i])) welcome_at = i;
    if (const auto* g = std::get_if<MulticastMsg>(&msgs[i])) {
      EXPECT_EQ(g->group, kGroup);
      group_at = i;
    }
  }
  ASSERT_LT(group_at, msgs.size());
  EXPECT_LT(welcome_at, group_at);
  SplitterBench without(false);
  const Member b = without.join(2);
  for (const TcpMessage& msg : tcp_messages(without.out, b.conn)) {
    EXPECT_FALSE(std::holds_alternative<MulticastMsg>(msg));
  }
}

// A receiving member's chunks go to the group only, with its id as the
// origin; a member elsewhere keeps getting its own at its endpoint; each
// chunk leaves the splitter once.
TEST(MulticastSplitter, EachChunkLeavesOnce) {
  SplitterBench bench(true);
  const Member lan = bench.join(2);
  const Member far = bench.join(3);
  bench.receiving(lan);
  EXPECT_EQ(bench.sp.stats().multicast_members, 1u);
  bool told = false;
  for (const TcpMessage& msg : tcp_messages(bench.out, far.conn)) {
    const auto* m = std::get_if<MulticastMemberMsg>(&msg);
    told |= m && m->peer_id == lan.id;
  }
  EXPECT_TRUE(told) << "the other members learn who receives the group";
  const Member late = bench.join(4);
  told = false;
  for (const TcpMessage& msg : tcp_messages(bench.out, late.conn)) {
    const auto* m = std::get_if<MulticastMemberMsg>(&msg);
    told |= m && m->peer_id == lan.id;
  }
  EXPECT_TRUE(told) << "and so does a later joiner";
  bench.now += kMulticastDiscoveryUs;  // the newcomers' discovery is over
  bench.out.clear();
  bench.stream(40);
  const auto sent = chunks(bench.out);
  std::map<ChunkNumber, int> copies;
  size_t to_group = 0, to_far = 0;
  for (const auto& [to, chunk] : sent) {
    ++copies[chunk.first];
    EXPECT_NE(to, lan.udp) << "a receiving member gets nothing unicast";
    if (to == kGroup) {
      ++to_group;
      EXPECT_EQ(chunk.second, lan.id);
    }
    if (to == far.udp) ++to_far;
  }
  EXPECT_EQ(copies.size(), 40u);
  for (const auto& [number, n] : copies) EXPECT_EQ(n, 1) << number;
  EXPECT_GT(to_group, 0u);
  EXPECT_GT(to_far, 0u);
  EXPECT_EQ(bench.sp.stats().multicast_chunks, to_group);
}

// For its first seconds a member's chunks go to the group as well, so a
// member on the LAN can find out it receives it.
TEST(MulticastSplitter, NewcomersChunksAlsoGoToTheGroup) {
  SplitterBench bench(true);
  const Member a = bench.join(2);
  bench.out.clear();
  bench.stream(3);
  const auto sent = chunks(bench.out);
  EXPECT_EQ(sent.count(a.udp), 3u);
  EXPECT_EQ(sent.count(kGroup), 3u);
}

// Without a group, MULTICAST_RECEIVING changes nothing.
TEST(MulticastSplitter, ReceivingWithoutAGroupIsIgnored) {
  SplitterBench bench(false);
  const Member a = bench.join(2);
  bench.receiving(a);
  EXPECT_EQ(bench.sp.stats().multicast_members, 0u);
  bench.out.clear();
  bench.stream(2);
  EXPECT_EQ(chunks(bench.out).count(a.udp), 2u);
  EXPECT_EQ(bench.sp.stats().multicast_chunks, 0u);
}

// ------------------------------------------------------------ peer -------

struct PeerBench : test::CoreMember {
  PeerBench() : CoreMember(PeerConfig{}, kTeamId) {
    join(Endpoint::ipv4(10, 0, 0, 9, 5000),
         {PeerInfo{2, kTwo}, PeerInfo{3, kThree}});
  }
  void group(const Endpoint& from, const Bytes& bytes) {
    peer.on_multicast(from, bytes.data(), bytes.size(), now, &out);
  }
  Bytes chunk(ChunkNumber number, uint32_t origin) {
    const Bytes payload(500, 0x5a);
    return encode_chunk(kTeamId, number, origin, 0, kNoFrameStart,
                        payload.data(), payload.size());
  }
  void flush() {
    now += 50000;
    peer.tick(now, &out);
  }
  size_t receiving_sent() const {
    size_t n = 0;
    for (const TcpSend& send : out.tcp) {
      TcpReader reader;
      reader.feed(send.data.data(), send.data.size());
      TcpMessage msg;
      while (reader.next(&msg) == TcpReader::Status::kMessage) {
        n += std::holds_alternative<MulticastReceivingMsg>(msg);
      }
    }
    return n;
  }

  const Endpoint kTwo = Endpoint::ipv4(10, 0, 0, 2, 5000);
  const Endpoint kThree = Endpoint::ipv4(10, 0, 0, 3, 5000);
};

TEST(MulticastPeer, NothingFromAGroupNobodyNamed) {
  PeerBench bench;
  bench.group(bench.splitter, bench.chunk(1, 2));
  EXPECT_EQ(bench.peer.stats().chunks_from_multicast, 0u);
  EXPECT_EQ(bench.receiving_sent(), 0u);
}

TEST(MulticastPeer, TakesTheSplittersChunksFromTheGroupOnly) {
  PeerBench bench;
  bench.tcp(MulticastMsg{kGroup});
  bool named = false;
  for (const PeerEvent& e : bench.peer.take_events()) {
    named |= e.kind == PeerEvent::Kind::kMulticastGroup && e.endpoint == kGroup;
  }
  EXPECT_TRUE(named);
  const uint64_t rejected = bench.peer.stats().rejected_datagrams;
  // Spoofed: not the splitter's address; no origin stated; not a chunk.
  bench.group(bench.kTwo, bench.chunk(1, 2));
  bench.group(bench.splitter, bench.chunk(2, kImplicitOrigin));
  bench.group(bench.splitter, encode_hello(HelloMsg{kTeamId, 2, 0}));
  EXPECT_EQ(bench.peer.stats().rejected_datagrams, rejected + 3);
  EXPECT_EQ(bench.peer.stats().chunks_from_multicast, 0u);
  // Member 2's chunk from the group: taken, not flooded, told once.
  bench.group(bench.splitter, bench.chunk(3, 2));
  bench.group(bench.splitter, bench.chunk(4, 2));
  bench.flush();
  EXPECT_EQ(bench.peer.stats().chunks_from_multicast, 2u);
  EXPECT_EQ(bench.peer.stats().multicast, 1u);
  EXPECT_EQ(bench.receiving_sent(), 1u);
  EXPECT_TRUE(chunks(bench.out).empty());
  // Our own chunk from the group goes to every neighbour: that 2's chunks
  // came from the group says nothing (a newcomer's go there too)...
  bench.out.clear();
  bench.group(bench.splitter, bench.chunk(5, 1));
  bench.flush();
  EXPECT_EQ(chunks(bench.out).count(bench.kTwo), 1u);
  // ... but once the splitter says 2 receives the group, to 3 only.
  bench.tcp(MulticastMemberMsg{2});
  bench.out.clear();
  bench.group(bench.splitter, bench.chunk(6, 1));
  bench.flush();
  const auto sent = chunks(bench.out);
  EXPECT_EQ(sent.count(bench.kThree), 1u);
  EXPECT_EQ(sent.count(bench.kTwo), 0u);
  EXPECT_EQ(bench.peer.stats().paths_multicast, 1u);
}

}  // namespace
}  // namespace p2psp
