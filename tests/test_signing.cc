// Pollution (docs/security.md): splitter-signed chunks. The signature
// itself, the wire messages that carry the key and the reports, the peer's
// checks, the splitter's expulsion rule, and a team with a polluting peer
// on the in-memory network.
#include <gst/p2psp/signing.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "register_util.h"
#include "sim_network.h"

namespace p2psp {
namespace {

using sim::NodeId;
using sim::PeerNode;
using sim::SplitterNode;

constexpr uint32_t kTeamId = 0x519ed;
constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;
constexpr Micros kSecond = 1000000;

std::array<uint8_t, kChunkKeySeedSize> seed_of(uint8_t fill) {
  std::array<uint8_t, kChunkKeySeedSize> seed;
  seed.fill(fill);
  return seed;
}

Bytes payload_of(size_t size, uint8_t salt) {
  Bytes payload(size);
  for (size_t i = 0; i < size; ++i) {
    payload[i] = static_cast<uint8_t>(i * 31 + salt);
  }
  return payload;
}

// Signed for `origin`, which the datagram states unless implicit.
Bytes signed_chunk(const ChunkSigner& signer, ChunkNumber number,
                   uint32_t origin, uint8_t salt = 0,
                   bool implicit_origin = false) {
  const Bytes payload = payload_of(300, salt);
  ChunkMsg msg;
  msg.team_id = kTeamId;
  msg.number = number;
  msg.origin = origin;
  msg.send_time_ms = 1234;
  msg.first_frame_offset = 17;
  msg.payload = payload.data();
  msg.payload_size = payload.size();
  const ChunkSignature signature = signer.sign(msg);
  msg.signature = signature.data();
  return encode_chunk(msg, implicit_origin ? kImplicitOrigin : origin);
}

Bytes plain_chunk(ChunkNumber number, uint32_t origin, uint8_t salt = 0) {
  const Bytes payload = payload_of(300, salt);
  return encode_chunk(kTeamId, number, origin, 1234, 17, payload.data(),
                      payload.size());
}

// nullopt when the datagram does not even decode. An implicit origin is
// resolved as implicit_as (who the receiver takes to be the origin).
std::optional<ChunkCheck> check(const ChunkKey& key, const Bytes& datagram,
                                uint32_t implicit_as = 0) {
  const auto msg = decode_udp(datagram.data(), datagram.size());
  if (!msg || !std::holds_alternative<ChunkMsg>(*msg)) return std::nullopt;
  ChunkMsg chunk = std::get<ChunkMsg>(*msg);
  if (chunk.origin == kImplicitOrigin) chunk.origin = implicit_as;
  return verify_chunk(key, chunk);
}

// ------------------------------------------------------------ signature --

TEST(ChunkSignature, SignedChunkDecodesAndVerifies) {
  const ChunkSigner signer(seed_of(1));
  const Bytes datagram = signed_chunk(signer, 42, 7);
  const auto msg = decode_udp(datagram.data(), datagram.size());
  ASSERT_TRUE(msg);
  const auto& chunk = std::get<ChunkMsg>(*msg);
  EXPECT_EQ(chunk.number, 42u);
  EXPECT_EQ(chunk.origin, 7u);
  EXPECT_EQ(chunk.first_frame_offset, 17u);
  ASSERT_EQ(chunk.payload_size, 300u);  // the signature is not payload
  EXPECT_EQ(Bytes(chunk.payload, chunk.payload + 300), payload_of(300, 0));
  ASSERT_NE(chunk.signature, nullptr);
  EXPECT_EQ(datagram.size(),
            kChunkHeaderSize + kChunkOriginSize + 300 + kChunkSignatureSize);
  EXPECT_EQ(verify_chunk(signer.public_key(), chunk), ChunkCheck::kValid);
}

TEST(ChunkSignature, TheOriginIsSignedWhetherStatedOrImplicit) {
  const ChunkSigner signer(seed_of(11));
  const ChunkKey& key = signer.public_key();
  const Bytes implicit = signed_chunk(signer, 8, 4, 0, /*implicit=*/true);
  EXPECT_EQ(implicit.size(), kChunkHeaderSize + 300 + kChunkSignatureSize);
  EXPECT_EQ(check(key, implicit, 4), ChunkCheck::kValid);
  // Sent by anyone but the origin, the implicit origin names someone else.
  EXPECT_EQ(check(key, implicit, 5), ChunkCheck::kBadSignature);
  // Re-encoded with the origin stated (a relay, a NACK answer): still valid.
  const auto msg = decode_udp(implicit.data(), implicit.size());
  const Bytes stated = encode_chunk(std::get<ChunkMsg>(*msg), 4);
  EXPECT_EQ(check(key, stated), ChunkCheck::kValid);
  EXPECT_EQ(check(key, encode_chunk(std::get<ChunkMsg>(*msg), 6)),
            ChunkCheck::kBadSignature);
}

TEST(ChunkSignature, EveryAlteredByteIsRejected) {
  const ChunkSigner signer(seed_of(2));
  const Bytes datagram = signed_chunk(signer, 1000, 3);
  size_t rejected_by_decoder = 0;
  for (size_t i = 0; i < datagram.size(); ++i) {
    Bytes altered = datagram;
    altered[i] ^= 0x01;
    const auto result = check(signer.public_key(), altered);
    if (!result) {
      ++rejected_by_decoder;  // magic, version, type, bad offset
      continue;
    }
    EXPECT_NE(*result, ChunkCheck::kValid) << "byte " << i;
  }
  // Most bytes decode fine and only the signature catches them.
  EXPECT_LT(rejected_by_decoder, 8u);
}

TEST(ChunkSignature, AlteredFieldsAreRejected) {
  const ChunkSigner signer(seed_of(3));
  const ChunkKey& key = signer.public_key();
  const Bytes good = signed_chunk(signer, 5, 9);
  const Bytes good_sig(good.end() - kChunkSignatureSize, good.end());
  // Re-encode with one field changed and the original signature.
  auto forged = [&](ChunkNumber number, uint32_t origin, uint16_t offset,
                    uint8_t salt, uint16_t previous = kNoPrevious) {
    const Bytes payload = payload_of(300, salt);
    return encode_chunk(kTeamId, number, origin, 1234, offset, payload.data(),
                        payload.size(), good_sig.data(), previous);
  };
  EXPECT_EQ(check(key, forged(5, 9, 17, 0)), ChunkCheck::kValid);
  EXPECT_EQ(check(key, forged(6, 9, 17, 0)), ChunkCheck::kBadSignature);
  EXPECT_EQ(check(key, forged(5, 8, 17, 0)), ChunkCheck::kBadSignature);
  EXPECT_EQ(check(key, forged(5, 9, 16, 0)), ChunkCheck::kBadSignature);
  EXPECT_EQ(check(key, forged(5, 9, 17, 1)), ChunkCheck::kBadSignature);
  // A relay that named another previous chunk would misdirect NACKs.
  EXPECT_EQ(check(key, forged(5, 9, 17, 0, 3)), ChunkCheck::kBadSignature);
}

TEST(ChunkSignature, UnsignedAndForeignKeyAreRejected) {
  const ChunkSigner signer(seed_of(4));
  const ChunkSigner other(seed_of(5));
  EXPECT_NE(signer.public_key(), other.public_key());
  EXPECT_EQ(check(signer.public_key(), plain_chunk(1, 2)),
            ChunkCheck::kUnsigned);
  EXPECT_EQ(check(signer.public_key(), signed_chunk(other, 1, 2)),
            ChunkCheck::kBadSignature);
  // A signature moved to another chunk does not hold there.
  Bytes moved = signed_chunk(signer, 1, 2, 9);
  const Bytes donor = signed_chunk(signer, 1, 2, 0);
  std::copy(donor.end() - kChunkSignatureSize, donor.end(),
            moved.end() - kChunkSignatureSize);
  EXPECT_EQ(check(signer.public_key(), moved), ChunkCheck::kBadSignature);
}

TEST(ChunkSignature, FreshKeyPairsDiffer) {
  const ChunkSigner a;
  const ChunkSigner b;
  EXPECT_NE(a.public_key(), b.public_key());
}

TEST(ChunkSignature, TruncatedSignedChunkDoesNotDecode) {
  const ChunkSigner signer(seed_of(6));
  Bytes d = signed_chunk(signer, 1, 2);
  // Header plus less than a signature: no payload is left.
  d.resize(kChunkHeaderSize + kChunkOriginSize + kChunkSignatureSize);
  EXPECT_FALSE(decode_udp(d.data(), d.size()));
  d.resize(kChunkHeaderSize + kChunkOriginSize + 10);
  EXPECT_FALSE(decode_udp(d.data(), d.size()));
}

TEST(PollutionWire, KeyAndReportRoundTripAndRejectTruncation) {
  ChunkKeyMsg key;
  for (size_t i = 0; i < key.key.size(); ++i) key.key[i] = uint8_t(i + 1);
  const PollutedMsg report{7, 0xfffffffeu, 9};
  for (const TcpMessage& m : {TcpMessage{key}, TcpMessage{report}}) {
    const Bytes framed = encode_tcp(m);
    const auto back = decode_tcp_body(framed.data() + 4, framed.size() - 4);
    ASSERT_TRUE(back);
    EXPECT_EQ(encode_tcp(*back), framed);
    EXPECT_FALSE(decode_tcp_body(framed.data() + 4, framed.size() - 5));
    Bytes longer(framed.begin() + 4, framed.end());
    longer.push_back(0);
    EXPECT_FALSE(decode_tcp_body(longer.data(), longer.size()));
  }
  const Bytes framed = encode_tcp(report);
  const auto back = decode_tcp_body(framed.data() + 4, framed.size() - 4);
  const auto& got = std::get<PollutedMsg>(*back);
  EXPECT_EQ(got.sender, 7u);
  EXPECT_EQ(got.number, 0xfffffffeu);
  EXPECT_EQ(got.origin, 9u);
}

// ------------------------------------------------------------ peer -------

std::vector<TcpMessage> decode_all(const Outbox& out) {
  std::vector<TcpMessage> result;
  TcpReader reader;
  for (const TcpSend& send : out.tcp) {
    reader.feed(send.data.data(), send.data.size());
  }
  TcpMessage msg;
  while (reader.next(&msg) == TcpReader::Status::kMessage) {
    result.push_back(msg);
  }
  return result;
}

std::vector<PollutedMsg> reports_in(const Outbox& out) {
  std::vector<PollutedMsg> reports;
  for (const TcpMessage& m : decode_all(out)) {
    if (const auto* r = std::get_if<PollutedMsg>(&m)) reports.push_back(*r);
  }
  return reports;
}

// A bare peer joined as id 1 with neighbours 2 and 3.
struct PeerBench {
  explicit PeerBench(const ChunkSigner* signer)
      : peer(PeerConfig(), splitter_tcp) {
    peer.start(now, &out);
    Bytes tcp;
    auto add = [&](const TcpMessage& m) {
      const Bytes b = encode_tcp(m);
      tcp.insert(tcp.end(), b.begin(), b.end());
    };
    if (signer) add(ChunkKeyMsg{signer->public_key()});
    WelcomeMsg welcome;
    welcome.team_id = kTeamId;
    welcome.peer_id = 1;
    welcome.token = 99;
    welcome.chunk_size = 300;
    welcome.splitter_udp_port = kSplitterUdpPort;
    add(welcome);
    TeamMsg team;
    team.public_endpoint = Endpoint::ipv4(10, 2, 0, 1, 5000);
    team.next_chunk = 0;
    team.peers = {PeerInfo{2, neighbour(2)}, PeerInfo{3, neighbour(3)}};
    add(team);
    peer.on_tcp_data(tcp.data(), tcp.size(), now, &out);
    EXPECT_EQ(peer.state(), PeerState::kMember);
    out.clear();
  }
  static Endpoint neighbour(uint8_t id) {
    return Endpoint::ipv4(10, 2, 0, id, 5000);
  }
  void udp(const Endpoint& from, const Bytes& d) {
    now += 1000;
    peer.on_udp(from, d.data(), d.size(), now, &out);
  }

