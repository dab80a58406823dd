// DBS on the in-memory network: a splitter and a team of peers built from the
// sans-I/O core, driven by the simulated clock of sim_network.h.
#include <gst/p2psp/burst.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include "sim_network.h"

namespace p2psp {
namespace {

using sim::NodeId;
using sim::PeerNode;
using sim::SplitterNode;

constexpr uint32_t kTeamId = 0x7e57c0de;
constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;
const char kCaps[] = "video/x-test, streamheader=(buffer)<0102>";
// 1316-byte buffers at 1 Mb/s.
constexpr size_t kBufferSize = 1316;
constexpr Micros kBufferInterval = kBufferSize * 8;
constexpr Micros kStreamStart = 500000;

Endpoint splitter_udp() {
  return Endpoint::ipv4(10, 0, 0, 1, kSplitterUdpPort);
}
Endpoint peer_udp(size_t index) {
  return Endpoint::ipv4(10, 1, static_cast<uint8_t>(index / 200),
                        static_cast<uint8_t>(index % 200 + 1), 5000);
}

SplitterConfig splitter_config(uint32_t chunk_size = 200) {
  SplitterConfig config;
  config.chunk_size = chunk_size;
  config.team_id = kTeamId;
  config.udp_port = kSplitterUdpPort;
  return config;
}

struct StreamSpec {
  size_t count = 190;  // about 2 s
  size_t min_size = kBufferSize;
  size_t max_size = kBufferSize;
  size_t gop = 30;  // a keyframe every `gop` buffers
  uint64_t seed = 7;
  // Flags of a keyframe: mpegtsmux marks them HEADER (and a muxer's own
  // header buffers are HEADER | DELTA_UNIT, which must not open the gate).
  uint32_t keyframe_flags = 0;
  bool delta_headers = false;  // every 7th delta buffer also HEADER
};

std::vector<MediaBuffer> make_stream(const StreamSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<size_t> size_dist(spec.min_size, spec.max_size);
  std::vector<MediaBuffer> stream(spec.count);
  for (size_t i = 0; i < spec.count; ++i) {
    MediaBuffer& b = stream[i];
    b.data.resize(size_dist(rng));
    for (uint8_t& byte : b.data) byte = static_cast<uint8_t>(rng());
    b.pts = i * kBufferInterval * 1000;
    b.dts = b.pts;
    b.duration = kBufferInterval * 1000;
    b.flags = i % spec.gop == 0 ? spec.keyframe_flags
                                : uint32_t{MediaBuffer::kDeltaUnit};
    if (spec.delta_headers && i % spec.gop != 0 && i % 7 == 0) {
      b.flags |= MediaBuffer::kHeader;
    }
  }
  return stream;
}

bool same_buffer(const MediaBuffer& a, const MediaBuffer& b) {
  const uint32_t mask = ~static_cast<uint32_t>(MediaBuffer::kDiscont);
  return a.data == b.data && a.pts == b.pts && a.dts == b.dts &&
         a.duration == b.duration && (a.flags & mask) == (b.flags & mask);
}

bool has_discont(const MediaBuffer& b) {
  return (b.flags & MediaBuffer::kDiscont) != 0;
}

std::vector<MediaBuffer> buffers_of(const PeerNode& node) {
  std::vector<MediaBuffer> out;
  for (const StreamItem& item : node.items) {
    if (item.kind == StreamItem::Kind::kBuffer) out.push_back(item.buffer);
  }
  return out;
}

// out must be exactly in[first..]: same bytes and metadata, DISCONT only on
// the first buffer.
void expect_identical_from(const std::vector<MediaBuffer>& out,
                           const std::vector<MediaBuffer>& in, size_t first) {
  ASSERT_EQ(out.size(), in.size() - first);
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(has_discont(out[0]));
  for (size_t j = 0; j < out.size(); ++j) {
    ASSERT_TRUE(same_buffer(out[j], in[first + j])) << "buffer " << j;
    if (j > 0) {
      ASSERT_FALSE(has_discont(out[j])) << "buffer " << j;
    }
  }
}

// out must be in with some buffers missing: nothing corrupted, nothing out of
// order, and DISCONT wherever something is missing before a buffer.
// Returns how many input buffers are missing.
size_t expect_subsequence(const std::vector<MediaBuffer>& out,
                          const std::vector<MediaBuffer>& in) {
  size_t pos = 0;
  size_t previous = SIZE_MAX;
  for (size_t j = 0; j < out.size(); ++j) {
    while (pos < in.size() && !same_buffer(in[pos], out[j])) ++pos;
    if (pos == in.size()) {
      ADD_FAILURE() << "output buffer " << j << " matches no input buffer";
      return in.size();
    }
    const bool gap = previous == SIZE_MAX || pos != previous + 1;
    if (gap) {
      EXPECT_TRUE(has_discont(out[j])) << "buffer " << j;
    }
    previous = pos++;
  }
  return in.size() - out.size();
}

// A node that speaks raw bytes, for malformed or stalled clients.
class ScriptNode : public sim::Node {
 public:
  void on_udp(const Endpoint&, const uint8_t*, size_t, Micros,
              Outbox*) override {}
  void on_tcp_data(ConnId, const uint8_t* data, size_t size, Micros,
                   Outbox*) override {
    reader.feed(data, size);
    TcpMessage msg;
    while (reader.next(&msg) == TcpReader::Status::kMessage) {
      received.push_back(msg);
    }
  }
  void on_tcp_closed(ConnId, Micros now, Outbox*) override { closed_at = now; }
  void tick(Micros, Outbox*) override {}
  Micros next_deadline() const override { return sim::kNever; }

  TcpReader reader;
  std::vector<TcpMessage> received;
  Micros closed_at = sim::kNever;
};

struct Team {
  explicit Team(const SplitterConfig& config, uint64_t seed = 1) : net(seed) {
    splitter =
        net.add_node(std::make_shared<SplitterNode>(config), splitter_udp());
  }

  NodeId add_peer(const PeerConfig& config = PeerConfig()) {
    auto node = std::make_shared<PeerNode>(
        config, Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort));
    const NodeId id = net.add_node(node, peer_udp(peers.size()));
    peers.push_back(id);
    sim::start_peer(net, id, splitter);
    return id;
  }

  NodeId add_script_client() {
    const NodeId id = net.add_node(std::make_shared<ScriptNode>(),
                                   Endpoint::ipv4(10, 2, 0, 1, 6000));
    net.connect(id, 0, splitter);
    return id;
  }
  void send_tcp(NodeId from, Bytes bytes) {
    net.with(from, [&](Micros, Outbox* out) {
      out->tcp.push_back(TcpSend{0, std::move(bytes)});
    });
  }

