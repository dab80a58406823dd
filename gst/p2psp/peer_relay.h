// gst-p2psp: route discovery (docs/protocol.md 10.5). Owns the relays we
// serve (REQUEST: a neighbour asks us to pass on an origin's chunks; PRUNE:
// it no longer needs them) and the periodic check that asks a neighbour to
// relay an origin we stopped hearing while the rest of the team is heard.
#pragma once

#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_flood.h>
#include <gst/p2psp/peer_health.h>
#include <gst/p2psp/peer_neighbours.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/peer_tx.h>
#include <gst/p2psp/reorder.h>

#include <unordered_map>
#include <vector>

namespace p2psp {

class PeerRelay {
 public:
  PeerRelay(const PeerConfig* config, PeerSession* session,
            NeighbourTable* table, PeerHealth* health, PeerFlood* flood,
            PeerTx* tx, PeerStats* stats)
      : config_(config),
        session_(session),
        table_(table),
        health_(health),
        flood_(flood),
        tx_(tx),
        stats_(stats) {}

  // The first copy of another origin's chunk goes on to the neighbours
  // that asked for that origin.
  void relay(const StoredChunk& chunk, uint32_t sender_id, Micros now);
  // A duplicate through a relay means the origin reaches us another way;
  // at most one PRUNE per (sender, origin) every retry_us.
  void maybe_prune(Neighbour& sender, uint32_t origin, Micros retry_us,
                   Micros now, Outbox* out);
  void on_request(const Neighbour& from, uint32_t origin, Micros now);
  void on_prune(const Neighbour& from, uint32_t origin);
  // The member left: nobody needs its chunks relayed, nor relays to it.
  void forget_member(uint32_t peer_id);
  std::vector<uint32_t> origins_relayed_to(uint32_t peer_id) const;

  void on_joined(Micros now);
  Micros check_due() const { return check_due_us_; }
  void check(Micros now, Outbox* out);

 private:
  void count_relays();
  bool upload_has_room(Micros now);
  void measure_stream(Micros now);
  void request_missing_origins(Micros now, Outbox* out);
  void request_relay(uint32_t origin, Member& member, Micros now, Outbox* out);
  const Neighbour* pick_relay(uint32_t origin, size_t* turn) const;
  Micros check_period() const;

  const PeerConfig* config_;
  PeerSession* session_;
  NeighbourTable* table_;
  PeerHealth* health_;
  PeerFlood* flood_;
  PeerTx* tx_;
  PeerStats* stats_;
  // relay_to_[origin] for origins other than ours: neighbours that asked us
  // (REQUEST) to relay that origin's chunks.
  std::unordered_map<uint32_t, std::vector<uint32_t>> relay_to_;
  Micros check_due_us_ = UINT64_MAX;
  // The stream's rate as it reaches us (measure_stream), 0 until known.
  Micros rate_since_us_ = 0;
  uint64_t rate_since_bytes_ = 0;
  uint64_t stream_bps_ = 0;
  // Our own chunks over all chunks received, in the last measured second.
  uint64_t rate_since_own_ = 0;
  uint64_t rate_since_chunks_ = 0;
  double own_share_ = -1;  // -1: not measured yet
};

}  // namespace p2psp