  const Endpoint splitter_tcp = Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort);
  const Endpoint splitter_udp = splitter_tcp.with_port(kSplitterUdpPort);
  Peer peer;
  Outbox out;
  Micros now = 1000;
};

Bytes alter(Bytes d) {
  d[d.size() / 2] ^= 0x80;  // inside the payload
  return d;
}

TEST(PeerSignature, AltereredChunksAreDroppedCountedAndTheSenderReported) {
  const ChunkSigner signer(seed_of(7));
  PeerBench bench(&signer);
  const PeerStats& st = bench.peer.stats();
  EXPECT_EQ(st.signed_team, 1u);

  bench.udp(bench.splitter_udp, signed_chunk(signer, 0, 1, 0, true));
  bench.udp(PeerBench::neighbour(2), signed_chunk(signer, 1, 2, 0, true));
  EXPECT_EQ(st.chunks_from_splitter, 1u);
  EXPECT_EQ(st.chunks_from_peers, 1u);
  EXPECT_TRUE(reports_in(bench.out).empty());

  // Neighbour 2 passes on an altered chunk of origin 3: 2 is to blame.
  bench.out.clear();
  bench.udp(PeerBench::neighbour(2), alter(signed_chunk(signer, 2, 3)));
  EXPECT_EQ(st.bad_signatures, 1u);
  EXPECT_EQ(st.chunks_from_peers, 1u);
  auto reports = reports_in(bench.out);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].sender, 2u);
  EXPECT_EQ(reports[0].number, 2u);
  EXPECT_EQ(reports[0].origin, 3u);

  // Once per sender.
  bench.out.clear();
  bench.udp(PeerBench::neighbour(2),
            alter(signed_chunk(signer, 4, 2, 0, true)));
  EXPECT_EQ(st.bad_signatures, 2u);
  EXPECT_TRUE(reports_in(bench.out).empty());

  // Stripping the signature does not help: the team signs.
  bench.udp(PeerBench::neighbour(3), plain_chunk(5, kImplicitOrigin));
  EXPECT_EQ(st.unsigned_chunks, 1u);
  reports = reports_in(bench.out);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].sender, 3u);
  EXPECT_EQ(st.pollution_reports_sent, 2u);

  // The chunk dropped, the genuine one is still welcome afterwards.
  bench.udp(PeerBench::neighbour(2), signed_chunk(signer, 4, 2, 0, true));
  EXPECT_EQ(st.chunks_from_peers, 2u);
  EXPECT_EQ(st.bad_signatures, 2u);
}

