// gst-p2psp: the peer state machine (sans-I/O): joins a team, floods the
// chunks it gets from the splitter to its neighbours (DBS), and rebuilds the
// stream in order.
#pragma once

#include <gst/p2psp/media.h>
#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace p2psp {

struct PeerConfig {
  Micros latency_us = 200000;  // how long a chunk waits for earlier ones
  uint32_t max_chunk_debt = 128;
  size_t buffer_chunks = 8192;  // reorder window, in chunk numbers
  // Pending forwards older than this go out even without the DBS trigger
  // (a received chunk), so a quiet team still floods in time.
  Micros forward_flush_us = 10000;
  Micros register_retry_us = 200000;  // UDP REGISTER resend period

  // Team health (docs/protocol.md section 10).
  bool monitor = false;  // ask the splitter to be a monitor (JOIN flag)
  Micros heartbeat_interval_us = 250000;  // HEARTBEAT to the splitter
  // Loss recovery: a number missing this long after a later chunk arrived
  // is NACKed to a neighbour, then every nack_retry_us to the splitter,
  // while before its playout deadline. 0: latency / 4 and latency / 6.
  Micros nack_delay_us = 0;
  Micros nack_retry_us = 0;
  uint32_t max_nack_attempts = 4;  // per missing chunk; 0 disables NACK
  size_t history_chunks = 1024;    // played chunks kept to answer NACKs
  // Retransmissions one neighbour can make us send (token bucket).
  uint32_t retransmit_rate = 256;  // chunks per second
  uint32_t retransmit_burst = 256;
  // Route discovery: an origin not heard for this long (and for two rounds
  // of the team) is requested from another neighbour. 0 disables.
  Micros relay_request_after_us = 1000000;

  // Authenticated team (docs/security.md): empty joins open teams only.
  // Otherwise the join is mutually authenticated and every datagram sealed;
  // a splitter without a passphrase is refused (never a silent open join).
  std::string passphrase;

  // PROBE cookie keys come from the system CSPRNG; a seed makes them a
  // deterministic stream instead, for tests and the simulator only.
  std::optional<uint64_t> secret_seed;

  // Late joiners (docs/protocol.md 7.2): a stream with no start point (no
  // keyframe, no buffer without DELTA_UNIT) starts at a buffer boundary this
  // long after the first buffer reached the peer, marked DISCONT. 0: wait
  // for a keyframe however long it takes.
  Micros start_timeout_us = 3000000;
  // Join burst (docs/protocol.md 7.4): ask the splitter for the chunks from
  // the latest start point on (JOIN flag), so playout starts there at once.
  bool join_burst = true;

  // What this peer may upload, bits per second, told to the splitter in
  // JOIN so that it deals us no more chunks than that carries: 0 forwards
  // nothing (we still get the whole stream), -1 no limit.
  int64_t upload_limit_bps = -1;

  // This peer's UDP endpoints on its LAN, reported in JOIN (at most
  // kMaxLocalEndpoints) so that a member behind the same NAT can reach it
  // without the NAT (docs/protocol.md 3.2). Empty: none reported.
  std::vector<Endpoint> local_endpoints;
};

// Where the late-joiner gate is (Peer::start_state()).
struct PeerStartState {
  enum class Phase {
    kNotYet,   // no buffer reached the gate yet
    kWaiting,  // buffers are being dropped until a start point
    kStarted,  // the gate opened
  };
  Phase phase = Phase::kNotYet;
  Micros waiting_since_us = 0;  // the first buffer at the gate
  Micros started_us = 0;        // kStarted: when
  Micros timeout_us = 0;        // the bounded wait in force (0: none)
  bool by_timeout = false;  // kStarted: at a buffer boundary, not a keyframe
  uint64_t dropped_buffers = 0;  // delta buffers dropped while waiting
  uint64_t dropped_bytes = 0;
};

enum class PeerState {
  kIdle,         // start() not called
  kJoining,      // JOIN sent, waiting for WELCOME
  kRegistering,  // WELCOME received, REGISTER sent until TEAM arrives
  kMember,       // in the team
  kRemoved,      // the splitter removed us (or rejected the join)
  kLeft,         // leave() called, or the splitter connection closed
};