  // Feeds the stream at its own pace, starting at `start`.
  void schedule_stream(const std::vector<MediaBuffer>& stream, Micros start) {
    net.schedule(start, [this, start] {
      net.with(splitter, [&](Micros now, Outbox* out) {
        sp().set_caps(kCaps, now, out);
      });
    });
    for (size_t i = 0; i < stream.size(); ++i) {
      const MediaBuffer* buffer = &stream[i];
      net.schedule(start + buffer->pts / 1000, [this, buffer] {
        net.with(splitter, [&](Micros now, Outbox* out) {
          sp().push_buffer(*buffer, now, out);
        });
      });
    }
  }
  // Flushes the last partial chunk and lets the team play everything out.
  void finish(const std::vector<MediaBuffer>& stream, Micros start) {
    const Micros end = start + stream.back().pts / 1000 + kBufferInterval;
    net.run_until(end);
    net.with(splitter, [&](Micros now, Outbox* out) { sp().flush(now, out); });
    net.run_until(end + 1000000);
  }

  // `count` buffers of the default stream, from `start` to the end.
  std::vector<MediaBuffer> play_stream(size_t count, Micros start) {
    StreamSpec spec;
    spec.count = count;
    auto stream = make_stream(spec);
    schedule_stream(stream, start);
    finish(stream, start);
    return stream;
  }

  Splitter& sp() { return net.node<SplitterNode>(splitter)->splitter; }
  SplitterNode& splitter_node() { return *net.node<SplitterNode>(splitter); }
  PeerNode& peer(size_t i) { return *net.node<PeerNode>(peers[i]); }
  ScriptNode& script(NodeId id) { return *net.node<ScriptNode>(id); }

  sim::Network net;
  NodeId splitter = 0;
  std::vector<NodeId> peers;
};

std::optional<ChunkMsg> as_chunk(const Bytes& datagram) {
  auto msg = decode_udp(datagram.data(), datagram.size());
  if (!msg || !std::holds_alternative<ChunkMsg>(*msg)) return std::nullopt;
  return std::get<ChunkMsg>(*msg);
}

bool has_event(const PeerNode& node, PeerEvent::Kind kind, uint32_t peer_id) {
  for (const PeerEvent& e : node.events) {
    if (e.kind == kind && e.peer_id == peer_id) return true;
  }
  return false;
}

bool lists_neighbour(const Peer& peer, uint32_t peer_id) {
  for (const NeighbourInfo& n : peer.neighbours()) {
    if (n.id == peer_id) return true;
  }
  return false;
}

// ------------------------------------------------------------ team ------

TEST(Dbs, FiftyPeersEachGetEveryChunkOnce) {
  constexpr size_t kPeers = 50;
  Team team(splitter_config(200));
  std::map<ChunkNumber, std::vector<Endpoint>> splitter_sends;
  team.net.set_udp_tap(
      [&](Micros, const Endpoint& from, const Endpoint& to, const Bytes& data) {
        auto chunk = as_chunk(data);
        if (from == splitter_udp() && chunk) {
          splitter_sends[chunk->number].push_back(to);
        }
      });
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  ASSERT_EQ(team.sp().num_peers(), kPeers);
  for (size_t i = 0; i < kPeers; ++i) {
    ASSERT_EQ(team.peer(i).peer.state(), PeerState::kMember);
    ASSERT_EQ(team.peer(i).peer.neighbours().size(), kPeers - 1);
  }

  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);

  const SplitterStats& s = team.sp().stats();
  EXPECT_GT(s.chunks_cut, 1000u);
  EXPECT_EQ(s.chunks_sent, s.chunks_cut);
  EXPECT_EQ(s.chunks_dropped, 0u);
  EXPECT_EQ(splitter_sends.size(), s.chunks_cut);
  for (const auto& [number, destinations] : splitter_sends) {
    ASSERT_EQ(destinations.size(), 1u) << "chunk " << number;
  }

  std::map<uint32_t, uint64_t> splitter_bytes_to;
  for (const SplitterPeerStats& p : team.sp().peer_stats()) {
    splitter_bytes_to[p.id] = p.bytes_sent;
  }
  const double fair_upload =
      static_cast<double>(s.bytes_sent) * (kPeers - 1) / kPeers;
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    const Peer& peer = team.peer(i).peer;
    const PeerStats& ps = peer.stats();
    EXPECT_EQ(ps.chunks_from_splitter + ps.chunks_from_peers, s.chunks_cut);
    EXPECT_EQ(ps.duplicates, 0u);
    EXPECT_EQ(ps.lost, 0u);
    EXPECT_EQ(ps.late, 0u);
    EXPECT_EQ(ps.rejected_datagrams, 0u);
    EXPECT_EQ(ps.played, s.chunks_cut);
    // Each chunk a peer got from the splitter went to every other peer once.
    EXPECT_EQ(ps.bytes_up, (kPeers - 1) * splitter_bytes_to[peer.id()]);
    EXPECT_NEAR(static_cast<double>(ps.bytes_up), fair_upload,
                0.05 * fair_upload);

    const auto& items = team.peer(i).items;
    ASSERT_FALSE(items.empty());
    EXPECT_EQ(items[0].kind, StreamItem::Kind::kCaps);
    EXPECT_EQ(items[0].caps, kCaps);
    expect_identical_from(buffers_of(team.peer(i)), stream, 0);
  }
}

// What a sink holding the stream for wait-for-peers does: joiners learn the
// caps in WELCOME at once, the caps frame goes in-band only with the stream.
TEST(Dbs, AnnouncedCapsGoInWelcomeAndLaterInBand) {
  Team team(splitter_config(1024));
  const NodeId first = team.add_peer();
  team.net.run_until(kStreamStart);
  team.sp().announce_caps(kCaps);
  const NodeId second = team.add_peer();
  team.net.run_until(kStreamStart + 500000);
  EXPECT_EQ(team.net.node<PeerNode>(first)->peer.welcome_caps(), "");
  EXPECT_EQ(team.net.node<PeerNode>(second)->peer.welcome_caps(), kCaps);
  EXPECT_EQ(team.sp().stats().chunks_cut, 0u);

  const auto stream = team.play_stream(20, kStreamStart + 500000);
  for (NodeId id : {first, second}) {
    const auto& items = team.net.node<PeerNode>(id)->items;
    ASSERT_FALSE(items.empty());
    EXPECT_EQ(items[0].kind, StreamItem::Kind::kCaps);
    EXPECT_EQ(items[0].caps, kCaps);
    expect_identical_from(buffers_of(*team.net.node<PeerNode>(id)), stream, 0);
  }
}