TEST(PeerSignature, ForeignKeyFromSplitterAndStrangersAreNotReported) {
  const ChunkSigner signer(seed_of(8));
  const ChunkSigner other(seed_of(9));
  PeerBench bench(&signer);
  const PeerStats& st = bench.peer.stats();
  bench.udp(PeerBench::neighbour(3), signed_chunk(other, 1, 3, 0, true));
  EXPECT_EQ(st.bad_signatures, 1u);
  EXPECT_EQ(reports_in(bench.out).size(), 1u);
  bench.out.clear();
  // Spoofing the splitter's address accuses nobody.
  bench.udp(bench.splitter_udp, alter(signed_chunk(signer, 0, 1, 0, true)));
  EXPECT_EQ(st.bad_signatures, 2u);
  EXPECT_EQ(st.chunks_from_splitter, 0u);
  // A stranger is not even verified (CPU), nor reported.
  const uint64_t rejected = st.rejected_datagrams;
  bench.udp(Endpoint::ipv4(10, 9, 9, 9, 5000),
            alter(signed_chunk(signer, 2, 2)));
  EXPECT_EQ(st.bad_signatures, 2u);
  EXPECT_EQ(st.rejected_datagrams, rejected + 1);
  EXPECT_TRUE(reports_in(bench.out).empty());
}

