// gst-p2psp: DBS flooding. Owns the forwarding schedule over the neighbour
// table's queues: the DBS trigger's round-robin cursor (each received chunk
// releases one neighbour's queue, so a peer's upload follows its download),
// the count of non-empty queues, and the flush deadlines (a queue older than
// forward_flush_us goes out without the trigger). Enforces the chunk debt.
#pragma once

#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_neighbours.h>
#include <gst/p2psp/peer_tx.h>

#include <functional>
#include <queue>
#include <utility>
#include <vector>

namespace p2psp {

class PeerFlood {
 public:
  // drop: removes a neighbour that exceeded the chunk debt.
  PeerFlood(const PeerConfig* config, NeighbourTable* table, PeerTx* tx,
            PeerStats* stats, std::function<void(uint32_t)> drop)
      : config_(config),
        table_(table),
        tx_(tx),
        stats_(stats),
        drop_(std::move(drop)) {}

  void queue_for(Neighbour& n, const SharedBytes& datagram, Micros now,
                 std::shared_ptr<EchoTicket> echo = nullptr);
  // Our own chunk (or a FLOOD chunk), to every neighbour but those `skip`
  // names (members the multicast group already reached, a FLOOD chunk's
  // origin). With `echo_to` valid, a copy goes there once a quarter of the
  // neighbours' copies went out (at once with no neighbour).
  void queue_for_all(const SharedBytes& datagram, Micros now,
                     const std::function<bool(uint32_t)>& skip,
                     const Endpoint& echo_to = Endpoint(),
                     Outbox* out = nullptr);
  // The echo of `datagram` to `to` (invalid: none) after a quarter of
  // `copies`: a ticket for the queued copies to count down, or sent at
  // once (nullptr) when there are none.
  std::shared_ptr<EchoTicket> echo_after(size_t copies, const Endpoint& to,
                                         const SharedBytes& datagram,
                                         Outbox* out);
  // The next echo ticket also echoes after the flood's last copy (ROLE
  // flag: the splitter times our uplink by the first chunk's two echoes).
  void ask_flood_end_echo() { flood_end_echo_ = true; }
  bool any_pending() const { return pending_neighbours_ != 0; }
  void send_all_pending(Outbox* out);
  // The DBS trigger.
  void send_next_neighbour(Outbox* out);
  void send_overdue(Micros now, Outbox* out);
  Micros forward_deadline();
  // The table erased the neighbour at `index`: keeps the trigger on the
  // one that followed it.
  void on_removed(size_t index, bool had_pending);

 private:
  // pending since, peer id
  using ForwardDue = std::pair<Micros, uint32_t>;

  bool send_pending(size_t index, Outbox* out);
  void send_echo(const EchoTicket& echo, Outbox* out);
  void count_copy(EchoTicket& echo, Outbox* out);
  bool current_forward(const ForwardDue& due) const;

  const PeerConfig* config_;
  NeighbourTable* table_;
  PeerTx* tx_;
  PeerStats* stats_;
  std::function<void(uint32_t)> drop_;
  size_t next_neighbour_ = 0;
  size_t pending_neighbours_ = 0;  // neighbours with a non-empty queue
  bool flood_end_echo_ = false;
  // Neighbours with pending forwards, earliest pending_since_us first, so
  // the flush deadline is not a scan of the team on every event. Entries
  // are not removed when a queue is sent; they go stale (see
  // current_forward) and are dropped when they reach the top.
  std::priority_queue<ForwardDue, std::vector<ForwardDue>,
                      std::greater<ForwardDue>>
      forward_due_;
};

}  // namespace p2psp
