// Team health on the in-memory network and on the bare state machines:
// liveness (heartbeats, timeouts), monitors and loss-based expulsion, NACK
// loss recovery, and REQUEST/PRUNE route discovery (docs/protocol.md
// section 10).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>

#include "core_member.h"
#include "register_util.h"
#include "sim_network.h"

namespace p2psp {
namespace {

using sim::NodeId;
using sim::PeerNode;
using sim::SplitterNode;

constexpr uint32_t kTeamId = 0x4ea1742;
constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;
// 1316-byte buffers at 1 Mb/s.
constexpr size_t kBufferSize = 1316;
constexpr Micros kBufferInterval = kBufferSize * 8;
constexpr Micros kStreamStart = 500000;
constexpr Micros kSecond = 1000000;

Endpoint splitter_udp() {
  return Endpoint::ipv4(10, 0, 0, 1, kSplitterUdpPort);
}
Endpoint peer_udp(size_t index) {
  return Endpoint::ipv4(10, 1, static_cast<uint8_t>(index / 200),
                        static_cast<uint8_t>(index % 200 + 1), 5000);
}

SplitterConfig splitter_config(uint32_t chunk_size = 1024) {
  SplitterConfig config;
  config.chunk_size = chunk_size;
  config.team_id = kTeamId;
  config.udp_port = kSplitterUdpPort;
  return config;
}

MediaBuffer make_buffer(size_t index, std::mt19937_64& rng) {
  MediaBuffer b;
  b.data.resize(kBufferSize);
  for (uint8_t& byte : b.data) byte = static_cast<uint8_t>(rng());
  b.pts = index * kBufferInterval * 1000;
  b.dts = b.pts;
  b.duration = kBufferInterval * 1000;
  b.flags = index % 30 == 0 ? 0u : uint32_t{MediaBuffer::kDeltaUnit};
  return b;
}

// A peer that can be frozen: it stops reading, ticking and sending, its
// sockets stay open (a SIGSTOPped process, a hung host).
class FreezablePeer : public PeerNode {
 public:
  using PeerNode::PeerNode;
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    if (!frozen) PeerNode::on_udp(from, data, size, now, out);
  }
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out) override {
    if (!frozen) PeerNode::on_tcp_data(conn, data, size, now, out);
  }
  void tick(Micros now, Outbox* out) override {
    if (!frozen) PeerNode::tick(now, out);
  }
  Micros next_deadline() const override {
    return frozen ? sim::kNever : PeerNode::next_deadline();
  }
  bool frozen = false;
};

struct Team {
  explicit Team(const SplitterConfig& config, uint64_t seed = 1) : net(seed) {
    splitter =
        net.add_node(std::make_shared<SplitterNode>(config), splitter_udp());
  }

  NodeId add_peer(const PeerConfig& config = PeerConfig()) {
    auto node = std::make_shared<FreezablePeer>(
        config, Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort));
    // Playout is only counted, to keep big runs light.
    node->on_item = [](const StreamItem&) {};
    const NodeId id = net.add_node(node, peer_udp(peers.size()));
    peers.push_back(id);
    sim::start_peer(net, id, splitter);
    return id;
  }

  // Buffers at the stream's pace from `start` for `duration`; the last
  // partial chunk is flushed.
  void schedule_stream(Micros start, Micros duration, uint64_t seed = 7) {
    auto rng = std::make_shared<std::mt19937_64>(seed);
    const size_t count = duration / kBufferInterval;
    net.schedule(start, [this] {
      net.with(splitter, [&](Micros now, Outbox* out) {
        sp().set_caps("video/x-test", now, out);
      });
    });
    for (size_t i = 0; i < count; ++i) {
      net.schedule(start + i * kBufferInterval, [this, i, rng] {
        const MediaBuffer buffer = make_buffer(i, *rng);
        net.with(splitter, [&](Micros now, Outbox* out) {
          sp().push_buffer(buffer, now, out);
        });
      });
    }
    net.schedule(start + count * kBufferInterval, [this] {
      net.with(splitter,
               [&](Micros now, Outbox* out) { sp().flush(now, out); });
    });
  }

  Splitter& sp() { return net.node<SplitterNode>(splitter)->splitter; }
  SplitterNode& splitter_node() { return *net.node<SplitterNode>(splitter); }
  FreezablePeer& peer(size_t i) { return *net.node<FreezablePeer>(peers[i]); }

  // Cuts every datagram between two peers, both ways.
  void block_pair(size_t a, size_t b, double loss = 1.0) {
    net.set_link(peers[a], peers[b], sim::LinkParams{1000, loss});
    net.set_link(peers[b], peers[a], sim::LinkParams{1000, loss});
  }

  sim::Network net;
  NodeId splitter = 0;
  std::vector<NodeId> peers;
};

const SplitterEvent* removal_of(const SplitterNode& node, uint32_t peer_id) {
  for (const SplitterEvent& e : node.events) {
    if (e.kind == SplitterEvent::Kind::kPeerRemoved && e.peer_id == peer_id) {
      return &e;
    }
  }
  return nullptr;
}

bool lists_neighbour(const Peer& peer, uint32_t peer_id) {
  for (const NeighbourInfo& n : peer.neighbours()) {
    if (n.id == peer_id) return true;
  }
  return false;
}

std::optional<ChunkMsg> as_chunk(const Bytes& datagram) {
  auto msg = decode_udp(datagram.data(), datagram.size());
  if (!msg || !std::holds_alternative<ChunkMsg>(*msg)) return std::nullopt;
  return std::get<ChunkMsg>(*msg);
}

// ------------------------------------------------------------ liveness --

TEST(Liveness, FrozenPeerIsRemovedWithinTwoSecondsAndCostsNothing) {
  constexpr size_t kPeers = 8;
  constexpr size_t kFrozen = 3;
  constexpr Micros kFreezeAt = kStreamStart + 1 * kSecond;
  Team team(splitter_config());
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  const Endpoint frozen_udp = peer_udp(kFrozen);
  Micros last_from_peer_to_frozen = 0;
  team.net.set_udp_tap(
      [&](Micros now, const Endpoint& from, const Endpoint& to, const Bytes&) {
        if (to == frozen_udp && from != splitter_udp()) {
          last_from_peer_to_frozen = now;
        }
      });
  team.schedule_stream(kStreamStart, 4 * kSecond);
  team.net.run_until(kFreezeAt);
  const uint32_t frozen_id = team.peer(kFrozen).peer.id();
  team.peer(kFrozen).frozen = true;
  team.net.run_until(kStreamStart + 5 * kSecond);

  const SplitterEvent* removed = removal_of(team.splitter_node(), frozen_id);
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->reason, RemoveReason::kTimeout);
  EXPECT_EQ(team.sp().stats().peers_timed_out, 1u);
  EXPECT_EQ(team.sp().num_peers(), kPeers - 1);
  // Heard last at most one heartbeat period before the freeze; PEER_LEFT
  // then takes one link delay to the neighbours.
  EXPECT_LE(last_from_peer_to_frozen, kFreezeAt + 2 * kSecond);
  EXPECT_GE(last_from_peer_to_frozen, kFreezeAt +
                                          SplitterConfig().peer_timeout_us -
                                          PeerConfig().heartbeat_interval_us);
  const uint64_t cut = team.sp().stats().chunks_cut;
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kFrozen) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const Peer& peer = team.peer(i).peer;
    EXPECT_FALSE(lists_neighbour(peer, frozen_id));
    // Chunks dealt to the frozen peer before its removal come back from
    // the splitter's history on NACK.
    EXPECT_EQ(peer.stats().lost, 0u);
    EXPECT_EQ(peer.stats().played, cut);
    EXPECT_GT(peer.stats().recovered, 0u);
  }
  EXPECT_GT(team.sp().stats().retransmits, 0u);
}

TEST(Liveness, HealthyTeamHasNoTimeoutsAndNoNacks) {
  constexpr size_t kPeers = 10;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.schedule_stream(kStreamStart, 3 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);
  EXPECT_EQ(team.sp().num_peers(), kPeers);
  EXPECT_EQ(team.sp().stats().peers_timed_out, 0u);
  EXPECT_EQ(team.sp().stats().retransmits, 0u);
  for (size_t i = 0; i < kPeers; ++i) {
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_GT(ps.heartbeats_sent, 10u);
    // In-order enough that reordering is never taken for loss.
    EXPECT_EQ(ps.nacks_sent, 0u);
    EXPECT_EQ(ps.requests_sent, 0u);
    EXPECT_EQ(ps.lost, 0u);
    EXPECT_EQ(ps.played, team.sp().stats().chunks_cut);
  }
}

// ------------------------------------------------------------ recovery --

TEST(Recovery, TwoPercentLossAllDatagramsTeamOfTwenty) {
  constexpr size_t kPeers = 20;
  SplitterConfig config = splitter_config();
  config.monitors = 2;
  Team team(config, /*seed=*/2024);
  team.net.set_default_link(sim::LinkParams{1000, 0.02});
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  ASSERT_EQ(team.sp().num_peers(), kPeers);
  team.schedule_stream(kStreamStart, 10 * kSecond);
  team.net.run_until(kStreamStart + 11 * kSecond);

  const SplitterStats& s = team.sp().stats();
  EXPECT_GT(s.chunks_cut, 1200u);
  EXPECT_EQ(s.peers_expelled, 0u) << "honest peers are never expelled";
  EXPECT_EQ(s.peers_timed_out, 0u);
  EXPECT_EQ(team.sp().num_peers(), kPeers);
  EXPECT_GT(s.lost_reports, 0u);
  EXPECT_GT(s.retransmits, 0u);
  // The splitter's upload stays well under twice the stream.
  EXPECT_LT(s.bytes_sent + s.retransmit_bytes, s.bytes_sent * 13 / 10);

  uint64_t delivered = 0, lost = 0, recovered = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerStats& ps = team.peer(i).peer.stats();
    // Whatever was not played counts as lost (including the stream's last
    // chunks, which have no later chunk to reveal them missing).
    const uint64_t missing = s.chunks_cut - ps.played;
    EXPECT_LE(missing, s.chunks_cut / 500);
    delivered += ps.played;
    lost += missing;
    recovered += ps.recovered;
  }
  EXPECT_LE(lost * 1000, (delivered + lost)) << "at least 99.9 % in time";
  // About 4 % of chunks need recovering (two lossy links on their way).
  EXPECT_GT(recovered, delivered / 50);
  for (const SplitterPeerStats& p : team.sp().peer_stats()) {
    EXPECT_LE(p.loss_counter, config.max_chunk_loss);
  }
}

