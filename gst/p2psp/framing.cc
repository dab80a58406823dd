// gst-p2psp: framing of buffers (and caps changes) inside the chunk stream.
#include <gst/p2psp/framing.h>

#include <algorithm>
#include <cstring>

namespace p2psp {

namespace {

constexpr uint8_t kKnownFlags = MediaBuffer::kHeader | MediaBuffer::kDeltaUnit |
                                MediaBuffer::kDiscont | MediaBuffer::kGap;
// Below this the consumed prefix of the framer's buffer is not worth moving.
constexpr size_t kCompactThreshold = 64 * 1024;

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

constexpr uint8_t kKnownHeaderBits =
    kFrameKindMask | kFrameHasPts | kFrameHasDts | kFrameHasDuration;

}  // namespace

size_t frame_header_size(uint8_t first_byte) {
  size_t size = kFrameHeaderMinSize;
  for (uint8_t bit : {kFrameHasPts, kFrameHasDts, kFrameHasDuration}) {
    if (first_byte & bit) size += 8;
  }
  return size;
}

namespace {

uint8_t field_bits(const MediaBuffer& b) {
  return (b.pts != kNoTime ? kFrameHasPts : 0) |
         (b.dts != kNoTime ? kFrameHasDts : 0) |
         (b.duration != kNoTime ? kFrameHasDuration : 0);
}

}  // namespace

size_t frame_header_size(const MediaBuffer& buffer) {
  return frame_header_size(field_bits(buffer));
}

// ------------------------------------------------------------- Framer ----

Framer::Framer(size_t chunk_payload_size)
    : chunk_size_(std::clamp<size_t>(chunk_payload_size, 1, kMaxChunkPayload)) {
}

void Framer::push_buffer(const MediaBuffer& buffer) {
  append_frame(FrameKind::kBuffer, buffer, buffer.data.data(),
               buffer.data.size());
}

void Framer::push_caps(const std::string& caps) {
  append_frame(FrameKind::kCaps, MediaBuffer{},
               reinterpret_cast<const uint8_t*>(caps.data()), caps.size());
}

void Framer::append_frame(FrameKind kind, const MediaBuffer& meta,
                          const uint8_t* data, size_t size) {
  // Every deframer refuses such a frame; sending it would only cost the team
  // bandwidth and make every peer resynchronise.
  if (size > kMaxFrameSize) return;
  // Absent timestamps take no room: most buffers carry one or two.
  uint8_t header[kFrameHeaderMaxSize];
  header[0] = static_cast<uint8_t>(kind) | field_bits(meta);
  header[1] = static_cast<uint8_t>(meta.flags & kKnownFlags);
  put_u32(header + 2, static_cast<uint32_t>(size));
  size_t header_size = kFrameHeaderMinSize;
  for (uint64_t t : {meta.pts, meta.dts, meta.duration}) {
    if (t == kNoTime) continue;
    put_u64(header + header_size, t);
    header_size += 8;
  }

  frame_starts_.push_back(stream_pos_ + pending_bytes());
  pending_.insert(pending_.end(), header, header + header_size);
  if (size > 0) pending_.insert(pending_.end(), data, data + size);
}

size_t Framer::pending_bytes() const { return pending_.size() - read_pos_; }

bool Framer::pop_full(ChunkPayload* out) {
  if (pending_bytes() < chunk_size_) return false;
  take_chunk(chunk_size_, out);
  return true;
}

bool Framer::pop_partial(ChunkPayload* out) {
  if (pending_bytes() == 0) return false;
  take_chunk(std::min(pending_bytes(), chunk_size_), out);
  return true;
}

// Into *chunk, whose bytes keep their room: a caller popping chunks in a
// loop allocates once.
void Framer::take_chunk(size_t size, ChunkPayload* chunk) {
  const auto begin = pending_.begin() + static_cast<ptrdiff_t>(read_pos_);
  chunk->bytes.assign(begin, begin + static_cast<ptrdiff_t>(size));
  chunk->first_frame_offset = kNoFrameStart;
  const uint64_t chunk_end = stream_pos_ + size;
  if (!frame_starts_.empty() && frame_starts_.front() < chunk_end) {
    chunk->first_frame_offset =
        static_cast<uint16_t>(frame_starts_.front() - stream_pos_);
  }
  while (!frame_starts_.empty() && frame_starts_.front() < chunk_end) {
    frame_starts_.pop_front();
  }
  read_pos_ += size;
  stream_pos_ = chunk_end;

  if (read_pos_ == pending_.size()) {
    pending_.clear();  // keeps the capacity for the next frames
    read_pos_ = 0;
  } else if (read_pos_ >= kCompactThreshold &&
             read_pos_ >= pending_.size() - read_pos_) {
    // Moves at most as many bytes as were consumed since the last compaction,
    // so the cost per byte stays constant.
    pending_.erase(pending_.begin(),
                   pending_.begin() + static_cast<ptrdiff_t>(read_pos_));
    read_pos_ = 0;
  }
}

// ----------------------------------------------------------- Deframer ----

void Deframer::push_chunk(const uint8_t* payload, size_t size,
                          uint16_t first_frame_offset) {
  const size_t ffo = first_frame_offset;
  const bool has_start = first_frame_offset != kNoFrameStart;
  if (has_start && ffo >= size) {
    on_malformed();  // the chunk contradicts itself
    return;
  }
  size_t pos = 0;
  // Whether the chunk's first frame start has been checked against (or used
  // as) a frame boundary of our own parsing. Until then, bytes continue a
  // frame begun in an earlier chunk.
  bool checked = false;
  while (pos < size) {
    if (!synced_) {
      // Resynchronising is allowed once per chunk, and only forward.
      if (checked || !has_start || ffo < pos) return;
      synced_ = true;
      pos = ffo;
    }
    if (!frame_in_progress() && !checked) {
      if (ffo != pos) {
        on_malformed();
        continue;
      }
      checked = true;
    }
    const size_t take = std::min(bytes_wanted(), size - pos);
    if (!checked && has_start && ffo < pos + take) {
      // The splitter says a frame starts inside the frame we are completing.
      on_malformed();
      continue;
    }
    if (!consume(payload + pos, take)) on_malformed();
    pos += take;
  }
}

void Deframer::push_gap() {
  if (frame_in_progress()) ++stats_.dropped_frames;
  lose_sync();
}

bool Deframer::pop(StreamItem* out) {
  if (ready_.empty()) return false;
  *out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

size_t Deframer::header_wanted() const {
  return header_fill_ == 0 ? kFrameHeaderMinSize
                           : frame_header_size(header_bytes_[0]);
}

size_t Deframer::bytes_wanted() const {
  if (!header_done_) return header_wanted() - header_fill_;
  return header_.size - partial_.size();
}

bool Deframer::consume(const uint8_t* data, size_t size) {
  if (!header_done_) {
    std::memcpy(header_bytes_ + header_fill_, data, size);
    header_fill_ += size;
    if (header_fill_ < header_wanted()) return true;
    if (!parse_header()) return false;
  } else {
    append_data(data, size);
  }
  if (partial_.size() == header_.size) emit_frame();
  return true;
}

bool Deframer::parse_header() {
  const uint8_t* h = header_bytes_;
  const uint8_t kind = h[0] & kFrameKindMask;
  if ((h[0] & ~kKnownHeaderBits) != 0 ||
      kind > static_cast<uint8_t>(FrameKind::kCaps) ||
      get_u32(h + 2) > kMaxFrameSize) {
    return false;
  }
  header_.kind = static_cast<FrameKind>(kind);
  header_.flags = h[1] & kKnownFlags;
  header_.size = get_u32(h + 2);
  size_t at = kFrameHeaderMinSize;
  for (auto [bit, field] : {std::pair{kFrameHasPts, &header_.pts},
                            std::pair{kFrameHasDts, &header_.dts},
                            std::pair{kFrameHasDuration, &header_.duration}}) {
    *field = kNoTime;
    if (!(h[0] & bit)) continue;
    *field = get_u64(h + at);
    at += 8;
  }
  header_done_ = true;
  return true;
}

void Deframer::append_data(const uint8_t* data, size_t size) {
  // Grows with the bytes that actually arrived, never beyond the declared
  // size: a forged header cannot make us allocate 64 MiB up front. Frames
  // up to kUpFront (most media buffers) get their whole size at once,
  // rather than regrowing and copying once per chunk.
  constexpr size_t kUpFront = 64 * 1024;
  const size_t needed = partial_.size() + size;
  if (partial_.capacity() < needed) {
    partial_.reserve(std::min<size_t>(
        header_.size, std::max({needed, 2 * partial_.capacity(), kUpFront})));
  }
  partial_.insert(partial_.end(), data, data + size);
}

void Deframer::emit_frame() {
  StreamItem item;
  if (header_.kind == FrameKind::kCaps) {
    item.kind = StreamItem::Kind::kCaps;
    item.caps.assign(partial_.begin(), partial_.end());
    partial_.clear();
  } else {
    item.kind = StreamItem::Kind::kBuffer;
    MediaBuffer& buffer = item.buffer;
    buffer.data = std::move(partial_);
    partial_ = Bytes();
    buffer.pts = header_.pts;
    buffer.dts = header_.dts;
    buffer.duration = header_.duration;
    buffer.flags = header_.flags;
    if (discont_) buffer.flags |= MediaBuffer::kDiscont;
    discont_ = false;
  }
  ready_.push_back(std::move(item));
  ++stats_.frames;
  header_fill_ = 0;
  header_done_ = false;
}

void Deframer::drop_frame() {
  header_fill_ = 0;
  header_done_ = false;
  partial_ = Bytes();  // also releases a large partial frame's memory
}

void Deframer::lose_sync() {
  drop_frame();
  synced_ = false;
  discont_ = true;
}

void Deframer::on_malformed() {
  ++stats_.malformed;
  lose_sync();
}

}  // namespace p2psp
