// Address validation (docs/security.md, "Address validation"; protocol.md
// section 3.1): unguessable tokens and cookies, PROBE before the stream, the
// 3x amplification limit, and HELLOs that introduce nobody. Each attack of
// issue 11 is played against the bare state machines, with a stand-in victim
// address whose bytes are counted.
#include <gst/p2psp/egress.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <variant>

#include "register_util.h"
#include "sent_util.h"

namespace p2psp {
namespace {

constexpr uint32_t kTeamId = 0x7e57;
constexpr Micros kSecond = 1000000;
const Endpoint kVictim = Endpoint::ipv4(192, 0, 2, 66, 9999);

SplitterConfig splitter_config() {
  SplitterConfig config;
  config.team_id = kTeamId;
  config.udp_port = 4553;
  config.chunk_size = 1000;
  config.max_joins_per_address = 0;
  config.max_handshakes = 0;
  return config;
}

using test::count_to;
using test::decode;

size_t bytes_to(const Outbox& out, const Endpoint& to) {
  size_t n = 0;
  for (const UdpSend& send : out.udp) {
    if (send.to == to) n += send.data->size();
  }
  return n;
}

struct Welcomed {
  ConnId conn = 0;
  uint32_t id = 0;
  uint64_t token = 0;
};

// A splitter driven by hand, and what it sent.
struct SplitterBench {
  explicit SplitterBench(const SplitterConfig& config = splitter_config())
      : sp(config) {}

  Welcomed welcome(const Endpoint& tcp_from) {
    Welcomed w;
    w.conn = next_conn++;
    sp.on_tcp_accepted(w.conn, tcp_from, now, &out);
    const Bytes join = encode_tcp(JoinMsg{});
    sp.on_tcp_data(w.conn, join.data(), join.size(), now, &out);
    for (const TcpSend& send : out.tcp) {
      if (send.conn != w.conn) continue;
      TcpReader reader;
      reader.feed(send.data.data(), send.data.size());
      TcpMessage msg;
      while (reader.next(&msg) == TcpReader::Status::kMessage) {
        if (const auto* welcome = std::get_if<WelcomeMsg>(&msg)) {
          w.id = welcome->peer_id;
          w.token = welcome->token;
        }
      }
    }
    return w;
  }
  void close(const Welcomed& w) { sp.on_tcp_closed(w.conn, now, &out); }
  void udp(const Endpoint& from, const Bytes& bytes) {
    received_from[from] += bytes.size();
    sp.on_udp(from, bytes.data(), bytes.size(), now, &out);
  }
  void stream(size_t bytes) {
    MediaBuffer buffer;
    buffer.data.assign(bytes, 0xAB);
    sp.push_buffer(buffer, now, &out);
    sp.flush(now, &out);
  }

