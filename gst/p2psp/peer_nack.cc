// gst-p2psp: the peer's loss recovery (see peer_nack.h).
#include <gst/p2psp/peer_nack.h>
#include <gst/p2psp/seq.h>

namespace p2psp {

namespace {

// Evidence from a later chunk of the same origin still waits this long:
// jitter can reorder two datagrams of a very small team's round.
constexpr Micros kEvidenceGraceUs = 20000;
// Added to the learned spread for the time-based first NACK (jitter).
constexpr Micros kSpreadMarginUs = 20000;
// Chunks measured before the spread is trusted for time-based NACKs; until
// then the time-based delay is half the latency (see PeerNack::delay).
constexpr uint64_t kSpreadMinSamples = 64;

// An unanswered NACK to the splitter is asked again after its measured
// round trip (SplitterRtt), never sooner than this: on a LAN or loopback
// the measured time is a fraction of a millisecond, and a scheduling
// hiccup of either side would then double answers that were only slow.
constexpr Micros kSplitterTimeoutFloorUs = 10000;

// NACK batches are addressed to a neighbour id or to the splitter.
constexpr uint32_t kToSplitter = 0;

// NACK and LOST lists longer than one datagram holds are split.
template <typename Fn>
void in_batches(const std::vector<ChunkNumber>& numbers, Fn send_batch) {
  for (size_t at = 0; at < numbers.size(); at += kMaxNackNumbers) {
    const size_t end = std::min(numbers.size(), at + kMaxNackNumbers);
    send_batch(
        std::vector<ChunkNumber>(numbers.begin() + at, numbers.begin() + end));
  }
}

}  // namespace

bool PeerNack::on_accepted(const StoredChunk& chunk, bool from_splitter) {
  const ChunkMsg& msg = chunk.msg;
  recent_[msg.number % recent_.size()] =
      Recent{msg.number, msg.origin, chunk.datagram};
  note_previous(msg);
  auto nack = nacks_.find(msg.number);
  if (nack == nacks_.end()) return false;
  const NackState& state = nack->second;
  if (state.next_us != UINT64_MAX) {
    // Karn's rule: after a second ask, the answer may be to the first.
    if (from_splitter && state.splitter_asks == 1 &&
        chunk.arrival_us >= state.asked_splitter_us) {
      splitter_rtt_.add(chunk.arrival_us - state.asked_splitter_us);
    }
    ++stats_->recovered;
    note_silent_origin(chunk);
  }
  nack->second.next_us = UINT64_MAX;  // kept: late answers are duplicates
  return true;
}

// The time-based first NACK: a fixed delay if configured, else the learned
// spread. Until it is learned, half the latency: an origin that never sends
// (a free rider, a frozen peer) leaves no other evidence, and a short or
// small stream may never measure enough chunks.
Micros PeerNack::delay() const {
  if (config_->nack_delay_us != 0) return config_->nack_delay_us;
  const Micros learned =
      learned_nack_delay(spread_, kSpreadMarginUs, kSpreadMinSamples);
  return learned != UINT64_MAX ? learned : config_->latency_us / 2;
}

// The automatic retry period, a fraction of the latency: it leaves several
// attempts before the deadline.
Micros PeerNack::retry() const {
  const Micros configured = config_->nack_retry_us != 0
                                ? config_->nack_retry_us
                                : config_->latency_us / 6;
  return std::max<Micros>(configured, 1);
}

// After a neighbour was asked: its answer may wait behind a whole burst in
// its uplink queue, so the splitter is asked only after the spread.
Micros PeerNack::retry_after_neighbour() const {
  if (config_->nack_delay_us != 0) return retry();
  return std::max(retry(), spread_.value());
}

// A retry whose wait would end past the gap's deadline happens at the last
// call instead, one retry period before the deadline, and asks the
// splitter: after a neighbour was asked, waiting out a long spread would
// otherwise leave a chunk the origin never got (lost on the splitter's hop)
// unrecovered. Retries that fit keep their wait: an earlier ask would
// mistake slow floods for loss. First NACKs: see first_due.
Micros PeerNack::at_last_call(Micros planned, Micros deadline) const {
  if (config_->nack_delay_us != 0 || planned < deadline) return planned;
  return deadline - std::min(deadline, retry());
}

// Any accepted chunk, a NACK answer too, says whose its origin's previous
// chunk was; our own ones also how the splitter spaces our chunks.
void PeerNack::note_previous(const ChunkMsg& msg) {
  if (msg.previous == kNoPrevious) return;
  if (msg.origin == session_->id &&
      (own_spacing_ == kNoPrevious || seq_after(msg.number, own_newest_))) {
    own_newest_ = msg.number;
    own_spacing_ = msg.previous;
  }
  const ChunkNumber previous = msg.number - msg.previous;
  dealt_[previous % dealt_.size()] = Dealt{previous, msg.origin};
}

// A recovered chunk whose origin never sent us one on its own: members
// are dealt chunks they do not forward, whose loss no later chunk of
// theirs reveals. For a while, a gap every origin we hear from has passed
// counts as lost. Not always: when paths change (relays) one origin's
// chunks can overtake each other, and that rule then NACKs chunks still on
// their way.
void PeerNack::note_silent_origin(const StoredChunk& chunk) {
  const uint32_t origin = chunk.msg.origin;
  if (origin == session_->id || origin_newest_.heard_from(origin)) return;
  silent_origin_until_us_ =
      saturating_add(chunk.arrival_us, 2 * config_->latency_us);
}

// A chunk that arrived on its own tells how late chunks come (the spread)
// and that earlier chunks of its origin are no longer on their way: its
// origin's previous chunk, if still missing, becomes NACKable now.
void PeerNack::note_loss_evidence(const ChunkMsg& msg, Micros now) {
  if (nacks_.count(msg.number) != 0) return;
  spread_.add(stats_->chunk_delay_us, now);
  // The origin furthest behind moved on: older gaps may now be lost.
  const bool laggard = all_origins_past_ && !origin_newest_.later_than(
                                                msg.origin, *all_origins_past_);
  origin_newest_.note(msg.origin, msg.number);
  const ReorderBuffer& reorder = playout_->reorder;
  if (config_->nack_delay_us != 0 || reorder.tracked_gaps() == 0) return;
  if (laggard)
    due_us_ = std::min(due_us_, saturating_add(now, kEvidenceGraceUs));
  if (msg.previous == kNoPrevious) return;
  const ChunkNumber before = msg.number - msg.previous;
  if (reorder.started() && seq_before(before, reorder.head())) return;
  if (!seq_before(before, reorder.newest()) || reorder.find(before)) return;
  due_us_ = std::min(due_us_, saturating_add(now, kEvidenceGraceUs));
}

// New gaps become NACKable after the NACK delay, or on evidence (one of our
// own chunks) after the grace.
void PeerNack::note_new_gaps(Micros now) {
  const Micros first = config_->nack_delay_us != 0
                           ? delay()
                           : std::min(delay(), kEvidenceGraceUs);
  due_us_ = std::min(due_us_, saturating_add(now, first));
}

// A gap's first NACK is due: evidence that it is lost, or the delay.
bool PeerNack::first_nack_due(const ReorderBuffer::Gap& gap, Micros now) const {
  if (now >= first_due(gap)) return true;
  if (config_->nack_delay_us != 0 ||
      now < saturating_add(gap.since_us, kEvidenceGraceUs)) {
    return false;
  }
  // While members that never forward are dealt chunks (see
  // note_silent_origin), a gap every origin we hear from has passed is
  // lost, whoever's it was.
  if (all_origins_past_ && seq_before(gap.number, *all_origins_past_)) {
    return true;
  }
  // Otherwise only a known origin is evidence: under unequal shares a
  // guessed one is often wrong, and a wrong one fires NACKs for chunks still
  // on their way. Our own chunks come straight from the splitter, in order:
  // one missing after the grace is lost (and the whole team needs our copy).
  const uint32_t origin = expected_origin(gap.number);
  if (origin == session_->id && session_->id != 0) return true;
  return origin != 0 && origin_newest_.later_than(origin, gap.number);
}

// The time-based first NACK. One that would come past the deadline waits
// there only for a chunk whose origin is a neighbour: that neighbour's later
// chunks will tell (evidence). With no such neighbour (a symmetric NAT's
// peer reached through a relay, or a relay that broke) nothing else will,
// so it is asked of the splitter at the last call: tests/nat's symmetric
// team lost 15 chunks in a row at a cone peer that way.
Micros PeerNack::first_due(const ReorderBuffer::Gap& gap) const {
  const Micros planned = saturating_add(gap.since_us, delay());
  const uint32_t origin = likely_origin(gap.number);
  if (origin != 0 && table_->find(origin)) return planned;
  return at_last_call(planned,
                      saturating_add(gap.since_us, config_->latency_us));
}

SharedBytes PeerNack::held_datagram(ChunkNumber number) const {
  const Recent& r = recent_[number % recent_.size()];
  if (r.datagram && r.number == number) return r.datagram;
  const StoredChunk* held = playout_->reorder.find(number);
  return held ? held->datagram : nullptr;
}

// The origin of n, if a later chunk of it named n as its previous. 0 if not.
uint32_t PeerNack::known_origin(ChunkNumber number) const {
  const Dealt& d = dealt_[number % dealt_.size()];
  return d.number == number ? d.origin : 0;
}

// The known origin, else ourselves for the number that follows our newest
// chunk as our last two were spaced: a lost chunk of our own is otherwise
// known only when the next one comes, and meanwhile the whole team misses
// it. Exact when the splitter deals round-robin; under unequal shares the
// spacing varies, and a wrong prediction costs one splitter answer.
uint32_t PeerNack::expected_origin(ChunkNumber number) const {
  const uint32_t known = known_origin(number);
  if (known != 0 || own_spacing_ == kNoPrevious) return known;
  return number == own_newest_ + own_spacing_ ? session_->id : 0;
}

// The expected origin, else the round-robin guess.
uint32_t PeerNack::likely_origin(ChunkNumber number) const {
  const uint32_t expected = expected_origin(number);
  return expected != 0 ? expected : guess_origin(number);
}

// Without a known origin: in a steady team dealt round-robin the origin of
// n is the origin of n - N (or n + N), N the team size: the neighbour most
// likely to hold n. 0 if unknown.
uint32_t PeerNack::guess_origin(ChunkNumber number) const {
  const ChunkNumber team = health_->team_round();
  for (ChunkNumber probe : {number - team, number + team}) {
    const Recent& r = recent_[probe % recent_.size()];
    if (r.datagram && r.number == probe) return r.origin;
  }
  return 0;
}

// First attempt: the likely origin, or the next neighbour in turn. A chunk
// of our own origin only the splitter can have.
uint32_t PeerNack::first_target(ChunkNumber number) {
  if (table_->empty()) return kToSplitter;
  const uint32_t origin = likely_origin(number);
  if (origin == session_->id) return kToSplitter;
  if (origin != 0 && table_->find(origin)) return origin;
  if (const uint32_t relay = relay_holding(origin)) return relay;
  return (*table_)[turn_++ % table_->size()].info.id;
}

// The neighbour that relays an origin we have no path to: it holds what it
// relays, and its later chunks of that origin tell a loss as the origin's
// own would. 0 if there is none.
uint32_t PeerNack::relay_holding(uint32_t origin) const {
  if (origin == 0 || table_->find(origin)) return 0;
  const uint32_t relay = health_->relay_of(origin);
  return relay != 0 && table_->find(relay) ? relay : 0;
}

void PeerNack::service(Micros now, Outbox* out) {
  if (config_->max_nack_attempts == 0 ||
      session_->state != PeerState::kMember) {
    due_us_ = UINT64_MAX;
    return;
  }
  Batches batches;
  std::vector<ChunkNumber> first_seen;
  // An origin silent for long (dealt nothing lately) holds this back, and
  // the time-based NACK remains; one that never sent (a free rider) does
  // not.
  all_origins_past_.reset();
  if (now < silent_origin_until_us_)
    all_origins_past_ = origin_newest_.oldest();
  for (const ReorderBuffer::Gap& gap : playout_->reorder.missing(now)) {
    if (playout_->in_burst(gap.number)) continue;  // only the burst has those
    attempt(gap, now, &batches, &first_seen);
  }
  for (const auto& [target, numbers] : batches) {
    send_nacks(target, numbers, out);
  }
  if (health_->monitor && !first_seen.empty()) report_lost(first_seen, out);
  due_us_ = next_time(now);
}

// Adds a gap to the batch of its next target, if an attempt is due.
void PeerNack::attempt(const ReorderBuffer::Gap& gap, Micros now,
                       Batches* batches, std::vector<ChunkNumber>* first_seen) {
  auto it = nacks_.find(gap.number);
  if (it == nacks_.end()) {
    const Micros deadline = saturating_add(gap.since_us, config_->latency_us);
    if (now >= deadline || !first_nack_due(gap, now)) return;
    it = nacks_.try_emplace(gap.number).first;
    it->second.deadline_us = deadline;
  }
  NackState& nack = it->second;
  if (nack.next_us > now || nack.attempts >= config_->max_nack_attempts ||
      now >= nack.deadline_us) {
    return;
  }
  // At the last call only the splitter can still answer in time.
  const bool last = now >= at_last_call(nack.deadline_us, nack.deadline_us);
  const uint32_t target =
      nack.attempts == 0 && !last ? first_target(gap.number) : kToSplitter;
  if (nack.attempts == 0) {
    first_seen->push_back(gap.number);
    nack.first_target = target;
  }
  ++nack.attempts;
  Micros wait = retry_after_neighbour();
  if (target == kToSplitter) {
    nack.asked_splitter_us = now;
    ++nack.splitter_asks;
    wait = std::min(retry(), splitter_rtt_.timeout(kSplitterTimeoutFloorUs));
  }
  nack.next_us =
      std::max(saturating_add(now, std::min(wait, retry())),
               at_last_call(saturating_add(now, wait), nack.deadline_us));
  (*batches)[target].push_back(gap.number);
}

ChunkLoss PeerNack::describe_loss(ChunkNumber number) const {
  ChunkLoss loss;
  loss.number = number;
  loss.origin = likely_origin(number);
  loss.relay = relay_holding(loss.origin);
  auto it = nacks_.find(number);
  if (it != nacks_.end()) {
    loss.nacks = it->second.attempts;
    loss.splitter_nacks = it->second.splitter_asks;
    loss.first_asked = it->second.first_target;
  }
  return loss;
}

void PeerNack::send_nacks(uint32_t target,
                          const std::vector<ChunkNumber>& numbers,
                          Outbox* out) {
  const Neighbour* n = target == kToSplitter ? nullptr : table_->find(target);
  const Endpoint to = n ? n->info.endpoint : session_->splitter_udp;
  in_batches(numbers, [&](std::vector<ChunkNumber> batch) {
    stats_->nacks_sent += batch.size();
    if (!n) stats_->nacks_to_splitter += batch.size();
    tx_->control(
        to,
        encode_nack(NackMsg{session_->team_id, session_->id, std::move(batch)}),
        out);
  });
}

void PeerNack::report_lost(const std::vector<ChunkNumber>& numbers,
                           Outbox* out) {
  in_batches(numbers, [&](std::vector<ChunkNumber> batch) {
    stats_->lost_reports_sent += batch.size();
    tx_->control(session_->splitter_udp,
                 encode_lost(LostMsg{session_->team_id, session_->id,
                                     session_->token, std::move(batch)}),
                 out);
  });
}

// When a missing number next needs a NACK: its first one is due a NACK delay
// after it was seen missing, the others at their retry time.
Micros PeerNack::next_time(Micros now) const {
  Micros next = UINT64_MAX;
  for (const ReorderBuffer::Gap& gap : playout_->reorder.missing(UINT64_MAX)) {
    if (playout_->in_burst(gap.number)) continue;
    auto it = nacks_.find(gap.number);
    if (it == nacks_.end()) {
      // Due by time, or evidence may be there, waiting out the grace; never
      // once the deadline passed (the gap is released as lost).
      const Micros deadline = saturating_add(gap.since_us, config_->latency_us);
      const Micros due = first_due(gap);
      const Micros graced = saturating_add(gap.since_us, kEvidenceGraceUs);
      if (now >= deadline) continue;
      if (due < deadline) next = std::min(next, std::max(due, now + 1));
      if (config_->nack_delay_us == 0 && graced > now && graced < deadline)
        next = std::min(next, graced);
      continue;
    }
    const NackState& nack = it->second;
    // Past its deadline a gap is only waiting to be released as lost.
    if (nack.attempts < config_->max_nack_attempts &&
        nack.next_us < nack.deadline_us && now < nack.deadline_us) {
      next = std::min(next, nack.next_us);
    }
  }
  return next;
}

void PeerNack::on_nack(Neighbour& from, const NackMsg& nack, Micros now,
                       Outbox* out) {
  for (ChunkNumber number : nack.numbers) {
    SharedBytes datagram = held_datagram(number);
    if (!datagram) continue;
    if (!from.retransmit_budget.take(now)) {
      ++stats_->retransmits_limited;
      continue;
    }
    ++stats_->retransmits_sent;
    stats_->bytes_up += datagram->size();
    ++from.info.chunks_sent;
    tx_->datagram(from.info.endpoint, datagram, out);
  }
}

}  // namespace p2psp
