// gst-p2psp: adaptive chunk shares (ACS) for the splitter (sans-I/O).
//
// DBS deals every member the same share of the stream, and each member
// uploads its share to every other member. A member whose uplink cannot
// carry that (an ADSL or mobile uplink, a free rider) loses its chunks for
// the whole team. The splitter cannot see peer-to-peer traffic, but it
// sees what the team misses: a NACK that reaches the splitter is a chunk
// whose copy did not come from its origin nor from the neighbour first
// asked. Per member, those NACKs over the chunks dealt to it and the other
// members give the fraction of its copies that did not arrive; its weight
// is cut by that fraction (what it forwarded is what it can forward) and
// grows back slowly while nothing is missed. Members get chunks in
// proportion to their weights (smooth weighted round robin); a weight of
// 0 deals a member no chunk at all, while it still receives everyone's.
//
// While every weight is 1 (a team that misses nothing) dealing is the
// plain round robin, unchanged.
#pragma once

#include <gst/p2psp/outbox.h>
#include <gst/p2psp/seq.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace p2psp {

struct AcsConfig {
  bool enabled = true;         // learn from NACKs (stated limits apply always)
  Micros period_us = 2000000;  // weights are revised this often
  // A member missing more than this fraction of its copies is cut.
  double cut_above = 0.1;
  // A member missing less than this grows back (x grow, at most 1).
  double grow_below = 0.01;
  double grow = 1.15;
  double ceiling_creep = 1.03;
  // Below this a weight becomes 0 (the member forwards next to nothing).
  double min_weight = 0.03;
  uint32_t min_dealt = 4;  // chunks dealt in a period to judge a member
  // DBS sends a chunk to every other member at once: a member whose stated
  // limit needs longer than this to upload one chunk to the team (its
  // uplink queue would drop the end of each burst) is dealt none.
  Micros max_burst_us = 500000;
};

class AdaptiveShares {
 public:
  explicit AdaptiveShares(const AcsConfig& config = AcsConfig())
      : config_(config) {}

  // stated_kbps: the upload limit the member stated in JOIN, -1: none.
  void add(uint32_t id, Micros now, int64_t stated_kbps = -1);
  void remove(uint32_t id);
  void note_dealt(uint32_t id, size_t bytes, Micros now);
  // A NACK that reached the splitter for chunk `number`, dealt to `origin`:
  // it counts in the period the chunk was dealt in.
  void note_nack(uint32_t origin, ChunkNumber number);
  // Half the team NACKed one chunk of `origin` to the splitter: it did not
  // flood it. Learning (enabled) deals it no more chunks at once, without
  // waiting for the end of the period.
  void note_undelivered(uint32_t origin);
  // Revises the weights once a period has passed; `team` members now,
  // `next_number` the next chunk to be dealt.
  void update(Micros now, size_t team, ChunkNumber next_number);

  // Flood checks (protocol.md 10.7). A member is on trial until it echoes
  // a chunk in time: on_trial() says whether chunk dealt to it now is on
  // trial (the caller then awaits its echo), and while one is, the member
  // is dealt no other. note_echo(): it echoed in time, it is proven and
  // dealt chunks as any other. note_missed_echo(): it did not, and is
  // dealt none for good (weight and measured forwarding 0), as after
  // note_undelivered. Only members on trial are judged by echoes: a proven
  // member's echo is late whenever its uplink is busy with the previous
  // flood, which says nothing about whether it floods.
  bool on_trial(uint32_t id);
  // `timing`: until end_timing(), while its first flood's end echo times
  // its uplink (for up to `timing_wait_us`), it is dealt nothing if an
  // equal share would deal it more than one chunk meanwhile.
  void note_echo(uint32_t id, bool timing = false, Micros now = 0,
                 Micros timing_wait_us = 0);
  void end_timing(uint32_t id);
  // What the member's uplink carried between the two echoes of its first
  // chunk (protocol.md 10.7), kb/s: a learned upload limit, applied as a
  // stated one (the lower of the two when it stated one too).
  void note_flood_rate(uint32_t id, int64_t kbps);
  int64_t learned_kbps(uint32_t id) const;
  void note_missed_echo(uint32_t id);
  bool proven(uint32_t id) const;

