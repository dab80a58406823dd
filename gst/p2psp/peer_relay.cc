// gst-p2psp: route discovery (see peer_relay.h).
#include <gst/p2psp/peer_relay.h>

#include <algorithm>

namespace p2psp {

void PeerRelay::relay(const StoredChunk& chunk, uint32_t sender_id,
                      Micros now) {
  auto it = relay_to_.find(chunk.msg.origin);
  if (it == relay_to_.end()) return;
  for (uint32_t target : it->second) {
    Neighbour* n = table_->find(target);
    if (!n || target == sender_id) continue;
    flood_->queue_for(*n, chunk.datagram, now);
    ++stats_->relayed;
  }
}

void PeerRelay::maybe_prune(Neighbour& sender, uint32_t origin, Micros retry_us,
                            Micros now, Outbox* out) {
  if (origin == sender.info.id || origin == session_->id ||
      !health_->relay_requested(origin)) {
    return;
  }
  auto [it, fresh] = sender.last_prune_us.try_emplace(origin, now);
  if (!fresh && now < saturating_add(it->second, retry_us)) return;
  it->second = now;
  ++stats_->prunes_sent;
  tx_->control(sender.info.endpoint,
               encode_prune(PruneMsg{session_->team_id, session_->id, origin}),
               out);
}

void PeerRelay::on_request(const Neighbour& from, uint32_t origin, Micros now) {
  if (origin == session_->id || origin == from.info.id ||
      !health_->members.count(origin)) {
    return;
  }
  if (!upload_has_room(now)) {
    ++stats_->requests_refused;
    return;  // the requester asks another neighbour at its next check
  }
  std::vector<uint32_t>& targets = relay_to_[origin];
  if (std::find(targets.begin(), targets.end(), from.info.id) ==
      targets.end()) {
    targets.push_back(from.info.id);
    count_relays();
  }
}

void PeerRelay::on_prune(const Neighbour& from, uint32_t origin) {
  auto it = relay_to_.find(origin);
  if (it == relay_to_.end()) return;
  auto& targets = it->second;
  targets.erase(std::remove(targets.begin(), targets.end(), from.info.id),
                targets.end());
  if (targets.empty()) relay_to_.erase(it);
  count_relays();
}

void PeerRelay::forget_member(uint32_t peer_id) {
  relay_to_.erase(peer_id);
  for (auto& [origin, targets] : relay_to_) {
    targets.erase(std::remove(targets.begin(), targets.end(), peer_id),
                  targets.end());
  }
  count_relays();
}

std::vector<uint32_t> PeerRelay::origins_relayed_to(uint32_t peer_id) const {
  std::vector<uint32_t> origins;
  for (const auto& [origin, targets] : relay_to_) {
    if (std::find(targets.begin(), targets.end(), peer_id) != targets.end()) {
      origins.push_back(origin);
    }
  }
  std::sort(origins.begin(), origins.end());
  return origins;
}

void PeerRelay::count_relays() {
  stats_->relays_served = 0;
  for (const auto& [origin, targets] : relay_to_) {
    stats_->relays_served += targets.size();
  }
}

// A relay adds another origin's share to our flood. A peer that stated an
// upload limit under twice the stream's rate has no room for it: relayed at
// once into a thin uplink, a join's worth of requests overflowed its queue
// (uplink-b: 66 drops at a 0.3x peer that had relayed 113 chunks). Until the
// rate is measured, a stated limit refuses: the requester asks another
// neighbour at its next check.
// Without a stated limit the splitter's deal says it: a member dealt under
// half an equal share was found thin by its flood checks (protocol.md
// 10.7), and a relay would overflow its uplink the same way (uplink-b-
// learned: 13 drops at a 0.3x first joiner after relaying 15 chunks).
bool PeerRelay::upload_has_room(Micros now) {
  const int64_t limit = config_->upload_limit_bps;
  measure_stream(now);
  if (limit < 0) {
    const double equal = 1.0 / static_cast<double>(health_->members.size() + 1);
    return own_share_ < 0 || own_share_ >= equal / 2;
  }
  return stream_bps_ != 0 && static_cast<uint64_t>(limit) >= 2 * stream_bps_;
}

// The stream's rate over the last second or more, from the bytes accepted
// since the stream reached us.
void PeerRelay::measure_stream(Micros now) {
  const uint64_t bytes = stats_->bytes_down;
  if (rate_since_us_ == 0) {
    if (bytes != 0) {
      rate_since_us_ = now;
      rate_since_bytes_ = bytes;
    }
    return;
  }
  if (now < saturating_add(rate_since_us_, 1000000)) return;
  stream_bps_ =
      (bytes - rate_since_bytes_) * 8 * 1000000 / (now - rate_since_us_);
  rate_since_us_ = now;
  rate_since_bytes_ = bytes;
  const uint64_t own = stats_->chunks_from_splitter;
  const uint64_t chunks =
      stats_->chunks_from_splitter + stats_->chunks_from_peers;
  if (chunks > rate_since_chunks_) {
    own_share_ = static_cast<double>(own - rate_since_own_) /
                 static_cast<double>(chunks - rate_since_chunks_);
  }
  rate_since_own_ = own;
  rate_since_chunks_ = chunks;
}

void PeerRelay::on_joined(Micros now) {
  check_due_us_ = config_->relay_request_after_us == 0
                      ? UINT64_MAX
                      : saturating_add(now, check_period());
}

void PeerRelay::check(Micros now, Outbox* out) {
  if (check_due_us_ > now) return;
  check_due_us_ = saturating_add(now, check_period());
  measure_stream(now);
  request_missing_origins(now, out);
}

// An origin we stopped hearing, while the rest of the team is heard: ask
// another neighbour to relay it. Two rounds of the team must pass first, so
// a big team's long rounds are not mistaken for silence.
void PeerRelay::request_missing_origins(Micros now, Outbox* out) {
  PeerHealth& h = *health_;
  const uint64_t two_rounds = 2 * (h.members.size() + 1);
  if (now < saturating_add(h.heard_since_us, config_->relay_request_after_us) ||
      h.accepted_count < saturating_add(h.heard_since_count, two_rounds)) {
    return;  // nobody has been silent long enough
  }
  h.heard_since_us = UINT64_MAX;
  h.heard_since_count = UINT64_MAX;
  for (auto& [origin, member] : h.members) {
    if (now >= saturating_add(member.last_heard_us,
                              config_->relay_request_after_us) &&
        h.accepted_count - member.heard_at_count >=
            std::max(two_rounds, 2 * member.longest_gap)) {
      request_relay(origin, member, now, out);
    }
    h.note_heard_bound(member.last_heard_us, member.heard_at_count);
  }
}

void PeerRelay::request_relay(uint32_t origin, Member& member, Micros now,
                              Outbox* out) {
  const Neighbour* relay = pick_relay(origin, &member.request_turn);
  if (!relay) return;
  member.relay_requested = true;
  member.last_heard_us = now;  // give the relay a period to start
  ++stats_->requests_sent;
  tx_->control(
      relay->info.endpoint,
      encode_request(RequestMsg{session_->team_id, session_->id, origin}), out);
}

const Neighbour* PeerRelay::pick_relay(uint32_t origin, size_t* turn) const {
  for (size_t step = 0; step < table_->size(); ++step) {
    const Neighbour& n = (*table_)[(*turn)++ % table_->size()];
    if (n.info.id != origin) return &n;
  }
  return nullptr;
}

Micros PeerRelay::check_period() const {
  return std::max<Micros>(config_->relay_request_after_us / 4, 1);
}

}  // namespace p2psp
