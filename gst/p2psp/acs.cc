// gst-p2psp: adaptive chunk shares (see acs.h).
#include <gst/p2psp/acs.h>

#include <algorithm>

namespace p2psp {

void AdaptiveShares::add(uint32_t id, Micros now, int64_t stated_kbps) {
  if (!started_) {
    started_ = true;
    next_update_us_ = now + config_.period_us;
  }
  auto [it, fresh] = entries_.try_emplace(id);
  if (!fresh) return;
  total_weight_ += it->second.weight;
  it->second.stated_kbps = stated_kbps;
  if (stated_kbps < 0) return;
  any_stated_ = true;
  // Until the stream rate is known, a limited member is dealt nothing: the
  // others carry it for that half second, rather than a backlog building
  // up in a thin uplink that it could never drain.
  set_weight(it->second, 0);
  if (stream_kbps_ > 0) {
    apply_stated(entries_.size());
  } else {
    apply_provisional();
  }
}

// Before the stream rate is known, when every member stated a limit there
// is nobody else to carry the stream: the limits share it in proportion
// (an even deal would give the thinnest uplinks a backlog of seconds).
void AdaptiveShares::apply_provisional() {
  int64_t widest = 0;
  for (const auto& [id, e] : entries_) {
    if (limit_kbps(e) < 0) return;
    widest = std::max(widest, limit_kbps(e));
  }
  for (auto& [id, e] : entries_) {
    set_weight(e, widest > 0 ? static_cast<double>(limit_kbps(e)) /
                                   static_cast<double>(widest)
                             : 0);
  }
}

void AdaptiveShares::note_dealt(uint32_t id, size_t bytes, Micros now) {
  ++entry(id).current.dealt;
  if (dealt_count_++ == 0) first_dealt_us_ = now;
  entry(id).busy_us = now;
  measure_rate(bytes, now);
}

// The first estimate comes after half a second of stream, then one per
// period; weights for stated limits follow each.
void AdaptiveShares::measure_rate(size_t bytes, Micros now) {
  chunk_bytes_ = bytes;
  if (rate_bytes_ == 0) rate_from_us_ = now;
  rate_bytes_ += bytes;
  const Micros span = now - rate_from_us_;
  const Micros due = stream_kbps_ > 0 ? config_.period_us : 500000;
  if (span < due) return;
  stream_kbps_ = static_cast<double>(rate_bytes_) * 8 / 1000 / (span / 1e6);
  rate_bytes_ = 0;
  if (any_stated_) apply_stated(entries_.size());
}

// The limit a member is dealt by: the lower of the stated and the learned
// one, -1 for none.
int64_t AdaptiveShares::limit_kbps(const Entry& e) {
  if (e.stated_kbps < 0) return e.learned_kbps;
  if (e.learned_kbps < 0) return e.stated_kbps;
  return std::min(e.stated_kbps, e.learned_kbps);
}

// A learned limit that carries an equal share is no limit: the member is
// dealt as an unmeasured one. Otherwise, while the others are not all
// timed yet, those not timed would be dealt what the timed ones carry less
// than an equal share (the team simulator's 2.5x members, timed one after
// another over 0.8 s, lost 0.0004 of the chunks to it).
bool AdaptiveShares::limited(const Entry& e, size_t team) const {
  if (e.stated_kbps >= 0) return true;
  if (e.learned_kbps < 0) return false;
  return stated_share(e, team) < 1.0 / std::max<double>(1, team);
}

// A member that stated a limit uploads its share of the chunks to the
// other team - 1 members: share x (team - 1) copies of the stream, each
// datagram with its headers, and its NACK answers and control messages
// too: kCopyCost leaves room for those. Returns the share of the chunks
// its limit carries (0: none).
double AdaptiveShares::stated_share(const Entry& e, size_t team) const {
  constexpr double kCopyCost = 1.3;
  if (limit_kbps(e) == 0) return 0;
  // IPv4/UDP and the chunk header, about.
  const double datagram_bits = (chunk_bytes_ + 60) * 8.0;
  const double burst_us = std::max<double>(1, team - 1) * datagram_bits /
                          static_cast<double>(limit_kbps(e)) * 1000;
  // Only for a stated limit: a learned one was measured on a whole flood
  // that went through the member's uplink (at N = 100 a 1.5x uplink takes
  // 0.57 s per flood, and the team simulator carries it).
  const bool stated = e.stated_kbps >= 0 && limit_kbps(e) == e.stated_kbps;
  if (stated && burst_us > static_cast<double>(config_.max_burst_us)) return 0;
  const double copies = limit_kbps(e) / (stream_kbps_ * kCopyCost);
  return copies / std::max<double>(1, team - 1);
}

// Members without a limit keep their weight (1, or what was learned); a
// member with one gets the weight that makes its share what its limit
// carries: with W the others' weight and S the stated shares' sum, the
// total is W / (1 - S). When nobody else is left to carry the rest (every
// member stated one, or the stated shares cover the stream) the widest
// stated uplink gets weight 1 and the others theirs in proportion. No
// stated weight exceeds 1 (a weight of 1 is a plain DBS share) nor the
// ceiling learned.
void AdaptiveShares::apply_stated(size_t team) {
  if (stream_kbps_ <= 0) return;
  double others = 0;
  double stated_sum = 0;
  double widest = 0;
  for (const auto& [id, e] : entries_) {
    if (!limited(e, team)) {
      others += e.weight;
      continue;
    }
    const double share = stated_share(e, team);
    stated_sum += share;
    widest = std::max(widest, share);
  }
  double total = 0;
  if (others > 0 && stated_sum < 1) {
    total = others / (1 - stated_sum);
  } else if (widest > 0) {
    total = 1 / widest;
  }
  for (auto& [id, e] : entries_) {
    if (!limited(e, team)) {
      // Weighed against the widest before the rate was known, but
      // carrying an equal share: back to what it had.
      if (e.provisional && e.weight > 0)
        set_weight(e, std::min(1.0, e.ceiling));
      e.provisional = false;
      continue;
    }
    e.provisional = false;
    const double w = std::min({1.0, e.ceiling, stated_share(e, team) * total});
    set_weight(e, w < config_.min_weight ? 0 : w);
  }
}

void AdaptiveShares::remove(uint32_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.trial) --trials_;
  if (it->second.timing) --trials_;
  set_weight(it->second, 1);  // keeps the counters right
  total_weight_ -= 1;
  entries_.erase(it);
}

