// Writes the seed corpus of the fuzz targets:
//   fuzz-gen-corpus <dir>   ->   <dir>/<target>/<name>
//
// udp: a valid encoding of every datagram type (edge values too);
// tcp: every control message, as a bare body and as a framed stream cut in
//      pieces; the whole handshake as one stream;
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
  write("udp", "hello", encode_hello(HelloMsg{0x1234, 2}));
  write("udp", "register", encode_register(RegisterMsg{0x1234, 2, ~0ull}));
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
  return {
      {"join", JoinMsg{kProtocolVersion, 0}},
      {"join-monitor", JoinMsg{kProtocolVersion, kFlagMonitor}},
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
      {"challenge", ChallengeMsg{{1, 2, 3}, {4, 5, 6}, 1}},
      {"auth", AuthMsg{{7, 8}, {9, 10}}},
      {"proof", ProofMsg{{11, 12}}},
      {"chunk-key", ChunkKeyMsg{{13, 14, 15}}},
      {"polluted", PollutedMsg{7, 9, 3}},
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
  std::mt19937 rng(20261125);
  for (const char* t : {"deframer", "reorder", "splitter", "peer"}) {
    random_seeds(t, rng);
  }
  return 0;
}
