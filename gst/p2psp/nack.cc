// gst-p2psp: loss evidence for NACKs and the splitter's retransmit budget.
#include <gst/p2psp/nack.h>

#include <algorithm>

namespace p2psp {

void SpreadEstimator::add(Micros spread_us, Micros now) {
  // Two windows: the maximum forgets a burst of the past (a peer that left,
  // a congested moment) within two windows, but never drops to a short
  // window's luck.
  if (now >= window_start_us_ + window_us_) {
    const bool skipped = now >= window_start_us_ + 2 * window_us_;
    previous_max_ = skipped ? 0 : current_max_;
    current_max_ = 0;
    window_start_us_ = now;
  }
  current_max_ = std::max(current_max_, spread_us);
  ++samples_;
}

Micros SpreadEstimator::value() const {
  return std::max(current_max_, previous_max_);
}

Micros learned_nack_delay(const SpreadEstimator& spread, Micros margin_us,
                          uint64_t min_samples) {
  if (spread.samples() < min_samples) return UINT64_MAX;
  const Micros s = spread.value();
  return s + s / 4 + margin_us;
}

void SplitterRtt::add(Micros rtt_us) {
  if (samples_++ == 0) {
    srtt_us_ = rtt_us;
    rttvar_us_ = rtt_us / 2;
    return;
  }
  const Micros err = rtt_us > srtt_us_ ? rtt_us - srtt_us_ : srtt_us_ - rtt_us;
  rttvar_us_ = rttvar_us_ - rttvar_us_ / 4 + err / 4;
  srtt_us_ = srtt_us_ - srtt_us_ / 8 + rtt_us / 8;
}

Micros SplitterRtt::timeout(Micros floor_us) const {
  if (samples_ < kMinSamples) return UINT64_MAX;
  return std::max(floor_us, srtt_us_ + 4 * rttvar_us_);
}

void OriginNewest::note(uint32_t origin, ChunkNumber number) {
  auto [it, fresh] = newest_.try_emplace(origin, number);
  if (!fresh && seq_after(number, it->second)) it->second = number;
}

bool OriginNewest::later_than(uint32_t origin, ChunkNumber number) const {
  auto it = newest_.find(origin);
  return it != newest_.end() && seq_after(it->second, number);
}

std::optional<ChunkNumber> OriginNewest::oldest() const {
  std::optional<ChunkNumber> oldest;
  for (const auto& [origin, newest] : newest_) {
    if (!oldest || seq_before(newest, *oldest)) oldest = newest;
  }
  return oldest;
}

}  // namespace p2psp
