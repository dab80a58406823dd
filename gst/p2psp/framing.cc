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

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
uint16_t get_u16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
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

}  // namespace

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
  uint8_t header[kFrameHeaderSize];
  header[0] = static_cast<uint8_t>(kind);
  header[1] = static_cast<uint8_t>(meta.flags & kKnownFlags);
  put_u16(header + 2, 0);
  put_u32(header + 4, static_cast<uint32_t>(size));
  put_u64(header + 8, meta.pts);
  put_u64(header + 16, meta.dts);
  put_u64(header + 24, meta.duration);

  frame_starts_.push_back(stream_pos_ + pending_bytes());
  pending_.insert(pending_.end(), header, header + kFrameHeaderSize);
  if (size > 0) pending_.insert(pending_.end(), data, data + size);
}

size_t Framer::pending_bytes() const { return pending_.size() - read_pos_; }

bool Framer::pop_full(ChunkPayload* out) {
  if (pending_bytes() < chunk_size_) return false;
  *out = take_chunk(chunk_size_);
  return true;
}

bool Framer::pop_partial(ChunkPayload* out) {
  if (pending_bytes() == 0) return false;
  *out = take_chunk(std::min(pending_bytes(), chunk_size_));
  return true;
}

ChunkPayload Framer::take_chunk(size_t size) {
  ChunkPayload chunk;
  const auto begin = pending_.begin() + static_cast<ptrdiff_t>(read_pos_);
  chunk.bytes.assign(begin, begin + static_cast<ptrdiff_t>(size));
  const uint64_t chunk_end = stream_pos_ + size;
  if (!frame_starts_.empty() && frame_starts_.front() < chunk_end) {
    chunk.first_frame_offset =
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
  return chunk;
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

size_t Deframer::bytes_wanted() const {
  if (header_fill_ < kFrameHeaderSize) return kFrameHeaderSize - header_fill_;
  return header_.size - partial_.size();
}

bool Deframer::consume(const uint8_t* data, size_t size) {
  if (header_fill_ < kFrameHeaderSize) {
    std::memcpy(header_bytes_ + header_fill_, data, size);
    header_fill_ += size;
    if (header_fill_ < kFrameHeaderSize) return true;

    const uint8_t* h = header_bytes_;
    if (h[0] > static_cast<uint8_t>(FrameKind::kCaps) || get_u16(h + 2) != 0 ||
        get_u32(h + 4) > kMaxFrameSize) {
      return false;
    }
    header_.kind = static_cast<FrameKind>(h[0]);
    header_.flags = h[1] & kKnownFlags;
    header_.size = get_u32(h + 4);
    header_.pts = get_u64(h + 8);
    header_.dts = get_u64(h + 16);
    header_.duration = get_u64(h + 24);
  } else {
    append_data(data, size);
  }
  if (partial_.size() == header_.size) emit_frame();
  return true;
}

void Deframer::append_data(const uint8_t* data, size_t size) {
  // Grows with the bytes that actually arrived, never beyond the declared
  // size: a forged header cannot make us allocate 64 MiB up front.
  const size_t needed = partial_.size() + size;
  if (partial_.capacity() < needed) {
    partial_.reserve(std::min<size_t>(
        header_.size, std::max(needed, 2 * partial_.capacity())));
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
}

void Deframer::drop_frame() {
  header_fill_ = 0;
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
