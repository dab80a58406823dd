// gst-p2psp: DBS flooding (see peer_flood.h).
#include <gst/p2psp/peer_flood.h>
#include <gst/p2psp/peer_session.h>

#include <algorithm>

namespace p2psp {

void PeerFlood::queue_for(Neighbour& n, const SharedBytes& datagram, Micros now,
                          std::shared_ptr<EchoTicket> echo) {
  if (n.pending.empty()) {
    ++pending_neighbours_;
    n.pending_since_us = now;
    forward_due_.push(ForwardDue{now, n.info.id});
  }
  n.pending.push_back(Pending{datagram, std::move(echo)});
}

// The echo follows the first quarter of the copies into the uplink, in
// whatever order the queues go out: its delay at the splitter is the time
// to upload them, which a thin uplink or a free rider cannot hide.
void PeerFlood::queue_for_all(const SharedBytes& datagram, Micros now,
                              const std::function<bool(uint32_t)>& skip,
                              const Endpoint& echo_to, Outbox* out) {
  std::shared_ptr<EchoTicket> echo;
  if (echo_to.valid()) {  // counted only then: this runs for every chunk
    size_t copies = 0;
    for (const Neighbour& n : *table_) copies += skip(n.info.id) ? 0 : 1;
    echo = echo_after(copies, echo_to, datagram, out);
  }
  for (Neighbour& n : *table_) {
    if (skip(n.info.id)) continue;
    queue_for(n, datagram, now, echo);
  }
}

std::shared_ptr<EchoTicket> PeerFlood::echo_after(size_t copies,
                                                  const Endpoint& to,
                                                  const SharedBytes& datagram,
                                                  Outbox* out) {
  if (!to.valid()) return nullptr;
  auto echo =
      std::make_shared<EchoTicket>(EchoTicket{(copies + 3) / 4, to, datagram});
  if (echo->copies_left != 0) {
    if (flood_end_echo_) echo->end_copies_left = copies;
    flood_end_echo_ = false;
    return echo;
  }
  send_echo(*echo, out);  // nobody to flood to
  return nullptr;
}

void PeerFlood::count_copy(EchoTicket& echo, Outbox* out) {
  if (echo.copies_left > 0 && --echo.copies_left == 0) send_echo(echo, out);
  if (echo.end_copies_left > 0 && --echo.end_copies_left == 0) {
    send_echo(echo, out);
  }
}

void PeerFlood::send_echo(const EchoTicket& echo, Outbox* out) {
  if (tx_->datagram(echo.to, echo.datagram, out) && out && !out->udp.empty()) {
    out->udp.back().in_order = true;
  }
  ++stats_->echoes_sent;
  stats_->bytes_up += echo.datagram->size();
}

// Sends a neighbour everything pending for it. Returns false when the
// neighbour was dropped for exceeding the chunk debt.
bool PeerFlood::send_pending(size_t index, Outbox* out) {
  Neighbour& n = (*table_)[index];
  // Judged when we would give it more (see Peer's note_delivery).
  if (n.info.debt > static_cast<int64_t>(config_->max_chunk_debt)) {
    drop_(n.info.id);
    return false;
  }
  if (!n.pending.empty()) --pending_neighbours_;
  for (const Pending& pending : n.pending) {
    tx_->datagram(n.info.endpoint, pending.datagram, out);
    ++n.info.chunks_sent;
    ++stats_->chunks_forwarded;
    stats_->bytes_up += pending.datagram->size();
    if (pending.echo) count_copy(*pending.echo, out);
  }
  // Cleared, not swapped out: the queue keeps its room for the next round
  // (an allocation per chunk and neighbour otherwise, at high rates).
  n.pending.clear();
  return true;
}

void PeerFlood::send_all_pending(Outbox* out) {
  for (size_t i = 0; i < table_->size();) {
    if (send_pending(i, out)) ++i;
  }
}

void PeerFlood::send_next_neighbour(Outbox* out) {
  // Most chunks find every queue empty (flushed) or the next one full: the
  // scan below stays short either way.
  if (pending_neighbours_ == 0) return;
  const size_t count = table_->size();
  for (size_t step = 0; step < count; ++step) {
    const size_t index = (next_neighbour_ + step) % count;
    if ((*table_)[index].pending.empty()) continue;
    next_neighbour_ = index + 1;
    if (!send_pending(index, out)) next_neighbour_ = index;
    if (next_neighbour_ >= table_->size()) next_neighbour_ = 0;
    return;
  }
}

void PeerFlood::send_overdue(Micros now, Outbox* out) {
  std::vector<size_t> overdue;
  while (!forward_due_.empty() &&
         saturating_add(forward_due_.top().first, config_->forward_flush_us) <=
             now) {
    if (current_forward(forward_due_.top())) {
      overdue.push_back(table_->index_of(forward_due_.top().second));
    }
    forward_due_.pop();
  }
  if (overdue.empty()) return;
  // In team order (the order of the trigger). A neighbour dropped for its
  // debt shifts the later ones, so they are looked up again by id.
  std::sort(overdue.begin(), overdue.end());
  overdue.erase(std::unique(overdue.begin(), overdue.end()), overdue.end());
  std::vector<uint32_t> ids;
  for (size_t index : overdue) ids.push_back((*table_)[index].info.id);
  for (uint32_t peer_id : ids) {
    if (table_->contains(peer_id)) send_pending(table_->index_of(peer_id), out);
  }
}

Micros PeerFlood::forward_deadline() {
  while (!forward_due_.empty() && !current_forward(forward_due_.top())) {
    forward_due_.pop();
  }
  return forward_due_.empty() ? UINT64_MAX
                              : saturating_add(forward_due_.top().first,
                                               config_->forward_flush_us);
}

// Whether a forward_due entry still describes a neighbour's queue (not sent
// since, neighbour not removed).
bool PeerFlood::current_forward(const ForwardDue& due) const {
  const Neighbour* n =
      static_cast<const NeighbourTable*>(table_)->find(due.second);
  return n && !n->pending.empty() && n->pending_since_us == due.first;
}

void PeerFlood::on_removed(size_t index, bool had_pending) {
  if (had_pending) --pending_neighbours_;
  if (index < next_neighbour_) --next_neighbour_;
}

}  // namespace p2psp
