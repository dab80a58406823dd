// gst-p2psp: the peer's playout (reordering) buffer.
#include <gst/p2psp/reorder.h>

#include <algorithm>
#include <cstdlib>

namespace p2psp {

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace

ReorderBuffer::ReorderBuffer(size_t capacity, uint64_t hold_us)
    : slots_(std::max<size_t>(capacity, 1)),
      played_(slots_.size()),
      played_valid_(slots_.size(), false),
      hold_us_(hold_us) {}

ReorderBuffer::Insert ReorderBuffer::insert(const StoredChunk& chunk,
                                            uint64_t now_us) {
  if (!started_ && anchor_valid_) start_at_anchor();
  if (!started_) return insert_before_start(chunk, now_us);
  const ChunkNumber n = chunk.msg.number;
  if (seq_before(n, head_)) return classify_behind_head(n);
  if (static_cast<uint64_t>(seq_distance(head_, n)) >= capacity()) {
    return Insert::kTooFarAhead;
  }
  return store(chunk);
}

ReorderBuffer::Insert ReorderBuffer::insert_before_start(
    const StoredChunk& chunk, uint64_t now_us) {
  const ChunkNumber n = chunk.msg.number;
  if (count_ == 0) {
    head_ = n;
    head_index_ = n % capacity();
    first_arrival_us_ = now_us;
  } else {
    // Whatever starts the window must leave room on both sides of the first
    // arrival, since the smallest number held becomes the head.
    const int64_t distance = seq_distance(head_, n);
    if (distance != 0 &&
        static_cast<uint64_t>(std::llabs(distance)) >= capacity() / 2) {
      return Insert::kTooFarAhead;
    }
  }
  return store(chunk);
}

ReorderBuffer::Insert ReorderBuffer::classify_behind_head(ChunkNumber n) const {
  const uint64_t behind = static_cast<uint32_t>(head_ - n);
  if (behind <= capacity()) {
    const size_t index = index_of(n);
    if (played_valid_[index] && played_[index] == n) return Insert::kDuplicate;
  }
  return Insert::kLate;
}

ReorderBuffer::Insert ReorderBuffer::store(const StoredChunk& chunk) {
  const ChunkNumber n = chunk.msg.number;
  Cell& cell = slots_[index_of(n)];
  if (cell.present) return Insert::kDuplicate;
  cell.present = true;
  cell.number = n;
  cell.chunk = chunk;
  ++count_;
  if (next_present_valid_ && seq_before(n, next_present_)) next_present_ = n;
  note_gaps(n, chunk.arrival_us);
  return Insert::kAccepted;
}

void ReorderBuffer::note_gaps(ChunkNumber n, uint64_t arrival_us) {
  if (!have_newest_) {
    newest_ = lowest_ = n;
    have_newest_ = true;
    return;
  }
  // Both loops are bounded by the window: store() only takes numbers
  // within it.
  if (seq_after(n, newest_)) {
    for (ChunkNumber m = newest_ + 1; m != n; ++m) {
      gaps_.push_back(Gap{m, arrival_us});
    }
    newest_ = n;
  }
  // Before the start, the window may still grow downwards: what lies
  // between an earlier arrival and the lowest one is missing too. Kept in
  // number order by adding below the others.
  if (!started_ && seq_before(n, lowest_)) {
    for (ChunkNumber m = lowest_ - 1; m != n; --m) {
      gaps_.push_front(Gap{m, arrival_us});
    }
    lowest_ = n;
  }
}

bool ReorderBuffer::is_missing(ChunkNumber n) const {
  if (started_ && seq_before(n, head_)) return false;  // played or lost
  return find(n) == nullptr;
}

std::vector<ReorderBuffer::Gap> ReorderBuffer::missing(uint64_t seen_by_us,
                                                       size_t max) {
  while (!gaps_.empty() && !is_missing(gaps_.front().number)) {
    gaps_.pop_front();
  }
  std::vector<Gap> result;
  for (const Gap& gap : gaps_) {
    if (result.size() >= max) break;
    if (gap.since_us <= seen_by_us && is_missing(gap.number)) {
      result.push_back(gap);
    }
  }
  return result;
}

const StoredChunk* ReorderBuffer::find(ChunkNumber n) const {
  if (count_ == 0) return nullptr;
  const uint64_t distance = static_cast<uint32_t>(n - head_);
  // Before the start, numbers below the first arrival are held too.
  const bool in_window = started_ ? distance < capacity()
                                  : std::llabs(seq_distance(head_, n)) <
                                        static_cast<int64_t>(capacity());
  if (!in_window) return nullptr;
  const Cell& cell = slots_[index_of(n)];
  return cell.present && cell.number == n ? &cell.chunk : nullptr;
}

bool ReorderBuffer::may_start(uint64_t now_us) const {
  if (count_ == 0) return false;
  if (anchor_valid_ && find(anchor_) != nullptr) return true;
  return now_us >= saturating_add(first_arrival_us_, hold_us_);
}

void ReorderBuffer::expect_run(ChunkNumber end, uint64_t now_us) {
  run_valid_ = true;
  run_end_ = end;
  run_progress_us_ = now_us;
}

bool ReorderBuffer::pop(uint64_t now_us, Slot* out) {
  if (!started_) {
    if (!may_start(now_us)) return false;
    start();
  }
  if (count_ == 0) return false;

  Cell& cell = slots_[head_index_];
  if (cell.present) {
    out->number = head_;
    out->lost = false;
    out->chunk = std::move(cell.chunk);
    cell.chunk = StoredChunk();
    cell.present = false;
    --count_;
    played_[head_index_] = head_;
    played_valid_[head_index_] = true;
    if (next_present_valid_ && next_present_ == head_) {
      next_present_valid_ = false;
    }
    advance_head();
    return true;
  }
  if (now_us < saturating_add(oldest_waiting_us(), hold_us_)) return false;
  out->number = head_;
  out->lost = true;
  out->chunk = StoredChunk();
  advance_head();
  return true;
}

uint64_t ReorderBuffer::next_deadline_us() const {
  if (count_ == 0) return UINT64_MAX;
  if (!started_) {
    return may_start(0) ? 0 : saturating_add(first_arrival_us_, hold_us_);
  }
  if (slots_[head_index_].present) return 0;
  return saturating_add(oldest_waiting_us(), hold_us_);
}

void ReorderBuffer::reset() {
  std::fill(slots_.begin(), slots_.end(), Cell());
  std::fill(played_valid_.begin(), played_valid_.end(), false);
  started_ = false;
  first_arrival_us_ = 0;
  head_ = 0;
  head_index_ = 0;
  count_ = 0;
  next_present_valid_ = false;
  gaps_.clear();
  have_newest_ = false;
  newest_ = 0;
  lowest_ = 0;
  anchor_valid_ = false;
  anchor_ = 0;
  run_valid_ = false;
  hold_floor_us_ = 0;
}

size_t ReorderBuffer::index_of(ChunkNumber n) const {
  const int64_t cap = static_cast<int64_t>(capacity());
  const int64_t offset = seq_distance(head_, n) % cap;
  return static_cast<size_t>(
      (static_cast<int64_t>(head_index_) + offset + cap) % cap);
}

void ReorderBuffer::start() {
  ChunkNumber smallest = head_;
  for (const Cell& cell : slots_) {
    if (cell.present && seq_before(cell.number, smallest)) {
      smallest = cell.number;
    }
  }
  head_index_ = index_of(smallest);
  head_ = smallest;
  started_ = true;
  next_present_valid_ = false;
}

void ReorderBuffer::expect_from(ChunkNumber first) {
  if (started_) return;
  if (count_ > 0) {
    // Early arrivals (cut after TEAM was sent, but faster over UDP) must all
    // lie a little after the anchor, or the anchor is stale.
    for (const Cell& cell : slots_) {
      if (!cell.present) continue;
      const int32_t ahead = seq_distance(first, cell.number);
      if (ahead < 0 || static_cast<uint64_t>(ahead) >= capacity() / 2) return;
    }
  }
  anchor_valid_ = true;
  anchor_ = first;
  start_at_anchor();
}

void ReorderBuffer::start_at_anchor() {
  if (count_ == 0) {
    head_index_ = anchor_ % capacity();
    newest_ = anchor_ - 1;
    lowest_ = anchor_;
    have_newest_ = true;
  } else {
    // Everything held lies after the anchor: what lies between is missing.
    head_index_ = index_of(anchor_);
    for (ChunkNumber m = lowest_ - 1; seq_after(m, anchor_ - 1); --m) {
      gaps_.push_front(Gap{m, first_arrival_us_});
    }
    lowest_ = anchor_;
  }
  head_ = anchor_;
  started_ = true;
  next_present_valid_ = false;
}

void ReorderBuffer::advance_head() {
  ++head_;
  head_index_ = (head_index_ + 1) % capacity();
  // Gaps behind the head are settled (played or lost): forget them here, so
  // the list stays bounded by the window even when nobody asks missing().
  while (!gaps_.empty() && seq_before(gaps_.front().number, head_)) {
    gaps_.pop_front();
  }
}

const ReorderBuffer::Cell& ReorderBuffer::first_present() const {
  if (!next_present_valid_) {
    for (size_t i = 0; i < capacity(); ++i) {
      const Cell& cell = slots_[(head_index_ + i) % capacity()];
      if (cell.present) {
        next_present_ = cell.number;
        next_present_valid_ = true;
        break;
      }
    }
  }
  return slots_[index_of(next_present_)];
}

void ReorderBuffer::hold_from(uint64_t now_us) {
  hold_floor_us_ = std::max(hold_floor_us_, now_us);
  if (count_ > 0) first_arrival_us_ = std::max(first_arrival_us_, now_us);
  for (Gap& gap : gaps_) gap.since_us = std::max(gap.since_us, now_us);
}

uint64_t ReorderBuffer::oldest_waiting_us() const {
  const uint64_t arrival =
      std::max(first_present().chunk.arrival_us, hold_floor_us_);
  if (run_valid_ && seq_before(head_, run_end_)) {
    return std::max(arrival, run_progress_us_);
  }
  return arrival;
}

}  // namespace p2psp