  Splitter sp;
  Outbox out;
  Micros now = kSecond;
  ConnId next_conn = 1;
  std::map<Endpoint, size_t> received_from;
};

// ------------------------------------------------------------ tokens -----

// Tokens come from the CSPRNG: two splitters that share every public input
// (team id, peer ids, connection ids, times) share no token, and none
// repeats. splitmix64 seeded with the team id, as before, fails this.
TEST(Tokens, TwoSplittersWithTheSameTeamIdShareNothing) {
  constexpr int kTokens = 10000;
  std::vector<std::set<uint64_t>> seen(2);
  for (std::set<uint64_t>& tokens : seen) {
    SplitterBench bench;
    for (int i = 0; i < kTokens; ++i) {
      const Welcomed w = bench.welcome(Endpoint::ipv4(10, 0, 0, 1, 40000));
      ASSERT_NE(w.id, 0u);
      tokens.insert(w.token);
      bench.close(w);
      bench.out.clear();
    }
    EXPECT_EQ(tokens.size(), size_t{kTokens}) << "a token repeated";
  }
  std::vector<uint64_t> common;
  std::set_intersection(seen[0].begin(), seen[0].end(), seen[1].begin(),
                        seen[1].end(), std::back_inserter(common));
  EXPECT_TRUE(common.empty()) << common.size() << " tokens in common";
}

// Determinism, where a test or the simulator wants it, comes from an
// injected seed only.
TEST(Tokens, AnInjectedSeedRepeatsTheStreamAndOnlyIt) {
  auto tokens_with = [](std::optional<uint64_t> seed, uint32_t team_id) {
    SplitterConfig config = splitter_config();
    config.secret_seed = seed;
    config.team_id = team_id;
    SplitterBench bench(config);
    std::vector<uint64_t> tokens;
    for (int i = 0; i < 8; ++i) {
      tokens.push_back(bench.welcome(Endpoint::ipv4(10, 0, 0, 1, 1)).token);
    }
    return tokens;
  };
  EXPECT_EQ(tokens_with(42, 1), tokens_with(42, 2))
      << "the team id is no input";
  EXPECT_NE(tokens_with(42, 1), tokens_with(43, 1));
  EXPECT_NE(tokens_with(std::nullopt, 1), tokens_with(std::nullopt, 1));
}

TEST(Cookies, BoundToAddressPeerAndTime) {
  SecretSource secrets;
  CookieJar jar(&secrets);
  const Endpoint a = Endpoint::ipv4(10, 0, 0, 1, 5000);
  const uint64_t cookie = jar.issue(a, 7, 0);
  EXPECT_NE(cookie, 0u);
  EXPECT_TRUE(jar.check(cookie, a, 7, 0));
  EXPECT_TRUE(jar.check(cookie, a, 7, CookieJar::kEpochUs + 1));
  EXPECT_FALSE(jar.check(cookie, a, 7, 2 * CookieJar::kEpochUs + 1));
  EXPECT_FALSE(jar.check(cookie, a.with_port(5001), 7, 0));
  EXPECT_FALSE(jar.check(cookie, a, 8, 0));
  EXPECT_FALSE(jar.check(0, a, 7, 0));
  SecretSource other_secrets;
  CookieJar other(&other_secrets);
  EXPECT_NE(other.issue(a, 7, 0), cookie) << "each node keys its own";
}

// ------------------------------------------------------------ egress -----

TEST(Egress, UnvalidatedAddressesGetAtMostThreeTimesWhatTheySent) {
  const Endpoint member = Endpoint::ipv4(10, 0, 0, 1, 1);
  std::unique_ptr<auth::DatagramCrypto> no_crypto;
  Egress egress([&](const Endpoint& e) { return e == member; }, &no_crypto);
  Outbox out;
  const Bytes datagram(100, 1);
  EXPECT_FALSE(egress.send(kVictim, datagram, &out)) << "nothing received";
  egress.received(kVictim, 100);
  EXPECT_TRUE(egress.send(kVictim, datagram, &out));
  EXPECT_TRUE(egress.send(kVictim, datagram, &out));
  EXPECT_TRUE(egress.send(kVictim, datagram, &out));
  EXPECT_FALSE(egress.send(kVictim, datagram, &out));
  EXPECT_EQ(bytes_to(out, kVictim), 300u);
  EXPECT_EQ(egress.stats().limited, 2u);
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(egress.send(member, datagram, &out));
}

TEST(Egress, ATableFullOfStrangersOnlyRefusesMore) {
  std::unique_ptr<auth::DatagramCrypto> no_crypto;
  Egress egress([](const Endpoint&) { return false; }, &no_crypto);
  Outbox out;
  egress.received(kVictim, 10);
  for (uint32_t i = 0; i < Egress::kMaxTracked + 10; ++i) {
    egress.received(Endpoint::ipv4(10, 9, uint8_t(i >> 8), uint8_t(i), 1), 1);
  }
  EXPECT_FALSE(egress.send(kVictim, Bytes(10, 0), &out));
}

// A team's datagrams are sealed on the one way out, once per copy a
// receiver has not had: a NACK answer to a receiver that got the chunk
// already is sealed anew (the same counter twice is a replay).
TEST(Egress, SealsEveryDatagramAndNeverRepeatsACounterToOneReceiver) {
  auth::Key key{};
  key[0] = 1;
  std::unique_ptr<auth::DatagramCrypto> crypto =
      std::make_unique<auth::DatagramCrypto>(key, 3, true);
  const Endpoint a = Endpoint::ipv4(10, 0, 0, 1, 1);
  const Endpoint b = Endpoint::ipv4(10, 0, 0, 2, 1);
  Egress egress([](const Endpoint&) { return true; }, &crypto);
  Outbox out;
  const auto chunk = std::make_shared<const Bytes>(encode_hello({1, 2, 3}));
  egress.send(a, chunk, &out);
  egress.send(b, chunk, &out);
  egress.send(a, chunk, &out);
  ASSERT_EQ(out.udp.size(), 3u);
  for (const UdpSend& send : out.udp) {
    EXPECT_TRUE(send.data->at(1) & kUdpFlagSealed);
  }
  EXPECT_EQ(out.udp[0].data, out.udp[1].data) << "one seal for two receivers";
  EXPECT_NE(*out.udp[0].data, *out.udp[2].data) << "a fresh one for a again";
  auth::DatagramCrypto receiver(key, 9, true);
  Bytes plain;
  EXPECT_EQ(
      receiver.open(out.udp[0].data->data(), out.udp[0].data->size(), &plain),
      auth::DatagramCrypto::Open::kOk);
  EXPECT_EQ(
      receiver.open(out.udp[2].data->data(), out.udp[2].data->size(), &plain),
      auth::DatagramCrypto::Open::kOk);
}

// ------------------------------------------------------------ splitter ---

// Register redirect: a joiner connects from its own address and registers
// from the victim's. The victim gets one PROBE per REGISTER (smaller than
// it), never a chunk, and never becomes a member, whatever cookies the
// attacker guesses.
TEST(SplitterValidation, RegisterFromASpoofedAddressNeverGetsTheStream) {
  SplitterBench bench;
  const Endpoint honest_udp = Endpoint::ipv4(10, 0, 0, 2, 5000);
  const Welcomed honest = bench.welcome(honest_udp.with_port(40000));
  ASSERT_TRUE(test::register_at(bench.sp, honest_udp, kTeamId, honest.id,
                                honest.token, bench.now, &bench.out));
  ASSERT_EQ(bench.sp.num_peers(), 1u);

  const Welcomed attacker = bench.welcome(Endpoint::ipv4(10, 0, 0, 3, 40000));
  for (uint64_t guess = 0; guess < 1000; ++guess) {
    bench.udp(kVictim,
              encode_register(RegisterMsg{kTeamId, attacker.id, attacker.token,
                                          guess * 7919}));
    bench.stream(4000);
    bench.now += 1000;
  }
  EXPECT_EQ(bench.sp.num_peers(), 1u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, kVictim), 0u);
  EXPECT_EQ(count_to<ProbeMsg>(bench.out, kVictim), 1000u);
  EXPECT_LE(bytes_to(bench.out, kVictim),
            kAmplificationFactor * bench.received_from[kVictim]);
  EXPECT_GT(count_to<ChunkMsg>(bench.out, honest_udp), 0u);
}

// Spoofed heartbeats in a member's name (its token is no secret to the
// member itself) draw a PROBE, not the member's share of the stream.
TEST(SplitterValidation, AMemberCannotMoveItsEndpointToAVictim) {
  SplitterBench bench;
  const Endpoint real = Endpoint::ipv4(10, 0, 0, 3, 5000);
  const Welcomed m = bench.welcome(real.with_port(40000));
  ASSERT_TRUE(test::register_at(bench.sp, real, kTeamId, m.id, m.token,
                                bench.now, &bench.out));
  bench.out.clear();
  for (int i = 0; i < 100; ++i) {
    bench.udp(kVictim, encode_heartbeat(HeartbeatMsg{kTeamId, m.id, m.token}));
    bench.udp(kVictim,
              encode_register(RegisterMsg{kTeamId, m.id, m.token, 12345}));
    bench.stream(4000);
  }
  EXPECT_EQ(bench.sp.peer_stats().at(0).endpoint, real);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, kVictim), 0u);
  EXPECT_LE(bytes_to(bench.out, kVictim),
            kAmplificationFactor * bench.received_from[kVictim]);
  EXPECT_EQ(bench.sp.stats().endpoints_moved, 0u);
}