TEST(Recovery, WithoutNackTheSameLossReachesThePlayout) {
  // The control for the test above: same team, same loss, no recovery.
  constexpr size_t kPeers = 20;
  Team team(splitter_config(), /*seed=*/2024);
  team.net.set_default_link(sim::LinkParams{1000, 0.02});
  PeerConfig config;
  config.max_nack_attempts = 0;
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  team.schedule_stream(kStreamStart, 3 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);
  uint64_t delivered = 0, lost = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    delivered += team.peer(i).peer.stats().played;
    lost += team.peer(i).peer.stats().lost;
    EXPECT_EQ(team.peer(i).peer.stats().nacks_sent, 0u);
  }
  EXPECT_GT(lost * 100, (delivered + lost) * 2);
}

// Each chunk given up on is described for the logs: what recovery tried,
// and, without any attempt, that none was made. At most the newest
// kMaxLossRecords are kept for a host that never takes them.
TEST(Recovery, ChunksGivenUpOnAreDescribedNewestKept) {
  constexpr size_t kPeers = 6;
  Team team(splitter_config(), /*seed=*/77);
  team.net.set_default_link(sim::LinkParams{1000, 0.3});
  PeerConfig with_nack;
  PeerConfig without_nack;
  without_nack.max_nack_attempts = 0;
  for (size_t i = 0; i < kPeers; ++i)
    team.add_peer(i == 0 ? without_nack : with_nack);
  team.schedule_stream(kStreamStart, 3 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);

  uint64_t asked = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    Peer& peer = team.peer(i).peer;
    const uint64_t lost = peer.stats().lost;
    ASSERT_GT(lost, 0u);
    const std::vector<ChunkLoss> losses = peer.take_losses();
    EXPECT_EQ(losses.size(), std::min<uint64_t>(lost, Peer::kMaxLossRecords));
    for (size_t k = 1; k < losses.size(); ++k)
      EXPECT_TRUE(seq_before(losses[k - 1].number, losses[k].number));
    for (const ChunkLoss& l : losses) {
      EXPECT_LE(l.splitter_nacks, l.nacks);
      if (i == 0) {
        EXPECT_EQ(l.nacks, 0u);
      }
      asked += l.nacks;
    }
    EXPECT_TRUE(peer.take_losses().empty());
  }
  EXPECT_GT(asked, 0u);
  // Without recovery more were lost than are kept: the cap was exercised.
  EXPECT_GT(team.peer(0).peer.stats().lost, Peer::kMaxLossRecords);
}

// Numbers in NACKs the peer sent since the outbox was last cleared.
std::vector<ChunkNumber> nacked_numbers(const Outbox& out) {
  std::vector<ChunkNumber> numbers;
  for (const UdpSend& send : out.udp) {
    const auto msg = decode_udp(send.data->data(), send.data->size());
    if (!msg || !std::holds_alternative<NackMsg>(*msg)) continue;
    const auto& n = std::get<NackMsg>(*msg).numbers;
    numbers.insert(numbers.end(), n.begin(), n.end());
  }
  return numbers;
}

// TEAM is a TCP segment: a loss delays it by a retransmission timeout
// (200 ms or more) while chunks already come over UDP, and only a member
// asks for what is missing. So before TEAM nothing is played or given up
// on, and from TEAM every gap has a whole latency to be asked for
// (tests/nat: a symmetric NAT's last joiner lost the stream's first 14
// chunks that way, never asked).
TEST(Recovery, ChunksBeforeTeamWaitForItThenTheirGapsAreAsked) {
  PeerConfig config;
  test::CoreMember m(config, 7);
  m.register_with_splitter();
  ASSERT_EQ(m.peer.state(), PeerState::kRegistering);
  m.own_chunk(10);
  m.own_chunk(13);
  StreamItem item;
  for (int i = 0; i < 30; ++i) {
    m.advance(config.latency_us / 10);
    EXPECT_FALSE(m.peer.pop_item(m.now, &item));
    EXPECT_GT(m.peer.next_deadline(), m.now);
  }
  EXPECT_EQ(m.peer.stats().lost, 0u);
  EXPECT_EQ(m.peer.stats().played, 0u);

  const Micros team_at = m.now;
  m.out.clear();
  m.team(Endpoint::ipv4(10, 9, 0, 1, 5000),
         {PeerInfo{2, Endpoint::ipv4(10, 9, 0, 2, 5000)}}, 10);
  ASSERT_EQ(m.peer.state(), PeerState::kMember);
  std::vector<ChunkNumber> asked;
  while (m.now < team_at + config.latency_us - 1000) {
    m.advance(1000);
    while (m.peer.pop_item(m.now, &item)) {
    }
    const auto numbers = nacked_numbers(m.out);
    asked.insert(asked.end(), numbers.begin(), numbers.end());
    m.out.clear();
  }
  EXPECT_NE(std::find(asked.begin(), asked.end(), 11u), asked.end());
  EXPECT_NE(std::find(asked.begin(), asked.end(), 12u), asked.end());
  EXPECT_EQ(m.peer.stats().lost, 0u);
  EXPECT_EQ(m.peer.stats().played, 1u);  // 10

  // Never answered: given up on a latency after TEAM, not before.
  m.advance(config.latency_us / 10);
  while (m.peer.pop_item(m.now, &item)) {
  }
  EXPECT_EQ(m.peer.stats().lost, 2u);
  EXPECT_EQ(m.peer.stats().played, 2u);
}

// Flood checks (docs/protocol.md 8.3, 10.7): a peer says in JOIN that it
// echoes; once ROLE asks, it echoes each own chunk to the splitter right
// after a quarter of its copies, and it floods a chunk the splitter
// re-dealt (flag FLOOD) to everyone but the origin, flag kept, without
// echoing it. A re-dealt chunk from a neighbour is taken and not passed on.
TEST(FloodChecks, EchoAfterAQuarterOfTheFloodAndReDealtChunksFlooded) {
  PeerConfig config;
  test::CoreMember m(config, 7);
  TcpReader reader;
  reader.feed(m.join_frame.data(), m.join_frame.size());
  TcpMessage join;
  ASSERT_EQ(reader.next(&join), TcpReader::Status::kMessage);
  EXPECT_NE(std::get<JoinMsg>(join).flags & kFlagEcho, 0u);
  m.register_with_splitter();
  m.tcp(RoleMsg{kRoleFlagEcho});
  std::vector<PeerInfo> members;
  for (uint32_t id = 2; id <= 9; ++id) {
    members.push_back(
        PeerInfo{id, Endpoint::ipv4(10, 9, 0, static_cast<uint8_t>(id), 5000)});
  }
  m.join(Endpoint::ipv4(10, 9, 0, 1, 5000), members);
  const auto sent_chunks = [&m]() {
    std::vector<std::pair<Endpoint, ChunkMsg>> chunks;
    for (const UdpSend& s : m.out.udp) {
      auto msg = decode_udp(s.data->data(), s.data->size());
      if (msg && std::holds_alternative<ChunkMsg>(*msg)) {
        chunks.emplace_back(s.to, std::get<ChunkMsg>(*msg));
      }
    }
    return chunks;
  };

  m.own_chunk(1);
  m.advance(config.forward_flush_us);
  auto chunks = sent_chunks();
  ASSERT_EQ(chunks.size(), 9u);            // 8 copies and the echo
  EXPECT_EQ(chunks[2].first, m.splitter);  // after (8 + 3) / 4 copies
  EXPECT_EQ(chunks[2].second.number, 1u);
  EXPECT_EQ(m.peer.stats().echoes_sent, 1u);

  m.out.clear();
  const Bytes payload(500, 0x33);
  const Bytes plain = encode_chunk(7, 2, kImplicitOrigin, 0, kNoFrameStart,
                                   payload.data(), payload.size());
  const auto msg = decode_udp(plain.data(), plain.size());
  m.udp(m.splitter, encode_flood_chunk(std::get<ChunkMsg>(*msg), 3));
  m.advance(config.forward_flush_us);
  chunks = sent_chunks();
  ASSERT_EQ(chunks.size(), 7u);  // not to the origin, no echo
  for (const auto& [to, chunk] : chunks) {
    EXPECT_NE(to, members[1].endpoint);  // member 3
    EXPECT_NE(to, m.splitter);
    EXPECT_TRUE(chunk.flood);
    EXPECT_EQ(chunk.origin, 3u);
  }
  EXPECT_EQ(m.peer.stats().floods_for_others, 1u);

  m.out.clear();
  const Bytes other = encode_chunk(7, 3, kImplicitOrigin, 0, kNoFrameStart,
                                   payload.data(), payload.size());
  const auto msg3 = decode_udp(other.data(), other.size());
  m.udp(members[2].endpoint,
        encode_flood_chunk(std::get<ChunkMsg>(*msg3), 5));  // from 4, for 5
  m.advance(config.forward_flush_us);
  EXPECT_TRUE(sent_chunks().empty());
  EXPECT_EQ(m.peer.stats().chunks_from_peers, 1u);
  EXPECT_EQ(m.peer.stats().floods_for_others, 1u);
}

