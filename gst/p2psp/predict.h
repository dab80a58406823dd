// gst-p2psp: port prediction for members behind a NAT that maps each
// destination apart but hands out its public ports in sequence
// (docs/protocol.md 3.3, P2PSP's NTS).
//
// Such a NAT gives a newcomer one port towards the splitter (the endpoint
// PEER_JOINED names) and the next few ones, a step apart, to the HELLOs it
// sends the members TEAM listed a moment later. Its HELLO to us was dropped
// by our own NAT's filter, and ours to the named endpoint by its NAT; a
// PROBE to the right one of those next ports passes its NAT (it answers the
// newcomer's own flow to us) and opens ours to the answer.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <cstdint>
#include <vector>

namespace p2psp {

class PortPredictions {
 public:
  // The newcomer's HELLOs went out long before this, and a direct
  // exchange (any NAT that keeps one port per socket) has been heard.
  static constexpr Micros kFirstAfterUs = 500000;
  static constexpr Micros kRetryUs = 500000;
  static constexpr int kRounds = 3;
  // Ports tried above the named one: the newcomer's HELLOs to the members
  // before us and a few more, and as many again per member already behind
  // its address: those open flows on the same counter meanwhile (their
  // own HELLOs, and PROBE rounds like ours, one new flow per port).
  static constexpr uint16_t kMinWindow = 8;
  static constexpr uint16_t kMaxWindow = 64;
  static constexpr uint16_t kExtraPorts = 4;
  // Bounds what the splitter can make a peer track (a full table drops
  // the oldest).
  static constexpr size_t kMaxCandidates = 256;

  struct Due {
    uint32_t peer_id = 0;
    Endpoint base;  // the endpoint the splitter named
    uint16_t window = 0;
  };

  // The window for a team of this many members (ourselves excluded),
  // `mates` of them behind the newcomer's public address.
  static uint16_t window_for(size_t members, size_t mates);

  void add(uint32_t peer_id, const Endpoint& base, uint16_t window, Micros now);
  void forget(uint32_t peer_id);
  // `from` is one of the ports predicted for this member.
  bool matches(uint32_t peer_id, const Endpoint& from) const;
  // The members whose window is to be probed now; each comes back at most
  // kRounds times, kRetryUs apart, then is dropped.
  std::vector<Due> take_due(Micros now);
  Micros next_due_us() const;  // UINT64_MAX: none
  size_t size() const { return candidates_.size(); }

  // The ports a round probed keep our own NAT open towards them for a while
  // (Linux: 30 s for a flow nothing answered): a later newcomer behind the
  // same sequential NAT, whose HELLO leaves from one of them, gets through
  // because of that round.
  static constexpr Micros kProbedKeptUs = 30000000;
  static constexpr size_t kMaxProbed = 64;
  void note_probed(const Due& round, Micros now);
  bool probed_recently(const Endpoint& from, Micros now) const;

 private:
  struct Candidate {
    Due due;
    int rounds = 0;
    Micros due_us = 0;
  };
  std::vector<Candidate> candidates_;
  struct Probed {
    Due round;
    Micros at_us = 0;
  };
  std::vector<Probed> probed_;
};

// The predicted endpoints of one round: the `window` ports above `base`'s,
// as far as the port numbers go.
std::vector<Endpoint> predicted_endpoints(const Endpoint& base,
                                          uint16_t window);

}  // namespace p2psp
