// gst-p2psp: peers behind one NAT (P2PSP's EMS, docs/protocol.md 3.2).
//
// Two members behind one NAT see each other only at its public address,
// which a NAT without hairpinning never loops back: without help their
// chunks go through a relay or the splitter. A peer therefore reports its
// own UDP endpoints on its LAN in JOIN; the splitter tells members that
// share a public address each other's (PEER_LOCAL), and each probes the
// other's LAN endpoint like any address it has not validated (3.1) before
// moving its flood there.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <cstdint>
#include <vector>

namespace p2psp {

// Splitter: of the endpoints a member reported, those worth telling a
// member behind the same NAT: valid, with a port, not its public endpoint
// (a peer with no NAT reports that one, and loopback teams all share one
// address), at most kMaxLocalEndpoints and no repeats.
std::vector<Endpoint> usable_local_endpoints(
    const std::vector<Endpoint>& reported, const Endpoint& public_endpoint);

// Splitter: two members whose public endpoints share an address (not
// necessarily a port) are taken to sit behind one NAT.
bool behind_same_nat(const Endpoint& a, const Endpoint& b);

// Peer: the LAN endpoints the splitter named for neighbours, probed a few
// times until one echoes the cookie from there.
class LanCandidates {
 public:
  static constexpr int kAttempts = 4;
  static constexpr Micros kRetryUs = 250000;
  // Bounds what a splitter can make a peer track (one per member and
  // endpoint; a full table drops the oldest).
  static constexpr size_t kMaxCandidates = 1024;

  struct Due {
    uint32_t peer_id = 0;
    Endpoint endpoint;
  };

  void add(uint32_t peer_id, const Endpoint& endpoint, Micros now);
  void forget(uint32_t peer_id);
  bool matches(uint32_t peer_id, const Endpoint& from) const;
  // The candidates to probe now; each comes back at most kAttempts times,
  // kRetryUs apart, then is dropped.
  std::vector<Due> take_due(Micros now);
  Micros next_due_us() const;  // UINT64_MAX: none
  size_t size() const { return candidates_.size(); }

 private:
  struct Candidate {
    uint32_t peer_id = 0;
    Endpoint endpoint;
    int attempts = 0;
    Micros due_us = 0;
  };
  std::vector<Candidate> candidates_;
};

}  // namespace p2psp