// A real NAT rebinding: the member's datagrams come from a new port, which
// echoes the PROBE sent there. The member moves, and the others are told.
TEST(SplitterValidation, ANatRebindingIsProbedThenFollowed) {
  SplitterBench bench;
  const Endpoint a_udp = Endpoint::ipv4(10, 0, 0, 2, 5000);
  const Endpoint b_udp = Endpoint::ipv4(10, 0, 0, 3, 5000);
  const Welcomed a = bench.welcome(a_udp.with_port(40000));
  ASSERT_TRUE(test::register_at(bench.sp, a_udp, kTeamId, a.id, a.token,
                                bench.now, &bench.out));
  const Welcomed b = bench.welcome(b_udp.with_port(40000));
  ASSERT_TRUE(test::register_at(bench.sp, b_udp, kTeamId, b.id, b.token,
                                bench.now, &bench.out));
  bench.out.clear();
  const Endpoint rebound = b_udp.with_port(6000);
  bench.udp(rebound, encode_heartbeat(HeartbeatMsg{kTeamId, b.id, b.token}));
  const std::optional<uint64_t> cookie = test::take_probe(&bench.out, rebound);
  ASSERT_TRUE(cookie);
  bench.udp(rebound,
            encode_register(RegisterMsg{kTeamId, b.id, b.token, *cookie}));
  EXPECT_EQ(bench.sp.stats().endpoints_moved, 1u);
  bool told = false;
  for (const TcpSend& send : bench.out.tcp) {
    TcpReader reader;
    reader.feed(send.data.data(), send.data.size());
    TcpMessage msg;
    while (reader.next(&msg) == TcpReader::Status::kMessage) {
      const auto* joined = std::get_if<PeerJoinedMsg>(&msg);
      told |= send.conn == a.conn && joined && joined->peer.id == b.id &&
              joined->peer.endpoint == rebound;
    }
  }
  EXPECT_TRUE(told) << "A hears B's new endpoint from the splitter";
  bench.out.clear();
  bench.stream(8000);
  EXPECT_GT(count_to<ChunkMsg>(bench.out, rebound), 0u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, b_udp), 0u);
}

