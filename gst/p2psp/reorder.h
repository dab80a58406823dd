// gst-p2psp: the peer's playout (reordering) buffer.
//
// Chunks arrive out of order (from the splitter and from every other peer);
// this puts them back in chunk-number order, drops duplicates, and gives up on
// a missing chunk once a later chunk has waited `hold_us` for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <gst/p2psp/seq.h>
#include <gst/p2psp/wire.h>

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

  // capacity: how many chunk numbers the window spans (power of two not
  // required). hold_us: how long a chunk waits for missing earlier ones.
  ReorderBuffer(size_t capacity, uint64_t hold_us);

  Insert insert(const StoredChunk& chunk, uint64_t now_us);
  // Next in-order slot that is ready (present, or declared lost).
  bool pop(uint64_t now_us, Slot* out);
  // When pop() may next return something, or UINT64_MAX if nothing is held.
  uint64_t next_deadline_us() const;

  bool started() const { return started_; }
  ChunkNumber head() const { return head_; }
  size_t fill() const { return count_; }
  size_t capacity() const { return slots_.size(); }
  void set_hold_us(uint64_t hold_us) { hold_us_ = hold_us; }
  // Forget everything (e.g. after rejoining a restarted splitter).
  void reset();

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
  ChunkNumber head_ = 0;  // next number to release
  size_t count_ = 0;
  uint64_t oldest_waiting_us() const;
};

}  // namespace p2psp
