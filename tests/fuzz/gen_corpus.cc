// Writes the seed corpus of the fuzz targets:
//   fuzz-gen-corpus <dir>   ->   <dir>/<target>/<name>
//
// udp: a valid encoding of every datagram type (edge values too);
// tcp: every control message, as a bare body and as a framed stream cut in
//      pieces; the whole handshake as one stream;
// auth: handshake bodies, sealed and plain datagrams, control channel near
//      misses and scripted sessions (written with Script, below);
// icy: radio streams with metadata blocks (titles, empty blocks, the
//      largest block), fed whole and in pieces;
// deframer, reorder, splitter, peer: these targets build valid messages
//      themselves from the input's choices, so their seeds are just byte
//      strings of a few sizes (deterministic, fixed PRNG seed).
// The corpus is committed: rerun this only when the encodings change.
#include <gst/p2psp/auth.h>
#include <gst/p2psp/wire.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "auth_fixture.h"

using namespace p2psp;

namespace {

std::string g_dir;

void write(const std::string& target, const std::string& name, const Bytes& b) {
  const std::string dir = g_dir + "/" + target;
  mkdir(dir.c_str(), 0755);
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()),
          static_cast<std::streamsize>(b.size()));
}

void udp_seeds() {
  const uint8_t payload[] = {0, 1, 2, 3, 4, 5, 6, 7};
  write("udp", "chunk", encode_chunk(0x1234, 7, 2, 1000, 0, payload, 8));
  write("udp", "chunk-implicit-origin",
        encode_chunk(0x1234, 7, kImplicitOrigin, 1000, 0, payload, 8));
  uint8_t signature[kChunkSignatureSize];
  for (size_t i = 0; i < sizeof signature; ++i) signature[i] = uint8_t(i * 7);
  write(
      "udp", "chunk-signed",
      encode_chunk(0x1234, 7, kImplicitOrigin, 1000, 0, payload, 8, signature));
  write("udp", "chunk-signed-origin",
        encode_chunk(0x1234, 8, 3, 1000, 0, payload, 8, signature));
  write("udp", "chunk-no-frame-start",
        encode_chunk(0x1234, UINT32_MAX, 2, 1000, kNoFrameStart, payload, 8));
  write("udp", "chunk-previous",
        encode_chunk(0x1234, 5, 2, 1000, 0, payload, 8, nullptr, 12));
  {
    const Bytes plain =
        encode_chunk(0x1234, 5, 2, 1000, 0, payload, 8, nullptr, 12);
    write("udp", "chunk-flood",
          encode_flood_chunk(
              std::get<ChunkMsg>(*decode_udp(plain.data(), plain.size())), 2));
  }
  write("udp", "hello", encode_hello(HelloMsg{0x1234, 2, 0}));
  write("udp", "hello-echo", encode_hello(HelloMsg{0x1234, 2, 0xC00C1E}));
  write("udp", "register", encode_register(RegisterMsg{0x1234, 2, ~0ull, 0}));
  write("udp", "register-echo",
        encode_register(RegisterMsg{0x1234, 2, ~0ull, 0xC00C1E}));
  write("udp", "goodbye", encode_goodbye(GoodbyeMsg{0x1234, 2}));
  write("udp", "lost", encode_lost(LostMsg{0x1234, 2, 42, {1, 2, 3}}));
  std::vector<ChunkNumber> many(kMaxNackNumbers);
  for (size_t i = 0; i < many.size(); ++i)
    many[i] = static_cast<ChunkNumber>(i);
  write("udp", "lost-max", encode_lost(LostMsg{0x1234, 2, 42, many}));
  write("udp", "nack", encode_nack(NackMsg{0x1234, 2, {9}}));
  write("udp", "nack-max", encode_nack(NackMsg{0x1234, 2, many}));
  write("udp", "request", encode_request(RequestMsg{0x1234, 2, 3}));
  write("udp", "prune", encode_prune(PruneMsg{0x1234, 2, 3}));
  write("udp", "heartbeat", encode_heartbeat(HeartbeatMsg{0x1234, 2, 42}));
  write("udp", "probe", encode_probe(ProbeMsg{0x1234, 0xC00C1E, 2}));
}

