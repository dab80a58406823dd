// gst-p2psp: the peer's neighbour table: the members we serve, in the
// round-robin order of the DBS trigger, with their validated endpoints, and
// the indexes that find one by id or by endpoint without a scan of the team
// (every datagram and every team change looks a neighbour up). Owns each
// neighbour's forwarding queue and retransmission budget; what is done with
// them lives in peer_flood.h and peer_nack.h.
#pragma once

#include <gst/p2psp/peer.h>
#include <gst/p2psp/token_bucket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace p2psp {

// With learned shares, the splitter asks an origin to echo each chunk
// dealt to it after a quarter of its flood (protocol.md 10.7): the echo
// leaves the uplink behind those copies, so its delay tells the splitter
// in a fraction of a second whether the chunk is being flooded at all and
// how fast.
struct EchoTicket {
  size_t copies_left = 0;  // copies to send before the echo
  Endpoint to;             // the splitter
  SharedBytes datagram;
  size_t end_copies_left = 0;  // before the flood-end echo (0: none)
};

// A datagram queued for a neighbour.
struct Pending {
  SharedBytes datagram;
  std::shared_ptr<EchoTicket> echo;  // counts this copy, if set
};

struct Neighbour {
  NeighbourInfo info;
  // Datagrams to forward, as received: DBS floods the very bytes the
  // splitter sent, so nothing is re-encoded.
  std::vector<Pending> pending;
  Micros pending_since_us = 0;
  TokenBucket retransmit_budget;
  std::unordered_map<uint32_t, Micros> last_prune_us;  // by origin
  Micros heard_us = 0;  // last valid datagram from its endpoint; 0: never
};

class NeighbourTable {
 public:
  Neighbour* find(uint32_t peer_id);
  const Neighbour* find(uint32_t peer_id) const;
  Neighbour* find_at(const Endpoint& endpoint);
  bool has_endpoint(const Endpoint& e) const {
    return index_by_endpoint_.count(e) != 0;
  }
  // The neighbour with this id, if the datagram comes from its endpoint.
  Neighbour* find_sender(uint32_t peer_id, const Endpoint& from);
  size_t index_of(uint32_t peer_id) const { return index_by_id_.at(peer_id); }
  bool contains(uint32_t peer_id) const {
    return index_by_id_.count(peer_id) != 0;
  }

  void append(Neighbour n);
  // Erases a neighbour; its former position in *index. False if unknown.
  bool erase(uint32_t peer_id, size_t* index, Neighbour* erased);
  // Points a neighbour at a new endpoint, unless another neighbour holds
  // that one (which the indexes could not tell apart).
  bool move(Neighbour& n, const Endpoint& to, Micros now);
  uint64_t count_lan() const;

  size_t size() const { return neighbours_.size(); }
  bool empty() const { return neighbours_.empty(); }
  Neighbour& operator[](size_t i) { return neighbours_[i]; }
  const Neighbour& operator[](size_t i) const { return neighbours_[i]; }
  std::vector<Neighbour>::iterator begin() { return neighbours_.begin(); }
  std::vector<Neighbour>::iterator end() { return neighbours_.end(); }
  std::vector<Neighbour>::const_iterator begin() const {
    return neighbours_.begin();
  }
  std::vector<Neighbour>::const_iterator end() const {
    return neighbours_.end();
  }

 private:
  void reindex();

  std::vector<Neighbour> neighbours_;
  std::unordered_map<Endpoint, size_t, EndpointHash> index_by_endpoint_;
  std::unordered_map<uint32_t, size_t> index_by_id_;
};

}  // namespace p2psp