TEST(PeerSignature, WithoutAKeyChunksAreNotChecked) {
  const ChunkSigner signer(seed_of(10));
  PeerBench bench(nullptr);
  const PeerStats& st = bench.peer.stats();
  EXPECT_EQ(st.signed_team, 0u);
  bench.udp(bench.splitter_udp, plain_chunk(0, kImplicitOrigin));
  bench.udp(PeerBench::neighbour(2), signed_chunk(signer, 1, 2, 0, true));
  EXPECT_EQ(st.chunks_from_splitter + st.chunks_from_peers, 2u);
  EXPECT_EQ(st.bad_signatures + st.unsigned_chunks, 0u);
}

// ------------------------------------------------------------ splitter ---

struct Member {
  ConnId conn = 0;
  uint32_t id = 0;
  Endpoint udp;
};

struct SplitterBench {
  explicit SplitterBench(const SplitterConfig& config) : sp(config) {}

  // Joins and registers; the messages before WELCOME go to *before.
  Member join(std::vector<TcpMessage>* first = nullptr) {
    Member m;
    m.conn = next_conn++;
    m.udp = Endpoint::ipv4(10, 3, 0, static_cast<uint8_t>(m.conn), 5000);
    sp.on_tcp_accepted(m.conn, m.udp.with_port(40000), now, &out);
    tcp(m, JoinMsg{});
    uint64_t token = 0;
    const auto replies = take_tcp(m.conn);
    if (first) *first = replies;
    for (const TcpMessage& msg : replies) {
      if (const auto* w = std::get_if<WelcomeMsg>(&msg)) {
        m.id = w->peer_id;
        token = w->token;
      }
    }
    test::register_at(sp, m.udp, kTeamId, m.id, token, now, &out);
    take_tcp(m.conn);
    return m;
  }
  void tcp(const Member& m, const TcpMessage& msg) {
    const Bytes b = encode_tcp(msg);
    sp.on_tcp_data(m.conn, b.data(), b.size(), now, &out);
  }
  void report(const Member& reporter, const Member& accused) {
    tcp(reporter, PollutedMsg{accused.id, 1, accused.id});
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
  bool is_member(const Member& m) const {
    for (const SplitterPeerStats& p : sp.peer_stats()) {
      if (p.id == m.id) return true;
    }
    return false;
  }
  uint32_t accusers_of(const Member& m) const {
    for (const SplitterPeerStats& p : sp.peer_stats()) {
      if (p.id == m.id) return p.pollution_accusers;
    }
    return 0;
  }

  Splitter sp;
  Outbox out;
  Micros now = 1000;
  ConnId next_conn = 1;
};

SplitterConfig signing_config() {
  SplitterConfig config;
  config.chunk_size = 300;
  config.team_id = kTeamId;
  config.udp_port = kSplitterUdpPort;
  config.peer_timeout_us = 0;
  config.sign_chunks = true;
  return config;
}

TEST(SplitterSignature, KeyComesBeforeWelcomeAndEveryChunkVerifies) {
  SplitterBench bench(signing_config());
  ASSERT_TRUE(bench.sp.chunk_key());
  std::vector<TcpMessage> first;
  const Member m = bench.join(&first);
  ASSERT_GE(first.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<ChunkKeyMsg>(first[0]));
  EXPECT_TRUE(std::holds_alternative<WelcomeMsg>(first[1]));
  const ChunkKey key = std::get<ChunkKeyMsg>(first[0]).key;
  EXPECT_EQ(key, *bench.sp.chunk_key());

  MediaBuffer buffer;
  buffer.data = payload_of(5 * 300, 3);
  bench.sp.push_buffer(buffer, bench.now, &bench.out);
  ASSERT_GE(bench.out.udp.size(), 4u);
  for (const UdpSend& send : bench.out.udp) {
    EXPECT_EQ(check(key, *send.data, m.id), ChunkCheck::kValid);
  }
  EXPECT_EQ(bench.sp.stats().chunks_signed, bench.sp.stats().chunks_sent);
}

// Signatures make datagrams longer: an unset chunk size must shrink so that
// even a retransmission (explicit origin) stays unfragmented.
TEST(SplitterSignature, UnsetChunkSizeLeavesRoomForTheSignature) {
  SplitterConfig config = signing_config();
  config.chunk_size = 0;
  SplitterBench bench(config);
  std::vector<TcpMessage> first;
  const Member m = bench.join(&first);
  ASSERT_GE(first.size(), 2u);
  const auto& welcome = std::get<WelcomeMsg>(first[1]);
  EXPECT_EQ(welcome.chunk_size, unfragmented_chunk_size(true, false));
  EXPECT_LT(welcome.chunk_size, kDefaultChunkSize);

  MediaBuffer buffer;
  buffer.data = payload_of(4 * kDefaultChunkSize, 5);
  bench.sp.push_buffer(buffer, bench.now, &bench.out);
  ASSERT_GE(bench.out.udp.size(), 3u);
  for (const UdpSend& send : bench.out.udp) {
    EXPECT_LE(send.data->size() + kChunkOriginSize, kMaxUnfragmentedDatagram);
    EXPECT_EQ(check(*bench.sp.chunk_key(), *send.data, m.id),
              ChunkCheck::kValid);
  }
  EXPECT_EQ(bench.out.udp[0].data->size() + kChunkOriginSize,
            kMaxUnfragmentedDatagram);
}

TEST(SplitterSignature, UnsignedTeamSendsNoKeyAndPlainChunks) {
  SplitterConfig config = signing_config();
  config.sign_chunks = false;
  SplitterBench bench(config);
  EXPECT_FALSE(bench.sp.chunk_key());
  std::vector<TcpMessage> first;
  bench.join(&first);
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(std::holds_alternative<WelcomeMsg>(first[0]));
  MediaBuffer buffer;
  buffer.data = payload_of(2 * 300, 3);
  bench.sp.push_buffer(buffer, bench.now, &bench.out);
  ASSERT_FALSE(bench.out.udp.empty());
  const ChunkSigner any(seed_of(1));
  EXPECT_EQ(check(any.public_key(), *bench.out.udp[0].data, 1),
            ChunkCheck::kUnsigned);
}

TEST(SplitterSignature, TwoDistinctReportersExpelOneCannot) {
  SplitterBench bench(signing_config());
  const Member a = bench.join();
  const Member b = bench.join();
  const Member c = bench.join();
  const Member culprit = bench.join();
  bench.out.clear();

  bench.report(a, culprit);
  bench.report(a, culprit);        // the same reporter again counts once
  bench.report(culprit, culprit);  // nor does accusing oneself
  bench.tcp(a, PollutedMsg{777, 1, 777});  // nor a stranger
  EXPECT_TRUE(bench.is_member(culprit));
  EXPECT_EQ(bench.accusers_of(culprit), 1u);
  EXPECT_EQ(bench.sp.stats().pollution_reports, 4u);
  EXPECT_EQ(bench.sp.stats().polluters_expelled, 0u);

  bench.report(b, culprit);
  EXPECT_FALSE(bench.is_member(culprit));
  EXPECT_EQ(bench.sp.stats().polluters_expelled, 1u);
  EXPECT_EQ(bench.sp.stats().peers_expelled, 1u);
  const auto to_culprit = bench.take_tcp(culprit.conn);
  ASSERT_FALSE(to_culprit.empty());
  const auto* removed = std::get_if<RemovedMsg>(&to_culprit.back());
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->reason, RemoveReason::kExpelled);
  const auto to_c = bench.take_tcp(c.conn);
  ASSERT_EQ(to_c.size(), 1u);
  EXPECT_EQ(std::get<PeerLeftMsg>(to_c[0]).peer_id, culprit.id);
  const auto events = bench.sp.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, SplitterEvent::Kind::kPeerRemoved);
  EXPECT_EQ(events.back().peer_id, culprit.id);
  EXPECT_EQ(events.back().reason, RemoveReason::kExpelled);
  // The reporters stay.
  EXPECT_TRUE(bench.is_member(a));
  EXPECT_TRUE(bench.is_member(b));
}

