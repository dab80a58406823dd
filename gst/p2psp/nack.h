// gst-p2psp: when a missing chunk is lost rather than late, and how much
// the splitter may retransmit (sans-I/O helpers of the peer and splitter).
//
// A chunk of a DBS team reaches a peer up to a whole flooding burst late:
// its origin uploads it to every neighbour in turn, so with N peers and an
// uplink of U the last copy leaves (N - 1) x datagram / U after the first.
// A NACK sent earlier than that asks for a chunk that is only on its way,
// and on upload-limited teams the answers delay the originals further: a
// retransmission storm (docs/simulation.md). So a missing chunk is taken
// for lost only on evidence:
//  - a later chunk of the same origin arrived: each origin floods its
//    chunks to each neighbour in order, so the earlier one cannot still be
//    on its way (OriginNewest); the origin of a missing number is known
//    from the chunk that names it as its origin's previous (protocol.md
//    4.1);
//  - or it is missing for longer than the arrival spread this peer
//    measured (SpreadEstimator), plus a margin.
#pragma once

#include <gst/p2psp/outbox.h>
#include <gst/p2psp/seq.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <unordered_map>

namespace p2psp {

// The largest arrival delay above the smallest one seen (chunks that were
// not NACKed), over the last one or two windows: the flooding spread.
class SpreadEstimator {
 public:
  explicit SpreadEstimator(Micros window_us = 2000000)
      : window_us_(window_us) {}

  void add(Micros spread_us, Micros now);
  // The spread, or 0 before any sample.
  Micros value() const;
  uint64_t samples() const { return samples_; }

 private:
  Micros window_us_;
  Micros window_start_us_ = 0;
  Micros current_max_ = 0;
  Micros previous_max_ = 0;
  uint64_t samples_ = 0;
};

// How long a gap waits before its first NACK when no origin evidence
// comes: the measured spread plus a quarter and `margin_us` (jitter), or
// UINT64_MAX until `min_samples` chunks were measured (the caller chooses
// what to do meanwhile).
Micros learned_nack_delay(const SpreadEstimator& spread, Micros margin_us,
                          uint64_t min_samples);

// How long the splitter takes to answer our NACKs, measured from the NACKs
// it answered (RFC 6298's smoothed round trip and its variation): a NACK
// to the splitter that got no answer in that time was lost, or its answer
// was, and is sent again while the playout deadline allows, instead of
// waiting a whole retry period that leaves no time for another.
class SplitterRtt {
 public:
  void add(Micros rtt_us);
  // The time after which an unanswered NACK is asked again, at least
  // floor_us; UINT64_MAX before any answer was measured.
  Micros timeout(Micros floor_us) const;
  static constexpr uint64_t kMinSamples = 1;

 private:
  Micros srtt_us_ = 0;
  Micros rttvar_us_ = 0;
  uint64_t samples_ = 0;
};

// The newest chunk number received from each origin (any sender).
class OriginNewest {
 public:
  void note(uint32_t origin, ChunkNumber number);
  // True once a chunk of `origin` numbered after `number` arrived.
  bool later_than(uint32_t origin, ChunkNumber number) const;
  // The oldest newest chunk among all origins heard from (nullopt if none):
  // each of them sent a chunk after any number before it.
  std::optional<ChunkNumber> oldest() const;
  bool heard_from(uint32_t origin) const { return newest_.count(origin) != 0; }
  void forget(uint32_t origin) { newest_.erase(origin); }
  size_t size() const { return newest_.size(); }

 private:
  std::unordered_map<uint32_t, ChunkNumber> newest_;
};

// The splitter's total retransmission budget: every chunk cut earns
// `share_permille` / 1000 of a retransmission, up to `burst` saved. Tied to
// the stream rather than to a clock, it caps retransmissions at a fixed
// share of the splitter's chunk upload however many peers ask.
// share_permille 0: no total cap.
class RetransmitAllowance {
 public:
  RetransmitAllowance(uint32_t share_permille, uint32_t burst)
      : share_permille_(share_permille),
        burst_milli_(static_cast<uint64_t>(burst) * 1000),
        milli_(burst_milli_) {}

  void on_chunk_cut() {
    milli_ = std::min(burst_milli_, milli_ + share_permille_);
  }
  bool take() {
    if (share_permille_ == 0) return true;
    if (milli_ < 1000) return false;
    milli_ -= 1000;
    return true;
  }

 private:
  uint64_t share_permille_;
  uint64_t burst_milli_;
  uint64_t milli_;
};

}  // namespace p2psp