// Caps that arrive while a joiner is between WELCOME (no caps yet) and
// REGISTER go out in-band, in a chunk cut before the joiner's first one: the
// splitter repeats the caps frame for it, so its first output is the caps.
TEST(Dbs, CapsBetweenWelcomeAndRegisterAreRepeatedInBand) {
  Team team(splitter_config(1024));
  bool hold_register = true;
  team.net.set_udp_filter(
      [&](const Endpoint&, const Endpoint& to, const Bytes& data) {
        auto msg = decode_udp(data.data(), data.size());
        return !(hold_register && to == splitter_udp() && msg &&
                 std::holds_alternative<RegisterMsg>(*msg));
      });
  const NodeId joiner = team.add_peer();
  team.net.run_until(kStreamStart);
  ASSERT_EQ(team.net.node<PeerNode>(joiner)->peer.state(),
            PeerState::kRegistering);
  EXPECT_EQ(team.net.node<PeerNode>(joiner)->peer.welcome_caps(), "");
  team.net.with(team.splitter, [&](Micros now, Outbox* out) {
    team.sp().set_caps(kCaps, now, out);
  });
  // The caps frame alone is flushed (20 ms) to a team with nobody in it.
  team.net.run_until(kStreamStart + 100000);
  EXPECT_EQ(team.sp().stats().chunks_cut, 1u);
  hold_register = false;
  team.net.run_until(kStreamStart + 500000);
  ASSERT_EQ(team.net.node<PeerNode>(joiner)->peer.state(), PeerState::kMember);
  EXPECT_EQ(team.sp().stats().caps_repeated, 1u);

  const auto stream = team.play_stream(40, kStreamStart + 500000);
  const auto& items = team.net.node<PeerNode>(joiner)->items;
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items[0].kind, StreamItem::Kind::kCaps);
  EXPECT_EQ(items[0].caps, kCaps);
  expect_identical_from(buffers_of(*team.net.node<PeerNode>(joiner)), stream,
                        0);
  // Caps known at WELCOME are not repeated.
  EXPECT_EQ(team.sp().stats().caps_repeated, 1u);
}

TEST(Dbs, LateJoinerStartsAtKeyframeWithDiscont) {
  Team team(splitter_config(1024));
  for (int i = 0; i < 6; ++i) team.add_peer();
  StreamSpec spec;
  spec.count = 285;
  spec.min_size = 100;
  spec.max_size = 3000;
  spec.gop = 25;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(kStreamStart + 1300000);
  PeerConfig no_burst;  // the gate alone (7.2); the burst is tested below
  no_burst.join_burst = false;
  const NodeId late = team.add_peer(no_burst);
  team.finish(stream, kStreamStart);

  const PeerNode& node = *team.net.node<PeerNode>(late);
  EXPECT_EQ(node.peer.state(), PeerState::kMember);
  EXPECT_EQ(node.peer.welcome_caps(), kCaps);
  const auto out = buffers_of(node);
  ASSERT_FALSE(out.empty());
  size_t first = 0;
  while (first < stream.size() && !same_buffer(stream[first], out[0])) {
    ++first;
  }
  ASSERT_LT(first, stream.size()) << "first buffer matches no input buffer";
  EXPECT_GT(first, 100u);  // it joined 1.3 s into the stream
  EXPECT_TRUE(out[0].is_keyframe());
  EXPECT_TRUE(stream[first].is_keyframe());
  expect_identical_from(out, stream, first);

  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(team.peer(i).peer.stats().lost, 0u);
    EXPECT_EQ(team.peer(i).peer.neighbours().size(), 6u);
    expect_identical_from(buffers_of(team.peer(i)), stream, 0);
  }
}

TEST(Dbs, LateJoinerStartsAtHeaderFlaggedKeyframe) {
  Team team(splitter_config(1024));
  for (int i = 0; i < 3; ++i) team.add_peer();
  StreamSpec spec;
  spec.count = 285;
  spec.gop = 25;
  spec.keyframe_flags = MediaBuffer::kHeader;
  spec.delta_headers = true;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(kStreamStart + 1300000);
  const NodeId late = team.add_peer();
  team.finish(stream, kStreamStart);

  const auto out = buffers_of(*team.net.node<PeerNode>(late));
  // Delta-unit headers may come first; the first non-header must be the
  // first delta unit after a keyframe, i.e. the keyframe itself came out.
  size_t k = 0;
  while (k < out.size() && (out[k].flags & MediaBuffer::kDeltaUnit)) ++k;
  ASSERT_LT(k, out.size());
  EXPECT_TRUE(out[k].is_keyframe());
  EXPECT_TRUE(out[k].flags & MediaBuffer::kHeader);
  size_t first = 0;
  while (first < stream.size() && !same_buffer(stream[first], out[k])) ++first;
  ASSERT_LT(first, stream.size());
  EXPECT_GT(first, 100u);
  expect_identical_from(
      std::vector<MediaBuffer>(out.begin() + static_cast<long>(k), out.end()),
      stream, first);
}

TEST(Dbs, FirstChunkLostOnTheWayIsRecoveredWithTheCaps) {
  // The stream starts as the team forms: the first chunk (the caps) must not
  // be lost to a peer just because it never arrived.
  Team team(splitter_config(200));
  for (int i = 0; i < 5; ++i) team.add_peer();
  const Endpoint victim = peer_udp(4);
  bool dropped = false;
  team.net.set_udp_filter(
      [&](const Endpoint&, const Endpoint& to, const Bytes& data) {
        const auto chunk = as_chunk(data);
        if (!dropped && chunk && to == victim && chunk->number == 0) {
          dropped = true;
          return false;
        }
        return true;
      });
  StreamSpec spec;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);
  ASSERT_TRUE(dropped);
  const PeerNode& node = team.peer(4);
  EXPECT_EQ(node.peer.stats().lost, 0u);
  EXPECT_GE(node.peer.stats().recovered, 1u);
  ASSERT_FALSE(node.items.empty());
  EXPECT_EQ(node.items[0].kind, StreamItem::Kind::kCaps);
  expect_identical_from(buffers_of(node), stream, 0);
}

TEST(Dbs, PeersPlayTheLastChunksSentBeforeShutdown) {
  Team team(splitter_config(200));
  for (int i = 0; i < 6; ++i) team.add_peer();
  StreamSpec spec;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  const Micros end = kStreamStart + stream.back().pts / 1000 + kBufferInterval;
  team.net.run_until(end);
  // EOS and stop at once: the final chunks and the REMOVED leave together.
  team.net.with(team.splitter, [&](Micros now, Outbox* out) {
    team.sp().flush(now, out);
    team.sp().shutdown(now, out);
  });
  team.net.run_until(end + 1000000);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(team.peer(i).peer.state(), PeerState::kRemoved);
    EXPECT_EQ(team.peer(i).peer.stats().lost, 0u) << "peer " << i;
    expect_identical_from(buffers_of(team.peer(i)), stream, 0);
  }
}

// ------------------------------------------------------------ churn -----

