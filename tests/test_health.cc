// Team health on the in-memory network and on the bare state machines:
// liveness (heartbeats, timeouts), monitors and loss-based expulsion, NACK
// loss recovery, and REQUEST/PRUNE route discovery (docs/protocol.md
// section 10).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

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

}  // namespace
}  // namespace p2psp
