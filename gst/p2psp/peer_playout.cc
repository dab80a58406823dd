// gst-p2psp: the peer's playout (see peer_playout.h).
#include <gst/p2psp/peer_playout.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/seq.h>

#include <algorithm>

namespace p2psp {

void PeerPlayout::on_burst(const BurstMsg& burst, Micros now) {
  burst_known_ = true;
  burst_first_ = burst.first;
  // More than the playout window could never be played in order anyway.
  burst_end_ = burst.first + static_cast<ChunkNumber>(std::min<uint64_t>(
                                 burst.count, config_->buffer_chunks));
  reorder.expect_from(burst_first_);
  reorder.expect_run(burst_end_, now);
}

bool PeerPlayout::in_burst(ChunkNumber n) const {
  return burst_known_ && !seq_before(n, burst_first_) &&
         seq_before(n, burst_end_);
}

void PeerPlayout::note_delay(uint16_t send_time_ms, Micros now) {
  const auto raw_ms =
      static_cast<uint16_t>(static_cast<uint16_t>(now / 1000) - send_time_ms);
  if (!delay_known_) first_delay_ms_ = raw_ms;
  const int32_t delay_ms =
      static_cast<int16_t>(static_cast<uint16_t>(raw_ms - first_delay_ms_));
  if (!delay_known_ || delay_ms < min_delay_ms_) {
    min_delay_ms_ = delay_ms;
    delay_known_ = true;
  }
  stats_->chunk_delay_us =
      static_cast<Micros>(static_cast<int64_t>(delay_ms) - min_delay_ms_) *
      1000;
  stats_->chunk_delay_max_us =
      std::max(stats_->chunk_delay_max_us, stats_->chunk_delay_us);
}

bool PeerPlayout::feed_deframer(Micros now, ChunkNumber* number) {
  ReorderBuffer::Slot slot;
  if (!reorder.pop(now, &slot)) return false;
  *number = slot.number;
  if (slot.lost) {
    ++stats_->lost;
    deframer_.push_gap();
  } else {
    ++stats_->played;
    const ChunkMsg& msg = slot.chunk.msg;
    deframer_.push_chunk(msg.payload, msg.payload_size, msg.first_frame_offset);
  }
  return true;
}

bool PeerPlayout::pop_framed(Micros now, StreamItem* out) {
  while (deframer_.pop(out)) {
    if (pass_gate(out, now)) return true;
  }
  return false;
}

// Applies the late joiner keyframe gate; false drops the item.
bool PeerPlayout::pass_gate(StreamItem* item, Micros now) {
  if (item->kind == StreamItem::Kind::kCaps) return true;
  MediaBuffer& buffer = item->buffer;
  // Header buffers always pass (the element decides whether they repeat the
  // caps' streamheader); delta units wait for the first keyframe.
  if (!seen_keyframe_ && !pass_closed_gate(&buffer, now)) return false;
  if (carry_discont_) {
    buffer.flags |= MediaBuffer::kDiscont;
    carry_discont_ = false;
  }
  return true;
}

// Before the first start point (docs/protocol.md 7.2, 7.3): headers pass,
// the rest waits for a keyframe, or for start_timeout_us after the first
// buffer, when it starts at the next buffer boundary marked DISCONT.
bool PeerPlayout::pass_closed_gate(MediaBuffer* buffer, Micros now) {
  if (start_.phase == PeerStartState::Phase::kNotYet) {
    start_.phase = PeerStartState::Phase::kWaiting;
    start_.waiting_since_us = now;
    start_.timeout_us = config_->start_timeout_us;
  }
  const bool is_header = buffer->flags & MediaBuffer::kHeader;
  const bool timed_out =
      config_->start_timeout_us > 0 &&
      now >= saturating_add(start_.waiting_since_us, config_->start_timeout_us);
  if (!buffer->is_keyframe() && !is_header && !timed_out) {
    carry_discont_ |= (buffer->flags & MediaBuffer::kDiscont) != 0;
    ++start_.dropped_buffers;
    start_.dropped_bytes += buffer->data.size();
    return false;
  }
  if (is_header && !buffer->is_keyframe()) return true;
  seen_keyframe_ = true;
  start_.phase = PeerStartState::Phase::kStarted;
  start_.started_us = now;
  start_.by_timeout = !buffer->is_keyframe();
  if (start_.by_timeout) buffer->flags |= MediaBuffer::kDiscont;
  return true;
}

}  // namespace p2psp