// ROLE may also ask (bit 2) for the first own chunk's echo once more after
// the last copy of its flood, which times the peer's uplink at the
// splitter; both echoes are marked to leave in order after the copies
// queued before them. Later chunks are echoed once.
TEST(FloodChecks, FirstChunkEchoedAgainAfterItsWholeFlood) {
  PeerConfig config;
  test::CoreMember m(config, 7);
  m.register_with_splitter();
  m.tcp(RoleMsg{kRoleFlagEcho | kRoleFlagEchoFloodEnd});
  std::vector<PeerInfo> members;
  for (uint32_t id = 2; id <= 9; ++id) {
    members.push_back(
        PeerInfo{id, Endpoint::ipv4(10, 9, 0, static_cast<uint8_t>(id), 5000)});
  }
  m.join(Endpoint::ipv4(10, 9, 0, 1, 5000), members);
  const auto echoes_at = [&m]() {
    std::vector<size_t> at;
    for (size_t i = 0; i < m.out.udp.size(); ++i) {
      if (!(m.out.udp[i].to == m.splitter)) continue;
      auto msg =
          decode_udp(m.out.udp[i].data->data(), m.out.udp[i].data->size());
      if (!msg || !std::holds_alternative<ChunkMsg>(*msg)) continue;
      EXPECT_TRUE(m.out.udp[i].in_order);
      at.push_back(i);
    }
    return at;
  };
  m.out.clear();
  m.own_chunk(1);
  m.advance(config.forward_flush_us);
  EXPECT_EQ(echoes_at(), (std::vector<size_t>{2, 9}));  // after 2, 8 copies
  EXPECT_EQ(m.peer.stats().echoes_sent, 2u);
  m.out.clear();
  m.own_chunk(13);
  m.advance(config.forward_flush_us);
  EXPECT_EQ(echoes_at(), (std::vector<size_t>{2}));
  EXPECT_EQ(m.peer.stats().echoes_sent, 3u);
  // Proven: ROLE stops the echoes, not the re-dealt floods of the team.
  m.tcp(RoleMsg{0});
  m.out.clear();
  m.own_chunk(25);
  m.advance(config.forward_flush_us);
  EXPECT_TRUE(echoes_at().empty());
  EXPECT_EQ(m.peer.stats().echoes_sent, 3u);
  const Bytes payload(500, 0x33);
  const Bytes other = encode_chunk(7, 26, kImplicitOrigin, 0, kNoFrameStart,
                                   payload.data(), payload.size());
  const auto msg = decode_udp(other.data(), other.size());
  const uint64_t from_peers = m.peer.stats().chunks_from_peers;
  m.udp(members[2].endpoint, encode_flood_chunk(std::get<ChunkMsg>(*msg), 5));
  EXPECT_EQ(m.peer.stats().chunks_from_peers, from_peers + 1);
}

// Without flood checks (no ROLE echo) a neighbour may not flood a chunk of
// another origin at us: FLOOD would let any member replace any origin's
// chunks (docs/security.md).
TEST(FloodChecks, AFloodChunkFromANeighbourIsRefusedWithoutTheChecks) {
  PeerConfig config;
  test::CoreMember m(config, 7);
  m.register_with_splitter();
  std::vector<PeerInfo> members;
  for (uint32_t id = 2; id <= 5; ++id) {
    members.push_back(
        PeerInfo{id, Endpoint::ipv4(10, 9, 0, static_cast<uint8_t>(id), 5000)});
  }
  m.join(Endpoint::ipv4(10, 9, 0, 1, 5000), members);
  const Bytes payload(500, 0x44);
  const Bytes plain = encode_chunk(7, 3, kImplicitOrigin, 0, kNoFrameStart,
                                   payload.data(), payload.size());
  const auto msg = decode_udp(plain.data(), plain.size());
  const uint64_t rejected = m.peer.stats().rejected_datagrams;
  m.udp(members[2].endpoint,  // from 4, for 5
        encode_flood_chunk(std::get<ChunkMsg>(*msg), 5));
  EXPECT_EQ(m.peer.stats().chunks_from_peers, 0u);
  EXPECT_EQ(m.peer.stats().rejected_datagrams, rejected + 1);
}

// The splitter's answer to our NACK for another member's chunk came from
// the splitter, not from a peer: counted apart from chunks-from-peers
// (docs/elements.md), which issue 14 found counting them.
TEST(Recovery, SplitterAnswersAreNotCountedAsChunksFromPeers) {
  PeerConfig config;
  config.nack_delay_us = 20000;
  test::CoreMember m(config, 7);
  const Endpoint two = Endpoint::ipv4(10, 9, 0, 2, 5000);
  m.register_with_splitter();
  m.team(Endpoint::ipv4(10, 9, 0, 1, 5000), {PeerInfo{2, two}}, 10);
  ASSERT_EQ(m.peer.state(), PeerState::kMember);
  m.out.clear();
  const Bytes payload(500, 0x22);
  auto chunk = [&](ChunkNumber n, uint32_t origin) {
    return encode_chunk(m.team_id, n, origin, 0, kNoFrameStart, payload.data(),
                        payload.size());
  };
  m.udp(two, chunk(10, kImplicitOrigin));
  m.udp(two, chunk(12, kImplicitOrigin));
  std::vector<ChunkNumber> asked;
  for (int i = 0; i < 100 && asked.empty(); ++i) {
    m.advance(1000);
    asked = nacked_numbers(m.out);
  }
  ASSERT_EQ(asked, std::vector<ChunkNumber>{11});
  m.udp(m.splitter, chunk(11, 2));
  const PeerStats& st = m.peer.stats();
  EXPECT_EQ(st.recovered, 1u);
  EXPECT_EQ(st.nack_answers_from_splitter, 1u);
  EXPECT_EQ(st.chunks_from_peers, 2u);
  EXPECT_EQ(st.chunks_from_splitter, 0u);
}

// Under unequal shares the numbers alone do not say whose a missing chunk
// was; the next chunk of the same origin does (its `previous` field), so
// every NACK goes to the true origin and none to the splitter.
TEST(Recovery, UnequalSharesNackTheTrueOriginOfALostChunk) {
  constexpr size_t kPeers = 5;
  constexpr size_t kOrigin = 1;
  constexpr size_t kReceiver = 2;
  Team team(splitter_config());
  for (size_t i = 0; i < kPeers; ++i) {
    PeerConfig config;
    config.upload_limit_bps = i == 0 ? 1000000 : 8000000;
    team.add_peer(config);
  }
  team.net.run_until(kStreamStart);
  // One in three of the origin's chunks, never two in a row (the second's
  // successor would name only the second), and none near the stream's end
  // (no successor at all): those fall back to the time-based NACK.
  std::map<ChunkNumber, bool> dropped;
  size_t seen = 0;
  team.net.set_udp_filter(
      [&](const Endpoint& from, const Endpoint& to, const Bytes& data) {
        const auto chunk = as_chunk(data);
        if (!chunk || from != peer_udp(kOrigin) || to != peer_udp(kReceiver) ||
            chunk->origin != kImplicitOrigin || chunk->number > 250 ||
            dropped.count(chunk->number) != 0) {
          return true;  // NACK answers come through
        }
        if (seen++ % 3 != 1) return true;
        dropped.emplace(chunk->number, true);
        return false;
      });
  std::map<Endpoint, size_t> nacks_to;
  team.net.set_udp_tap(
      [&](Micros, const Endpoint& from, const Endpoint& to, const Bytes& data) {
        const auto msg = decode_udp(data.data(), data.size());
        if (from == peer_udp(kReceiver) && msg &&
            std::holds_alternative<NackMsg>(*msg)) {
          nacks_to[to] += std::get<NackMsg>(*msg).numbers.size();
        }
      });
  team.schedule_stream(kStreamStart, 3 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);
  ASSERT_GT(dropped.size(), 15u);
  const PeerStats& ps = team.peer(kReceiver).peer.stats();
  EXPECT_EQ(ps.lost, 0u);
  EXPECT_EQ(ps.nacks_to_splitter, 0u);
  // A successor slower than the time-based NACK leaves only a guess.
  EXPECT_GE(nacks_to[peer_udp(kOrigin)] * 10, dropped.size() * 8);
}

// A chunk of our own lost on its way from the splitter: the next one would
// name it a whole round later, while the whole team misses it. Where the
// splitter's spacing of our chunks says it was ours, the splitter is asked
// after the grace.
TEST(Recovery, OwnChunkLostFromTheSplitterIsNackedBeforeTheNextOne) {
  constexpr size_t kPeers = 20;
  Team team(splitter_config());
  for (size_t i = 0; i < kPeers; ++i) {
    // Twice the stream: a flood takes about 90 ms, the time-based NACK
    // waits longer than that.
    team.net.set_uplink(team.add_peer(), sim::UplinkParams{2000000});
  }
  team.net.run_until(kStreamStart);
  std::optional<Micros> dropped_at;
  std::optional<Micros> nacked_at;
  Micros now_us = 0;
  team.net.set_udp_tap([&](Micros now, const Endpoint& from, const Endpoint& to,
                           const Bytes& data) {
    now_us = now;
    const auto msg = decode_udp(data.data(), data.size());
    if (!nacked_at && from == peer_udp(0) && to == splitter_udp() && msg &&
        std::holds_alternative<NackMsg>(*msg)) {
      nacked_at = now;
    }
  });
  team.net.set_udp_filter(
      [&](const Endpoint& from, const Endpoint& to, const Bytes& data) {
        if (dropped_at || from != splitter_udp() || to != peer_udp(0) ||
            !as_chunk(data) || now_us < kStreamStart + kSecond) {
          return true;
        }
        dropped_at = now_us;
        return false;
      });
  team.schedule_stream(kStreamStart, 2 * kSecond);
  team.net.run_until(kStreamStart + 3 * kSecond);
  ASSERT_TRUE(dropped_at);
  ASSERT_TRUE(nacked_at);
  // 47 ms here (the gap is seen when a later chunk comes, then the grace);
  // 77 ms by the time-based NACK alone, 160 ms for the next own chunk.
  EXPECT_LT(*nacked_at - *dropped_at, 60000u);
  EXPECT_EQ(team.peer(0).peer.stats().lost, 0u);
}

