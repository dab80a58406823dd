// Authenticated teams (docs/security.md): the datagram seal, the replay
// window, the join handshake with right, wrong and missing passphrases, and
// a non-member injecting datagrams into a protected team.
#include <gst/p2psp/auth.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <variant>

#include "sim_network.h"

namespace p2psp {
namespace {

using sim::NodeId;
using sim::PeerNode;
using sim::SplitterNode;

constexpr uint32_t kTeamId = 0x7e57a17;
constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;
constexpr size_t kBufferSize = 1316;
constexpr Micros kBufferInterval = kBufferSize * 8;  // 1 Mb/s
constexpr Micros kSecond = 1000000;
const std::string kPassphrase = "correct horse battery";

Endpoint splitter_udp() {
  return Endpoint::ipv4(10, 0, 0, 1, kSplitterUdpPort);
}
Endpoint peer_udp(size_t i) {
  return Endpoint::ipv4(10, 1, 0, static_cast<uint8_t>(i + 1), 5000);
}

auth::Key key_of(uint8_t fill) {
  auth::Key k;
  k.fill(fill);
  return k;
}

Bytes sample_chunk() {
  std::vector<uint8_t> payload(1448);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 7);
  return encode_chunk(kTeamId, 42, 3, 1000, 0, payload.data(), payload.size());
}

// ------------------------------------------------------------ seal/open --

TEST(Seal, RoundTripRestoresTheDatagramAndAddsTheOverhead) {
  for (bool encrypt : {true, false}) {
    auth::DatagramCrypto alice(key_of(1), 5, encrypt);
    auth::DatagramCrypto bob(key_of(1), 6, encrypt);
    const Bytes plain = sample_chunk();
    const Bytes sealed = alice.seal(plain.data(), plain.size());
    ASSERT_EQ(sealed.size(), plain.size() + auth::kSealOverhead);
    EXPECT_FALSE(decode_udp(sealed.data(), sealed.size()).has_value());
    // The payload is hidden only when encrypting.
    const auto body = plain.begin() + kChunkHeaderSize;
    const bool visible = std::search(sealed.begin(), sealed.end(), body,
                                     body + 64) != sealed.end();
    EXPECT_EQ(visible, !encrypt);
    Bytes opened;
    ASSERT_EQ(bob.open(sealed.data(), sealed.size(), &opened),
              auth::DatagramCrypto::Open::kOk);
    EXPECT_EQ(opened, plain);
  }
}

TEST(Seal, AnyTamperedByteIsRejected) {
  auth::DatagramCrypto alice(key_of(1), 5, true);
  const Bytes plain = sample_chunk();
  const Bytes sealed = alice.seal(plain.data(), plain.size());
  for (size_t i = 0; i < sealed.size(); ++i) {
    auth::DatagramCrypto bob(key_of(1), 6, true);  // fresh replay window
    Bytes tampered = sealed;
    tampered[i] ^= 0x01;
    Bytes opened;
    EXPECT_EQ(bob.open(tampered.data(), tampered.size(), &opened),
              auth::DatagramCrypto::Open::kUnauthenticated)
        << "byte " << i;
    EXPECT_TRUE(opened.empty());
  }
  // Truncated anywhere, too.
  auth::DatagramCrypto bob(key_of(1), 6, true);
  for (size_t n = 0; n < sealed.size(); n += 97) {
    Bytes opened;
    EXPECT_EQ(bob.open(sealed.data(), n, &opened),
              auth::DatagramCrypto::Open::kUnauthenticated);
  }
}

TEST(Seal, WrongKeyOrModeIsRejected) {
  const Bytes plain = sample_chunk();
  auth::DatagramCrypto alice(key_of(1), 5, true);
  const Bytes sealed = alice.seal(plain.data(), plain.size());
  Bytes opened;
  auth::DatagramCrypto other_key(key_of(2), 6, true);
  EXPECT_EQ(other_key.open(sealed.data(), sealed.size(), &opened),
            auth::DatagramCrypto::Open::kUnauthenticated);
  auth::DatagramCrypto other_mode(key_of(1), 6, false);
  EXPECT_EQ(other_mode.open(sealed.data(), sealed.size(), &opened),
            auth::DatagramCrypto::Open::kUnauthenticated);
  EXPECT_EQ(other_key.stats().unauthenticated, 1u);
}

TEST(Seal, UnsealedAndReflectedDatagramsAreRejected) {
  auth::DatagramCrypto alice(key_of(1), 5, true);
  const Bytes plain = sample_chunk();
  Bytes opened;
  EXPECT_EQ(alice.open(plain.data(), plain.size(), &opened),
            auth::DatagramCrypto::Open::kUnauthenticated);
  const Bytes own = alice.seal(plain.data(), plain.size());
  EXPECT_EQ(alice.open(own.data(), own.size(), &opened),
            auth::DatagramCrypto::Open::kUnauthenticated);
}

TEST(Seal, ReplayIsRejectedButReorderingIsNot) {
  auth::DatagramCrypto alice(key_of(1), 5, true);
  auth::DatagramCrypto bob(key_of(1), 6, true);
  const Bytes plain = sample_chunk();
  std::vector<Bytes> sealed;
  for (int i = 0; i < 4; ++i)
    sealed.push_back(alice.seal(plain.data(), plain.size()));
  Bytes opened;
  using Open = auth::DatagramCrypto::Open;
  EXPECT_EQ(bob.open(sealed[2].data(), sealed[2].size(), &opened), Open::kOk);
  EXPECT_EQ(bob.open(sealed[0].data(), sealed[0].size(), &opened), Open::kOk);
  EXPECT_EQ(bob.open(sealed[2].data(), sealed[2].size(), &opened),
            Open::kReplayed);
  EXPECT_EQ(bob.open(sealed[3].data(), sealed[3].size(), &opened), Open::kOk);
  EXPECT_EQ(bob.open(sealed[0].data(), sealed[0].size(), &opened),
            Open::kReplayed);
  EXPECT_EQ(bob.stats().replayed, 2u);
}

// The sealed control channel of one connection: each direction opens only
// the other's messages, in the order they were sealed, once.
struct Channel {
  auth::ChannelCrypto splitter;
  auth::ChannelCrypto peer;
  static auth::Nonce nonce(uint8_t fill) {
    auth::Nonce n;
    n.fill(fill);
    return n;
  }
  explicit Channel(uint8_t key_fill = 3)
      : splitter(key_of(key_fill), nonce(1), nonce(2), auth::Role::kSplitter),
        peer(key_of(key_fill), nonce(1), nonce(2), auth::Role::kPeer) {}
};

SealedMsg sealed_body(const Bytes& framed) {
  std::optional<TcpMessage> msg =
      decode_tcp_body(framed.data() + 4, framed.size() - 4);
  if (!msg || !std::holds_alternative<SealedMsg>(*msg))
    throw std::runtime_error("not a SEALED message");
  return std::get<SealedMsg>(*msg);
}

Bytes peer_left(uint32_t id) { return encode_tcp(PeerLeftMsg{id}); }

TEST(ControlChannel, OpensInOrderBothWays) {
  Channel c;
  for (uint32_t i = 0; i < 3; ++i) {
    auto down = c.peer.open(sealed_body(c.splitter.seal(peer_left(i))));
    ASSERT_TRUE(down) << i;
    EXPECT_EQ(encode_tcp(*down), peer_left(i));
    auto up = c.splitter.open(sealed_body(c.peer.seal(peer_left(100 + i))));
    ASSERT_TRUE(up) << i;
    EXPECT_EQ(encode_tcp(*up), peer_left(100 + i));
  }
}

TEST(ControlChannel, RefusesReplayDropReflectionAndTampering) {
  {  // replayed
    Channel c;
    const SealedMsg first = sealed_body(c.splitter.seal(peer_left(1)));
    ASSERT_TRUE(c.peer.open(first));
    EXPECT_FALSE(c.peer.open(first));
  }
  {  // one dropped: the next does not open under the expected counter
    Channel c;
    (void)c.splitter.seal(peer_left(1));
    EXPECT_FALSE(c.peer.open(sealed_body(c.splitter.seal(peer_left(2)))));
  }
  {  // reflected: the splitter's own message sent back to it
    Channel c;
    EXPECT_FALSE(c.splitter.open(sealed_body(c.splitter.seal(peer_left(1)))));
  }
  {  // another connection's key
    Channel a(3), b(4);
    EXPECT_FALSE(b.peer.open(sealed_body(a.splitter.seal(peer_left(1)))));
  }
  const Bytes framed = Channel().splitter.seal(peer_left(7));
  for (size_t i = 5; i < framed.size(); ++i) {  // past prefix and type
    Channel c;
    Bytes bad = c.splitter.seal(peer_left(7));
    ASSERT_EQ(bad, framed);  // same key, nonces and counter: same bytes
    bad[i] ^= 0x40;
    EXPECT_FALSE(c.peer.open(sealed_body(bad))) << "byte " << i;
  }
}

TEST(ReplayWindow, ForgetsNothingInsideTheWindowAndRefusesOlder) {
  auth::ReplayWindow w;
  EXPECT_TRUE(w.accept(10));
  EXPECT_FALSE(w.accept(10));
  EXPECT_TRUE(w.accept(5000));
  EXPECT_FALSE(w.accept(10));  // far behind: too old
  EXPECT_TRUE(w.accept(5000 - auth::ReplayWindow::kBits + 1));
  EXPECT_FALSE(w.accept(5000 - auth::ReplayWindow::kBits));
  // Slots reused as the window slides are fresh, old entries are not.
  for (uint64_t c = 5001; c < 5001 + 3 * auth::ReplayWindow::kBits; ++c) {
    ASSERT_TRUE(w.accept(c)) << c;
  }
  EXPECT_FALSE(w.accept(5001 + 3 * auth::ReplayWindow::kBits - 1));
}

TEST(Handshake, MacsBindRoleNoncesAndFlags) {
  const auth::Key k = key_of(9);
  const auth::Salt salt{};
  auth::Nonce a{}, b{};
  b[0] = 1;
  const auth::Mac base =
      auth::handshake_mac(k, auth::Role::kPeer, salt, a, b, 1);
  EXPECT_TRUE(auth::verify_mac(
      base, auth::handshake_mac(k, auth::Role::kPeer, salt, a, b, 1)));
  EXPECT_FALSE(auth::verify_mac(
      base, auth::handshake_mac(k, auth::Role::kSplitter, salt, a, b, 1)));
  EXPECT_FALSE(auth::verify_mac(
      base, auth::handshake_mac(k, auth::Role::kPeer, salt, b, a, 1)));
  EXPECT_FALSE(auth::verify_mac(
      base, auth::handshake_mac(k, auth::Role::kPeer, salt, a, b, 0)));
  EXPECT_FALSE(auth::verify_mac(
      base, auth::handshake_mac(key_of(8), auth::Role::kPeer, salt, a, b, 1)));
}

TEST(Passphrase, LengthIsChecked) {
  EXPECT_TRUE(auth::passphrase_problem(std::string(9, 'x')).has_value());
  EXPECT_FALSE(auth::passphrase_problem(std::string(10, 'x')).has_value());
  EXPECT_FALSE(auth::passphrase_problem(std::string(79, 'x')).has_value());
  EXPECT_TRUE(auth::passphrase_problem(std::string(80, 'x')).has_value());
  SplitterConfig config;
  config.passphrase = "short";
  EXPECT_THROW(Splitter s(config), std::invalid_argument);
}

// ------------------------------------------------------------ wire -------

TEST(AuthWire, HandshakeMessagesHaveTheirLayoutAndRejectBadLengths) {
  ChallengeMsg c;
  for (size_t i = 0; i < c.salt.size(); ++i) c.salt[i] = uint8_t(i);
  for (size_t i = 0; i < c.nonce.size(); ++i) c.nonce[i] = uint8_t(100 + i);
  c.flags = 0x01020304;
  AuthMsg a;
  a.nonce.fill(0x11);
  a.mac.fill(0x22);
  ProofMsg p;
  p.mac.fill(0x33);
  const Bytes fc = encode_tcp(c), fa = encode_tcp(a), fp = encode_tcp(p);
  // u32 length, u8 type, body.
  ASSERT_EQ(fc.size(), 4u + 1 + 16 + 32 + 4);
  EXPECT_EQ(fc[4], static_cast<uint8_t>(TcpType::kChallenge));
  EXPECT_EQ(fc[5], 0);
  EXPECT_EQ(fc[5 + 16], 100);
  EXPECT_EQ(fc[5 + 48], 0x01);
  EXPECT_EQ(fc[5 + 51], 0x04);
  ASSERT_EQ(fa.size(), 4u + 1 + 32 + 32);
  EXPECT_EQ(fa[4], static_cast<uint8_t>(TcpType::kAuth));
  EXPECT_EQ(fa[5 + 32], 0x22);
  ASSERT_EQ(fp.size(), 4u + 1 + 32);
  EXPECT_EQ(fp[4], static_cast<uint8_t>(TcpType::kProof));
  for (const Bytes& frame : {fc, fa, fp}) {
    const Bytes body(frame.begin() + 4, frame.end());
    auto back = decode_tcp_body(body.data(), body.size());
    ASSERT_TRUE(back);
    EXPECT_EQ(encode_tcp(*back), frame);
    EXPECT_FALSE(decode_tcp_body(body.data(), body.size() - 1));
    Bytes longer = body;
    longer.push_back(0);
    EXPECT_FALSE(decode_tcp_body(longer.data(), longer.size()));
  }
}

// ------------------------------------------------------------ teams ------

MediaBuffer make_buffer(size_t index, std::mt19937_64& rng) {
  MediaBuffer b;
  b.data.resize(kBufferSize);
  for (uint8_t& byte : b.data) byte = static_cast<uint8_t>(rng());
  b.pts = index * kBufferInterval * 1000;
  b.dts = b.pts;
  b.duration = kBufferInterval * 1000;
  return b;
}

struct Team {
  explicit Team(const std::string& passphrase, bool encrypt = true) {
    SplitterConfig config;
    config.team_id = kTeamId;
    config.udp_port = kSplitterUdpPort;
    config.passphrase = passphrase;
    config.encrypt = encrypt;
    splitter =
        net.add_node(std::make_shared<SplitterNode>(config), splitter_udp());
    net.set_udp_tap([this](Micros, const Endpoint& from, const Endpoint& to,
                           const Bytes& data) {
      wire.push_back(data);
      last[{from, to}] = data;
    });
  }