TEST(Dbs, KilledPeerIsRemovedAndCostsOnlyItsChunksInFlight) {
  constexpr size_t kPeers = 8;
  constexpr size_t kVictim = 3;
  constexpr Micros kKillAt = kStreamStart + 1000000;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  const Endpoint victim_udp = peer_udp(kVictim);
  std::vector<Micros> splitter_to_victim;
  Micros last_to_victim = 0;
  team.net.set_udp_tap(
      [&](Micros now, const Endpoint& from, const Endpoint& to, const Bytes&) {
        if (to != victim_udp) return;
        last_to_victim = now;
        if (from == splitter_udp()) splitter_to_victim.push_back(now);
      });
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(kKillAt);
  const uint32_t victim_id = team.peer(kVictim).peer.id();
  team.net.kill(team.peers[kVictim]);
  team.finish(stream, kStreamStart);

  EXPECT_EQ(team.sp().num_peers(), kPeers - 1);
  EXPECT_EQ(team.sp().stats().peers_left, 1u);
  bool splitter_removed = false;
  for (const SplitterEvent& e : team.splitter_node().events) {
    splitter_removed |=
        e.kind == SplitterEvent::Kind::kPeerRemoved && e.peer_id == victim_id;
  }
  EXPECT_TRUE(splitter_removed);
  // TCP close reaches the splitter, then PEER_LEFT the peers: two delays.
  EXPECT_LE(last_to_victim, kKillAt + 3000);

  // What the victim got from the splitter but had not flooded yet is lost:
  // at most a forward-flush period of its chunks, plus those sent after
  // its death.
  const Micros in_flight_since = kKillAt - PeerConfig().forward_flush_us - 2000;
  const size_t in_flight = static_cast<size_t>(
      std::count_if(splitter_to_victim.begin(), splitter_to_victim.end(),
                    [&](Micros t) { return t >= in_flight_since; }));
  const uint64_t cut = team.sp().stats().chunks_cut;
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kVictim) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    const PeerStats& ps = node.peer.stats();
    EXPECT_TRUE(has_event(node, PeerEvent::Kind::kNeighbourRemoved, victim_id));
    EXPECT_FALSE(lists_neighbour(node.peer, victim_id));
    EXPECT_EQ(node.peer.neighbours().size(), kPeers - 2);
    EXPECT_LE(ps.lost, in_flight);
    EXPECT_EQ(ps.played + ps.lost, cut);
    EXPECT_EQ(ps.duplicates, 0u);
    expect_subsequence(buffers_of(node), stream);
  }
}

// The leave time is swept over one round so that chunks the splitter sends
// the leaver while its GOODBYE travels are part of the test.
class LeaveTimes : public ::testing::TestWithParam<Micros> {};

TEST_P(LeaveTimes, PeerLeavingWithGoodbyeCostsNothing) {
  constexpr size_t kPeers = 8;
  constexpr size_t kLeaver = 5;
  const Micros leave_at = kStreamStart + 1000000 + GetParam();
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(leave_at);
  const uint32_t leaver_id = team.peer(kLeaver).peer.id();
  team.net.with(team.peers[kLeaver], [&](Micros now, Outbox* out) {
    team.peer(kLeaver).peer.leave(now, out);
  });
  EXPECT_EQ(team.peer(kLeaver).peer.state(), PeerState::kLeft);
  team.net.run_until(leave_at + 100000);
  team.net.kill(team.peers[kLeaver]);  // the process exits
  team.finish(stream, kStreamStart);

  EXPECT_EQ(team.sp().num_peers(), kPeers - 1);
  EXPECT_EQ(team.sp().stats().peers_left, 1u);
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kLeaver) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    EXPECT_TRUE(has_event(node, PeerEvent::Kind::kNeighbourRemoved, leaver_id));
    EXPECT_FALSE(lists_neighbour(node.peer, leaver_id));
    EXPECT_EQ(node.peer.stats().lost, 0u);
    EXPECT_EQ(node.peer.stats().rejected_datagrams, 0u);
    expect_identical_from(buffers_of(node), stream, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(OneRound, LeaveTimes,
                         ::testing::Values(0, 1600, 3200, 4800, 6400, 8000,
                                           9600, 11200));

// ------------------------------------------------------------ numbers ---

TEST(Dbs, ChunkNumbersWrapWithoutLoss) {
  SplitterConfig config = splitter_config(200);
  config.first_chunk = 0xFFFFFF00u;
  Team team(config);
  bool saw_last = false, saw_zero = false;
  team.net.set_udp_tap(
      [&](Micros, const Endpoint&, const Endpoint&, const Bytes& data) {
        if (auto chunk = as_chunk(data)) {
          saw_last |= chunk->number == 0xFFFFFFFFu;
          saw_zero |= chunk->number == 0;
        }
      });
  for (int i = 0; i < 5; ++i) team.add_peer();
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);
  EXPECT_TRUE(saw_last);
  EXPECT_TRUE(saw_zero);
  for (int i = 0; i < 5; ++i) {
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_EQ(ps.lost, 0u);
    EXPECT_EQ(ps.duplicates, 0u);
    EXPECT_EQ(ps.played, team.sp().stats().chunks_cut);
    expect_identical_from(buffers_of(team.peer(i)), stream, 0);
  }
}

TEST(Dbs, RandomLossIsCountedAndNeverCorrupts) {
  constexpr size_t kPeers = 10;
  Team team(splitter_config(500), /*seed=*/2024);
  team.net.set_default_link(sim::LinkParams{1000, 0.02});
  // Without loss recovery, so that losses reach the playout (test_health
  // covers recovery).
  PeerConfig config;
  config.max_nack_attempts = 0;
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  StreamSpec spec;
  spec.count = 285;
  spec.min_size = 50;
  spec.max_size = 2500;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);

  EXPECT_GT(team.net.stats().udp_lost, 0u);
  uint64_t total_lost = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    const PeerStats& ps = node.peer.stats();
    // REGISTER and HELLO may be lost too: retries and PEER_JOINED cover it.
    EXPECT_EQ(node.peer.state(), PeerState::kMember);
    EXPECT_EQ(node.peer.neighbours().size(), kPeers - 1);
    EXPECT_LE(ps.played + ps.lost, team.sp().stats().chunks_cut);
    total_lost += ps.lost;
    const size_t missing = expect_subsequence(buffers_of(node), stream);
    // A lost chunk costs every buffer it touches (up to 2500 bytes of
    // 500-byte chunks): about 4 % lost chunks cost up to ~20 % of buffers.
    EXPECT_LT(missing, stream.size() / 4);
    if (ps.lost == 0) {
      EXPECT_EQ(missing, 0u);
    }
  }
  EXPECT_GT(total_lost, 0u);
}

// ------------------------------------------------------------ bad input -

TEST(Dbs, GarbageOnTcpClosesTheConnection) {
  Team team(splitter_config());
  const NodeId client = team.add_script_client();
  team.send_tcp(client, Bytes{0xff, 0xff, 0xff, 0xff, 1, 2, 3});
  team.net.run_for(10000);
  EXPECT_NE(team.script(client).closed_at, sim::kNever);
  EXPECT_EQ(team.sp().stats().rejected_connections, 1u);
  EXPECT_EQ(team.sp().num_peers(), 0u);
}