// Keeps `*now_us` at the network's clock (for filters), and notes when and
// where `peer` sends a NACK asking for `*number`, once that is set.
using NackLog = std::vector<std::pair<Micros, Endpoint>>;
void watch_nacks(Team& team, const Endpoint& peer,
                 const std::optional<ChunkNumber>& number, Micros* now_us,
                 NackLog* nacks) {
  team.net.set_udp_tap([peer, &number, now_us, nacks](
                           Micros now, const Endpoint& from, const Endpoint& to,
                           const Bytes& data) {
    *now_us = now;
    const auto msg = decode_udp(data.data(), data.size());
    if (!number || from != peer || !msg ||
        !std::holds_alternative<NackMsg>(*msg)) {
      return;
    }
    const auto& numbers = std::get<NackMsg>(*msg).numbers;
    if (std::find(numbers.begin(), numbers.end(), *number) != numbers.end()) {
      nacks->emplace_back(now, to);
    }
  });
}

// A neighbour asked for a chunk that it does not answer: the splitter is
// asked once the neighbour had time to answer, the measured spread. Where
// that wait ends past the chunk's deadline, the splitter is asked at the
// last call instead, one retry period before the deadline (docs/protocol.md
// 10.4); waiting out the spread would lose the chunk.
TEST(Recovery, RetryPastTheDeadlineAsksTheSplitterAtTheLastCall) {
  constexpr size_t kPeers = 5;
  constexpr size_t kOrigin = 1;
  constexpr size_t kReceiver = 2;
  constexpr size_t kSlow = 3;
  constexpr Micros kLatency = 600000;
  constexpr Micros kRetry = kLatency / 6;  // the default retry period
  Team team(splitter_config());
  PeerConfig config;
  config.latency_us = kLatency;
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  // The receiver measures a spread of about 560 ms: longer than what is left
  // of the latency once the origin was asked. It grows in steps, each within
  // the NACK delay the previous one gives (spread x 1.25 + 20 ms), so that
  // the slow neighbour's chunks are never NACKed (those are not measured).
  const Micros steps[] = {250000, 320000, 410000, 500000, 560000};
  for (size_t i = 0; i < std::size(steps); ++i) {
    team.net.schedule(kStreamStart + i * kSecond / 2, [&team, i, steps] {
      team.net.set_link(team.peers[kSlow], team.peers[kReceiver],
                        sim::LinkParams{steps[i], 0});
    });
  }
  team.net.run_until(kStreamStart);
  Micros now_us = 0;
  std::optional<ChunkNumber> dropped;
  Micros dropped_at = 0;
  NackLog nacks;
  watch_nacks(team, peer_udp(kReceiver), dropped, &now_us, &nacks);
  // One chunk of the origin's never reaches the receiver from the origin:
  // neither its flood nor its answers.
  team.net.set_udp_filter(
      [&](const Endpoint& from, const Endpoint& to, const Bytes& data) {
        const auto chunk = as_chunk(data);
        if (!chunk || from != peer_udp(kOrigin) || to != peer_udp(kReceiver)) {
          return true;
        }
        if (!dropped && chunk->origin == kImplicitOrigin &&
            now_us >= kStreamStart + 3 * kSecond) {
          dropped = chunk->number;
          dropped_at = now_us;
        }
        return !dropped || chunk->number != *dropped;
      });
  team.schedule_stream(kStreamStart, 4 * kSecond);
  team.net.run_until(kStreamStart + 5 * kSecond);
  ASSERT_TRUE(dropped);
  std::vector<Micros> asked_origin_at, asked_splitter_at;
  for (const auto& [at, to] : nacks) {
    (to == splitter_udp() ? asked_splitter_at : asked_origin_at).push_back(at);
  }
  ASSERT_FALSE(asked_origin_at.empty());
  ASSERT_EQ(asked_splitter_at.size(), 1u);
  // Asked of the origin on evidence, long before the deadline...
  EXPECT_LT(asked_origin_at.front() - dropped_at, kLatency / 3);
  // ... and of the splitter at the last call: after the spread it would
  // have been past the deadline, and not asked at all.
  const Micros splitter_after = asked_splitter_at.front() - dropped_at;
  EXPECT_GE(splitter_after, kLatency - kRetry - 50000);
  EXPECT_LT(splitter_after, kLatency);
  EXPECT_EQ(team.peer(kReceiver).peer.stats().lost, 0u);
}

// The last call's NACK, or the splitter's answer to it, can be lost too: a
// NACK to the splitter unanswered after its measured round trip is sent
// again while the deadline allows, instead of one retry period later, past
// the deadline (issue 14: a peer across 2 % loss missed chunks that way).
// Here a first chunk's recovery times the round trip, then the splitter's
// answer to a second one is lost.
TEST(Recovery, AnUnansweredSplitterNackIsAskedAgainAfterItsRoundTrip) {
  constexpr size_t kPeers = 4;
  constexpr size_t kOrigin = 1;
  constexpr size_t kReceiver = 2;
  constexpr Micros kLatency = 600000;
  constexpr Micros kRetry = kLatency / 6;
  Team team(splitter_config());
  PeerConfig config;
  config.latency_us = kLatency;
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  team.net.run_until(kStreamStart);
  Micros now_us = 0;
  std::optional<ChunkNumber> timed, dropped;
  bool answer_lost = false;
  NackLog nacks;
  watch_nacks(team, peer_udp(kReceiver), dropped, &now_us, &nacks);
  // Neither chunk reaches the receiver from any peer (flood or answer), so
  // only the splitter can answer; its first answer to the second is lost.
  team.net.set_udp_filter(
      [&](const Endpoint& from, const Endpoint& to, const Bytes& data) {
        const auto chunk = as_chunk(data);
        if (!chunk || to != peer_udp(kReceiver)) return true;
        if (from == peer_udp(kOrigin) && chunk->origin == kImplicitOrigin) {
          if (!timed && now_us >= kStreamStart + 2 * kSecond)
            timed = chunk->number;
          if (!dropped && now_us >= kStreamStart + 3 * kSecond)
            dropped = chunk->number;
        }
        const bool marked = (timed && chunk->number == *timed) ||
                            (dropped && chunk->number == *dropped);
        if (!marked) return true;
        if (from != splitter_udp()) return false;
        if (dropped && chunk->number == *dropped && !answer_lost) {
          answer_lost = true;
          return false;
        }
        return true;
      });
  team.schedule_stream(kStreamStart, 5 * kSecond);
  team.net.run_until(kStreamStart + 6 * kSecond);
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(answer_lost);
  std::vector<Micros> asked_splitter_at;
  for (const auto& [at, to] : nacks) {
    if (to == splitter_udp()) asked_splitter_at.push_back(at);
  }
  ASSERT_EQ(asked_splitter_at.size(), 2u);
  EXPECT_LT(asked_splitter_at[1] - asked_splitter_at[0], kRetry);
  EXPECT_EQ(team.peer(kReceiver).peer.stats().lost, 0u);
}

// ------------------------------------------------------------ monitors --

TEST(Monitors, FreeRiderIsExpelledHonestPeersStay) {
  constexpr size_t kPeers = 6;
  constexpr size_t kRider = 5;
  SplitterConfig config = splitter_config(200);
  config.monitors = 2;
  Team team(config);
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  EXPECT_TRUE(team.peer(0).peer.monitor());
  EXPECT_TRUE(team.peer(1).peer.monitor());
  EXPECT_FALSE(team.peer(kRider).peer.monitor());
  const uint32_t rider_id = team.peer(kRider).peer.id();
  // It takes, forwards nothing, and still talks to the splitter.
  team.net.set_link(team.peers[kRider], sim::kAnyNode,
                    sim::LinkParams{1000, 1.0});
  team.net.set_link(team.peers[kRider], team.splitter,
                    sim::LinkParams{1000, 0.0});
  team.schedule_stream(kStreamStart, 3 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);

  const SplitterEvent* removed = removal_of(team.splitter_node(), rider_id);
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->reason, RemoveReason::kExpelled);
  EXPECT_EQ(team.sp().stats().peers_expelled, 1u);
  EXPECT_EQ(team.sp().num_peers(), kPeers - 1);
  EXPECT_EQ(team.peer(kRider).peer.state(), PeerState::kRemoved);
  const auto& rider_events = team.peer(kRider).events;
  ASSERT_FALSE(rider_events.empty());
  EXPECT_EQ(rider_events.back().kind, PeerEvent::Kind::kRemoved);
  EXPECT_EQ(rider_events.back().reason, RemoveReason::kExpelled);
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kRider) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_FALSE(lists_neighbour(team.peer(i).peer, rider_id));
    // Its chunks came back from the splitter in time.
    EXPECT_EQ(ps.lost, 0u);
  }
  EXPECT_GT(team.peer(0).peer.stats().lost_reports_sent, 0u);
  EXPECT_EQ(team.peer(2).peer.stats().lost_reports_sent, 0u)
      << "only monitors report";
}