void AdaptiveShares::set_weight(Entry& e, double weight) {
  if ((e.weight != 1) != (weight != 1)) {
    if (weight != 1) {
      ++non_uniform_;
    } else {
      --non_uniform_;
    }
  }
  total_weight_ += weight - e.weight;
  e.weight = weight;
}

void AdaptiveShares::note_nack(uint32_t origin, ChunkNumber number) {
  auto it = entries_.find(origin);
  if (it == entries_.end()) return;
  if (!seq_before(number, current_from_)) {
    ++it->second.current.nacked;
  } else if (!seq_before(number, previous_from_)) {
    ++it->second.previous.nacked;
  }
}

// A member whose flood missed half the team (a free rider, an uplink far
// thinner than its share) loses a chunk for the whole team every time it
// is dealt one; a period of NACKs would cost the team a few seconds of
// them. Half the team is also far above what a congested but working
// member misses (team simulator: at a tenth, working members were zeroed
// one after another until the team collapsed; a quarter held, with little
// margin).
void AdaptiveShares::note_undelivered(uint32_t origin) {
  if (!config_.enabled) return;
  auto it = entries_.find(origin);
  if (it == entries_.end() || it->second.weight <= 0) return;
  it->second.forwarding = 0;
  it->second.ceiling = 0;
  set_weight(it->second, 0);
}

void AdaptiveShares::update(Micros now, size_t team, ChunkNumber next_number) {
  if (!config_.enabled || !started_ || now < next_update_us_) return;
  next_update_us_ = now + config_.period_us;
  for (auto& [id, e] : entries_) {
    if (e.previous.dealt >= config_.min_dealt && team >= 2) {
      revise(e, team);
      e.previous = e.current;
    } else {
      // Too few chunks to judge: the next period adds to them.
      e.previous.dealt += e.current.dealt;
      e.previous.nacked += e.current.nacked;
    }
    e.current = Counts();
  }
  previous_from_ = current_from_;
  current_from_ = next_number;
  if (any_stated_) apply_stated(entries_.size());
}