TEST(Dbs, JoinWithOtherVersionIsRejected) {
  Team team(splitter_config());
  const NodeId client = team.add_script_client();
  JoinMsg join;
  join.version = kProtocolVersion + 1;
  team.send_tcp(client, encode_tcp(join));
  team.net.run_for(10000);
  const ScriptNode& script = team.script(client);
  ASSERT_EQ(script.received.size(), 1u);
  const auto* reject = std::get_if<RejectMsg>(&script.received[0]);
  ASSERT_NE(reject, nullptr);
  EXPECT_EQ(reject->reason, RemoveReason::kVersion);
  EXPECT_NE(reject->text.find(std::to_string(kProtocolVersion)),
            std::string::npos);
  EXPECT_NE(script.closed_at, sim::kNever);
  EXPECT_EQ(team.sp().stats().rejected_connections, 1u);
}

TEST(Dbs, PeerRefusesWelcomeOfAnotherVersion) {
  Peer peer(PeerConfig{}, Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort));
  Outbox out;
  peer.start(0, &out);
  out.clear();
  WelcomeMsg welcome;
  welcome.version = kProtocolVersion + 1;
  welcome.team_id = kTeamId;
  welcome.peer_id = 7;
  welcome.splitter_udp_port = kSplitterUdpPort;
  const Bytes bytes = encode_tcp(welcome);
  peer.on_tcp_data(bytes.data(), bytes.size(), 1000, &out);
  EXPECT_EQ(peer.state(), PeerState::kRemoved);
  EXPECT_TRUE(out.udp.empty()) << "must not REGISTER with a foreign splitter";
  const auto events = peer.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEvent::Kind::kProtocolError);
  EXPECT_EQ(events[0].reason, RemoveReason::kVersion);
}

TEST(Dbs, FullTeamRejectsJoin) {
  SplitterConfig config = splitter_config();
  config.max_peers = 2;
  Team team(config);
  for (int i = 0; i < 3; ++i) team.add_peer();
  team.net.run_for(100000);
  EXPECT_EQ(team.sp().num_peers(), 2u);
  EXPECT_EQ(team.peer(0).peer.state(), PeerState::kMember);
  EXPECT_EQ(team.peer(1).peer.state(), PeerState::kMember);
  const PeerNode& third = team.peer(2);
  EXPECT_EQ(third.peer.state(), PeerState::kRemoved);
  ASSERT_FALSE(third.events.empty());
  EXPECT_EQ(third.events.back().kind, PeerEvent::Kind::kRemoved);
  EXPECT_EQ(third.events.back().reason, RemoveReason::kTeamFull);
  EXPECT_EQ(team.sp().stats().rejected_connections, 1u);
}

TEST(Dbs, HandshakeTimeoutClosesSilentConnections) {
  SplitterConfig config = splitter_config();
  config.handshake_timeout_us = 1000000;
  Team team(config);
  const NodeId silent = team.add_script_client();
  const NodeId unregistered = team.add_script_client();
  team.send_tcp(unregistered, encode_tcp(JoinMsg{}));
  team.net.run_for(900000);
  EXPECT_EQ(team.script(silent).closed_at, sim::kNever);
  team.net.run_for(200000);
  EXPECT_NE(team.script(silent).closed_at, sim::kNever);
  EXPECT_TRUE(team.script(silent).received.empty());
  const ScriptNode& joined = team.script(unregistered);
  EXPECT_NE(joined.closed_at, sim::kNever);
  ASSERT_EQ(joined.received.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WelcomeMsg>(joined.received[0]));
  const auto* reject = std::get_if<RejectMsg>(&joined.received[1]);
  ASSERT_NE(reject, nullptr);
  EXPECT_EQ(reject->reason, RemoveReason::kTimeout);
  EXPECT_EQ(team.sp().stats().rejected_connections, 2u);
  EXPECT_EQ(team.sp().next_deadline(), UINT64_MAX);
}

TEST(Dbs, ForgedDatagramsAreCountedAndChangeNothing) {
  Team team(splitter_config(200));
  for (int i = 0; i < 3; ++i) team.add_peer();
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(kStreamStart + 300000);

  const Peer& victim = team.peer(0).peer;
  const uint32_t other_id = team.peer(1).peer.id();
  // Numbers the stream has not reached yet: accepted, they would corrupt it.
  const ChunkNumber ahead =
      static_cast<ChunkNumber>(team.sp().stats().chunks_cut + 20);
  const Bytes payload(200, 0xAB);
  auto forged = [&](uint32_t team_id, ChunkNumber n, uint32_t origin) {
    return encode_chunk(team_id, n, origin, 0, 0, payload.data(),
                        payload.size());
  };
  const Endpoint stranger = Endpoint::ipv4(10, 9, 9, 9, 5000);
  const Endpoint victim_udp = peer_udp(0);
  // From a non-member, naming a member as origin, or leaving the origin
  // out (it would be the stranger itself).
  team.net.inject_udp(stranger, victim_udp, forged(kTeamId, ahead, other_id));
  team.net.inject_udp(stranger, victim_udp,
                      forged(kTeamId, ahead + 5, kImplicitOrigin));
  // Wrong team.
  team.net.inject_udp(peer_udp(1), victim_udp,
                      forged(kTeamId + 1, ahead + 1, other_id));
  // Truncated.
  Bytes truncated = forged(kTeamId, ahead + 2, other_id);
  truncated.resize(kChunkHeaderSize - 3);
  team.net.inject_udp(peer_udp(1), victim_udp, truncated);
  // Spoofed origin: a member's endpoint claiming to relay the victim's own
  // splitter chunk, and the splitter's endpoint with another origin.
  team.net.inject_udp(peer_udp(1), victim_udp,
                      forged(kTeamId, ahead + 3, victim.id()));
  team.net.inject_udp(splitter_udp(), victim_udp,
                      forged(kTeamId, ahead + 4, other_id));
  // At the splitter: garbage, a foreign REGISTER, a REGISTER with a bad
  // token, and a chunk.
  team.net.inject_udp(stranger, splitter_udp(), Bytes{1, 2, 3});
  team.net.inject_udp(stranger, splitter_udp(),
                      encode_register(RegisterMsg{kTeamId + 1, 1, 0}));
  team.net.inject_udp(stranger, splitter_udp(),
                      encode_register(RegisterMsg{kTeamId, victim.id(), 42}));
  team.net.inject_udp(stranger, splitter_udp(), forged(kTeamId, ahead, 1));
  team.finish(stream, kStreamStart);

  EXPECT_EQ(victim.stats().rejected_datagrams, 6u);
  EXPECT_EQ(team.sp().stats().rejected_datagrams, 4u);
  EXPECT_EQ(team.sp().num_peers(), 3u);
  EXPECT_EQ(team.peer(0).peer.neighbours().size(), 2u);
  for (int i = 0; i < 3; ++i) {
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_EQ(ps.lost, 0u);
    EXPECT_EQ(ps.duplicates, 0u);
    EXPECT_EQ(ps.played, team.sp().stats().chunks_cut);
    expect_identical_from(buffers_of(team.peer(i)), stream, 0);
  }
}