  NodeId add_peer(const std::string& passphrase) {
    PeerConfig config;
    config.passphrase = passphrase;
    auto node = std::make_shared<PeerNode>(
        config, Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort));
    const NodeId id = net.add_node(node, peer_udp(peers.size()));
    peers.push_back(id);
    sim::start_peer(net, id, splitter);
    return id;
  }

  // Pushes `count` buffers at the stream's pace; returns what was pushed.
  std::vector<Bytes> stream(size_t count) {
    std::mt19937_64 rng(7);
    std::vector<Bytes> sent;
    net.with(splitter, [&](Micros now, Outbox* out) {
      sp().set_caps("video/x-test", now, out);
    });
    for (size_t i = 0; i < count; ++i) {
      const MediaBuffer b = make_buffer(i, rng);
      sent.push_back(b.data);
      net.with(splitter,
               [&](Micros now, Outbox* out) { sp().push_buffer(b, now, out); });
      net.run_for(kBufferInterval);
    }
    net.with(splitter, [&](Micros now, Outbox* out) { sp().flush(now, out); });
    net.run_for(kSecond);
    return sent;
  }

  Splitter& sp() { return net.node<SplitterNode>(splitter)->splitter; }
  PeerNode& peer(size_t i) { return *net.node<PeerNode>(peers[i]); }

