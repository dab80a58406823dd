// gst-p2psp: the splitter state machine (sans-I/O).
//
// Fed with the stream (caps, buffers), TCP connection events and UDP
// datagrams, plus the time; answers with datagrams and TCP bytes to send
// (Outbox) and events for the element (peer added/removed).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gst/p2psp/framing.h>
#include <gst/p2psp/media.h>
#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

namespace p2psp {

struct SplitterConfig {
  uint32_t chunk_size = 1024;       // chunk payload bytes
  uint32_t max_peers = 0;           // 0 = no limit
  uint16_t udp_port = 0;            // announced to peers in WELCOME
  uint32_t team_id = 0;             // random per splitter run (wrapper picks)
  Micros flush_delay_us = 20000;    // a partial chunk waits at most this
  Micros handshake_timeout_us = 5000000;
  ChunkNumber first_chunk = 0;      // first chunk number (tests use wrap)
};

struct SplitterPeerStats {
  uint32_t id = 0;
  Endpoint endpoint;  // UDP, public
  Endpoint tcp_endpoint;
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;  // UDP payload bytes (headers included)
  Micros joined_us = 0;
};

struct SplitterStats {
  uint64_t buffers_in = 0;
  uint64_t bytes_in = 0;           // media bytes pushed
  uint64_t chunks_cut = 0;
  uint64_t chunks_sent = 0;
  uint64_t bytes_sent = 0;         // UDP bytes of chunk datagrams
  uint64_t chunks_dropped = 0;     // cut while the team was empty
  uint64_t peers_joined = 0;
  uint64_t peers_left = 0;
  uint64_t rejected_datagrams = 0; // malformed or foreign UDP
  uint64_t rejected_connections = 0;  // garbage/timeout/version/full on TCP
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
  void push_buffer(const MediaBuffer& buffer, Micros now, Outbox* out);

  // Network input.
  void on_tcp_accepted(ConnId conn, const Endpoint& remote, Micros now,
                       Outbox* out);
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out);
  void on_tcp_closed(ConnId conn, Micros now, Outbox* out);
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out);

  // Timers: partial-chunk flush, handshake timeouts.
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2psp
