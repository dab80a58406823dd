// gst-p2psp: the peer's playout. Owns the reorder buffer (chunks back in
// number order, a missing one given up after the latency), the join burst's
// range (docs/protocol.md 7.4), the chunk delay measure, the deframer that
// rebuilds buffers from chunks, and the late joiner's start gate (7.2, 7.3).
#pragma once

#include <gst/p2psp/framing.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/reorder.h>

namespace p2psp {

class PeerPlayout {
 public:
  PeerPlayout(const PeerConfig* config, PeerStats* stats)
      : reorder(config->buffer_chunks, config->latency_us),
        config_(config),
        stats_(stats) {}

  ReorderBuffer reorder;

  // Join burst: [burst_first, burst_end) comes from the splitter.
  void on_burst(const BurstMsg& burst, Micros now);
  bool burst_known() const { return burst_known_; }
  ChunkNumber burst_first() const { return burst_first_; }
  bool in_burst(ChunkNumber n) const;

  // The arrival delay of a chunk the splitter stamped with send_time_ms.
  void note_delay(uint16_t send_time_ms, Micros now);

  // Releases the next chunk (or gap) to the deframer; its number in
  // *number. False when nothing is due.
  bool feed_deframer(Micros now, ChunkNumber* number);
  // The next deframed item that passes the start gate.
  bool pop_framed(Micros now, StreamItem* out);

  const PeerStartState& start_state() const { return start_; }

 private:
  bool pass_gate(StreamItem* item, Micros now);
  bool pass_closed_gate(MediaBuffer* buffer, Micros now);

  const PeerConfig* config_;
  PeerStats* stats_;
  bool burst_known_ = false;  // BURST arrived: [burst_first_, burst_end_)
  ChunkNumber burst_first_ = 0;
  ChunkNumber burst_end_ = 0;
  bool delay_known_ = false;
  // Chunk delays are (our clock - the splitter's) mod 65536 ms; they are
  // compared as offsets from the first one, which is safe while the two
  // clocks stay within half of that (32 s) of their first offset.
  uint16_t first_delay_ms_ = 0;
  int32_t min_delay_ms_ = 0;
  Deframer deframer_;
  // Late joiners start at a keyframe; until then delta buffers are useless.
  bool seen_keyframe_ = false;
  bool carry_discont_ = false;
  PeerStartState start_;
};

}  // namespace p2psp
