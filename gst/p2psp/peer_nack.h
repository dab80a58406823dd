// gst-p2psp: the peer's loss recovery (docs/protocol.md section 10). Owns
// the NACKs in flight (per missing number: attempts, next try, deadline),
// the loss evidence (gst/p2psp/nack.h), the history of accepted chunks kept
// to answer neighbours' NACKs and to guess origins, and the LOST reports a
// monitor sends. Answers NACKs within each neighbour's retransmit budget.
#pragma once

#include <gst/p2psp/nack.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_health.h>
#include <gst/p2psp/peer_neighbours.h>
#include <gst/p2psp/peer_playout.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/peer_tx.h>

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace p2psp {

class PeerNack {
 public:
  PeerNack(const PeerConfig* config, PeerSession* session,
           NeighbourTable* table, PeerHealth* health, PeerPlayout* playout,
           PeerTx* tx, PeerStats* stats)
      : config_(config),
        session_(session),
        table_(table),
        health_(health),
        playout_(playout),
        tx_(tx),
        stats_(stats),
        recent_(std::max<size_t>(config->history_chunks, 1)),
        dealt_(recent_.size()) {}

  bool nacked(ChunkNumber number) const { return nacks_.count(number) != 0; }
  // A chunk entered the playout buffer: kept for NACKs; true if it was a
  // NACK's answer (counted as recovered the first time). The splitter's
  // answers time its round trip.
  bool on_accepted(const StoredChunk& chunk, bool from_splitter);
  // A chunk that arrived on its own (not as a NACK's answer) is evidence.
  void note_loss_evidence(const ChunkMsg& msg, Micros now);
  // The newest chunk jumped ahead: the new gaps become NACKable.
  void note_new_gaps(Micros now);
  // A number left the playout buffer (played or given up).
  void forget(ChunkNumber number) { nacks_.erase(number); }
  // What recovery knew and tried for a number still tracked.
  ChunkLoss describe_loss(ChunkNumber number) const;
  void forget_origin(uint32_t origin) { origin_newest_.forget(origin); }
  // A neighbour's NACK: what we still hold, within its budget.
  void on_nack(Neighbour& from, const NackMsg& nack, Micros now, Outbox* out);

  Micros due() const { return due_us_; }
  void service(Micros now, Outbox* out);
  Micros retry() const;

 private:
  struct NackState {
    uint32_t attempts = 0;
    Micros next_us = 0;            // next attempt (UINT64_MAX: recovered)
    Micros deadline_us = 0;        // playout gives up on it then
    Micros asked_splitter_us = 0;  // our latest NACK of it to the splitter
    uint32_t splitter_asks = 0;
    uint32_t first_target = 0;  // kToSplitter (0) or a neighbour id
  };
  // A recently accepted chunk, kept to answer NACKs and to guess origins.
  struct Recent {
    ChunkNumber number = 0;
    uint32_t origin = 0;
    SharedBytes datagram;
  };
  // Whose a number is, as a later chunk of that origin named it (its
  // `previous` field): known before the chunk itself arrives.
  struct Dealt {
    ChunkNumber number = 0;
    uint32_t origin = 0;  // 0: nothing recorded
  };
  using Batches = std::map<uint32_t, std::vector<ChunkNumber>>;

  Micros delay() const;
  Micros retry_after_neighbour() const;
  Micros at_last_call(Micros planned, Micros deadline) const;
  uint32_t relay_holding(uint32_t origin) const;
  Micros first_due(const ReorderBuffer::Gap& gap) const;
  bool first_nack_due(const ReorderBuffer::Gap& gap, Micros now) const;
  void attempt(const ReorderBuffer::Gap& gap, Micros now, Batches* batches,
               std::vector<ChunkNumber>* first_seen);
  SharedBytes held_datagram(ChunkNumber number) const;
  void note_previous(const ChunkMsg& msg);
  void note_silent_origin(const StoredChunk& chunk);
  uint32_t known_origin(ChunkNumber number) const;
  uint32_t expected_origin(ChunkNumber number) const;
  uint32_t guess_origin(ChunkNumber number) const;
  uint32_t likely_origin(ChunkNumber number) const;
  uint32_t first_target(ChunkNumber number);
  void send_nacks(uint32_t target, const std::vector<ChunkNumber>& numbers,
                  Outbox* out);
  void report_lost(const std::vector<ChunkNumber>& numbers, Outbox* out);
  Micros next_time(Micros now) const;

  const PeerConfig* config_;
  PeerSession* session_;
  NeighbourTable* table_;
  PeerHealth* health_;
  PeerPlayout* playout_;
  PeerTx* tx_;
  PeerStats* stats_;
  std::vector<Recent> recent_;  // indexed by chunk number modulo size
  std::vector<Dealt> dealt_;    // likewise
  // Missing numbers we NACKed, until they are played or declared lost.
  std::unordered_map<ChunkNumber, NackState> nacks_;
  Micros due_us_ = UINT64_MAX;
  size_t turn_ = 0;
  // Loss evidence (gst/p2psp/nack.h).
  OriginNewest origin_newest_;
  // Every origin heard from sent a chunk after the numbers before this
  // one (set at each service, while silent origins are dealt chunks).
  std::optional<ChunkNumber> all_origins_past_;
  // Until then, chunks of an origin never heard from on its own (a free
  // rider) were recovered lately.
  Micros silent_origin_until_us_ = 0;
  // Our newest own chunk and how far back the one before it was dealt.
  ChunkNumber own_newest_ = 0;
  uint16_t own_spacing_ = kNoPrevious;
  SpreadEstimator spread_;
  SplitterRtt splitter_rtt_;
};

}  // namespace p2psp
