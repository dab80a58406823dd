// gst-p2psp: the peer's playout (reordering) buffer.
//
// Chunks arrive out of order (from the splitter and from every other peer);
// this puts them back in chunk-number order, drops duplicates, and gives up on
// a missing chunk once a later chunk has waited `hold_us` for it.
#pragma once

#include <gst/p2psp/seq.h>
#include <gst/p2psp/wire.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace p2psp {

// A received chunk datagram kept whole (it is also what a peer forwards).
struct StoredChunk {
  SharedBytes datagram;
  ChunkMsg msg;  // views point into *datagram
  uint64_t arrival_us = 0;
};

class ReorderBuffer {
 public:
  enum class Insert { kAccepted, kDuplicate, kLate, kTooFarAhead };
  struct Slot {
    ChunkNumber number = 0;
    bool lost = false;
    StoredChunk chunk;  // empty datagram when lost
  };
  // A number still missing while a later one is held.
  struct Gap {
    ChunkNumber number = 0;
    uint64_t since_us = 0;  // arrival of the first later chunk
  };

  // capacity: how many chunk numbers the window spans (power of two not
  // required). hold_us: how long a chunk waits for missing earlier ones.
  ReorderBuffer(size_t capacity, uint64_t hold_us);

  Insert insert(const StoredChunk& chunk, uint64_t now_us);
  // Next in-order slot that is ready (present, or declared lost).
  bool pop(uint64_t now_us, Slot* out);
  // When pop() may next return something, or UINT64_MAX if nothing is held.
  uint64_t next_deadline_us() const;

  // Missing numbers (not yet played or declared lost) in number order, for
  // loss recovery: those whose since_us <= seen_by_us, at most `max`. Costs
  // the number of gaps opened within the window, not the window size.
  std::vector<Gap> missing(uint64_t seen_by_us, size_t max = SIZE_MAX);
  // The held chunk numbered n, or nullptr.
  const StoredChunk* find(ChunkNumber n) const;
  // The highest number ever accepted (meaningful once something was).
  ChunkNumber newest() const { return newest_; }

  bool started() const { return started_; }
  ChunkNumber head() const { return head_; }
  size_t fill() const { return count_; }
  // Missing numbers remembered for missing() (bounded by the window).
  size_t tracked_gaps() const { return gaps_.size(); }
  size_t capacity() const { return slots_.size(); }
  void set_hold_us(uint64_t hold_us) { hold_us_ = hold_us; }
  // Forget everything (e.g. after rejoining a restarted splitter).
  void reset();
  // The first number to play is known (the splitter's TEAM names it): start
  // there instead of at the smallest early arrival, so chunks missing from
  // the very start are NACKed and declared lost like any other. Ignored once
  // started or when what is held is not within half the window after it.
  void expect_from(ChunkNumber first);
  // The numbers before `end` come as one paced run (a join burst, protocol
  // 7.4): while it keeps coming, a gap before `end` waits hold_us after the
  // run's latest arrival rather than after the first later chunk, so live
  // chunks held behind the run do not make it count as lost. A run that
  // stalls for hold_us gives way to them like any gap.
  void expect_run(ChunkNumber end, uint64_t now_us);
  void note_run_progress(uint64_t now_us) { run_progress_us_ = now_us; }
  // Nothing counts as waiting before now_us: what is held and what is
  // missing get a whole hold from then. For a peer that could not ask for
  // its gaps until now (chunks come before TEAM makes it a member).
  void hold_from(uint64_t now_us);

 private:
  struct Cell {
    bool present = false;
    ChunkNumber number = 0;
    StoredChunk chunk;
  };
  std::vector<Cell> slots_;
  // Numbers recently released, for duplicate detection behind the head.
  std::vector<ChunkNumber> played_;
  std::vector<bool> played_valid_;
  uint64_t hold_us_;
  bool started_ = false;
  uint64_t first_arrival_us_ = 0;
  // Before the start, head_ is the first number that arrived: the anchor of
  // the slot indexing and of the too-far-ahead check.
  ChunkNumber head_ = 0;   // next number to release
  size_t head_index_ = 0;  // slot of head_
  size_t count_ = 0;
  // Cache of the first present chunk at or after head_ (valid when
  // next_present_valid_), so that a long run of losses is not rescanned for
  // every lost chunk released.
  mutable bool next_present_valid_ = false;
  mutable ChunkNumber next_present_ = 0;
  // Numbers skipped when a chunk arrived ahead of newest_, oldest first.
  // Filled or released ones are dropped from the front as they are met.
  std::deque<Gap> gaps_;
  bool have_newest_ = false;
  ChunkNumber newest_ = 0;
  ChunkNumber lowest_ = 0;     // lowest number accepted before the start
  bool anchor_valid_ = false;  // expect_from() named the first number
  ChunkNumber anchor_ = 0;
  bool run_valid_ = false;  // expect_run()
  ChunkNumber run_end_ = 0;
  uint64_t run_progress_us_ = 0;
  uint64_t hold_floor_us_ = 0;  // hold_from()
  // Playout may start: after hold_us, or at once when the named first
  // number is here.
  bool may_start(uint64_t now_us) const;

  // Slot of n, for n within capacity() of head_. Not simply n % capacity():
  // that breaks across the 2^32 wrap unless the capacity divides 2^32.
  size_t index_of(ChunkNumber n) const;
  Insert insert_before_start(const StoredChunk& chunk, uint64_t now_us);
  Insert classify_behind_head(ChunkNumber n) const;
  Insert store(const StoredChunk& chunk);
  void note_gaps(ChunkNumber n, uint64_t arrival_us);
  bool is_missing(ChunkNumber n) const;
  void start();
  void start_at_anchor();
  void advance_head();
  // The first present chunk after head_; requires count_ > 0 after start.
  const Cell& first_present() const;
  // Arrival time of first_present(): the chunk waiting for head_.
  uint64_t oldest_waiting_us() const;
};

}  // namespace p2psp
