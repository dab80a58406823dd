// gst-p2psp: framing of buffers (and caps changes) inside the chunk stream.
//
// The splitter turns buffers into one continuous byte stream of frames
// (32-byte frame header + data) and cuts it into chunks; each chunk says where
// the first frame starting inside it begins, so a receiver that lost a chunk,
// or joined late, resynchronises at the next frame start. See
// docs/protocol.md, "Frames".
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <gst/p2psp/media.h>
#include <gst/p2psp/wire.h>

namespace p2psp {

constexpr size_t kFrameHeaderSize = 32;
// A frame larger than this is refused by the deframer (bounded memory).
constexpr uint32_t kMaxFrameSize = 64u << 20;

enum class FrameKind : uint8_t { kBuffer = 0, kCaps = 1 };

struct ChunkPayload {
  Bytes bytes;
  uint16_t first_frame_offset = kNoFrameStart;
};

class Framer {
 public:
  // chunk_payload_size: bytes per chunk (<= kMaxChunkPayload).
  explicit Framer(size_t chunk_payload_size);

  void push_buffer(const MediaBuffer& buffer);
  void push_caps(const std::string& caps);

  // Pops the next full chunk, if any.
  bool pop_full(ChunkPayload* out);
  // Pops whatever is pending as a shorter chunk, if anything is pending.
  bool pop_partial(ChunkPayload* out);
  size_t pending_bytes() const;
  size_t chunk_payload_size() const { return chunk_size_; }

 private:
  void append_frame(FrameKind kind, const MediaBuffer& meta,
                    const uint8_t* data, size_t size);
  size_t chunk_size_;
  Bytes pending_;
  // Offsets in pending_ where frames start.
  std::deque<size_t> frame_starts_;
};

class Deframer {
 public:
  struct Stats {
    uint64_t frames = 0;
    uint64_t dropped_frames = 0;  // partial frames thrown away after a gap
    uint64_t malformed = 0;       // frame headers that did not parse
  };

  // Feeds the next chunk in chunk-number order.
  void push_chunk(const uint8_t* payload, size_t size,
                  uint16_t first_frame_offset);
  // The next chunk in order was lost: the frame it touched is dropped and the
  // next buffer out carries MediaBuffer::kDiscont.
  void push_gap();
  // Pops the next complete item, in order.
  bool pop(StreamItem* out);
  const Stats& stats() const { return stats_; }

 private:
  bool synced_ = false;   // false until a frame start is seen
  bool discont_ = true;   // next buffer out carries DISCONT
  Bytes partial_;         // bytes of the frame being assembled
  std::deque<StreamItem> ready_;
  Stats stats_;
  void consume(const uint8_t* data, size_t size);
};

}  // namespace p2psp
