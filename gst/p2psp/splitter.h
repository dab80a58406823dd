// gst-p2psp: the splitter state machine (sans-I/O).
//
// Fed with the stream (caps, buffers), TCP connection events and UDP
// datagrams, plus the time; answers with datagrams and TCP bytes to send
// (Outbox) and events for the element (peer added/removed).
#pragma once

#include <gst/p2psp/framing.h>
#include <gst/p2psp/media.h>
#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace p2psp {

// Largest chunk payload whose datagram (explicit origin, signature, seal
// included) crosses a 1500-byte MTU unfragmented, IPv4 or IPv6.
size_t unfragmented_chunk_size(bool signed_chunks, bool sealed);

struct SplitterConfig {
  // Chunk payload bytes. 0: the largest that keeps every chunk datagram
  // within kMaxUnfragmentedDatagram with this team's signature and seal.
  uint32_t chunk_size = kDefaultChunkSize;
  uint32_t max_peers = 0;  // 0 = no limit
  uint16_t udp_port = 0;   // announced to peers in WELCOME
  uint32_t team_id = 0;    // random per splitter run (wrapper picks)
  // Tokens and cookie keys come from the system CSPRNG; a seed makes them a
  // deterministic stream instead, for tests and the simulator only.
  std::optional<uint64_t> secret_seed;
  Micros flush_delay_us = 20000;  // a partial chunk waits at most this
  Micros handshake_timeout_us = 5000000;
  // Limits on what strangers can make the splitter hold (docs/security.md).
  // Connections one source address (an IPv4 address, an IPv6 /64) may open:
  // a token bucket of this many, refilled over join_window_us. 0: no limit.
  uint32_t max_joins_per_address = 64;
  Micros join_window_us = 10000000;
  // Connections still in the handshake at once, all addresses. 0: no limit.
  uint32_t max_handshakes = 256;
  // Source addresses remembered by the join limiter at most.
  size_t max_tracked_addresses = 4096;
  ChunkNumber first_chunk = 0;  // first chunk number (tests use wrap)

  // Team health (docs/protocol.md section 10).
  // While fewer members than this are monitors, a newly registered peer is
  // made one (besides peers that ask with the JOIN monitor flag).
  uint32_t monitors = 0;
  // A member heard from (heartbeat or any valid datagram) less recently than
  // this is removed with REMOVED{timeout}. 0: never.
  Micros peer_timeout_us = 1500000;
  // Recent chunks remembered: their origins (for LOST) and their datagrams
  // (for NACK), the latter within history_max_bytes.
  size_t history_chunks = 4096;
  size_t history_max_bytes = 16u << 20;
  // A member whose loss counter (one per chunk of its reported lost by a
  // monitor) exceeds this is expelled. 0: never.
  uint32_t max_chunk_loss = 32;
  Micros loss_decay_us = 1000000;  // every loss counter halves this often
  // Retransmissions one member may cause: a token bucket, chunks per second
  // and burst, so a NACK cannot make the splitter flood an address.
  uint32_t retransmit_rate = 256;
  uint32_t retransmit_burst = 256;
  // Retransmissions all members together may cause: each chunk cut earns
  // this many thousandths of one, up to retransmit_total_burst saved, so
  // the splitter never spends more than that share of its chunk upload on
  // NACKs however many peers ask (a storm cannot starve the stream). Three
  // per chunk: members a NAT keeps apart need the splitter for each
  // other's chunks until relays are found (tests/nat). 0: no total cap.
  uint32_t retransmit_share_permille = 3000;
  uint32_t retransmit_total_burst = 1024;
  // Adaptive chunk shares (gst/p2psp/acs.h): a member that stated an
  // upload limit in JOIN is always dealt no more than it carries. With
  // learn_shares, a member whose chunks the team misses (NACKs reaching
  // the splitter) is also dealt fewer, down to none. Off by default: two
  // members a NAT keeps apart look the same as a thin uplink until relays
  // are found (tests/nat), and the cut outlasts them.
  bool learn_shares = false;
  // Flood checks, with learn_shares (protocol.md 10.7): each member that
  // can (JOIN flag) echoes every chunk dealt to it after a quarter of its
  // flood of it. A member's first chunk not echoed within this time is
  // re-dealt to a proven member to flood (flag FLOOD), and the member is
  // dealt nothing more. 0: no flood checks.
  Micros echo_timeout_us = 300000;