struct PeerStats {
  uint64_t chunks_from_splitter = 0;
  uint64_t chunks_from_peers = 0;
  // Other members' chunks the splitter sent as NACK answers (not in
  // chunks_from_peers: they came from the splitter, not from a peer).
  uint64_t nack_answers_from_splitter = 0;
  uint64_t burst_chunks = 0;      // join burst chunks from the splitter (7.4)
  uint64_t chunks_forwarded = 0;  // datagrams sent to neighbours
  // Learned shares (protocol.md 10.7): own chunks echoed to the splitter,
  // and chunks of other origins the splitter re-dealt us to flood.
  uint64_t echoes_sent = 0;
  uint64_t floods_for_others = 0;
  uint64_t duplicates = 0;
  uint64_t late = 0;                // arrived after being declared lost/played
  uint64_t lost = 0;                // declared lost by the playout buffer
  uint64_t played = 0;              // chunks released in order
  uint64_t bytes_up = 0;            // UDP bytes of chunk datagrams sent
  uint64_t bytes_down = 0;          // UDP bytes received and accepted
  uint64_t rejected_datagrams = 0;  // malformed, foreign or non-member
  uint64_t neighbours = 0;
  uint64_t buffer_fill = 0;   // chunks held in the playout buffer
  Micros chunk_delay_us = 0;  // last arrival delay above the minimum seen
  Micros chunk_delay_max_us = 0;
  // Team health.
  uint64_t monitor = 0;  // 1 while the splitter has us as a monitor
  uint64_t heartbeats_sent = 0;
  uint64_t control_bytes_up = 0;     // HEARTBEAT, NACK, LOST, REQUEST, PRUNE
  uint64_t nacks_sent = 0;           // chunk numbers asked for (all attempts)
  uint64_t nacks_to_splitter = 0;    // of which asked of the splitter
  uint64_t recovered = 0;            // chunks accepted after being NACKed
  uint64_t lost_reports_sent = 0;    // chunk numbers reported in LOST
  uint64_t retransmits_sent = 0;     // chunks re-sent on a neighbour's NACK
  uint64_t retransmits_limited = 0;  // NACKed chunks refused by the limit
  uint64_t relayed = 0;              // chunks of other origins relayed
  uint64_t requests_sent = 0;
  uint64_t prunes_sent = 0;
  uint64_t relays_served = 0;     // (neighbour, origin) pairs we relay now
  uint64_t requests_refused = 0;  // REQUESTs our upload limit cannot carry
  // Authenticated team (also counted in rejected_datagrams).
  uint64_t unauthenticated_datagrams = 0;  // unsealed, forged or tampered
  uint64_t replayed_datagrams = 0;         // sealed, but seen before
  // Pollution (docs/security.md).
  uint64_t signed_team = 0;      // 1 once the splitter gave a chunk key
  uint64_t bad_signatures = 0;   // chunks dropped: altered or foreign key
  uint64_t unsigned_chunks = 0;  // plain chunks dropped in a signed team
  uint64_t pollution_reports_sent = 0;  // POLLUTED, one per sender
  // Return routability (docs/security.md, "Address validation").
  uint64_t probes_sent = 0;      // PROBEs to HELLOs from unknown addresses
  uint64_t endpoints_moved = 0;  // neighbours that moved to a new address
  uint64_t moves_refused = 0;    // echoed, but its address was not silent
  uint64_t hellos_repeated = 0;  // to members not heard from (3, step 6)
  uint64_t amplification_limited = 0;  // datagrams held back (3x rule)
  // Peers behind one NAT (docs/protocol.md 3.2).
  uint64_t lan_neighbours = 0;   // neighbours reached at a LAN endpoint
  uint64_t chunks_from_lan = 0;  // chunks accepted from those
  // Port prediction (docs/protocol.md 3.3).
  uint64_t predict_probes_sent = 0;   // PROBEs to predicted ports
  uint64_t predicted_neighbours = 0;  // neighbours reached at one
  // How each member's own chunks reached us last (NeighbourPath), over the
  // members heard so far.
  uint64_t paths_direct = 0;
  uint64_t paths_predicted = 0;
  uint64_t paths_lan = 0;
  uint64_t paths_relayed = 0;
  uint64_t paths_splitter = 0;
  uint64_t paths_multicast = 0;
  // IP multicast (protocol.md 8.5).
  uint64_t multicast = 0;  // 1 once a chunk came from the splitter's group
  uint64_t chunks_from_multicast = 0;  // accepted from the group
};