  sim::Network net;
  NodeId splitter = 0;
  std::vector<NodeId> peers;
  std::vector<Bytes> wire;                              // every datagram sent
  std::map<std::pair<Endpoint, Endpoint>, Bytes> last;  // by (from, to)
};

std::vector<Bytes> played(const PeerNode& node) {
  std::vector<Bytes> out;
  for (const StreamItem& item : node.items) {
    if (item.kind == StreamItem::Kind::kBuffer) out.push_back(item.buffer.data);
  }
  return out;
}

const PeerEvent* removal(const PeerNode& node) {
  for (const PeerEvent& e : node.events) {
    if (e.kind == PeerEvent::Kind::kRemoved) return &e;
  }
  return nullptr;
}

TEST(AuthTeam, SamePassphraseStreamsIntactAndEverythingIsSealed) {
  for (bool encrypt : {true, false}) {
    Team team(kPassphrase, encrypt);
    for (int i = 0; i < 3; ++i) team.add_peer(kPassphrase);
    team.net.run_for(kSecond);
    ASSERT_EQ(team.sp().num_peers(), 3u);
    const std::vector<Bytes> sent = team.stream(200);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(played(team.peer(i)), sent) << "peer " << i;
      EXPECT_EQ(team.peer(i).peer.stats().unauthenticated_datagrams, 0u);
    }
    ASSERT_FALSE(team.wire.empty());
    bool payload_in_clear = false;
    for (const Bytes& d : team.wire) {
      ASSERT_GE(d.size(), kUdpHeaderSize);
      EXPECT_NE(d[1] & kUdpFlagSealed, 0) << "an unsealed datagram";
      payload_in_clear |= std::search(d.begin(), d.end(), sent[5].begin(),
                                      sent[5].begin() + 64) != d.end();
    }
    EXPECT_EQ(payload_in_clear, !encrypt);
    EXPECT_EQ(team.sp().stats().unauthenticated_datagrams, 0u);
  }
}