TEST(SplitterSignature, AReporterThatLeavesTakesItsReportAlong) {
  SplitterBench bench(signing_config());
  const Member a = bench.join();
  const Member b = bench.join();
  const Member accused = bench.join();
  bench.report(a, accused);
  EXPECT_EQ(bench.accusers_of(accused), 1u);
  bench.tcp(a, TcpGoodbyeMsg{});
  EXPECT_EQ(bench.accusers_of(accused), 0u);
  bench.report(b, accused);
  EXPECT_TRUE(bench.is_member(accused));
}

TEST(SplitterSignature, ReportBeforeMembershipIsAProtocolError) {
  SplitterBench bench(signing_config());
  const Member a = bench.join();
  const ConnId conn = bench.next_conn++;
  bench.sp.on_tcp_accepted(conn, Endpoint::ipv4(10, 3, 0, 99, 4000), bench.now,
                           &bench.out);
  const Bytes b = encode_tcp(PollutedMsg{a.id, 1, a.id});
  bench.sp.on_tcp_data(conn, b.data(), b.size(), bench.now, &bench.out);
  EXPECT_NE(
      std::find(bench.out.tcp_close.begin(), bench.out.tcp_close.end(), conn),
      bench.out.tcp_close.end());
  EXPECT_EQ(bench.sp.stats().pollution_reports, 0u);
}