struct PeerEvent {
  enum class Kind {
    kJoined,  // TEAM received: we are a member
    kNeighbourAdded,
    kNeighbourRemoved,
    kNeighbourMoved,  // its endpoint changed (NAT): `endpoint` is the new one
    // The splitter names a multicast group (`endpoint`): the host should
    // join it and hand what comes from it to on_multicast().
    kMulticastGroup,
    kRemoved,        // REMOVED or REJECT from the splitter
    kProtocolError,  // splitter sent garbage; connection must close
  };
  Kind kind = Kind::kJoined;
  uint32_t peer_id = 0;
  Endpoint endpoint;
  RemoveReason reason = RemoveReason::kUnknown;
  std::string text;
};

// How a member's chunks reach this peer: from the member itself at the
// endpoint the splitter named (or its NAT moved it to), from it at its LAN
// endpoint, through another member (a relay, section 10.5), or from the
// splitter (NACK answers only). kUnknown: none of its chunks came yet.
// kMulticast: from the splitter's multicast group (protocol.md 8.5).
// kPredicted: from the member itself, at a port predicted for its NAT
// (protocol.md 3.3).
enum class NeighbourPath {
  kUnknown,
  kDirect,
  kPredicted,
  kLan,
  kRelayed,
  kSplitter,
  kMulticast
};

struct NeighbourInfo {
  uint32_t id = 0;
  Endpoint endpoint;
  int64_t debt = 0;
  uint64_t chunks_sent = 0;
  uint64_t chunks_received = 0;
  std::vector<uint32_t> relayed_origins;  // origins we relay to it
  bool lan = false;        // its endpoint is the LAN one (protocol.md 3.2)
  bool predicted = false;  // its endpoint is a predicted port (3.3)
  NeighbourPath path = NeighbourPath::kUnknown;  // of its own chunks
};

// A chunk the playout gave up on (Peer::take_losses()): what recovery
// knew and tried, for logs and troubleshooting.
struct ChunkLoss {
  ChunkNumber number = 0;
  uint32_t origin = 0;  // its likely origin; 0 unknown
  uint32_t relay = 0;   // the neighbour relaying that origin to us; 0 none
  uint32_t nacks = 0;   // NACKs sent for it (0: never found due)
  uint32_t splitter_nacks = 0;  // of which to the splitter
  uint32_t first_asked = 0;     // first NACK's target; 0 the splitter
};

class Peer {
 public:
  // splitter: the splitter's address; its port is replaced by the UDP port
  // the WELCOME announces.
  Peer(const PeerConfig& config, const Endpoint& splitter);
  ~Peer();

  // Sends JOIN on the (already connected) TCP control channel.
  void start(Micros now, Outbox* out);
  void on_tcp_data(const uint8_t* data, size_t size, Micros now, Outbox* out);
  void on_tcp_closed(Micros now, Outbox* out);
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out);
  // A datagram that came from the multicast group the splitter named
  // (kMulticastGroup). Only chunks from the splitter's UDP endpoint with
  // their origin stated are taken.
  void on_multicast(const Endpoint& from, const uint8_t* data, size_t size,
                    Micros now, Outbox* out);
  void tick(Micros now, Outbox* out);
  Micros next_deadline() const;
  // Flushes pending forwards, says goodbye to neighbours and the splitter.
  void leave(Micros now, Outbox* out);

  // Playout: the next item in stream order, once due. Late joiners start at
  // the first keyframe; buffers touched by a lost chunk are dropped and the
  // next one carries MediaBuffer::kDiscont. Caps items come in-band.
  bool pop_item(Micros now, StreamItem* out);

  PeerState state() const;
  bool monitor() const;  // asked for, or made one by the splitter (ROLE)
  uint32_t id() const;
  uint32_t team_id() const;
  const std::string& welcome_caps() const;  // caps at join time
  uint32_t chunk_size() const;
  Endpoint public_endpoint() const;
  std::vector<PeerEvent> take_events();
  // The chunks given up on since the last call, oldest first; at most the
  // newest kMaxLossRecords (a host that never asks keeps no more).
  std::vector<ChunkLoss> take_losses();
  static constexpr size_t kMaxLossRecords = 64;
  const PeerStats& stats() const;
  const PeerStartState& start_state() const;
  std::vector<NeighbourInfo> neighbours() const;
  void set_latency_us(Micros latency_us);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2psp