TEST(AuthTeam, WrongPassphraseIsRejectedAndCounted) {
  Team team(kPassphrase);
  team.add_peer("not the passphrase");
  team.net.run_for(kSecond);
  const PeerEvent* e = removal(team.peer(0));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->reason, RemoveReason::kAuth);
  EXPECT_EQ(e->text, "wrong passphrase");
  EXPECT_EQ(team.sp().num_peers(), 0u);
  EXPECT_EQ(team.sp().stats().auth_failures, 1u);
}

TEST(AuthTeam, MissingPassphraseIsRejectedOnBothSides) {
  {
    Team team(kPassphrase);
    team.add_peer("");
    team.net.run_for(kSecond);
    const PeerEvent* e = removal(team.peer(0));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->reason, RemoveReason::kAuth);
    EXPECT_EQ(e->text, "team needs a passphrase");
    EXPECT_EQ(team.sp().num_peers(), 0u);
  }
  {
    Team team("");
    team.add_peer(kPassphrase);
    team.net.run_for(kSecond);
    const PeerEvent* e = removal(team.peer(0));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->reason, RemoveReason::kAuth);
    EXPECT_EQ(e->text, "splitter has no passphrase but one was set");
    EXPECT_EQ(team.sp().num_peers(), 0u);
    EXPECT_EQ(team.peer(0).peer.state(), PeerState::kRemoved);
  }
}

