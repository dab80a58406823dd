// gst-p2psp: team health as this peer sees it (docs/protocol.md section 10):
// the members whose chunks we expect (when each was last heard, how, and by
// which path), the HEARTBEATs to the splitter, the monitor role, and the
// neighbours that said GOODBYE and whose last chunks are still taken.
#pragma once

#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/peer_tx.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace p2psp {

// A team member, whether or not we still serve it (debt drops it from the
// neighbours, not from the team): whose chunks we expect.
struct Member {
  Micros last_heard_us = 0;     // last chunk of its origin, from anyone
  uint64_t heard_at_count = 0;  // accepted_count at that time
  bool relay_requested = false;
  size_t request_turn = 0;  // rotates REQUESTs over neighbours
  // The longest run of other chunks seen between two of its own: the
  // splitter may deal a member fewer chunks than others (adaptive shares),
  // and such a member is not silent until twice that passed.
  uint64_t longest_gap = 0;
  bool heard = false;
  NeighbourPath path = NeighbourPath::kUnknown;  // of its last own chunk
  // The neighbour its last chunk came through when relayed (0: none): it
  // holds what it relays, so a NACK asks it first (protocol.md 10.4).
  uint32_t relayed_by = 0;
};

class PeerHealth {
 public:
  PeerHealth(const PeerConfig* config, PeerSession* session, PeerTx* tx,
             PeerStats* stats)
      : monitor(config->monitor),
        config_(config),
        session_(session),
        tx_(tx),
        stats_(stats) {}

  // Members ---------------------------------------------------------------
  std::unordered_map<uint32_t, Member> members;
  uint64_t accepted_count = 0;  // chunks accepted into the playout buffer
  // Lower bounds of the members' last_heard_us and heard_at_count (both
  // only grow), so route discovery skips its scan of the team while nobody
  // can be silent yet.
  Micros heard_since_us = UINT64_MAX;
  uint64_t heard_since_count = UINT64_MAX;

  void add_member(uint32_t peer_id, Micros now);
  void note_heard_bound(Micros heard_us, uint64_t heard_at_count);
  // Bookkeeping for an accepted chunk of `origin`: a NACK's answer says
  // nothing about the origin's route to us, unless nothing else came of it.
  // `sender`: the neighbour it came from (0: the splitter or the group).
  void note_accepted(uint32_t origin, Micros now, NeighbourPath via,
                     uint32_t sender, bool answered_nack);
  bool relay_requested(uint32_t origin) const;
  // The neighbour relaying `origin`'s chunks to us, 0 if they come
  // otherwise.
  uint32_t relay_of(uint32_t origin) const;
  NeighbourPath path_of(uint32_t member_id) const;
  void count_paths();
  // The splitter deals chunks round-robin over the team and us.
  ChunkNumber team_round() const {
    return static_cast<ChunkNumber>(members.size() + 1);
  }

  // Heartbeats and role ---------------------------------------------------
  bool monitor = false;  // asked for, or made one by the splitter (ROLE)
  void on_joined(Micros now) { last_heartbeat_us_ = now; }
  void send_heartbeat(Micros now, Outbox* out);
  Micros heartbeat_due() const;

  // Departures ------------------------------------------------------------
  // Neighbours that said GOODBYE: no longer served, but the chunks the
  // splitter sent them just before it heard their TCP GOODBYE are still
  // taken from them (they relay those) for one playout hold, or the team
  // would lose them. Later ones could not play.
  void note_departing(const PeerInfo& peer, Micros now);
  void forget_departed(Micros now);
  bool any_departing() const { return !departing_.empty(); }
  const PeerInfo* find_departing(uint32_t peer_id) const;
  const PeerInfo* departing_at(const Endpoint& from) const;

 private:
  struct Departing {
    PeerInfo info;
    Micros until_us = 0;
  };

  const PeerConfig* config_;
  PeerSession* session_;
  PeerTx* tx_;
  PeerStats* stats_;
  Micros last_heartbeat_us_ = 0;
  std::vector<Departing> departing_;
};

}  // namespace p2psp