std::vector<std::pair<std::string, TcpMessage>> tcp_messages() {
  WelcomeMsg welcome;
  welcome.team_id = 0x1234;
  welcome.peer_id = 2;
  welcome.token = 42;
  welcome.chunk_size = 1024;
  welcome.splitter_udp_port = 4553;
  welcome.caps = "video/x-theora, streamheader=(buffer)< 807468656f7261 >";
  TeamMsg team;
  team.public_endpoint = Endpoint::ipv4(10, 0, 0, 2, 4552);
  team.next_chunk = 100;
  team.peers = {PeerInfo{3, Endpoint::ipv4(10, 0, 0, 3, 4553)},
                PeerInfo{4, *Endpoint::parse("[2001:db8::4]:4554")}};
  JoinMsg join_local(kProtocolVersion, kFlagLocalEndpoints);
  join_local.local_endpoints = {Endpoint::ipv4(192, 168, 1, 5, 4555),
                                *Endpoint::parse("[fd00::5]:4555")};
  return {
      {"join", JoinMsg{kProtocolVersion, 0}},
      {"join-monitor", JoinMsg{kProtocolVersion, kFlagMonitor}},
      {"join-upload-limit", JoinMsg{kProtocolVersion, kFlagUploadLimit, 300}},
      {"join-local", join_local},
      {"peer-local", PeerLocalMsg{5, *Endpoint::parse("[fd00::5]:4555")}},
      {"peer-local-v4", PeerLocalMsg{5, Endpoint::ipv4(192, 168, 1, 5, 4555)}},
      {"multicast", MulticastMsg{Endpoint::ipv4(239, 255, 14, 1, 5004)}},
      {"multicast-receiving", MulticastReceivingMsg{}},
      {"multicast-member", MulticastMemberMsg{5}},
      {"welcome", welcome},
      {"team", team},
      {"team-empty", TeamMsg{Endpoint::ipv4(10, 0, 0, 2, 1), 0, {}}},
      {"peer-joined",
       PeerJoinedMsg{PeerInfo{5, Endpoint::ipv4(10, 0, 0, 5, 4555)}}},
      {"peer-left", PeerLeftMsg{5}},
      {"removed", RemovedMsg{RemoveReason::kExpelled, "expelled"}},
      {"goodbye", TcpGoodbyeMsg{}},
      {"reject", RejectMsg{RemoveReason::kTeamFull, "team full (4 peers)"}},
      {"role", RoleMsg{kFlagMonitor}},
      {"role-echo", RoleMsg{kRoleFlagEcho}},
      {"join-echo", JoinMsg{kProtocolVersion, kFlagEcho}},
      {"challenge", ChallengeMsg{{1, 2, 3}, {4, 5, 6}, 1}},
      {"auth", AuthMsg{{7, 8}, {9, 10}}},
      {"proof", ProofMsg{{11, 12}}},
      {"chunk-key", ChunkKeyMsg{{13, 14, 15}}},
      {"polluted", PollutedMsg{7, 9, 3}},
      {"burst", BurstMsg{100, 40}},
      {"join-burst", JoinMsg{kProtocolVersion, kFlagBurst}},
  };
}

void tcp_seeds() {
  Bytes handshake;
  for (const auto& [name, msg] : tcp_messages()) {
    const Bytes framed = encode_tcp(msg);
    // A bare body (decode_tcp_body sees the whole input)...
    write("tcp", name + "-body", Bytes(framed.begin() + 4, framed.end()));
    // ...and a framed stream: the target reads its cut points from the
    // input's tail (FuzzedDataProvider takes integers from the end): here
    // pieces of 3 bytes (1 + 2), then how many cuts (1).
    Bytes stream = framed;
    stream.push_back(2);
    stream.push_back(1);
    write("tcp", name + "-stream", stream);
    handshake.insert(handshake.end(), framed.begin(), framed.end());
  }
  handshake.push_back(0);  // no cuts: the stream in one piece
  write("tcp", "all-messages-stream", handshake);
}

void random_seeds(const std::string& target, std::mt19937& rng) {
  const size_t sizes[] = {16, 64, 256, 1024, 4096};
  int i = 0;
  for (size_t size : sizes) {
    Bytes b(size);
    for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
    write(target, "random-" + std::to_string(i++), b);
  }
}