TEST(Monitors, PeerAsksToBeAMonitorWithTheJoinFlag) {
  Team team(splitter_config(200));
  PeerConfig monitor;
  monitor.monitor = true;
  team.add_peer();
  team.add_peer(monitor);
  team.net.run_until(kStreamStart);
  EXPECT_FALSE(team.peer(0).peer.monitor());
  EXPECT_TRUE(team.peer(1).peer.monitor());
  EXPECT_EQ(team.peer(1).peer.stats().monitor, 1u);
  size_t monitors = 0;
  for (const SplitterPeerStats& p : team.sp().peer_stats()) {
    monitors += p.monitor ? 1 : 0;
    EXPECT_EQ(p.monitor, p.id == team.peer(1).peer.id());
  }
  EXPECT_EQ(monitors, 1u);
}

// ------------------------------------------------------------ routes ----

TEST(Routes, BlockedPairGetsEachOthersChunksThroughTheTeam) {
  constexpr size_t kPeers = 6;
  constexpr size_t kA = 1, kB = 4;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  team.block_pair(kA, kB);
  team.schedule_stream(kStreamStart, 6 * kSecond);
  team.net.run_until(kStreamStart + 4 * kSecond);
  const PeerStats a_mid = team.peer(kA).peer.stats();
  const PeerStats b_mid = team.peer(kB).peer.stats();
  team.net.run_until(kStreamStart + 7 * kSecond);

  const uint64_t cut = team.sp().stats().chunks_cut;
  uint64_t relayed = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_EQ(ps.played, cut);
    EXPECT_EQ(ps.lost, 0u);
    relayed += ps.relayed;
  }
  EXPECT_GT(relayed, cut / kPeers) << "the pair's chunks went through others";
  for (size_t x : {kA, kB}) {
    const PeerStats& ps = team.peer(x).peer.stats();
    EXPECT_GE(ps.requests_sent, 1u);
    EXPECT_LE(ps.requests_sent, 3u);
  }
  // Steady state: relays carry everything, nothing needs asking for.
  EXPECT_EQ(team.peer(kA).peer.stats().nacks_sent, a_mid.nacks_sent);
  EXPECT_EQ(team.peer(kB).peer.stats().nacks_sent, b_mid.nacks_sent);
  EXPECT_EQ(team.peer(kA).peer.stats().requests_sent, a_mid.requests_sent);
  EXPECT_EQ(team.sp().num_peers(), kPeers);
}

// A pair that never reached each other (a symmetric NAT) gets each
// other's chunks through a relay. A relayed chunk lost on its way is asked
// of the relay, which holds it, as soon as the relay's next chunk of that
// origin shows the loss; not left for one last call to the splitter
// (protocol.md 10.4), which a lost NACK or answer would make a loss.
TEST(Routes, RelayedChunkLostIsAskedOfTheRelayFirst) {
  constexpr size_t kPeers = 6;
  constexpr size_t kA = 1, kB = 4;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.block_pair(kA, kB);
  team.net.run_until(kStreamStart);
  ASSERT_EQ(team.peer(kA).peer.stats().played, 0u);
  Micros now_us = 0;
  std::optional<ChunkNumber> dropped;
  Micros dropped_at = 0;
  Endpoint relay;
  NackLog nacks;
  watch_nacks(team, peer_udp(kA), dropped, &now_us, &nacks);
  const uint32_t b_id = team.peer(kB).peer.id();
  // One of B's chunks, relayed to A once the relays are in place, is lost.
  team.net.set_udp_filter(
      [&](const Endpoint& from, const Endpoint& to, const Bytes& data) {
        const auto chunk = as_chunk(data);
        if (!chunk || to != peer_udp(kA) || chunk->origin != b_id ||
            from == splitter_udp()) {
          return true;
        }
        if (!dropped && now_us >= kStreamStart + 2 * kSecond) {
          dropped = chunk->number;
          dropped_at = now_us;
          relay = from;
          return false;
        }
        return true;
      });
  team.schedule_stream(kStreamStart, 4 * kSecond);
  team.net.run_until(kStreamStart + 5 * kSecond);
  ASSERT_TRUE(dropped);
  ASSERT_FALSE(nacks.empty());
  EXPECT_EQ(nacks.front().second, relay) << "asked of the relay first";
  const Micros last_call =
      PeerConfig().latency_us - PeerConfig().latency_us / 6;
  EXPECT_LT(nacks.front().first - dropped_at, last_call / 2);
  EXPECT_EQ(team.peer(kA).peer.stats().lost, 0u);
}

TEST(Routes, RelayIsPrunedWhenTheDirectPathReturns) {
  constexpr size_t kPeers = 5;
  constexpr size_t kA = 0, kB = 3;
  PeerConfig config;
  config.max_chunk_debt = 1u << 30;  // keep flooding across the outage
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  team.net.run_until(kStreamStart);
  team.block_pair(kA, kB);
  team.schedule_stream(kStreamStart, 6 * kSecond);
  team.net.run_until(kStreamStart + 3 * kSecond);
  uint64_t serving = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    serving += team.peer(i).peer.stats().relays_served;
  }
  EXPECT_GE(serving, 2u) << "both directions relayed";
  team.block_pair(kA, kB, 0.0);
  team.net.run_until(kStreamStart + 5 * kSecond);
  serving = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    serving += team.peer(i).peer.stats().relays_served;
  }
  EXPECT_EQ(serving, 0u);
  EXPECT_GE(team.peer(kA).peer.stats().prunes_sent, 1u);
  EXPECT_GE(team.peer(kB).peer.stats().prunes_sent, 1u);
  const uint64_t duplicates = team.peer(kB).peer.stats().duplicates;
  team.net.run_until(kStreamStart + 7 * kSecond);
  EXPECT_EQ(team.peer(kB).peer.stats().duplicates, duplicates);
  for (size_t i = 0; i < kPeers; ++i) {
    EXPECT_EQ(team.peer(i).peer.stats().lost, 0u);
  }
}

// ------------------------------------------------------------ splitter --
// The splitter alone, driven by hand: exact counts and timings.

struct Joined {
  ConnId conn = 0;
  uint32_t id = 0;
  uint64_t token = 0;
  Endpoint udp;
  bool monitor = false;  // got ROLE monitor
  uint32_t role_flags = 0;
};

class SplitterBench {
 public:
  explicit SplitterBench(const SplitterConfig& config) : sp(config) {}
  bool ipv6 = false;  // members join from IPv6 endpoints

  Joined join(bool ask_monitor = false, uint32_t join_flags = 0) {
    Joined j;
    j.conn = next_conn++;
    j.udp = Endpoint::ipv4(10, 3, 0, static_cast<uint8_t>(j.conn), 5000);
    if (ipv6) {
      std::array<uint8_t, 16> addr{0xfd, 0x03};
      addr[15] = static_cast<uint8_t>(j.conn);
      j.udp = Endpoint::ipv6(addr, 5000);
    }
    sp.on_tcp_accepted(j.conn, j.udp.with_port(40000), now, &out);
    feed(j.conn,
         encode_tcp(JoinMsg{kProtocolVersion,
                            (ask_monitor ? kFlagMonitor : 0u) | join_flags}));
    for (const TcpMessage& m : take_tcp(j.conn)) {
      if (const auto* w = std::get_if<WelcomeMsg>(&m)) {
        j.id = w->peer_id;
        j.token = w->token;
      }
    }
    test::register_at(sp, j.udp, kTeamId, j.id, j.token, now, &out);
    for (const TcpMessage& m : take_tcp(j.conn)) {
      if (const auto* role = std::get_if<RoleMsg>(&m)) {
        j.monitor = (role->flags & kFlagMonitor) != 0;
        j.role_flags = role->flags;
      }
    }
    return j;
  }

  void feed(ConnId conn, const Bytes& bytes) {
    sp.on_tcp_data(conn, bytes.data(), bytes.size(), now, &out);
  }
  void udp(const Joined& from, const Bytes& bytes) {
    udp_from(from.udp, bytes);
  }
  void udp_from(const Endpoint& from, const Bytes& bytes) {
    sp.on_udp(from, bytes.data(), bytes.size(), now, &out);
  }
  void advance_to(Micros t) {
    while (sp.next_deadline() <= t) {
      now = std::max(now, sp.next_deadline());
      sp.tick(now, &out);
    }
    now = t;
  }

  // Cuts `count` full chunks; returns their datagrams by number.
  std::map<ChunkNumber, std::pair<Endpoint, SharedBytes>> cut(size_t count) {
    MediaBuffer buffer;
    // A buffer without timestamps: the smallest frame header.
    buffer.data.assign(count * sp.config().chunk_size - kFrameHeaderMinSize,
                       0x5A);
    sp.push_buffer(buffer, now, &out);
    std::map<ChunkNumber, std::pair<Endpoint, SharedBytes>> chunks;
    for (const UdpSend& send : take_udp()) {
      if (auto chunk = as_chunk(*send.data)) {
        chunks[chunk->number] = {send.to, send.data};
      }
    }
    return chunks;
  }

  std::vector<TcpMessage> take_tcp(ConnId conn) {
    std::vector<TcpMessage> result;
    std::vector<TcpSend> rest;
    for (TcpSend& send : out.tcp) {
      if (send.conn != conn) {
        rest.push_back(std::move(send));
        continue;
      }
      TcpReader reader;
      reader.feed(send.data.data(), send.data.size());
      TcpMessage msg;
      while (reader.next(&msg) == TcpReader::Status::kMessage) {
        result.push_back(msg);
      }
    }
    out.tcp = std::move(rest);
    return result;
  }
  std::vector<UdpSend> take_udp() {
    std::vector<UdpSend> result;
    result.swap(out.udp);
    return result;
  }
  const SplitterPeerStats* stats_of(uint32_t id) {
    peer_stats = sp.peer_stats();
    for (const SplitterPeerStats& p : peer_stats) {
      if (p.id == id) return &p;
    }
    return nullptr;
  }