  // Authenticated team (docs/security.md): empty = open team. Otherwise
  // auth::kMinPassphrase..kMaxPassphrase characters (the constructor throws
  // std::invalid_argument on another length), and only peers that prove
  // they know it join; every datagram is sealed, and encrypted if `encrypt`.
  std::string passphrase;
  bool encrypt = true;
  // Pollution (docs/security.md): sign every chunk with a key pair made at
  // construction (its public half goes to peers before WELCOME), and expel
  // a member once this many distinct members reported altered chunks from
  // it (0: never expel on reports).
  bool sign_chunks = false;
  uint32_t pollution_reporters = 2;

  // Start points (docs/protocol.md 7.3): for Ogg and MPEG-TS, flag the
  // buffers from the stream itself (Ogg pages, TS packets) rather than from
  // upstream, and give joiners the stream's headers as the caps'
  // streamheader when upstream put none there.
  bool find_start_points = true;

  // Join burst (docs/protocol.md 7.4): a joiner that asks (JOIN flag) gets
  // the chunks from the latest start point to the live edge at once, paced,
  // if they are all still held and come to at most burst_max_bytes (0: no
  // bursts). Pacing in bytes per second; 0: four times the stream's rate,
  // at least burst_min_rate.
  uint64_t burst_max_bytes = 4u << 20;
  uint64_t burst_rate = 0;
  uint64_t burst_min_rate = 10000000 / 8;
  // IP multicast on the splitter's LAN (P2PSP's IMS, protocol.md 8.5): a
  // member that receives this group gets its chunks there instead of at its
  // endpoint, so the LAN carries each chunk once whatever the number of
  // members on it. Invalid: off.
  Endpoint multicast_group;
};

struct SplitterPeerStats {
  uint32_t id = 0;
  Endpoint endpoint;  // UDP, public
  Endpoint tcp_endpoint;
  // Its endpoints on its LAN, as it reported them in JOIN (those worth
  // telling: not its public endpoint).
  std::vector<Endpoint> local_endpoints;
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;  // UDP payload bytes (headers included)
  Micros joined_us = 0;
  bool monitor = false;
  uint32_t loss_counter = 0;  // monitor reports against it, decaying
  Micros last_heard_us = 0;   // last valid datagram from it
  uint64_t retransmits = 0;   // chunks re-sent to it on NACK
  // Distinct members that reported it for pollution.
  uint32_t pollution_accusers = 0;
  uint64_t burst_chunks = 0;  // chunks of its join burst sent to it
  // Adaptive chunk shares: its share of the chunks dealt (weight over the
  // team's), and the fraction of its copies the team got in the last
  // period (from the NACKs that reached the splitter; 0 at once when half
  // the team NACKed one of its chunks; 1 until measured).
  double share = 0;
  double forwarding = 1;
  int64_t upload_limit_kbps = -1;  // stated in JOIN (kb/s); -1: none
  bool proven = false;             // flood checks: echoed a chunk in time
  // Its uplink as its first chunk's two echoes timed it (kb/s); -1: not.
  int64_t learned_upload_kbps = -1;
  bool multicast = false;  // it receives the multicast group
};