// A peer with a passphrase talking to something that does not know it: an
// old splitter answering WELCOME right away, or an impostor's PROOF.
TEST(AuthPeer, RefusesWelcomeWithoutChallengeAndAForgedProof) {
  PeerConfig config;
  config.passphrase = kPassphrase;
  const Endpoint splitter = Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort);
  {
    Peer peer(config, splitter);
    Outbox out;
    peer.start(0, &out);
    const Bytes welcome = encode_tcp(WelcomeMsg{});
    peer.on_tcp_data(welcome.data(), welcome.size(), 0, &out);
    EXPECT_EQ(peer.state(), PeerState::kRemoved);
    auto events = peer.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].reason, RemoveReason::kAuth);
  }
  {
    Peer peer(config, splitter);
    Outbox out;
    peer.start(0, &out);
    ChallengeMsg challenge;
    challenge.salt[0] = 1;
    challenge.flags = auth::kFlagEncrypt;
    Bytes bytes = encode_tcp(challenge);
    peer.on_tcp_data(bytes.data(), bytes.size(), 0, &out);
    ASSERT_EQ(out.tcp.size(), 2u);  // JOIN, AUTH
    ProofMsg forged;
    forged.mac.fill(0xAB);
    bytes = encode_tcp(forged);
    const Bytes welcome = encode_tcp(WelcomeMsg{});
    bytes.insert(bytes.end(), welcome.begin(), welcome.end());
    peer.on_tcp_data(bytes.data(), bytes.size(), 0, &out);
    EXPECT_EQ(peer.state(), PeerState::kRemoved);
    auto events = peer.take_events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].reason, RemoveReason::kAuth);
  }
}

