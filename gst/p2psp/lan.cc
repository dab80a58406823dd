#include <gst/p2psp/lan.h>
#include <gst/p2psp/wire.h>

#include <algorithm>

namespace p2psp {

std::vector<Endpoint> usable_local_endpoints(
    const std::vector<Endpoint>& reported, const Endpoint& public_endpoint) {
  std::vector<Endpoint> usable;
  const Endpoint pub = public_endpoint.normalized();
  for (const Endpoint& raw : reported) {
    const Endpoint e = raw.normalized();
    if (!e.valid() || e.port == 0 || e == pub) continue;
    if (std::find(usable.begin(), usable.end(), e) != usable.end()) continue;
    if (usable.size() >= kMaxLocalEndpoints) break;
    usable.push_back(e);
  }
  return usable;
}

bool behind_same_nat(const Endpoint& a, const Endpoint& b) {
  return a.normalized().same_address(b.normalized());
}

void LanCandidates::add(uint32_t peer_id, const Endpoint& endpoint,
                        Micros now) {
  const Endpoint e = endpoint.normalized();
  for (const Candidate& c : candidates_) {
    if (c.peer_id == peer_id && c.endpoint == e) return;
  }
  if (candidates_.size() >= kMaxCandidates) {
    candidates_.erase(candidates_.begin());
  }
  candidates_.push_back(Candidate{peer_id, e, 0, now});
}

void LanCandidates::forget(uint32_t peer_id) {
  candidates_.erase(
      std::remove_if(candidates_.begin(), candidates_.end(),
                     [&](const Candidate& c) { return c.peer_id == peer_id; }),
      candidates_.end());
}

bool LanCandidates::matches(uint32_t peer_id, const Endpoint& from) const {
  const Endpoint e = from.normalized();
  return std::any_of(candidates_.begin(), candidates_.end(),
                     [&](const Candidate& c) {
                       return c.peer_id == peer_id && c.endpoint == e;
                     });
}

std::vector<LanCandidates::Due> LanCandidates::take_due(Micros now) {
  std::vector<Due> due;
  for (Candidate& c : candidates_) {
    if (c.due_us > now || c.attempts >= kAttempts) continue;
    ++c.attempts;
    c.due_us = now + kRetryUs;
    due.push_back(Due{c.peer_id, c.endpoint});
  }
  // The last attempt's answer may still come: keep a candidate one retry
  // period after its last probe, then drop it.
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [&](const Candidate& c) {
                                     return c.attempts >= kAttempts &&
                                            c.due_us <= now;
                                   }),
                    candidates_.end());
  return due;
}

Micros LanCandidates::next_due_us() const {
  Micros next = UINT64_MAX;
  for (const Candidate& c : candidates_) next = std::min(next, c.due_us);
  return next;
}

}  // namespace p2psp