// ------------------------------------------------------------ peer -------

// A member of a team with two neighbours, driven by hand.
struct PeerBench {
  PeerBench() : peer(PeerConfig{}, Endpoint::ipv4(10, 0, 0, 1, 4552)) {
    peer.start(0, &out);
    WelcomeMsg welcome;
    welcome.team_id = kTeamId;
    welcome.peer_id = 1;
    welcome.token = 77;
    welcome.chunk_size = 1000;
    welcome.splitter_udp_port = 4553;
    tcp(welcome);
    const auto cookie = probe_from_splitter();
    EXPECT_EQ(register_cookie, cookie);
    TeamMsg team;
    team.public_endpoint = Endpoint::ipv4(10, 0, 0, 9, 5000);
    team.peers = {PeerInfo{2, kNeighbourA}, PeerInfo{3, kNeighbourB}};
    tcp(team);
    EXPECT_EQ(peer.state(), PeerState::kMember);
  }
  // The splitter PROBEs our REGISTER: the next REGISTER echoes it.
  uint64_t probe_from_splitter() {
    out.clear();
    udp(splitter, encode_probe(ProbeMsg{kTeamId, 0xC0FFEE, 1}));
    for (const UdpSend& send : out.udp) {
      const auto msg = decode(send);
      if (const auto* reg = msg ? std::get_if<RegisterMsg>(&*msg) : nullptr) {
        register_cookie = reg->cookie;
      }
    }
    return 0xC0FFEE;
  }
  void tcp(const TcpMessage& msg) {
    const Bytes b = encode_tcp(msg);
    peer.on_tcp_data(b.data(), b.size(), now, &out);
  }
  void udp(const Endpoint& from, const Bytes& bytes) {
    received_from[from] += bytes.size();
    peer.on_udp(from, bytes.data(), bytes.size(), now, &out);
  }
  // One chunk of our own origin from the splitter: flooded to neighbours.
  void own_chunk(ChunkNumber number) {
    const Bytes payload(500, 0x55);
    udp(splitter, encode_chunk(kTeamId, number, kImplicitOrigin, 0,
                               kNoFrameStart, payload.data(), payload.size()));
    now += 10000;
    peer.tick(now, &out);
  }

  const Endpoint splitter = Endpoint::ipv4(10, 0, 0, 1, 4553);
  const Endpoint kNeighbourA = Endpoint::ipv4(10, 0, 0, 2, 5000);
  const Endpoint kNeighbourB = Endpoint::ipv4(10, 0, 0, 3, 5000);
  Peer peer;
  Outbox out;
  Micros now = kSecond;
  uint64_t register_cookie = 0;
  std::map<Endpoint, size_t> received_from;
};

TEST(PeerValidation, RegisterEchoesTheSplittersProbe) {
  PeerBench bench;
  EXPECT_EQ(bench.register_cookie, 0xC0FFEEu);
}