// An input for FuzzedDataProvider, written in the order a target consumes
// it: integers come from the end (their most significant byte first), byte
// strings from the front.
class Script {
 public:
  // An integer the target reads over `size` bytes (ConsumeIntegral of that
  // width, or ConsumeIntegralInRange of a range that needs that many).
  Script& u(uint64_t v, size_t size = 1) {
    for (size_t i = size; i-- > 0;) tail_.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Script& bytes(const Bytes& b) {
    front_.insert(front_.end(), b.begin(), b.end());
    return *this;
  }
  Bytes build() const {
    Bytes b = front_;
    b.insert(b.end(), tail_.rbegin(), tail_.rend());
    return b;
  }

 private:
  Bytes front_;
  Bytes tail_;
};

Bytes body_of(const Bytes& framed) {
  return Bytes(framed.begin() + 4, framed.end());
}

// fuzz_auth mode 4: SEALED bodies the splitter end of the fixed channel must
// refuse, though made with its key: the splitter's own message reflected,
// the peer's second message first, the peer's under other nonces, garbage.
void channel_forgery_seeds() {
  const Bytes goodbye = encode_tcp(TcpGoodbyeMsg{});
  auto forged = [](const std::string& name, const Bytes& framed) {
    write("auth", "channel-forged-" + name,
          Script().u(4).bytes(body_of(framed)).build());
  };
  auto splitter = fuzz::fixed_channel(auth::Role::kSplitter);
  forged("reflected", splitter.seal(goodbye));
  auto peer = fuzz::fixed_channel(auth::Role::kPeer);
  peer.seal(goodbye);
  forged("second", peer.seal(goodbye));
  auth::ChannelCrypto other(fuzz::fixed_key(), fuzz::fixed_nonce(0x53),
                            fuzz::fixed_nonce(0x51), auth::Role::kPeer);
  forged("other-nonce", other.seal(goodbye));
  Bytes garbage(4 + 1 + 17);
  garbage[4] = static_cast<uint8_t>(TcpType::kSealed);
  forged("garbage", garbage);
}

// fuzz_auth mode 5: scripted sessions. Each step: direction (1: to the
// peer), the message (0 GOODBYE, 1 PEER_LEFT, 2 PEER_JOINED, 3 POLLUTED,
// 4 any body), the action on the oldest message in flight (0 deliver,
// 1 tamper, 2 drop, 3 replay, 4 swap, 5 hold).
enum Action : uint8_t { kDeliver, kTamper, kDrop, kReplay, kSwap, kHold };
void channel_session_seeds() {
  auto goodbye = [](Script& s, bool to_peer) { s.u(to_peer).u(0); };
  auto peer_left = [](Script& s, bool to_peer) { s.u(to_peer).u(1).u(7, 4); };
  Script in_order;
  in_order.u(5);
  goodbye(in_order, false);
  in_order.u(kDeliver);
  peer_left(in_order, true);
  in_order.u(kDeliver);
  // PEER_JOINED: id, then pick_endpoint's host, port and mapped-or-not.
  in_order.u(1).u(2).u(3, 4).u(2).u(3).u(0).u(kDeliver);
  in_order.u(0).u(3).u(7, 4).u(9, 4).u(3, 4).u(kDeliver);
  for (const auto& [name, msg] : tcp_messages()) {
    if (name != "welcome" && name != "team") continue;
    const Bytes body = body_of(encode_tcp(msg));
    in_order.u(1).u(4).u(body.size(), 2).bytes(body).u(kDeliver);
  }
  write("auth", "channel-in-order", in_order.build());

  // Both ends send before either receives: the messages cross.
  Script crossing;
  crossing.u(5);
  goodbye(crossing, false);
  crossing.u(kHold);
  peer_left(crossing, true);
  crossing.u(kHold);
  goodbye(crossing, false);
  crossing.u(kHold);
  write("auth", "channel-crossing", crossing.build());

  auto session = [&](const std::string& name, Action last,
                     std::initializer_list<uint8_t> extra) {
    Script s;
    s.u(5);
    goodbye(s, false);
    s.u(kDeliver);
    peer_left(s, true);
    s.u(kDeliver);
    peer_left(s, false);
    s.u(last);
    for (uint8_t x : extra) s.u(x);
    write("auth", "channel-" + name, s.build());
  };
  session("tamper-tag", kTamper, {0xFF, 0xFF, 0x01});
  session("tamper-type", kTamper, {0, 0, 0x80});
  session("drop", kDrop, {0, 0, kDeliver});  // then a GOODBYE to the splitter
  session("replay", kReplay, {});
  session("swap", kSwap, {0});  // the next one a GOODBYE

  // A SEALED message sealed again: in order, but it must not open.
  Bytes sealed_body(1 + 17, 0x5A);
  sealed_body[0] = static_cast<uint8_t>(TcpType::kSealed);
  write("auth", "channel-double-sealed",
        Script()
            .u(5)
            .u(0)
            .u(4)
            .u(sealed_body.size(), 2)
            .bytes(sealed_body)
            .u(kDeliver)
            .build());
}

// fuzz_auth reads its mode and parameters from the end of the input
// (FuzzedDataProvider takes integers from the back, bytes from the front).
void auth_seeds() {
  auto with_tail = [](Bytes b, std::initializer_list<uint8_t> tail) {
    b.insert(b.end(), tail);
    return b;
  };
  for (const auto& [name, msg] : tcp_messages()) {
    const Bytes framed = encode_tcp(msg);
    const uint8_t type = framed[4];
    if (type < static_cast<uint8_t>(TcpType::kChallenge)) continue;
    const uint8_t selector = type - static_cast<uint8_t>(TcpType::kChallenge);
    write("auth", "body-" + name,
          with_tail(Bytes(framed.begin() + 5, framed.end()), {selector, 0}));
  }
  uint8_t payload[16] = {1, 2, 3};
  const Bytes chunk = encode_chunk(0x1234, 7, 2, 1000, 0, payload, 16);
  auth::Key key{};
  auth::DatagramCrypto crypto(key, 3, true);
  write("auth", "open-sealed",
        with_tail(crypto.seal(chunk.data(), chunk.size()), {1, 1}));
  write("auth", "open-plain", with_tail(chunk, {0, 1}));
  write("auth", "seal-intact", with_tail(chunk, {0x40, 0, 9, 0, 1, 2}));
  write("auth", "seal-tampered", with_tail(chunk, {0x40, 0, 9, 1, 0, 2}));
  write("auth", "replay-steps",
        with_tail({1, 0, 0xFF, 0xFF, 0, 4, 0x80, 0, 0, 1},
                  {0, 0, 0, 0, 0, 0, 0x10, 0, 3}));
  channel_forgery_seeds();
  channel_session_seeds();
}

// Interval (two bytes), whole/pieces, then `intervals` runs of stream bytes,
// each followed by a metadata block.
void icy_seed(const std::string& name, size_t interval, bool whole,
              const std::vector<std::string>& texts, size_t intervals) {
  Bytes b = {static_cast<uint8_t>(interval >> 8),
             static_cast<uint8_t>(interval), whole ? uint8_t{1} : uint8_t{0}};
  for (size_t i = 0; i < intervals; ++i) {
    for (size_t j = 0; j < interval; ++j) b.push_back(0xFF - (j & 0x7F));
    const std::string& text = texts[i % texts.size()];
    const size_t units = (text.size() + 15) / 16;
    b.push_back(static_cast<uint8_t>(units));
    b.insert(b.end(), text.begin(), text.end());
    b.resize(b.size() + units * 16 - text.size(), 0);
  }
  write("icy", name, b);
}

void icy_seeds() {
  icy_seed("titles-whole", 64, true,
           {"StreamTitle='Artist - Song';StreamUrl='';", ""}, 6);
  icy_seed("titles-pieces", 100, false, {"StreamTitle='It''s';", "", ""}, 8);
  icy_seed("empty-blocks", 16, false, {""}, 20);
  icy_seed("largest-block", 32, false, {std::string(4080, 'x')}, 2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  mkdir(g_dir.c_str(), 0755);
  udp_seeds();
  tcp_seeds();
  auth_seeds();
  icy_seeds();
  std::mt19937 rng(20261125);
  for (const char* t : {"deframer", "reorder", "splitter", "peer"}) {
    random_seeds(t, rng);
  }
  return 0;
}