// ------------------------------------------------------------ debt ------

TEST(Dbs, NeighbourThatNeverSendsIsDroppedOverDebt) {
  constexpr size_t kPeers = 4;
  constexpr size_t kMute = 3;
  PeerConfig config;
  config.max_chunk_debt = 4;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  team.net.run_until(kStreamStart);
  const uint32_t mute_id = team.peer(kMute).peer.id();
  // Receives everything, sends nothing.
  team.net.set_link(team.peers[kMute], sim::kAnyNode, sim::LinkParams{1000, 1});
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  // Two rounds in: every peer is still within its allowance.
  team.net.run_until(kStreamStart + 15000);
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kMute) continue;
    // Still within its debt allowance after a few chunks.
    EXPECT_TRUE(lists_neighbour(team.peer(i).peer, mute_id));
  }
  team.finish(stream, kStreamStart);

  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kMute) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    EXPECT_TRUE(has_event(node, PeerEvent::Kind::kNeighbourRemoved, mute_id));
    EXPECT_FALSE(lists_neighbour(node.peer, mute_id));
    // Peers that do send stay in: their debt balances.
    EXPECT_EQ(node.peer.neighbours().size(), kPeers - 2);
    for (const NeighbourInfo& n : node.peer.neighbours()) {
      EXPECT_LE(n.debt, static_cast<int64_t>(config.max_chunk_debt));
    }
  }
}

// A good neighbour behind a lossy link delivers most of its chunks: its
// debt must not creep up with the chunks lost (the old rule, sent minus
// received, only ever grew with them and dropped it).
TEST(Dbs, NeighbourBehindLossyLinkIsKept) {
  constexpr size_t kPeers = 5;
  PeerConfig config;
  config.max_chunk_debt = 8;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer(config);
  team.net.run_until(kStreamStart);
  // 30 % lost: NACKs to the origin itself repay most, and the old rule
  // still drifted up by the answers lost in turn.
  team.net.set_link(team.peers[0], team.peers[1], sim::LinkParams{1000, 0.3});
  const uint32_t lossy_id = team.peer(0).peer.id();
  StreamSpec spec;
  spec.count = 400;  // about 4 s: 500 chunks of the lossy neighbour's
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);

  const PeerNode& node = team.peer(1);
  EXPECT_GT(team.sp().stats().chunks_cut, 1000u);
  EXPECT_FALSE(has_event(node, PeerEvent::Kind::kNeighbourRemoved, lossy_id));
  EXPECT_TRUE(lists_neighbour(node.peer, lossy_id));
  EXPECT_GT(node.peer.stats().recovered, 0u);  // the link did lose some
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    EXPECT_EQ(team.peer(i).peer.neighbours().size(), kPeers - 1);
    EXPECT_EQ(team.peer(i).peer.stats().lost, 0u);
  }
}

// A member that claims a share and keeps its chunks (it reaches the
// splitter, never its neighbours): they get its chunks from NACK answers,
// which is debt, and drop it though the splitter keeps it in the team.
TEST(Dbs, MemberThatKeepsItsChunksIsDroppedOverDebt) {
  constexpr size_t kPeers = 5;
  constexpr size_t kCheater = 3;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) team.add_peer();
  team.net.run_until(kStreamStart);
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kCheater) continue;
    team.net.set_link(team.peers[kCheater], team.peers[i],
                      sim::LinkParams{1000, 1});
  }
  const uint32_t cheater_id = team.peer(kCheater).peer.id();
  StreamSpec spec;
  spec.count = 400;  // about 4 s, 500 chunks dealt to the cheater
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);

  EXPECT_EQ(team.sp().num_peers(), kPeers);
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kCheater) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    EXPECT_TRUE(
        has_event(node, PeerEvent::Kind::kNeighbourRemoved, cheater_id));
    EXPECT_FALSE(lists_neighbour(node.peer, cheater_id));
    EXPECT_EQ(node.peer.neighbours().size(), kPeers - 2);
  }
}

// ------------------------------------------------- start points (7.3) ---

TEST(Dbs, LateJoinerWithoutKeyframeStartsAfterBoundedWait) {
  Team team(splitter_config(1024));
  team.add_peer();
  StreamSpec spec;
  spec.count = 300;  // about 3.2 s, one keyframe, at the start
  spec.gop = 100000;
  const auto stream = make_stream(spec);
  team.schedule_stream(stream, kStreamStart);
  team.net.run_until(kStreamStart + 800000);
  PeerConfig config;
  config.start_timeout_us = 1000000;
  config.join_burst = false;  // a burst would bring the first keyframe
  const NodeId late = team.add_peer(config);
  PeerConfig patient;
  patient.start_timeout_us = 0;  // waits for a keyframe however long
  patient.join_burst = false;
  const NodeId never = team.add_peer(patient);
  team.net.run_until(kStreamStart + 1500000);
  const PeerNode& node = *team.net.node<PeerNode>(late);
  EXPECT_EQ(node.peer.start_state().phase, PeerStartState::Phase::kWaiting);
  EXPECT_GT(node.peer.start_state().dropped_buffers, 0u);
  EXPECT_TRUE(buffers_of(node).empty());
  team.finish(stream, kStreamStart);

  const PeerStartState& st = node.peer.start_state();
  EXPECT_EQ(st.phase, PeerStartState::Phase::kStarted);
  EXPECT_TRUE(st.by_timeout);
  EXPECT_EQ(st.timeout_us, 1000000u);
  EXPECT_GE(st.started_us - st.waiting_since_us, 1000000u);
  EXPECT_LT(st.started_us - st.waiting_since_us, 1100000u);
  const auto out = buffers_of(node);
  ASSERT_FALSE(out.empty());
  EXPECT_FALSE(out[0].is_keyframe());
  EXPECT_TRUE(has_discont(out[0]));
  size_t first = 0;
  while (first < stream.size() && !same_buffer(stream[first], out[0])) ++first;
  ASSERT_LT(first, stream.size());
  for (size_t j = 1; j < out.size(); ++j) EXPECT_FALSE(has_discont(out[j]));

  const PeerNode& waiting = *team.net.node<PeerNode>(never);
  EXPECT_TRUE(buffers_of(waiting).empty());
  EXPECT_EQ(waiting.peer.start_state().phase, PeerStartState::Phase::kWaiting);
  // The members that joined before the stream started at its keyframe.
  EXPECT_FALSE(team.peer(0).peer.start_state().by_timeout);
  expect_identical_from(buffers_of(team.peer(0)), stream, 0);
}