  Splitter sp;
  Outbox out;
  Micros now = 0;
  ConnId next_conn = 1;
  std::vector<SplitterPeerStats> peer_stats;
};

std::vector<ChunkNumber> chunks_to(
    const std::map<ChunkNumber, std::pair<Endpoint, SharedBytes>>& chunks,
    const Endpoint& to) {
  std::vector<ChunkNumber> numbers;
  for (const auto& [number, sent] : chunks) {
    if (sent.first == to) numbers.push_back(number);
  }
  return numbers;
}

template <typename T>
bool got(const std::vector<TcpMessage>& messages) {
  return std::any_of(messages.begin(), messages.end(), [](const auto& m) {
    return std::holds_alternative<T>(m);
  });
}

SplitterConfig bench_config() {
  SplitterConfig config = splitter_config(200);
  config.peer_timeout_us = 0;  // these tests do not heartbeat
  return config;
}

TEST(SplitterHealth, LossReportsCountDecayAndExpelAboveTheLimit) {
  SplitterConfig config = bench_config();
  config.max_chunk_loss = 4;
  SplitterBench bench(config);
  const Joined monitor = bench.join(/*ask_monitor=*/true);
  const Joined honest = bench.join();
  const Joined culprit = bench.join();
  EXPECT_TRUE(monitor.monitor);
  EXPECT_FALSE(honest.monitor);
  const auto chunks = bench.cut(30);
  const auto culprits = chunks_to(chunks, culprit.udp);
  ASSERT_GE(culprits.size(), 9u);
  auto lost = [&](std::vector<ChunkNumber> numbers) {
    bench.udp(monitor, encode_lost(LostMsg{kTeamId, monitor.id, monitor.token,
                                           std::move(numbers)}));
  };

  lost({culprits[0], culprits[1], culprits[2]});
  EXPECT_EQ(bench.stats_of(culprit.id)->loss_counter, 3u);
  EXPECT_EQ(bench.stats_of(honest.id)->loss_counter, 0u);
  EXPECT_EQ(bench.sp.stats().lost_reports, 3u);
  // Halved every second.
  bench.advance_to(999999);
  EXPECT_EQ(bench.stats_of(culprit.id)->loss_counter, 3u);
  bench.advance_to(kSecond);
  EXPECT_EQ(bench.stats_of(culprit.id)->loss_counter, 1u);
  bench.advance_to(2 * kSecond);
  EXPECT_EQ(bench.stats_of(culprit.id)->loss_counter, 0u);
  EXPECT_EQ(bench.sp.next_deadline(), UINT64_MAX) << "no decay while all 0";

  lost({culprits[3], culprits[4], culprits[5], culprits[6]});
  EXPECT_EQ(bench.stats_of(culprit.id)->loss_counter, 4u);  // at the limit
  EXPECT_TRUE(bench.take_tcp(culprit.conn).empty());
  lost({culprits[7]});
  EXPECT_EQ(bench.stats_of(culprit.id), nullptr);
  EXPECT_EQ(bench.sp.stats().peers_expelled, 1u);
  const auto told = bench.take_tcp(culprit.conn);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(std::get<RemovedMsg>(told[0]).reason, RemoveReason::kExpelled);
  EXPECT_TRUE(got<PeerLeftMsg>(bench.take_tcp(honest.conn)));
  EXPECT_TRUE(got<PeerLeftMsg>(bench.take_tcp(monitor.conn)));
  const auto events = bench.sp.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, SplitterEvent::Kind::kPeerRemoved);
  EXPECT_EQ(events.back().peer_id, culprit.id);
  EXPECT_EQ(events.back().reason, RemoveReason::kExpelled);
  EXPECT_EQ(bench.sp.num_peers(), 2u);
}

TEST(SplitterHealth, MonitorIsNeverBlamedForItsOwnReports) {
  SplitterConfig config = bench_config();
  config.max_chunk_loss = 1;
  SplitterBench bench(config);
  const Joined monitor = bench.join(true);
  bench.join();
  const auto chunks = bench.cut(20);
  bench.udp(monitor, encode_lost(LostMsg{kTeamId, monitor.id, monitor.token,
                                         chunks_to(chunks, monitor.udp)}));
  EXPECT_EQ(bench.sp.num_peers(), 2u);
  EXPECT_EQ(bench.stats_of(monitor.id)->loss_counter, 0u);
  EXPECT_EQ(bench.sp.stats().peers_expelled, 0u);
}

TEST(SplitterHealth, LostFromNonMonitorsStrangersOrBadTokensIsRejected) {
  SplitterConfig config = bench_config();
  config.max_chunk_loss = 1;
  SplitterBench bench(config);
  const Joined monitor = bench.join(true);
  const Joined plain = bench.join();
  const Joined victim = bench.join();
  const auto numbers = chunks_to(bench.cut(30), victim.udp);
  const Endpoint stranger = Endpoint::ipv4(10, 9, 9, 9, 5000);
  bench.udp(plain,
            encode_lost(LostMsg{kTeamId, plain.id, plain.token, numbers}));
  bench.udp(monitor, encode_lost(LostMsg{kTeamId, monitor.id, monitor.token + 1,
                                         numbers}));
  bench.udp_from(stranger, encode_lost(LostMsg{kTeamId, monitor.id,
                                               monitor.token, numbers}));
  bench.udp(monitor, encode_lost(LostMsg{kTeamId + 1, monitor.id, monitor.token,
                                         numbers}));
  EXPECT_EQ(bench.sp.stats().rejected_datagrams, 4u);
  EXPECT_EQ(bench.sp.stats().lost_reports, 0u);
  EXPECT_EQ(bench.stats_of(victim.id)->loss_counter, 0u);
  EXPECT_EQ(bench.sp.num_peers(), 3u);
}

TEST(SplitterHealth, FirstPeersBecomeMonitorsUpToTheConfiguredCount) {
  SplitterConfig config = bench_config();
  config.monitors = 2;
  SplitterBench bench(config);
  const Joined first = bench.join();
  const Joined second = bench.join();
  const Joined third = bench.join();
  EXPECT_TRUE(first.monitor);
  EXPECT_TRUE(second.monitor);
  EXPECT_FALSE(third.monitor);
  EXPECT_TRUE(bench.stats_of(first.id)->monitor);
  EXPECT_FALSE(bench.stats_of(third.id)->monitor);
  // A monitor leaving makes room for the next newcomer.
  bench.sp.on_tcp_closed(first.conn, bench.now, &bench.out);
  EXPECT_TRUE(bench.join().monitor);
}

TEST(SplitterHealth, NackGetsTheSameChunkBackWithinTheRateLimit) {
  SplitterConfig config = bench_config();
  config.retransmit_rate = 10;
  config.retransmit_burst = 3;
  config.history_chunks = 16;
  SplitterBench bench(config);
  const Joined a = bench.join();
  const Joined b = bench.join();
  const auto chunks = bench.cut(40);
  const ChunkNumber newest = chunks.rbegin()->first;
  const std::vector<ChunkNumber> asked = {newest, newest - 1, newest - 2,
                                          newest - 3};
  bench.udp(a, encode_nack(NackMsg{kTeamId, a.id, asked}));
  const auto sent = bench.take_udp();
  ASSERT_EQ(sent.size(), 3u) << "burst of 3";
  size_t bytes = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].to, a.udp);
    const auto& [first_to, first_datagram] = chunks.at(asked[i]);
    bytes += sent[i].data->size();
    if (first_to == a.udp) {
      // a's own chunk: the very datagram, its origin implicit.
      EXPECT_EQ(*sent[i].data, *first_datagram) << "same datagram";
      continue;
    }
    // b's chunk: the same chunk, b named as its origin.
    const auto again = as_chunk(*sent[i].data);
    const auto first = as_chunk(*first_datagram);
    ASSERT_TRUE(again && first);
    EXPECT_EQ(first->origin, kImplicitOrigin);
    EXPECT_EQ(again->origin, b.id);
    EXPECT_EQ(again->number, first->number);
    EXPECT_EQ(again->first_frame_offset, first->first_frame_offset);
    EXPECT_EQ(again->send_time_ms, first->send_time_ms);
    EXPECT_EQ(Bytes(again->payload, again->payload + again->payload_size),
              Bytes(first->payload, first->payload + first->payload_size));
  }
  EXPECT_EQ(bench.sp.stats().retransmits, 3u);
  EXPECT_EQ(bench.sp.stats().retransmits_limited, 1u);
  EXPECT_EQ(bench.stats_of(a.id)->retransmits, 3u);
  // The bucket refills at the rate: one more after 100 ms.
  bench.advance_to(100000);
  bench.udp(a, encode_nack(NackMsg{kTeamId, a.id, {newest - 3, newest - 4}}));
  const auto refilled = bench.take_udp();
  ASSERT_EQ(refilled.size(), 1u);
  bytes += refilled[0].data->size();
  // Older than the history: gone.
  bench.advance_to(kSecond);
  bench.udp(a, encode_nack(NackMsg{kTeamId, a.id, {newest - 20}}));
  EXPECT_TRUE(bench.take_udp().empty());
  EXPECT_EQ(bench.sp.stats().retransmits_unavailable, 1u);
  EXPECT_EQ(bench.sp.stats().retransmit_bytes, bytes);
}

