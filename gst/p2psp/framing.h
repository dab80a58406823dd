// gst-p2psp: framing of buffers (and caps changes) inside the chunk stream.
//
// The splitter turns buffers into one continuous byte stream of frames
// (6- to 30-byte frame header + data) and cuts it into chunks; each chunk says
// where the first frame starting inside it begins, so a receiver that lost a
// chunk, or joined late, resynchronises at the next frame start. See
// docs/protocol.md, "Frames".
#pragma once

#include <gst/p2psp/media.h>
#include <gst/p2psp/wire.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace p2psp {

// Frame header: u8 kind and field bits, u8 media flags, u32 data size, then
// a u64 for each timestamp the field bits say is present.
constexpr size_t kFrameHeaderMinSize = 6;
constexpr size_t kFrameHeaderMaxSize = kFrameHeaderMinSize + 3 * 8;
// Bits of the first header byte: the kind in the low two, then which
// timestamps follow (in this order); the rest are reserved, zero.
constexpr uint8_t kFrameKindMask = 0x03;
constexpr uint8_t kFrameHasPts = 1u << 4;
constexpr uint8_t kFrameHasDts = 1u << 5;
constexpr uint8_t kFrameHasDuration = 1u << 6;
// Size of the header that starts with this byte (the byte is not judged).
size_t frame_header_size(uint8_t first_byte);
// Size of the header the framer writes for this buffer.
size_t frame_header_size(const MediaBuffer& buffer);
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
  // Stream offsets: bytes ever framed, and bytes ever cut into chunks.
  uint64_t framed_end() const { return stream_pos_ + pending_bytes(); }
  uint64_t cut_end() const { return stream_pos_; }

 private:
  void append_frame(FrameKind kind, const MediaBuffer& meta,
                    const uint8_t* data, size_t size);
  void take_chunk(size_t size, ChunkPayload* chunk);
  size_t chunk_size_;
  // Framed bytes not yet cut into chunks start at pending_[read_pos_]; the
  // consumed prefix is dropped lazily so that cutting a chunk never moves the
  // rest of the stream.
  Bytes pending_;
  size_t read_pos_ = 0;
  // Stream offset (bytes ever framed) of pending_[read_pos_].
  uint64_t stream_pos_ = 0;
  // Stream offsets where frames start, not yet assigned to a chunk.
  std::deque<uint64_t> frame_starts_;
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
  struct FrameHeader {
    FrameKind kind = FrameKind::kBuffer;
    uint8_t flags = 0;
    uint32_t size = 0;
    uint64_t pts = kNoTime;
    uint64_t dts = kNoTime;
    uint64_t duration = kNoTime;
  };

  bool synced_ = false;  // false until a frame start is seen
  bool discont_ = true;  // next buffer out carries DISCONT
  // The frame being assembled: its header bytes first, then its data.
  uint8_t header_bytes_[kFrameHeaderMaxSize] = {};
  size_t header_fill_ = 0;  // > 0 while a frame is being assembled
  bool header_done_ = false;
  FrameHeader header_;  // valid once header_done_
  Bytes partial_;       // data of the frame being assembled
  std::deque<StreamItem> ready_;
  Stats stats_;

  bool frame_in_progress() const { return header_fill_ > 0; }
  // Header size as far as known: the minimum until the first bytes are in.
  size_t header_wanted() const;
  size_t bytes_wanted() const;
  bool parse_header();
  // Consumes header or data bytes of the current frame; false if the frame
  // header turned out invalid.
  bool consume(const uint8_t* data, size_t size);
  void append_data(const uint8_t* data, size_t size);
  void emit_frame();
  void drop_frame();
  // The stream cannot be trusted any more: forget the frame, wait for the next
  // frame start, and mark the next buffer DISCONT.
  void lose_sync();
  void on_malformed();
};

}  // namespace p2psp
