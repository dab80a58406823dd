// gst-p2psp: team health as this peer sees it (see peer_health.h).
#include <gst/p2psp/peer_health.h>

#include <algorithm>

namespace p2psp {

void PeerHealth::add_member(uint32_t peer_id, Micros now) {
  if (members.count(peer_id) != 0) return;
  members[peer_id] = Member{now, accepted_count, false, 0};
  note_heard_bound(now, accepted_count);
}

void PeerHealth::note_heard_bound(Micros heard_us, uint64_t heard_at_count) {
  heard_since_us = std::min(heard_since_us, heard_us);
  heard_since_count = std::min(heard_since_count, heard_at_count);
}

void PeerHealth::note_accepted(uint32_t origin, Micros now, NeighbourPath via,
                               uint32_t sender, bool answered_nack) {
  auto member = members.find(origin);
  if (member == members.end()) return;
  Member& m = member->second;
  if (answered_nack) {
    if (m.path == NeighbourPath::kUnknown) m.path = via;
    return;
  }
  if (m.heard) {
    m.longest_gap = std::max(m.longest_gap, accepted_count - m.heard_at_count);
  }
  m.heard = true;
  m.last_heard_us = now;
  m.heard_at_count = accepted_count;
  m.path = via;
  m.relayed_by = via == NeighbourPath::kRelayed ? sender : 0;
}

uint32_t PeerHealth::relay_of(uint32_t origin) const {
  auto it = members.find(origin);
  return it == members.end() ? 0 : it->second.relayed_by;
}

bool PeerHealth::relay_requested(uint32_t origin) const {
  auto it = members.find(origin);
  return it != members.end() && it->second.relay_requested;
}

NeighbourPath PeerHealth::path_of(uint32_t member_id) const {
  auto it = members.find(member_id);
  return it == members.end() ? NeighbourPath::kUnknown : it->second.path;
}

void PeerHealth::count_paths() {
  PeerStats& s = *stats_;
  s.paths_direct = s.paths_predicted = s.paths_lan = 0;
  s.paths_relayed = s.paths_splitter = s.paths_multicast = 0;
  for (const auto& [member_id, member] : members) {
    switch (member.path) {
      case NeighbourPath::kDirect:
        ++s.paths_direct;
        break;
      case NeighbourPath::kPredicted:
        ++s.paths_predicted;
        break;
      case NeighbourPath::kLan:
        ++s.paths_lan;
        break;
      case NeighbourPath::kRelayed:
        ++s.paths_relayed;
        break;
      case NeighbourPath::kSplitter:
        ++s.paths_splitter;
        break;
      case NeighbourPath::kMulticast:
        ++s.paths_multicast;
        break;
      case NeighbourPath::kUnknown:
        break;
    }
  }
}

void PeerHealth::send_heartbeat(Micros now, Outbox* out) {
  last_heartbeat_us_ = now;
  ++stats_->heartbeats_sent;
  tx_->control(session_->splitter_udp,
               encode_heartbeat(HeartbeatMsg{session_->team_id, session_->id,
                                             session_->token}),
               out);
}

Micros PeerHealth::heartbeat_due() const {
  if (session_->state != PeerState::kMember ||
      config_->heartbeat_interval_us == 0) {
    return UINT64_MAX;
  }
  return saturating_add(last_heartbeat_us_, config_->heartbeat_interval_us);
}

void PeerHealth::note_departing(const PeerInfo& peer, Micros now) {
  forget_departed(now);
  departing_.push_back(
      Departing{peer, saturating_add(now, config_->latency_us)});
}

void PeerHealth::forget_departed(Micros now) {
  departing_.erase(
      std::remove_if(departing_.begin(), departing_.end(),
                     [&](const Departing& d) { return d.until_us <= now; }),
      departing_.end());
}

const PeerInfo* PeerHealth::find_departing(uint32_t peer_id) const {
  for (const Departing& d : departing_) {
    if (d.info.id == peer_id) return &d.info;
  }
  return nullptr;
}

const PeerInfo* PeerHealth::departing_at(const Endpoint& from) const {
  for (const Departing& d : departing_) {
    if (d.info.endpoint == from) return &d.info;
  }
  return nullptr;
}

}  // namespace p2psp