// ------------------------------------------------------------ team -------

constexpr size_t kBufferSize = 1316;
constexpr Micros kBufferInterval = kBufferSize * 8;  // 1 Mb/s
constexpr Micros kStreamStart = 500000;

Endpoint splitter_udp() {
  return Endpoint::ipv4(10, 0, 0, 1, kSplitterUdpPort);
}
Endpoint peer_udp(size_t index) {
  return Endpoint::ipv4(10, 1, 0, static_cast<uint8_t>(index + 1), 5000);
}

std::vector<MediaBuffer> make_stream(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<MediaBuffer> stream(count);
  for (size_t i = 0; i < count; ++i) {
    MediaBuffer& b = stream[i];
    b.data.resize(kBufferSize);
    for (uint8_t& byte : b.data) byte = static_cast<uint8_t>(rng());
    b.pts = i * kBufferInterval * 1000;
    b.dts = b.pts;
    b.duration = kBufferInterval * 1000;
    b.flags = i % 30 == 0 ? 0u : uint32_t{MediaBuffer::kDeltaUnit};
  }
  return stream;
}

// A member that alters every chunk it sends to other peers (its own
// floods, relays and NACK answers): one payload byte flipped, the
// signature kept or, with strip, the chunk re-sent unsigned.
class PollutingPeer : public PeerNode {
 public:
  PollutingPeer(const PeerConfig& config, const Endpoint& splitter, bool strip)
      : PeerNode(config, splitter), strip_(strip), splitter_(splitter) {}
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    PeerNode::on_udp(from, data, size, now, out);
    pollute(out);
  }
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out) override {
    PeerNode::on_tcp_data(conn, data, size, now, out);
    pollute(out);
  }
  void tick(Micros now, Outbox* out) override {
    PeerNode::tick(now, out);
    pollute(out);
  }
  uint64_t altered = 0;

 private:
  void pollute(Outbox* out) {
    for (UdpSend& send : out->udp) {
      if (send.to.same_address(splitter_)) continue;
      const auto msg = decode_udp(send.data->data(), send.data->size());
      const auto* chunk = msg ? std::get_if<ChunkMsg>(&*msg) : nullptr;
      if (!chunk) continue;
      Bytes payload(chunk->payload, chunk->payload + chunk->payload_size);
      payload[payload.size() / 2] ^= 0x55;
      Bytes bad =
          strip_ ? encode_chunk(chunk->team_id, chunk->number, chunk->origin,
                                chunk->send_time_ms, chunk->first_frame_offset,
                                payload.data(), payload.size())
                 : *send.data;
      if (!strip_) {
        const size_t at =
            static_cast<size_t>(chunk->payload - send.data->data()) +
            payload.size() / 2;
        bad[at] ^= 0x55;
      }
      send.data = std::make_shared<const Bytes>(std::move(bad));
      ++altered;
    }
  }
  bool strip_;
  Endpoint splitter_;
};

