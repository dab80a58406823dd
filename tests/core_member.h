// gst-p2psp tests: a core Peer made a team member by hand (WELCOME, the
// splitter's PROBE, TEAM; docs/protocol.md section 3) and then driven at a
// virtual clock: TCP messages and datagrams in, time on, outbox kept.
#pragma once

#include <gst/p2psp/peer.h>
#include <gst/p2psp/wire.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace p2psp::test {

struct CoreMember {
  CoreMember(const PeerConfig& config, uint32_t team)
      : team_id(team), peer(config, Endpoint::ipv4(10, 0, 0, 1, 4552)) {
    peer.start(0, &out);
    join_frame = out.tcp.empty() ? Bytes() : out.tcp.front().data;
  }

  // We are peer 1, seen by the splitter at our_public, with these members.
  void join(const Endpoint& our_public, std::vector<PeerInfo> members) {
    register_with_splitter();
    team(our_public, std::move(members));
    EXPECT_EQ(peer.state(), PeerState::kMember);
    out.clear();
  }

  // WELCOME and the splitter's PROBE: registering, TEAM still to come.
  void register_with_splitter() {
    WelcomeMsg welcome;
    welcome.team_id = team_id;
    welcome.peer_id = 1;
    welcome.token = 77;
    welcome.chunk_size = 1000;
    welcome.splitter_udp_port = splitter.port;
    tcp(welcome);
    udp(splitter, encode_probe(ProbeMsg{team_id, 0xC0FFEE, 1}));
  }

  void team(const Endpoint& our_public, std::vector<PeerInfo> members,
            ChunkNumber next_chunk = 0) {
    TeamMsg msg;
    msg.public_endpoint = our_public;
    msg.peers = std::move(members);
    msg.next_chunk = next_chunk;
    tcp(msg);
  }

  void tcp(const TcpMessage& msg) {
    const Bytes b = encode_tcp(msg);
    peer.on_tcp_data(b.data(), b.size(), now, &out);
  }
  void udp(const Endpoint& from, const Bytes& bytes) {
    peer.on_udp(from, bytes.data(), bytes.size(), now, &out);
  }
  void advance(Micros us) {
    now += us;
    peer.tick(now, &out);
  }
  // One of our own chunks, straight from the splitter.
  void own_chunk(ChunkNumber number) {
    const Bytes payload(500, 0x55);
    udp(splitter, encode_chunk(team_id, number, kImplicitOrigin, 0,
                               kNoFrameStart, payload.data(), payload.size()));
  }
  const NeighbourInfo* neighbour(uint32_t id) {
    infos = peer.neighbours();
    for (const NeighbourInfo& n : infos) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }

  const Endpoint splitter = Endpoint::ipv4(10, 0, 0, 1, 4553);
  uint32_t team_id;
  Peer peer;
  Outbox out;
  Bytes join_frame;  // what start() sent: JOIN
  Micros now = 1000000;
  std::vector<NeighbourInfo> infos;
};

}  // namespace p2psp::test
