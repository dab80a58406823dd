// gst-p2psp: port prediction (see predict.h).
#include <gst/p2psp/predict.h>

#include <algorithm>

namespace p2psp {

namespace {

bool in_window(const PortPredictions::Due& d, const Endpoint& e) {
  return e.same_address(d.base) && e.port > d.base.port &&
         e.port - d.base.port <= d.window;
}

}  // namespace

uint16_t PortPredictions::window_for(size_t members, size_t mates) {
  const size_t want =
      (members + kExtraPorts) * (1 + std::min<size_t>(mates, 16));
  return static_cast<uint16_t>(
      std::clamp<size_t>(want, kMinWindow, kMaxWindow));
}

void PortPredictions::add(uint32_t peer_id, const Endpoint& base,
                          uint16_t window, Micros now) {
  forget(peer_id);
  if (candidates_.size() >= kMaxCandidates) {
    candidates_.erase(candidates_.begin());
  }
  const uint16_t w = std::min(window, kMaxWindow);
  candidates_.push_back(
      Candidate{Due{peer_id, base.normalized(), w}, 0, now + kFirstAfterUs});
}

void PortPredictions::forget(uint32_t peer_id) {
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [&](const Candidate& c) {
                                     return c.due.peer_id == peer_id;
                                   }),
                    candidates_.end());
}

bool PortPredictions::matches(uint32_t peer_id, const Endpoint& from) const {
  const Endpoint e = from.normalized();
  return std::any_of(
      candidates_.begin(), candidates_.end(), [&](const Candidate& c) {
        return c.due.peer_id == peer_id && c.rounds > 0 && in_window(c.due, e);
      });
}

std::vector<PortPredictions::Due> PortPredictions::take_due(Micros now) {
  std::vector<Due> due;
  for (Candidate& c : candidates_) {
    if (c.due_us > now || c.rounds >= kRounds) continue;
    ++c.rounds;
    c.due_us = now + kRetryUs;
    due.push_back(c.due);
  }
  // The last round's answer may still come: keep a candidate one retry
  // period after it, then drop it.
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [&](const Candidate& c) {
                                     return c.rounds >= kRounds &&
                                            c.due_us <= now;
                                   }),
                    candidates_.end());
  return due;
}

void PortPredictions::note_probed(const Due& round, Micros now) {
  probed_.erase(std::remove_if(probed_.begin(), probed_.end(),
                               [&](const Probed& p) {
                                 return now >= p.at_us + kProbedKeptUs;
                               }),
                probed_.end());
  if (probed_.size() >= kMaxProbed) probed_.erase(probed_.begin());
  probed_.push_back(Probed{round, now});
}

bool PortPredictions::probed_recently(const Endpoint& from, Micros now) const {
  const Endpoint e = from.normalized();
  return std::any_of(probed_.begin(), probed_.end(), [&](const Probed& p) {
    return now < p.at_us + kProbedKeptUs && in_window(p.round, e);
  });
}

Micros PortPredictions::next_due_us() const {
  Micros next = UINT64_MAX;
  for (const Candidate& c : candidates_) next = std::min(next, c.due_us);
  return next;
}

std::vector<Endpoint> predicted_endpoints(const Endpoint& base,
                                          uint16_t window) {
  std::vector<Endpoint> out;
  for (uint32_t k = 1; k <= window && base.port + k <= 65535u; ++k) {
    out.push_back(base.with_port(static_cast<uint16_t>(base.port + k)));
  }
  return out;
}

}  // namespace p2psp