TEST(AuthTeam, NonMemberDatagramsAreIgnoredAndCounted) {
  Team team(kPassphrase);
  team.add_peer(kPassphrase);
  team.add_peer(kPassphrase);
  team.net.run_for(kSecond);
  ASSERT_EQ(team.sp().num_peers(), 2u);
  const uint32_t victim = team.peer(0).peer.id();
  const uint64_t token_guess = 0;
  const Bytes payload(1000, 0x5A);
  // Well-formed, right team id, spoofed sources, but not sealed.
  for (ChunkNumber n = 0; n < 10; ++n) {
    team.net.inject_udp(
        splitter_udp(), peer_udp(0),
        encode_chunk(kTeamId, n, victim, 0, 0, payload.data(), payload.size()));
  }
  team.net.inject_udp(peer_udp(1), peer_udp(0),
                      encode_prune(PruneMsg{kTeamId, team.peer(1).peer.id(),
                                            team.peer(1).peer.id()}));
  team.net.inject_udp(
      peer_udp(0), splitter_udp(),
      encode_heartbeat(HeartbeatMsg{kTeamId, victim, token_guess}));
  team.net.inject_udp(peer_udp(0), splitter_udp(),
                      encode_nack(NackMsg{kTeamId, victim, {1, 2, 3}}));
  const std::vector<Bytes> sent = team.stream(20);
  // Sealed datagrams of the team, replayed by someone on the path.
  const Bytes to_peer = team.last.at({splitter_udp(), peer_udp(0)});
  const Bytes to_splitter = team.last.at({peer_udp(0), splitter_udp()});
  team.net.inject_udp(splitter_udp(), peer_udp(0), to_peer);
  team.net.inject_udp(peer_udp(0), splitter_udp(), to_splitter);
  team.net.run_for(kSecond);

  const PeerStats& ps = team.peer(0).peer.stats();
  EXPECT_EQ(ps.unauthenticated_datagrams, 11u);  // 10 chunks + PRUNE
  EXPECT_EQ(ps.replayed_datagrams, 1u);
  EXPECT_EQ(played(team.peer(0)), sent);  // no forged chunk got in
  EXPECT_EQ(team.peer(1).peer.stats().prunes_sent, 0u);
  const SplitterStats& ss = team.sp().stats();
  EXPECT_EQ(ss.unauthenticated_datagrams, 2u);  // HEARTBEAT, NACK
  EXPECT_EQ(ss.replayed_datagrams, 1u);
  EXPECT_EQ(ss.nacks_received, 0u);
  EXPECT_EQ(team.sp().num_peers(), 2u);
}

TEST(AuthTeam, ControlChannelRefusesUnsealedMessagesAfterTheProofs) {
  Team team(kPassphrase);
  team.add_peer(kPassphrase);
  team.add_peer(kPassphrase);
  team.net.run_for(kSecond);
  ASSERT_EQ(team.sp().num_peers(), 2u);
  ASSERT_EQ(team.peer(0).peer.neighbours().size(), 1u);
  // Someone who can write into peer 0's TCP stream, in clear: a fake
  // neighbour, then a fake removal.
  Bytes forged =
      encode_tcp(PeerJoinedMsg{PeerInfo{99, Endpoint::ipv4(6, 6, 6, 6, 6)}});
  const Bytes removed = encode_tcp(RemovedMsg{RemoveReason::kExpelled, "x"});
  forged.insert(forged.end(), removed.begin(), removed.end());
  team.net.with(team.peers[0], [&](Micros now, Outbox* out) {
    team.peer(0).peer.on_tcp_data(forged.data(), forged.size(), now, out);
  });
  team.peer(0).settle(team.net.now());
  EXPECT_EQ(team.peer(0).peer.neighbours().size(), 1u);  // no fake neighbour
  EXPECT_EQ(removal(team.peer(0)), nullptr);             // no fake removal
  ASSERT_FALSE(team.peer(0).events.empty());
  EXPECT_EQ(team.peer(0).events.back().kind, PeerEvent::Kind::kProtocolError);
}

}  // namespace
}  // namespace p2psp