struct SplitterStats {
  uint64_t buffers_in = 0;
  uint64_t bytes_in = 0;  // media bytes pushed
  uint64_t chunks_cut = 0;
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;      // UDP bytes of chunk datagrams
  uint64_t chunks_dropped = 0;  // cut while the team was empty
  uint64_t caps_repeated = 0;   // caps frames put in again for a joiner (7.2)
  uint64_t peers_joined = 0;
  uint64_t peers_left = 0;
  uint64_t rejected_datagrams = 0;    // malformed or foreign UDP
  uint64_t rejected_connections = 0;  // garbage/timeout/version/full/limits
  uint64_t handshake_timeouts = 0;    // of which: handshake not done in time
  uint64_t joins_limited = 0;  // of which: refused at once by the join limits
  // Return routability (docs/security.md, "Address validation").
  uint64_t probes_sent = 0;          // PROBEs to addresses not validated
  uint64_t addresses_validated = 0;  // cookies echoed: joins and moves
  uint64_t endpoints_moved = 0;      // members whose NAT mapping changed
  // Peers behind one NAT (protocol.md 3.2): PEER_LOCAL messages sent.
  uint64_t lan_introductions = 0;
  // IP multicast (protocol.md 8.5): chunks sent to the group (each once;
  // also in chunks_sent / bytes_sent), and members receiving it.
  uint64_t multicast_chunks = 0;
  uint64_t multicast_members = 0;
  uint64_t amplification_limited = 0;  // datagrams held back (3x rule)
  // Team health.
  uint64_t peers_timed_out = 0;   // removed for silence (REMOVED timeout)
  uint64_t peers_expelled = 0;    // removed for losses (REMOVED expelled)
  uint64_t lost_reports = 0;      // chunk numbers reported in LOST
  uint64_t nacks_received = 0;    // chunk numbers asked for in NACK
  uint64_t retransmits = 0;       // chunks re-sent on NACK
  uint64_t retransmit_bytes = 0;  // their UDP bytes (not in bytes_sent)
  uint64_t retransmits_unavailable = 0;  // asked for, no longer held
  uint64_t retransmits_limited = 0;      // refused: member or total limit
  // Authenticated team.
  uint64_t auth_failures = 0;              // joins refused for the passphrase
  uint64_t unauthenticated_datagrams = 0;  // unsealed, forged or tampered
  uint64_t replayed_datagrams = 0;         // sealed, but seen before
  // Pollution.
  uint64_t chunks_signed = 0;
  uint64_t pollution_reports = 0;   // POLLUTED messages from members
  uint64_t polluters_expelled = 0;  // also counted in peers_expelled
  // Join bursts (docs/protocol.md 7.4).
  uint64_t bursts = 0;              // joiners given one
  uint64_t bursts_unavailable = 0;  // asked for, not possible (see 7.4)
  uint64_t burst_chunks = 0;
  uint64_t burst_bytes = 0;  // their UDP bytes (not in bytes_sent)
  // Flood checks (protocol.md 10.7).
  uint64_t echoes = 0;         // trial chunks echoed in time
  uint64_t echoes_late = 0;    // echoed after they were re-dealt
  uint64_t echoes_missed = 0;  // not echoed in time
  uint64_t uplinks_timed = 0;  // flood-end echoes that timed an uplink
  uint64_t redeals = 0;        // chunks re-dealt to another member (FLOOD)
  uint64_t redeal_bytes = 0;   // their UDP bytes (not in bytes_sent)
};

struct SplitterEvent {
  enum class Kind { kPeerAdded, kPeerRemoved };
  Kind kind = Kind::kPeerAdded;
  uint32_t peer_id = 0;
  Endpoint endpoint;
  RemoveReason reason = RemoveReason::kUnknown;  // kPeerRemoved
};

class Splitter {
 public:
  explicit Splitter(const SplitterConfig& config);
  ~Splitter();

  // Stream input. Caps are forwarded in-band and given to late joiners.
  void set_caps(const std::string& caps, Micros now, Outbox* out);
  // Caps joiners get in WELCOME from now on, not (yet) in the stream: a sink
  // that holds the stream back (wait-for-peers) calls set_caps() when it
  // lets it go.  A member whose TEAM names a chunk after the caps frame would
  // otherwise never learn them.
  void announce_caps(const std::string& caps);
  void push_buffer(const MediaBuffer& buffer, Micros now, Outbox* out);

  // Network input.
  void on_tcp_accepted(ConnId conn, const Endpoint& remote, Micros now,
                       Outbox* out);
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out);
  void on_tcp_closed(ConnId conn, Micros now, Outbox* out);
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out);

  // Timers: partial-chunk flush, handshake timeouts, liveness, loss decay.
  void tick(Micros now, Outbox* out);
  // Earliest time tick() has something to do (UINT64_MAX: nothing).
  Micros next_deadline() const;

  // Sends the partial chunk now (EOS, or before a caps change matters).
  void flush(Micros now, Outbox* out);
  // Removes a peer, tells it why, and tells the rest of the team.
  void remove_peer(uint32_t peer_id, RemoveReason reason, Outbox* out);
  // Flushes the partial chunk and tells every peer the splitter is going.
  void shutdown(Micros now, Outbox* out);

  std::vector<SplitterEvent> take_events();
  const SplitterStats& stats() const;
  std::vector<SplitterPeerStats> peer_stats() const;
  size_t num_peers() const;  // registered members
  const SplitterConfig& config() const;
  // The chunk-signing public key, if sign_chunks.
  std::optional<ChunkKey> chunk_key() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2psp