// Learned shares (docs/protocol.md 10.7): half the team NACKing one chunk
// to the splitter says its origin did not flood it, and the origin is dealt
// nothing from then on, without waiting for the period's NACK counts. One
// member's retries count once; without learning nothing changes.
TEST(SplitterHealth, ChunkHalfTheTeamNacksDealsItsOriginOut) {
  for (const bool learn : {true, false}) {
    SCOPED_TRACE(learn ? "learning" : "not learning");
    SplitterConfig config = bench_config();
    config.learn_shares = learn;
    SplitterBench bench(config);
    std::vector<Joined> team;
    for (int i = 0; i < 6; ++i) team.push_back(bench.join());
    const auto chunks = bench.cut(24);
    const Joined& origin = team[0];
    std::optional<ChunkNumber> ours;
    for (const auto& [number, sent] : chunks) {
      if (sent.first == origin.udp) ours = number;
    }
    ASSERT_TRUE(ours);
    auto nack = [&](const Joined& from) {
      bench.udp(from, encode_nack(NackMsg{kTeamId, from.id, {*ours}}));
      bench.take_udp();
    };
    for (int retry = 0; retry < 4; ++retry) nack(team[1]);
    nack(team[2]);
    ASSERT_GT(bench.stats_of(origin.id)->share, 0);
    nack(team[3]);  // the third of six
    if (learn) {
      EXPECT_EQ(bench.stats_of(origin.id)->share, 0);
      EXPECT_EQ(bench.stats_of(origin.id)->forwarding, 0);
    } else {
      EXPECT_GT(bench.stats_of(origin.id)->share, 0);
    }
    EXPECT_GT(bench.stats_of(team[1].id)->share, 0);
  }
}

// Flood checks' uplink timing (docs/protocol.md 10.7): the time between a
// trial chunk's quarter echo and its flood-end echo is what the rest of
// the flood took the member's uplink; the splitter learns its upload from
// it. A span within two flush timers times the peer, not its uplink.
TEST(SplitterHealth, TwoEchoesOfTheFirstChunkTimeTheUplink) {
  SplitterConfig config = bench_config();
  config.learn_shares = true;
  SplitterBench bench(config);
  std::vector<Joined> team;
  for (int i = 0; i < 12; ++i) team.push_back(bench.join(false, kFlagEcho));
  EXPECT_EQ(team[0].role_flags & (kRoleFlagEcho | kRoleFlagEchoFloodEnd),
            kRoleFlagEcho | kRoleFlagEchoFloodEnd);
  const auto chunks = bench.cut(12);
  std::map<Endpoint, SharedBytes> dealt;
  for (const auto& [number, sent] : chunks) dealt[sent.first] = sent.second;
  ASSERT_EQ(dealt.size(), 12u);  // one trial chunk each
  const Joined& thin = team[0];
  const Joined& fast = team[1];
  bench.advance_to(40000);
  for (const Joined& j : team) bench.udp(j, *dealt[j.udp]);
  EXPECT_EQ(bench.sp.stats().echoes, 12u);
  bench.advance_to(45000);  // the others' flood-end echoes: fast uplinks
  for (size_t i = 2; i < team.size(); ++i) {
    bench.udp(team[i], *dealt[team[i].udp]);
  }
  // Meanwhile, in a team of 12, it is dealt nothing.
  const auto more = bench.cut(24);
  int to_thin = 0;
  for (const auto& [number, sent] : more) to_thin += sent.first == thin.udp;
  EXPECT_EQ(to_thin, 0);
  bench.advance_to(55000);
  bench.udp(fast, *dealt[fast.udp]);  // 15 ms: the peer's own pacing
  // 8 copies and the echo at 300 kb/s: 9 x (size + 28) x 8 / 300 kb/s.
  const size_t size = dealt[thin.udp]->size();
  const Micros span = 9 * (size + 28) * 8 * 1000 / 300;
  bench.advance_to(40000 + span);
  bench.udp(thin, *dealt[thin.udp]);
  EXPECT_EQ(bench.sp.stats().uplinks_timed, 1u);
  EXPECT_NEAR(static_cast<double>(bench.stats_of(thin.id)->learned_upload_kbps),
              300, 2);
  EXPECT_EQ(bench.stats_of(fast.id)->learned_upload_kbps, -1);
  EXPECT_TRUE(bench.stats_of(thin.id)->proven);
  // Proven and timed: a ROLE without the echo bit stops its echoes.
  bool stopped = false;
  for (const TcpMessage& m : bench.take_tcp(thin.conn)) {
    if (const auto* role = std::get_if<RoleMsg>(&m)) {
      stopped = (role->flags & kRoleFlagEcho) == 0;
    }
  }
  EXPECT_TRUE(stopped);
}

// A team of 12 members on trial whose first floods end at once, but for
// one whose uplink carries `kbps` with `header` bytes of IP and UDP per
// datagram; what the splitter learned of that one's upload.
int64_t LearnedThinUplink(bool ipv6, uint64_t header, Micros kbps) {
  SplitterConfig config = bench_config();
  config.learn_shares = true;
  SplitterBench bench(config);
  bench.ipv6 = ipv6;
  std::vector<Joined> team;
  for (int i = 0; i < 12; ++i) team.push_back(bench.join(false, kFlagEcho));
  std::map<Endpoint, SharedBytes> dealt;
  for (const auto& [number, sent] : bench.cut(12))
    dealt[sent.first] = sent.second;
  bench.advance_to(40000);
  for (const Joined& j : team) bench.udp(j, *dealt[j.udp]);
  bench.advance_to(45000);
  for (size_t i = 1; i < team.size(); ++i)
    bench.udp(team[i], *dealt[team[i].udp]);
  const size_t size = dealt[team[0].udp]->size();
  bench.advance_to(40000 + 9 * (size + header) * 8 * 1000 / kbps);
  bench.udp(team[0], *dealt[team[0].udp]);
  return bench.stats_of(team[0].id)->learned_upload_kbps;
}

// The headers an uplink carries with each chunk: 28 bytes over IPv4, 48
// over IPv6 (2 % of a full datagram, once counted as IPv4's everywhere).
TEST(SplitterHealth, UplinkTimingCountsTheHeadersOfTheMembersFamily) {
  EXPECT_NEAR(static_cast<double>(LearnedThinUplink(false, 28, 300)), 300, 1);
  EXPECT_NEAR(static_cast<double>(LearnedThinUplink(true, 48, 300)), 300, 1);
}

// A member whose flood-end echo never comes is dealt as proven after the
// wait, however fast the stream: the end of its timing was once found
// through the trial chunk's slot in the origin ring, which a stream of
// over 6,800 chunks a second reuses within the 600 ms wait, and the
// member was then dealt nothing for good.
TEST(SplitterHealth, TimingEndsAfterTheWaitEvenWhenTheOriginRingWrapped) {
  SplitterConfig config = bench_config();
  config.learn_shares = true;
  config.history_chunks = 16;  // wraps as 6,800 chunks a second wrap 4096
  SplitterBench bench(config);
  std::vector<Joined> team;
  for (int i = 0; i < 12; ++i) team.push_back(bench.join(false, kFlagEcho));
  const auto chunks = bench.cut(12);
  std::map<Endpoint, SharedBytes> dealt;
  for (const auto& [number, sent] : chunks) dealt[sent.first] = sent.second;
  ASSERT_EQ(dealt.size(), 12u);
  const Joined& silent = team[0];  // its flood-end echo never comes
  bench.advance_to(40000);
  for (const Joined& j : team) bench.udp(j, *dealt[j.udp]);
  bench.advance_to(45000);
  for (size_t i = 1; i < team.size(); ++i)
    bench.udp(team[i], *dealt[team[i].udp]);
  bench.take_tcp(silent.conn);
  int to_silent = 0;
  for (int round = 0; round < 4; ++round) {  // 96 chunks: the ring wraps
    for (const auto& [number, sent] : bench.cut(24))
      to_silent += sent.first == silent.udp;
  }
  EXPECT_EQ(to_silent, 0) << "dealt nothing while timed";
  bench.advance_to(40000 + 2 * config.echo_timeout_us + 1000);
  for (const auto& [number, sent] : bench.cut(48))
    to_silent += sent.first == silent.udp;
  EXPECT_GE(to_silent, 2) << "dealt again once the wait is over";
  bool stopped = false;
  for (const TcpMessage& m : bench.take_tcp(silent.conn)) {
    if (const auto* role = std::get_if<RoleMsg>(&m))
      stopped = (role->flags & kRoleFlagEcho) == 0;
  }
  EXPECT_TRUE(stopped) << "proven: its echoes stop";
  EXPECT_EQ(bench.sp.stats().uplinks_timed, 0u);
}

TEST(SplitterHealth, NackFromAStrangerOrAnotherEndpointIsRejected) {
  SplitterBench bench(bench_config());
  const Joined a = bench.join();
  const auto chunks = bench.cut(5);
  const ChunkNumber n = chunks.begin()->first;
  bench.udp_from(Endpoint::ipv4(10, 9, 9, 9, 5000),
                 encode_nack(NackMsg{kTeamId, a.id, {n}}));
  bench.udp_from(a.udp.with_port(5001),
                 encode_nack(NackMsg{kTeamId, a.id, {n}}));
  bench.udp(a, encode_nack(NackMsg{kTeamId, a.id + 7, {n}}));
  EXPECT_TRUE(bench.take_udp().empty());
  EXPECT_EQ(bench.sp.stats().rejected_datagrams, 3u);
  EXPECT_EQ(bench.sp.stats().retransmits, 0u);
  // Peer-to-peer messages are not for the splitter either.
  bench.udp(a, encode_request(RequestMsg{kTeamId, a.id, a.id}));
  bench.udp(a, encode_prune(PruneMsg{kTeamId, a.id, a.id}));
  EXPECT_EQ(bench.sp.stats().rejected_datagrams, 5u);
}