struct PollutedTeam {
  PollutedTeam(size_t peers, size_t polluter, bool strip) : net(3) {
    splitter = net.add_node(std::make_shared<SplitterNode>(signing_team()),
                            splitter_udp());
    const Endpoint splitter_tcp = Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort);
    for (size_t i = 0; i < peers; ++i) {
      std::shared_ptr<PeerNode> node =
          i == polluter
              ? std::make_shared<PollutingPeer>(PeerConfig(), splitter_tcp,
                                                strip)
              : std::make_shared<PeerNode>(PeerConfig(), splitter_tcp);
      ids.push_back(net.add_node(node, peer_udp(i)));
      sim::start_peer(net, ids.back(), splitter);
    }
  }
  static SplitterConfig signing_team() {
    SplitterConfig config = signing_config();
    config.chunk_size = 1024;
    config.peer_timeout_us = 1500000;
    return config;
  }
  void stream(const std::vector<MediaBuffer>& buffers) {
    net.schedule(kStreamStart, [this] {
      net.with(splitter, [&](Micros now, Outbox* out) {
        sp().set_caps("video/x-test", now, out);
      });
    });
    for (size_t i = 0; i < buffers.size(); ++i) {
      net.schedule(kStreamStart + i * kBufferInterval, [this, &buffers, i] {
        net.with(splitter, [&](Micros now, Outbox* out) {
          sp().push_buffer(buffers[i], now, out);
        });
      });
    }
    net.schedule(kStreamStart + buffers.size() * kBufferInterval, [this] {
      net.with(splitter,
               [&](Micros now, Outbox* out) { sp().flush(now, out); });
    });
  }
  Splitter& sp() { return net.node<SplitterNode>(splitter)->splitter; }
  PeerNode& peer(size_t i) { return *net.node<PeerNode>(ids[i]); }

  sim::Network net;
  NodeId splitter = 0;
  std::vector<NodeId> ids;
};