// What the member forwarded is about what it can forward: the ceiling.
// Its weight is cut below that (by the missed fraction once more, so a
// member that forwards next to nothing is out at once) and grows back to
// the ceiling while nothing is missed, the ceiling creeping up to probe.
void AdaptiveShares::revise(Entry& e, size_t team) {
  const double copies = static_cast<double>(e.previous.dealt) * (team - 1);
  const double missed = std::min(1.0, e.previous.nacked / copies);
  e.forwarding = 1 - missed;
  if (missed > config_.cut_above) {
    e.ceiling = e.weight * (1 - missed);
    const double cut = e.ceiling * (1 - missed);
    set_weight(e, cut < config_.min_weight ? 0 : cut);
  } else if (missed < config_.grow_below && e.weight > 0) {
    e.ceiling = std::min(1.0, e.ceiling * config_.ceiling_creep);
    set_weight(e, std::min(e.ceiling, e.weight * config_.grow));
  }
}

bool AdaptiveShares::on_trial(uint32_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.proven) return false;
  if (!it->second.trial) {
    it->second.trial = true;
    ++trials_;
  }
  return true;
}

void AdaptiveShares::end_trial(Entry& e) {
  if (!e.trial) return;
  e.trial = false;
  --trials_;
}

void AdaptiveShares::note_echo(uint32_t id, bool timing, Micros now,
                               Micros timing_wait_us) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  end_trial(e);
  e.proven = true;
  if (!timing || !config_.enabled) return;
  e.timing = true;
  ++trials_;  // not the plain round robin meanwhile
  // In a team of 100 an equal share deals a member 0.6 chunks in 600 ms:
  // holding it back there only moved chunks onto the members timed first
  // (team simulator: 0.0009 of the chunks lost in 20 s, against 0.000004;
  // 0.0002 in the first 10 s at one chunk at most).
  const double span_s = (now - first_dealt_us_) / 1e6;
  const double rate = dealt_count_ >= 8 && span_s > 0
                          ? static_cast<double>(dealt_count_) / span_s
                          : 0;
  const double expected =
      rate * (timing_wait_us / 1e6) / std::max<double>(1, entries_.size());
  e.timing_restricted = rate == 0 || expected > 1;
}

// A proven member dealt a twelfth of the stream while its first flood is
// timed would have queued two more floods behind it by then: a 0.3x uplink
// in a team of 12 overflowed its 500 ms queue before its limit was learned,
// and one more chunk right after the first still cost the first joiner 4 to
// 13 drops (uplink-b-learned). So it is dealt nothing meanwhile, where an
// equal share would deal it more than one chunk (below).
void AdaptiveShares::end_timing(uint32_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.timing) return;
  it->second.timing = false;
  --trials_;
}

// A member that cannot upload a quarter of its first chunk's copies within
// the check time (a free rider, an uplink far thinner than a share) would
// lose each chunk it is dealt for most of the team, and every NACK-based
// measure of that comes after the playout deadline of its first ones.
void AdaptiveShares::note_missed_echo(uint32_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  end_trial(e);
  e.forwarding = 0;
  e.ceiling = 0;
  set_weight(e, 0);
}

// Before the stream rate is known the members timed so far are weighed
// against the widest of them: a thin uplink gets its fraction of a full
// share at once (zeroing it would overload the others for that while, the
// members it was timed with; the team simulator lost 0.0004 of its chunks).
void AdaptiveShares::note_flood_rate(uint32_t id, int64_t kbps) {
  if (!config_.enabled) return;
  auto it = entries_.find(id);
  if (it == entries_.end() || kbps < 0) return;
  it->second.learned_kbps = kbps;
  any_stated_ = true;
  if (stream_kbps_ > 0) {
    apply_stated(entries_.size());
    return;
  }
  int64_t widest = 0;
  for (const auto& [other, e] : entries_) {
    widest = std::max(widest, e.learned_kbps);
  }
  for (auto& [other, e] : entries_) {
    if (e.learned_kbps < 0 || e.weight <= 0) continue;
    e.provisional = true;
    set_weight(e, std::min(e.weight, static_cast<double>(e.learned_kbps) /
                                         static_cast<double>(widest)));
  }
}

int64_t AdaptiveShares::learned_kbps(uint32_t id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? -1 : it->second.learned_kbps;
}

bool AdaptiveShares::proven(uint32_t id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.proven;
}

double AdaptiveShares::weight(uint32_t id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? 0 : it->second.weight;
}

double AdaptiveShares::forwarding(uint32_t id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? 0 : it->second.forwarding;
}

double AdaptiveShares::share(uint32_t id) const {
  return total_weight_ > 0 ? weight(id) / total_weight_ : 0;
}

}  // namespace p2psp
