// gst-p2psp bench: what signed chunks cost (docs/security.md, "Pollution").
//
//   build-*/bench/p2psp-sign-cost [chunks]
//
// CPU time (thread CPU clock) per chunk of
//  - the splitter cutting and sending chunks to a team of 10, unsigned and
//    signed (Ed25519 sign per chunk);
//  - a peer in a team of 10 taking chunks (from the splitter, flooded to 9
//    neighbours, and from neighbours), without a key and with one (Ed25519
//    verify per chunk);
//  - one sign and one verify alone;
// and the bytes a signature adds per chunk. Chunk payload: the default
// chunk size.
#include <gst/p2psp/peer.h>
#include <gst/p2psp/signing.h>
#include <gst/p2psp/splitter.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

using namespace p2psp;

namespace {

constexpr uint32_t kTeamId = 0xbe;
constexpr uint16_t kUdpPort = 4553;
constexpr size_t kTeam = 10;

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

Endpoint peer_endpoint(size_t i) {
  return Endpoint::ipv4(10, 1, 0, static_cast<uint8_t>(i + 1), 5000);
}

// ns per chunk for the splitter to cut and send `chunks` chunks.
double splitter_cost(bool sign, size_t chunks) {
  SplitterConfig config;
  config.team_id = kTeamId;
  config.udp_port = kUdpPort;
  config.sign_chunks = sign;
  config.peer_timeout_us = 0;
  Splitter sp(config);
  Outbox out;
  for (size_t i = 0; i < kTeam; ++i) {
    sp.on_tcp_accepted(i + 1, peer_endpoint(i).with_port(40000), 0, &out);
    const Bytes join = encode_tcp(JoinMsg{});
    sp.on_tcp_data(i + 1, join.data(), join.size(), 0, &out);
    TcpReader reader;
    for (const TcpSend& s : out.tcp) {
      if (s.conn == i + 1) reader.feed(s.data.data(), s.data.size());
    }
    TcpMessage msg;
    while (reader.next(&msg) == TcpReader::Status::kMessage) {
      if (const auto* w = std::get_if<WelcomeMsg>(&msg)) {
        const Bytes reg =
            encode_register(RegisterMsg{kTeamId, w->peer_id, w->token});
        sp.on_udp(peer_endpoint(i), reg.data(), reg.size(), 0, &out);
      }
    }
    out.clear();
  }
  MediaBuffer buffer;
  buffer.data.assign(sp.config().chunk_size * 8, 0x5a);
  const double start = cpu_ns();
  size_t sent = 0;
  Micros now = 1000;
  while (sent < chunks) {
    sp.push_buffer(buffer, now, &out);
    sent += out.udp.size();
    out.clear();
    now += 1000;
  }
  return (cpu_ns() - start) / static_cast<double>(sent);
}

// ns per chunk for a peer (id 1, neighbours 2..kTeam) to take chunks: one
// in kTeam from the splitter (forwarded to every neighbour), the others
// from their origins.
double peer_cost(const ChunkSigner* signer, size_t chunks) {
  const Endpoint splitter = Endpoint::ipv4(10, 0, 0, 1, 4552);
  PeerConfig config;
  config.heartbeat_interval_us = 0;
  config.relay_request_after_us = 0;
  Peer peer(config, splitter);
  Outbox out;
  peer.start(0, &out);
  Bytes tcp;
  auto add = [&](const TcpMessage& m) {
    const Bytes b = encode_tcp(m);
    tcp.insert(tcp.end(), b.begin(), b.end());
  };
  if (signer) add(ChunkKeyMsg{signer->public_key()});
  WelcomeMsg welcome;
  welcome.team_id = kTeamId;
  welcome.peer_id = 1;
  welcome.chunk_size = kDefaultChunkSize;
  welcome.splitter_udp_port = kUdpPort;
  add(welcome);
  TeamMsg team;
  team.public_endpoint = peer_endpoint(0);
  for (uint32_t id = 2; id <= kTeam; ++id) {
    team.peers.push_back(PeerInfo{id, peer_endpoint(id - 1)});
  }
  add(team);
  peer.on_tcp_data(tcp.data(), tcp.size(), 0, &out);
  out.clear();

  // The datagrams, made (and signed) before the clock starts.
  const Bytes payload(kDefaultChunkSize, 0x33);
  std::vector<std::pair<Endpoint, Bytes>> datagrams;
  for (size_t n = 0; n < chunks; ++n) {
    const uint32_t origin = static_cast<uint32_t>(n % kTeam) + 1;
    ChunkMsg msg;
    msg.team_id = kTeamId;
    msg.number = static_cast<ChunkNumber>(n);
    msg.origin = origin;
    msg.first_frame_offset = kNoFrameStart;
    msg.payload = payload.data();
    msg.payload_size = payload.size();
    ChunkSignature signature;
    if (signer) {
      signature = signer->sign(msg);
      msg.signature = signature.data();
    }
    datagrams.emplace_back(
        origin == 1 ? splitter.with_port(kUdpPort) : peer_endpoint(origin - 1),
        encode_chunk(msg, kImplicitOrigin));
  }
  StreamItem item;
  Micros now = 1000;
  const double start = cpu_ns();
  for (const auto& [from, d] : datagrams) {
    peer.on_udp(from, d.data(), d.size(), now, &out);
    out.clear();
    now += 100;
    while (peer.pop_item(now, &item)) {
    }
  }
  const double ns = (cpu_ns() - start) / static_cast<double>(chunks);
  if (peer.stats().chunks_from_splitter + peer.stats().chunks_from_peers !=
      chunks) {
    std::fprintf(
        stderr, "peer took %llu of %zu chunks\n",
        static_cast<unsigned long long>(peer.stats().chunks_from_splitter +
                                        peer.stats().chunks_from_peers),
        chunks);
    std::exit(1);
  }
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t chunks = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  const ChunkSigner signer;
  const double split_plain = splitter_cost(false, chunks);
  const double split_signed = splitter_cost(true, chunks);
  const double peer_plain = peer_cost(nullptr, chunks);
  const double peer_signed = peer_cost(&signer, chunks);

  const Bytes payload(kDefaultChunkSize, 0x44);
  ChunkMsg msg;
  msg.team_id = kTeamId;
  msg.origin = 1;
  msg.payload = payload.data();
  msg.payload_size = payload.size();
  double start = cpu_ns();
  ChunkSignature signature{};
  for (size_t i = 0; i < chunks; ++i) {
    msg.number = static_cast<ChunkNumber>(i);
    signature = signer.sign(msg);
  }
  const double sign_ns = (cpu_ns() - start) / static_cast<double>(chunks);
  msg.signature = signature.data();
  size_t valid = 0;
  start = cpu_ns();
  for (size_t i = 0; i < chunks; ++i) {
    valid += verify_chunk(signer.public_key(), msg) == ChunkCheck::kValid;
  }
  const double verify_ns = (cpu_ns() - start) / static_cast<double>(chunks);
  if (valid != chunks) return 1;

  const size_t datagram = kChunkHeaderSize + kDefaultChunkSize;
  std::printf(
      "chunk payload %zu bytes, datagram %zu bytes, signature %zu "
      "bytes: +%.1f %% on the wire\n",
      kDefaultChunkSize, datagram, kChunkSignatureSize,
      100.0 * kChunkSignatureSize / datagram);
  std::printf(
      "splitter, team of %zu: %.2f us/chunk unsigned, %.2f us/chunk "
      "signed (x%.1f)\n",
      kTeam, split_plain / 1e3, split_signed / 1e3, split_signed / split_plain);
  std::printf(
      "peer, team of %zu: %.2f us/chunk without key, %.2f us/chunk "
      "verifying (x%.1f)\n",
      kTeam, peer_plain / 1e3, peer_signed / 1e3, peer_signed / peer_plain);
  std::printf("sign alone %.2f us, verify alone %.2f us (%zu chunks)\n",
              sign_ns / 1e3, verify_ns / 1e3, chunks);
  return 0;
}