TEST(Dbs, OggparseFedLateJoinerGetsHeadersAndStartsAtKeyframePage) {
  // What oggparse gives: one page a buffer, flags not to be trusted (here:
  // everything DELTA_UNIT), caps without a streamheader at first.
  std::ifstream f(
      std::string(P2PSP_TEST_DATA) + "/startpoints/theora-vorbis.ogg",
      std::ios::binary);
  const Bytes file(std::istreambuf_iterator<char>(f), {});
  ASSERT_GT(file.size(), 1000u);
  std::vector<MediaBuffer> pages;
  for (size_t i = 0; i + 27 <= file.size();) {
    size_t n = file[i + 26], body = 0;
    for (size_t k = 0; k < n; k++) body += file[i + 27 + k];
    MediaBuffer b;
    b.data.assign(file.begin() + i, file.begin() + i + 27 + n + body);
    b.flags = MediaBuffer::kDeltaUnit;
    pages.push_back(std::move(b));
    i += 27 + n + body;
  }
  ASSERT_GT(pages.size(), 10u);
  Team team(splitter_config(1024));
  team.add_peer();
  constexpr Micros kPage = 150000;
  team.net.schedule(kStreamStart, [&] {
    team.net.with(team.splitter, [&](Micros now, Outbox* out) {
      team.sp().set_caps("application/ogg", now, out);
    });
  });
  for (size_t i = 0; i < pages.size(); ++i) {
    team.net.schedule(kStreamStart + 1000 + i * kPage, [&, i] {
      team.net.with(team.splitter, [&](Micros now, Outbox* out) {
        team.sp().push_buffer(pages[i], now, out);
      });
    });
  }
  // Join after the headers and the first keyframe page.
  const Micros join = kStreamStart + 8 * kPage;
  team.net.run_until(join);
  const NodeId late = team.add_peer();
  team.net.run_until(kStreamStart + pages.size() * kPage + 300000);
  team.net.with(team.splitter,
                [&](Micros now, Outbox* out) { team.sp().flush(now, out); });
  team.net.run_until(kStreamStart + pages.size() * kPage + 1500000);

  const PeerNode& node = *team.net.node<PeerNode>(late);
  // WELCOME's caps carry the header pages found in the stream.
  const std::string& caps = node.peer.welcome_caps();
  EXPECT_EQ(caps.rfind("application/ogg, streamheader=(buffer)< 4f676753", 0),
            0u)
      << caps;
  const auto out = buffers_of(node);
  ASSERT_FALSE(out.empty());
  // It starts at a page that begins a Theora keyframe packet, at once
  // (not after the bounded wait), with no DISCONT inside the run.
  EXPECT_TRUE(out[0].is_keyframe());
  EXPECT_FALSE(node.peer.start_state().by_timeout);
  ASSERT_GT(out[0].data.size(), 28u);
  EXPECT_EQ(out[0].data[27 + out[0].data[26]] & 0xc0, 0);
  Bytes tail;
  for (const MediaBuffer& b : out)
    tail.insert(tail.end(), b.data.begin(), b.data.end());
  ASSERT_LE(tail.size(), file.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(),
                         file.end() - static_cast<ptrdiff_t>(tail.size())));
  // The first member got the header pages, flagged HEADER (not start
  // points), then every page from the first keyframe page on (a Vorbis page
  // before it waits at the gate like any delta unit).
  const auto all = buffers_of(team.peer(0));
  size_t headers = 0;
  while (headers < all.size() && (all[headers].flags & MediaBuffer::kHeader)) {
    EXPECT_TRUE(all[headers].flags & MediaBuffer::kDeltaUnit);
    EXPECT_EQ(all[headers].data, pages[headers].data);
    ++headers;
  }
  EXPECT_EQ(headers, 4u);
  ASSERT_LT(headers, all.size());
  EXPECT_TRUE(all[headers].is_keyframe());
  const size_t rest = all.size() - headers;
  for (size_t j = 0; j < rest; ++j) {
    EXPECT_EQ(all[headers + j].data, pages[pages.size() - rest + j].data);
  }
  EXPECT_GE(all.size(), pages.size() - 1);
}

// ------------------------------------------------------ join burst (7.4) ---

// A team of 6 (or `members`) streaming a 1 s GOP; a peer joins 1.5 s in,
// when the latest keyframe is buffer 100 (1.05 s).
struct BurstScenario {
  static constexpr Micros kJoinAt = kStreamStart + 1500000;
  static constexpr size_t kLatestKeyframe = 100;
  explicit BurstScenario(const SplitterConfig& config = splitter_config(1024),
                         const PeerConfig& joiner = PeerConfig(),
                         int members = 6)
      : team(config) {
    for (int i = 0; i < members; ++i) team.add_peer();
    spec.count = 285;
    spec.gop = 100;
    stream = make_stream(spec);
    team.schedule_stream(stream, kStreamStart);
    team.net.run_until(kJoinAt);
    late = team.add_peer(joiner);
  }
  const PeerNode& joiner() { return *team.net.node<PeerNode>(late); }
  size_t first_input_index() {
    const auto out = buffers_of(joiner());
    size_t first = 0;
    while (first < stream.size() && !same_buffer(stream[first], out.at(0))) {
      ++first;
    }
    return first;
  }
  Team team;
  StreamSpec spec;
  std::vector<MediaBuffer> stream;
  NodeId late = 0;
};

TEST(Dbs, JoinBurstStartsTheJoinerAtTheLatestKeyframeAtOnce) {
  BurstScenario s;
  // 100 ms after joining (a few round trips here), the joiner has played
  // the GOP so far from its keyframe: without the burst it would wait for
  // the next keyframe, 550 ms away.
  s.team.net.run_until(BurstScenario::kJoinAt + 100000);
  const auto early = buffers_of(s.joiner());
  ASSERT_GE(early.size(), 40u);
  EXPECT_EQ(s.first_input_index(), BurstScenario::kLatestKeyframe);
  EXPECT_TRUE(early[0].is_keyframe());

  s.team.finish(s.stream, kStreamStart);
  expect_identical_from(buffers_of(s.joiner()), s.stream,
                        BurstScenario::kLatestKeyframe);
  const SplitterStats& st = s.team.sp().stats();
  const PeerStats& ps = s.joiner().peer.stats();
  EXPECT_EQ(st.bursts, 1u);
  EXPECT_GT(st.burst_chunks, 40u);
  EXPECT_EQ(ps.burst_chunks, st.burst_chunks);
  EXPECT_EQ(ps.lost, 0u);
  // Burst chunks are never flooded: the joiner forwards its own chunks only.
  EXPECT_LE(ps.chunks_forwarded, ps.chunks_from_splitter * 6);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(s.team.peer(i).peer.stats().rejected_datagrams, 0u);
    expect_identical_from(buffers_of(s.team.peer(i)), s.stream, 0);
  }
}