TEST(SplitterHealth, SilentMemberTimesOutHeartbeatsKeepOthersIn) {
  SplitterConfig config = bench_config();
  config.peer_timeout_us = 1500000;
  SplitterBench bench(config);
  const Joined talker = bench.join();
  const Joined silent = bench.join();
  const Joined forger = bench.join();
  for (Micros t = 250000; t <= 3 * kSecond; t += 250000) {
    bench.advance_to(t);
    bench.udp(talker,
              encode_heartbeat(HeartbeatMsg{kTeamId, talker.id, talker.token}));
    // A heartbeat with a wrong token proves nothing.
    bench.udp(forger, encode_heartbeat(
                          HeartbeatMsg{kTeamId, forger.id, forger.token ^ 1}));
    if (t == 1250000) {
      EXPECT_NE(bench.stats_of(silent.id), nullptr);
    }
  }
  EXPECT_EQ(bench.stats_of(silent.id), nullptr);
  EXPECT_EQ(bench.stats_of(forger.id), nullptr);
  ASSERT_NE(bench.stats_of(talker.id), nullptr);
  EXPECT_EQ(bench.sp.stats().peers_timed_out, 2u);
  const auto told = bench.take_tcp(silent.conn);
  ASSERT_FALSE(told.empty());
  EXPECT_EQ(std::get<RemovedMsg>(told.back()).reason, RemoveReason::kTimeout);
  EXPECT_TRUE(got<PeerLeftMsg>(bench.take_tcp(talker.conn)));
  EXPECT_GE(bench.sp.stats().rejected_datagrams, 4u);
}

TEST(SplitterHealth, SilentMemberLeavesAtTheTimeout) {
  SplitterConfig config = bench_config();
  config.peer_timeout_us = 1500000;
  SplitterBench bench(config);
  bench.advance_to(100000);
  const Joined silent = bench.join();
  EXPECT_EQ(bench.sp.next_deadline(), 1600000u);
  bench.advance_to(1599999);
  EXPECT_NE(bench.stats_of(silent.id), nullptr);
  bench.advance_to(1600000);
  EXPECT_EQ(bench.stats_of(silent.id), nullptr);
  EXPECT_EQ(bench.sp.next_deadline(), UINT64_MAX);
}

// ------------------------------------------------------------ peer ------

TEST(PeerHealth, RequestAndPruneSwitchARelayOnAndOff) {
  constexpr size_t kPeers = 4;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  const uint32_t asker = team.peer(1).peer.id();
  const uint32_t origin = team.peer(2).peer.id();
  team.schedule_stream(kStreamStart, 2 * kSecond);
  team.net.run_until(kStreamStart + 200000);
  // Peer 1 asks peer 0 to relay peer 2's chunks.
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_request(RequestMsg{kTeamId, asker, origin}));
  team.net.run_for(300000);
  const Peer& relay = team.peer(0).peer;
  EXPECT_EQ(relay.stats().relays_served, 1u);
  for (const NeighbourInfo& n : relay.neighbours()) {
    EXPECT_EQ(n.relayed_origins, n.id == asker ? std::vector<uint32_t>{origin}
                                               : std::vector<uint32_t>{});
  }
  const uint64_t relayed = relay.stats().relayed;
  EXPECT_GT(relayed, 10u);
  // Peer 1 did not ask (the request was forged here): the copies are
  // refused, not played twice.
  EXPECT_GT(team.peer(1).peer.stats().rejected_datagrams, 10u);
  EXPECT_EQ(team.peer(1).peer.stats().duplicates, 0u);

  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_prune(PruneMsg{kTeamId, asker, origin}));
  team.net.run_for(100000);
  EXPECT_EQ(relay.stats().relays_served, 0u);
  const uint64_t after_prune = relay.stats().relayed;
  team.net.run_for(500000);
  EXPECT_EQ(relay.stats().relayed, after_prune);

  // Requests for ourselves, for the asker itself, or from a stranger are
  // ignored; the stranger's is counted as rejected.
  const uint64_t rejected = relay.stats().rejected_datagrams;
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_request(RequestMsg{kTeamId, asker, relay.id()}));
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_request(RequestMsg{kTeamId, asker, asker}));
  team.net.inject_udp(Endpoint::ipv4(10, 9, 9, 9, 5000), peer_udp(0),
                      encode_request(RequestMsg{kTeamId, asker, origin}));
  team.net.run_for(10000);
  EXPECT_EQ(relay.stats().relays_served, 0u);
  EXPECT_EQ(relay.stats().rejected_datagrams, rejected + 1);
}

// A relay adds an origin's share to our flood: a peer whose stated upload
// limit is under twice the stream's rate refuses, and one with room accepts
// once it measured the stream (docs/protocol.md 10.5).
TEST(PeerHealth, RelayRequestsNeedRoomUnderTheStatedUploadLimit) {
  PeerConfig thin;
  thin.upload_limit_bps = 1000;  // far under the stream
  PeerConfig wide;
  wide.upload_limit_bps = 1000000000;
  Team team(splitter_config(200));
  team.add_peer(thin);
  team.add_peer(wide);
  team.add_peer();
  team.add_peer();
  team.net.run_until(kStreamStart);
  const uint32_t asker = team.peer(2).peer.id();
  const uint32_t origin = team.peer(3).peer.id();
  team.schedule_stream(kStreamStart, 3 * kSecond);
  const auto ask = [&](size_t relay) {
    team.net.inject_udp(peer_udp(2), peer_udp(relay),
                        encode_request(RequestMsg{kTeamId, asker, origin}));
  };
  // Before a second of the stream was measured, a stated limit refuses.
  team.net.run_until(kStreamStart + 200000);
  ask(1);
  team.net.run_for(10000);
  EXPECT_EQ(team.peer(1).peer.stats().requests_refused, 1u);
  EXPECT_EQ(team.peer(1).peer.stats().relays_served, 0u);
  team.net.run_until(kStreamStart + 1600000);
  ask(0);
  ask(1);
  team.net.run_for(300000);
  const Peer& thin_peer = team.peer(0).peer;
  const Peer& wide_peer = team.peer(1).peer;
  // (The team's own route discovery may ask too: counts are at least.)
  EXPECT_GE(thin_peer.stats().requests_refused, 1u);
  EXPECT_EQ(thin_peer.stats().relays_served, 0u);
  EXPECT_EQ(thin_peer.stats().relayed, 0u);
  EXPECT_GE(wide_peer.stats().relays_served, 1u);
  EXPECT_GT(wide_peer.stats().relayed, 0u);
  for (const NeighbourInfo& n : wide_peer.neighbours()) {
    if (n.id != asker) continue;
    EXPECT_NE(
        std::find(n.relayed_origins.begin(), n.relayed_origins.end(), origin),
        n.relayed_origins.end());
  }
  // Without a stated limit, nothing changes (the test above).
  EXPECT_EQ(team.peer(2).peer.stats().requests_refused, 0u);
}

TEST(PeerHealth, NackAnswersAreRateLimitedAndOnlyForNeighbours) {
  PeerConfig config;
  config.retransmit_rate = 0;
  config.retransmit_burst = 5;
  Team team(splitter_config(200));
  team.add_peer(config);
  team.add_peer(config);
  team.net.run_until(kStreamStart);
  team.schedule_stream(kStreamStart, 1 * kSecond);
  team.net.run_until(kStreamStart + 500000);
  const Peer& answerer = team.peer(0).peer;
  const uint32_t asker = team.peer(1).peer.id();
  const ChunkNumber newest =
      static_cast<ChunkNumber>(team.sp().stats().chunks_cut - 1);
  std::vector<ChunkNumber> asked;
  for (ChunkNumber i = 0; i < 20; ++i) asked.push_back(newest - i);
  size_t answers = 0;
  team.net.set_udp_tap(
      [&](Micros, const Endpoint& from, const Endpoint& to, const Bytes& data) {
        if (from == peer_udp(0) && to == peer_udp(1) && as_chunk(data))
          ++answers;
      });
  const uint64_t sent_before = answerer.stats().retransmits_sent;
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_nack(NackMsg{kTeamId, asker, asked}));
  team.net.run_for(1000);
  EXPECT_EQ(answerer.stats().retransmits_sent - sent_before, 5u);
  EXPECT_EQ(answerer.stats().retransmits_limited, 15u);
  EXPECT_GE(answers, 5u);
  // From a stranger, or a neighbour's id at another address: refused.
  const uint64_t rejected = answerer.stats().rejected_datagrams;
  team.net.inject_udp(Endpoint::ipv4(10, 9, 9, 9, 5000), peer_udp(0),
                      encode_nack(NackMsg{kTeamId, asker, asked}));
  team.net.inject_udp(peer_udp(1).with_port(5001), peer_udp(0),
                      encode_nack(NackMsg{kTeamId, asker, asked}));
  // What only the splitter takes.
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_lost(LostMsg{kTeamId, asker, 0, asked}));
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_heartbeat(HeartbeatMsg{kTeamId, asker, 0}));
  team.net.run_for(1000);
  EXPECT_EQ(answerer.stats().rejected_datagrams, rejected + 4);
  EXPECT_EQ(answerer.stats().retransmits_limited, 15u);
}

TEST(PeerHealth, PeerCanBeRecreatedForAFreshTeam) {
  // The element rebuilds its Peer after a splitter restart: two cores side
  // by side share nothing.
  Team first(splitter_config(200), 1);
  Team second(splitter_config(200), 2);
  first.add_peer();
  first.add_peer();
  second.add_peer();
  second.add_peer();
  first.schedule_stream(kStreamStart, kSecond);
  second.net.run_until(kStreamStart + 2 * kSecond);
  first.net.run_until(kStreamStart + 2 * kSecond);
  EXPECT_GT(first.peer(0).peer.stats().played, 100u);
  EXPECT_EQ(second.peer(0).peer.stats().played, 0u);
  EXPECT_EQ(second.sp().num_peers(), 2u);
}

}  // namespace
}  // namespace p2psp
