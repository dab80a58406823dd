// gst-p2psp: the join burst (docs/protocol.md 7.4).
#include <gst/p2psp/burst.h>
#include <gst/p2psp/seq.h>

#include <algorithm>

namespace p2psp {

namespace {
// Start points framed but not cut yet: a chunk holds a few at most, unless
// the stream is all start points (raw audio), where only the last counts.
constexpr size_t kMaxPendingStarts = 1024;
}  // namespace

void StartPointIndex::note_start(uint64_t stream_offset) {
  if (pending_.size() == kMaxPendingStarts) pending_.pop_front();
  pending_.push_back(stream_offset);
}

void StartPointIndex::note_chunk(ChunkNumber number, uint64_t end, Micros now) {
  bool found = false;
  while (!pending_.empty() && pending_.front() < end) {
    pending_.pop_front();
    found = true;
  }
  if (!found) return;
  have_latest_ = true;
  latest_ = number;
  latest_cut_us_ = now;
}

std::optional<ChunkNumber> StartPointIndex::latest() const {
  if (!have_latest_) return std::nullopt;
  return latest_;
}

BurstPacer::BurstPacer(ChunkNumber first, ChunkNumber end,
                       uint64_t rate_bytes_per_s, Micros now)
    : next_(first),
      end_(end),
      rate_(std::max<uint64_t>(rate_bytes_per_s, 1)),
      credit_(static_cast<double>(kInitialWindow)),
      last_us_(now) {}

void BurstPacer::refill(Micros now) {
  if (now <= last_us_) return;
  credit_ +=
      static_cast<double>(now - last_us_) * static_cast<double>(rate_) / 1e6;
  // Unused credit piles up to one window, or 20 ms worth at a fast rate, so
  // a late timer does not slow the burst down, nor make it a flood.
  const double cap = std::max(static_cast<double>(kInitialWindow),
                              static_cast<double>(rate_) / 50);
  credit_ = std::min(credit_, cap);
  last_us_ = now;
}

bool BurstPacer::may_send(size_t size, Micros now) {
  if (done()) return false;
  refill(now);
  return credit_ >= static_cast<double>(size);
}

void BurstPacer::sent(size_t size) {
  credit_ -= static_cast<double>(size);
  ++next_;
}

Micros BurstPacer::due_us(size_t size) const {
  if (done()) return UINT64_MAX;
  const double missing = static_cast<double>(size) - credit_;
  if (missing <= 0) return last_us_;
  return last_us_ +
         static_cast<Micros>(missing * 1e6 / static_cast<double>(rate_)) + 1;
}

uint64_t burst_rate(uint64_t bytes, Micros span_us,
                    uint64_t floor_bytes_per_s) {
  const uint64_t span = std::max<Micros>(span_us, 1000);
  const double stream_rate = static_cast<double>(bytes) * 1e6 / span;
  return std::max<uint64_t>(floor_bytes_per_s,
                            static_cast<uint64_t>(4 * stream_rate));
}

}  // namespace p2psp
