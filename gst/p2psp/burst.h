// gst-p2psp: the join burst (docs/protocol.md 7.4).
//
// A late joiner's decoder can only start at a start point (a keyframe). So
// the splitter remembers in which chunk the latest start point begins, and
// sends a joiner that asks for it the chunks from there up to the live edge,
// paced, before its first live chunk matters: its first frame decodes within
// a round trip, whatever the GOP, while DBS carries the live stream as usual.
#pragma once

#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace p2psp {

// Which chunk the latest start point begins in, from stream offsets: the
// framer's offset when a start point is framed, and each chunk's end offset
// as it is cut.
class StartPointIndex {
 public:
  // A frame a decoder can start at begins at this stream offset.
  void note_start(uint64_t stream_offset);
  // Chunk `number` ends at stream offset `end` and was cut at `now`.
  void note_chunk(ChunkNumber number, uint64_t end, Micros now);
  // The chunk the latest start point begins in, once it was cut.
  std::optional<ChunkNumber> latest() const;
  // When that chunk was cut.
  Micros latest_cut_us() const { return latest_cut_us_; }

 private:
  std::deque<uint64_t> pending_;  // start offsets not yet cut (bounded)
  bool have_latest_ = false;
  ChunkNumber latest_ = 0;
  Micros latest_cut_us_ = 0;
};

// Paces one joiner's burst: an initial window at once, then `rate` bytes per
// second, so the splitter's upload for a burst is bounded in size (the
// caller checks that) and in rate.
class BurstPacer {
 public:
  static constexpr uint64_t kInitialWindow = 32 * 1024;
  BurstPacer(ChunkNumber first, ChunkNumber end, uint64_t rate_bytes_per_s,
             Micros now);

  bool done() const { return next_ == end_; }
  ChunkNumber next() const { return next_; }
  // Whether `size` more bytes may go now.
  bool may_send(size_t size, Micros now);
  // The chunk next() went out (or was skipped), `size` bytes.
  void sent(size_t size);
  // When `size` more bytes may go (UINT64_MAX once done).
  Micros due_us(size_t size) const;

 private:
  void refill(Micros now);
  ChunkNumber next_;
  ChunkNumber end_;
  uint64_t rate_;
  double credit_;  // bytes that may go now
  Micros last_us_;
};

// The pacing rate for a burst of `bytes` of stream cut over `span_us`: four
// times the stream's own rate, at least `floor_bytes_per_s`, so the burst
// ends in at most a quarter of its own duration.
uint64_t burst_rate(uint64_t bytes, Micros span_us, uint64_t floor_bytes_per_s);

}  // namespace p2psp