  // True while every weight is 1: deal plain round robin.
  bool uniform() const { return non_uniform_ == 0 && trials_ == 0; }
  // Smooth weighted round robin over the members in order: id_at(i) is the
  // id of member i of n. Returns the index dealt the next chunk, or n if
  // every weight is 0 (the caller then falls back to round robin).
  template <typename IdAt>
  size_t pick(size_t n, IdAt id_at) {
    double total = 0;
    size_t best = n;
    double best_credit = 0;
    for (size_t i = 0; i < n; ++i) {
      Entry& e = entry(id_at(i));
      if (e.weight <= 0 || e.trial || (e.timing && e.timing_restricted)) {
        continue;
      }
      e.credit += e.weight;
      total += e.weight;
      if (best == n || e.credit > best_credit) {
        best = i;
        best_credit = e.credit;
      }
    }
    if (best < n) entry(id_at(best)).credit -= total;
    return best;
  }

  // Who floods a re-dealt chunk of `origin`: a member dealt chunks and
  // proven by an echo (one on trial may be a free rider too), the one busy
  // least recently (dealt or carrying a chunk): a flood takes its uplink a
  // while, and one still flooding would make the re-dealt chunk wait.
  // Returns n if there is none.
  template <typename IdAt>
  size_t pick_carrier(size_t n, IdAt id_at, uint32_t origin, Micros now) {
    size_t best = n;
    Micros best_busy = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t id = id_at(i);
      const Entry& e = entry(id);
      if (id == origin || e.weight <= 0 || !e.proven) continue;
      if (best == n || e.busy_us < best_busy) {
        best = i;
        best_busy = e.busy_us;
      }
    }
    if (best < n) entry(id_at(best)).busy_us = now;
    return best;
  }

  double weight(uint32_t id) const;
  // Fraction of its copies the team received in the last period (1 when
  // not measured yet).
  double forwarding(uint32_t id) const;
  // Its share of the chunks: weight over the sum of weights.
  double share(uint32_t id) const;

 private:
  struct Counts {
    uint64_t dealt = 0;
    uint64_t nacked = 0;
  };
  struct Entry {
    double weight = 1;
    // What it was seen to forward when last cut, in weight; it grows back
    // up to this, which itself creeps up while nothing is missed.
    double ceiling = 1;
    double credit = 0;
    double forwarding = 1;
    // Chunks dealt in the current period and in the previous one (judged
    // at the end of the current one, when their NACKs had time to come).
    Counts current;
    Counts previous;
    int64_t stated_kbps = -1;   // -1: no stated limit
    int64_t learned_kbps = -1;  // -1: not measured
    // Flood checks.
    bool proven = false;             // echoed a chunk in time
    bool trial = false;              // a chunk of its awaits its echo
    bool timing = false;             // its first flood's end echo is awaited
    bool timing_restricted = false;  // dealt nothing meanwhile
    bool provisional = false;  // weighed by its learned limit, rate unknown
    Micros busy_us = 0;        // last dealt or re-dealt a chunk
  };
  Entry& entry(uint32_t id) { return entries_[id]; }
  void set_weight(Entry& e, double weight);
  void end_trial(Entry& e);
  void revise(Entry& e, size_t team);
  void measure_rate(size_t bytes, Micros now);
  void apply_stated(size_t team);
  void apply_provisional();
  static int64_t limit_kbps(const Entry& e);
  bool limited(const Entry& e, size_t team) const;
  double stated_share(const Entry& e, size_t team) const;

  AcsConfig config_;
  std::unordered_map<uint32_t, Entry> entries_;
  size_t non_uniform_ = 0;  // entries whose weight is not 1
  size_t trials_ = 0;       // entries with a chunk on trial
  double total_weight_ = 0;
  Micros next_update_us_ = 0;
  bool started_ = false;
  ChunkNumber current_from_ = 0;  // first chunk of the current period
  ChunkNumber previous_from_ = 0;
  // The stream rate, from the bytes dealt (stated limits need it).
  double stream_kbps_ = 0;
  size_t chunk_bytes_ = 0;  // the last chunk dealt
  Micros rate_from_us_ = 0;
  uint64_t rate_bytes_ = 0;
  bool any_stated_ = false;
  // Chunks dealt since the first, for the chunk rate before the stream
  // rate is measured.
  Micros first_dealt_us_ = 0;
  uint64_t dealt_count_ = 0;
};

}  // namespace p2psp