// Spoofed HELLO: unknown ids and members' ids from the victim's address.
// The victim gets PROBEs (smaller than the HELLOs) and no chunk.
TEST(PeerValidation, SpoofedHellosNeverMakeTheVictimANeighbour) {
  PeerBench bench;
  bench.out.clear();
  // 100 chunks: below the chunk debt at which silent neighbours are dropped.
  for (uint32_t i = 0; i < 100; ++i) {
    bench.udp(kVictim, encode_hello(HelloMsg{kTeamId, 100 + i, 0}));
    bench.udp(kVictim, encode_hello(HelloMsg{kTeamId, 2 + i % 2, i * 31337}));
    bench.own_chunk(i);
  }
  EXPECT_EQ(bench.peer.neighbours().size(), 2u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, kVictim), 0u);
  EXPECT_GT(count_to<ChunkMsg>(bench.out, bench.kNeighbourA), 0u);
  EXPECT_LE(bytes_to(bench.out, kVictim),
            kAmplificationFactor * bench.received_from[kVictim]);
}

// Spoofed NACKs in a neighbour's name from the victim's address: nothing.
TEST(PeerValidation, SpoofedNacksAreNotAnswered) {
  PeerBench bench;
  for (ChunkNumber n = 0; n < 20; ++n) bench.own_chunk(n);
  bench.out.clear();
  for (int i = 0; i < 100; ++i) {
    bench.udp(kVictim, encode_nack(NackMsg{kTeamId, 2, {0, 1, 2, 3, 4, 5}}));
  }
  EXPECT_EQ(bytes_to(bench.out, kVictim), 0u);
}

// A NAT that maps each destination apart: neighbour 2's HELLO comes from
// another port than the splitter named. The PROBE sent there comes back
// in a HELLO, and neighbour 2 moves, since its named address never spoke.
TEST(PeerValidation, AProbedHelloMovesASilentNeighbour) {
  PeerBench bench;
  const Endpoint mapped = bench.kNeighbourA.with_port(7777);
  bench.out.clear();
  bench.udp(mapped, encode_hello(HelloMsg{kTeamId, 2, 0}));
  const auto cookie = test::take_probe(&bench.out, mapped);
  ASSERT_TRUE(cookie);
  bench.udp(mapped, encode_hello(HelloMsg{kTeamId, 2, *cookie}));
  EXPECT_EQ(bench.peer.stats().endpoints_moved, 1u);
  bench.out.clear();
  bench.own_chunk(1);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, mapped), 1u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, bench.kNeighbourA), 0u);
}

// The splitter's PEER_JOINED for a known member at a new endpoint (a NAT
// rebinding it validated) moves the neighbour: the flood follows.
TEST(PeerValidation, PeerJoinedForAKnownMemberMovesIt) {
  PeerBench bench;
  const Endpoint rebound = bench.kNeighbourB.with_port(6000);
  bench.tcp(PeerJoinedMsg{PeerInfo{3, rebound}});
  EXPECT_EQ(bench.peer.stats().endpoints_moved, 1u);
  EXPECT_EQ(bench.peer.neighbours().size(), 2u);
  bench.out.clear();
  bench.own_chunk(1);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, rebound), 1u);
  EXPECT_EQ(count_to<ChunkMsg>(bench.out, bench.kNeighbourB), 0u);
}

// A member echoing cookies in another member's name, from its own address,
// cannot pull an active neighbour's flood to itself.
TEST(PeerValidation, AnActiveNeighbourIsNotMovedByAnEcho) {
  PeerBench bench;
  bench.udp(bench.kNeighbourA, encode_hello(HelloMsg{kTeamId, 2, 0}));
  const Endpoint thief = Endpoint::ipv4(10, 0, 0, 3, 5000).with_port(8888);
  bench.udp(thief, encode_hello(HelloMsg{kTeamId, 2, 0}));
  const auto cookie = test::take_probe(&bench.out, thief);
  ASSERT_TRUE(cookie);
  bench.udp(thief, encode_hello(HelloMsg{kTeamId, 2, *cookie}));
  EXPECT_EQ(bench.peer.stats().endpoints_moved, 0u);
  EXPECT_EQ(bench.peer.stats().moves_refused, 1u);
}

// A PROBE from anyone is answered with one HELLO, never more than 3x.
TEST(PeerValidation, SpoofedProbesReflectLessThanTheyCost) {
  PeerBench bench;
  bench.out.clear();
  for (int i = 0; i < 100; ++i) {
    bench.udp(kVictim, encode_probe(ProbeMsg{kTeamId, 1000u + i, 1}));
  }
  EXPECT_EQ(count_to<HelloMsg>(bench.out, kVictim), 100u);
  EXPECT_LE(bytes_to(bench.out, kVictim),
            kAmplificationFactor * bench.received_from[kVictim]);
}

}  // namespace
}  // namespace p2psp