std::vector<MediaBuffer> buffers_of(const PeerNode& node) {
  std::vector<MediaBuffer> out;
  for (const StreamItem& item : node.items) {
    if (item.kind == StreamItem::Kind::kBuffer) out.push_back(item.buffer);
  }
  return out;
}

void expect_same_stream(const std::vector<MediaBuffer>& out,
                        const std::vector<MediaBuffer>& in) {
  ASSERT_EQ(out.size(), in.size());
  for (size_t j = 0; j < out.size(); ++j) {
    ASSERT_EQ(out[j].data, in[j].data) << "buffer " << j;
    ASSERT_EQ(out[j].pts, in[j].pts) << "buffer " << j;
  }
}

void run_polluter_team(bool strip) {
  constexpr size_t kPeers = 6;
  constexpr size_t kPolluter = 3;
  PollutedTeam team(kPeers, kPolluter, strip);
  const auto stream = make_stream(190, 11);  // 2 s
  team.stream(stream);
  // Expelled within a bounded time once the stream starts.
  Micros expelled_at = 0;
  for (Micros t = kStreamStart; t <= kStreamStart + kSecond; t += 10000) {
    team.net.run_until(t);
    if (team.sp().stats().polluters_expelled == 1) {
      expelled_at = t;
      break;
    }
  }
  ASSERT_NE(expelled_at, 0u) << "polluter not expelled within 1 s";
  team.net.run_until(kStreamStart + 4 * kSecond);

  const auto& polluter = *team.net.node<PollutingPeer>(team.ids[kPolluter]);
  EXPECT_GT(polluter.altered, 0u);
  EXPECT_EQ(polluter.peer.state(), PeerState::kRemoved);
  ASSERT_FALSE(polluter.events.empty());
  EXPECT_EQ(polluter.events.back().reason, RemoveReason::kExpelled);
  const SplitterStats& s = team.sp().stats();
  EXPECT_EQ(s.peers_expelled, 1u);
  EXPECT_GE(s.pollution_reports, 2u);
  EXPECT_EQ(team.sp().num_peers(), kPeers - 1);
  uint64_t dropped = 0;
  for (size_t i = 0; i < kPeers; ++i) {
    if (i == kPolluter) continue;
    SCOPED_TRACE("peer " + std::to_string(i));
    const PeerStats& ps = team.peer(i).peer.stats();
    dropped += ps.bad_signatures + ps.unsigned_chunks;
    EXPECT_LE(ps.pollution_reports_sent, 1u);
    EXPECT_EQ(ps.lost, 0u);
    expect_same_stream(buffers_of(team.peer(i)), stream);
  }
  EXPECT_GT(dropped, 0u);
}

TEST(PollutedTeam, PolluterIsExpelledHonestOutputIsIdentical) {
  run_polluter_team(/*strip=*/false);
}

TEST(PollutedTeam, StrippingTheSignatureDoesNotHelpThePolluter) {
  run_polluter_team(/*strip=*/true);
}

}  // namespace
}  // namespace p2psp