// The first viewer of a team is a late joiner too: the chunks cut while the
// team was empty were sent to nobody, but kept for its burst.
TEST(Dbs, FirstJoinerOfAnEmptyTeamGetsAJoinBurstToo) {
  BurstScenario s(splitter_config(1024), PeerConfig(), 0);
  s.team.net.run_until(BurstScenario::kJoinAt + 100000);
  const auto early = buffers_of(s.joiner());
  ASSERT_GE(early.size(), 40u);
  EXPECT_EQ(s.first_input_index(), BurstScenario::kLatestKeyframe);
  s.team.finish(s.stream, kStreamStart);
  expect_identical_from(buffers_of(s.joiner()), s.stream,
                        BurstScenario::kLatestKeyframe);
  const SplitterStats& st = s.team.sp().stats();
  const PeerStats& ps = s.joiner().peer.stats();
  EXPECT_EQ(st.bursts, 1u);
  EXPECT_GT(st.burst_chunks, 40u);
  EXPECT_EQ(ps.burst_chunks, st.burst_chunks);
  EXPECT_EQ(ps.lost, 0u);
  EXPECT_EQ(ps.rejected_datagrams, 0u);
}

TEST(Dbs, JoinBurstIsPacedAtTheConfiguredRate) {
  SplitterConfig config = splitter_config(1024);
  config.burst_rate = 100000;  // bytes per second, after a 32 KiB window
  BurstScenario s(config);
  const Micros kAfter = 200000;
  s.team.net.run_until(BurstScenario::kJoinAt + kAfter);
  const SplitterStats& st = s.team.sp().stats();
  EXPECT_EQ(st.bursts, 1u);
  EXPECT_LE(st.burst_bytes, BurstPacer::kInitialWindow +
                                config.burst_rate * kAfter / 1000000 + 1500);
  EXPECT_GT(st.burst_bytes, BurstPacer::kInitialWindow);
  s.team.finish(s.stream, kStreamStart);
  // 56 KiB at 100 kB/s: slower than the stream, yet all of it arrived.
  expect_identical_from(buffers_of(s.joiner()), s.stream,
                        BurstScenario::kLatestKeyframe);
}

TEST(Dbs, StalledJoinBurstGivesWayToTheLiveStream) {
  SplitterConfig config = splitter_config(1024);
  config.burst_rate = 1;  // the first window, then (almost) nothing
  BurstScenario s(config);
  s.team.finish(s.stream, kStreamStart);
  const auto out = buffers_of(s.joiner());
  ASSERT_FALSE(out.empty());
  // It played the window's frames, lost the rest of the burst, and went
  // on with the live stream to its end: DISCONT marks the jump.
  EXPECT_EQ(s.first_input_index(), BurstScenario::kLatestKeyframe);
  EXPECT_GT(s.joiner().peer.stats().lost, 0u);
  EXPECT_LT(expect_subsequence(out, s.stream), s.stream.size() / 2);
  EXPECT_TRUE(same_buffer(out.back(), s.stream.back()));
}

TEST(Dbs, NoJoinBurstWhenNotAskedOrTooLarge) {
  PeerConfig no_burst;
  no_burst.join_burst = false;
  BurstScenario plain(splitter_config(1024), no_burst);
  plain.team.finish(plain.stream, kStreamStart);
  EXPECT_EQ(plain.team.sp().stats().bursts, 0u);
  EXPECT_EQ(plain.joiner().peer.stats().burst_chunks, 0u);
  EXPECT_EQ(plain.first_input_index(), 200u);  // the next keyframe

  SplitterConfig small = splitter_config(1024);
  small.burst_max_bytes = 10000;  // the GOP so far is about 60 kB
  BurstScenario bounded(small);
  bounded.team.finish(bounded.stream, kStreamStart);
  EXPECT_EQ(bounded.team.sp().stats().bursts, 0u);
  EXPECT_EQ(bounded.team.sp().stats().bursts_unavailable, 1u);
  EXPECT_EQ(bounded.first_input_index(), 200u);
}

TEST(Dbs, BurstPacerSendsAWindowThenItsRate) {
  BurstPacer pacer(10, 200, 1000000, 0);  // 1 MB/s
  size_t sent = 0;
  while (pacer.may_send(1000, 0)) {
    pacer.sent(1000);
    ++sent;
  }
  EXPECT_EQ(sent, BurstPacer::kInitialWindow / 1000);
  EXPECT_EQ(pacer.next(), 10 + sent);
  EXPECT_GT(pacer.due_us(1000), 0u);
  EXPECT_LE(pacer.due_us(1000), 1001u);
  // 100 ms later: 100 kB more, but never more than one window at once.
  size_t later = 0;
  while (pacer.may_send(1000, 100000)) {
    pacer.sent(1000);
    ++later;
  }
  EXPECT_EQ(later, BurstPacer::kInitialWindow / 1000);
  EXPECT_FALSE(pacer.done());
}

// Adaptive chunk shares (docs/protocol.md 10.7): a peer that says it may
// upload nothing (upload-limit 0, the JOIN flag) is dealt no chunk, and
// still plays the whole stream from the others.
TEST(Dbs, PeerThatForwardsNothingIsDealtNoChunkAndPlaysEverything) {
  constexpr size_t kPeers = 5;
  constexpr size_t kRider = 2;
  Team team(splitter_config(200));
  for (size_t i = 0; i < kPeers; ++i) {
    PeerConfig config;
    if (i == kRider) config.upload_limit_bps = 0;
    team.add_peer(config);
  }
  team.net.run_until(kStreamStart);
  ASSERT_EQ(team.sp().num_peers(), kPeers);
  const uint32_t rider = team.peer(kRider).peer.id();
  const auto stream = make_stream(StreamSpec{});
  team.schedule_stream(stream, kStreamStart);
  team.finish(stream, kStreamStart);

  const SplitterStats& s = team.sp().stats();
  EXPECT_GT(s.chunks_cut, 1000u);
  for (const SplitterPeerStats& p : team.sp().peer_stats()) {
    SCOPED_TRACE("peer " + std::to_string(p.id));
    if (p.id == rider) {
      EXPECT_EQ(p.chunks_sent, 0u);
      EXPECT_EQ(p.share, 0);
      EXPECT_EQ(p.upload_limit_kbps, 0);
    } else {
      EXPECT_GT(p.chunks_sent, s.chunks_cut / kPeers);
      EXPECT_NEAR(p.share, 1.0 / (kPeers - 1), 1e-9);
      EXPECT_EQ(p.upload_limit_kbps, -1);
    }
  }
  for (size_t i = 0; i < kPeers; ++i) {
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerStats& ps = team.peer(i).peer.stats();
    EXPECT_EQ(ps.lost, 0u);
    EXPECT_EQ(ps.played, s.chunks_cut);
  }
  EXPECT_EQ(team.peer(kRider).peer.stats().chunks_forwarded, 0u);
  // It owes nothing: dealt no chunk, it has none to repay (8.3). Each
  // neighbour sent it far more than the default 128 chunks of debt.
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kRider) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerNode& node = team.peer(i);
    EXPECT_FALSE(has_event(node, PeerEvent::Kind::kNeighbourRemoved, rider));
    EXPECT_TRUE(lists_neighbour(node.peer, rider));
  }
}

}  // namespace
}  // namespace p2psp
