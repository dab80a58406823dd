// gst-p2psp: what every part of the peer core shares about this peer's
// place in the team: its state, its ids and token, the splitter's
// addresses, and the events the host has not taken yet. Owned by Peer::Impl;
// the modules (peer_*.h) hold a pointer to it.
#pragma once

#include <gst/p2psp/peer.h>

#include <string>
#include <utility>
#include <vector>

namespace p2psp {

struct PeerSession {
  PeerState state = PeerState::kIdle;
  bool draining_after_shutdown = false;  // REMOVED{shutdown} while a member
  uint32_t team_id = 0;
  uint32_t id = 0;
  uint64_t token = 0;
  Endpoint splitter_tcp;
  Endpoint splitter_udp;
  std::vector<PeerEvent> events;

  bool joined() const {
    return state == PeerState::kRegistering || state == PeerState::kMember;
  }

  // Whether chunks are taken and forwarded. After a splitter shutdown the
  // last chunks are still on their way (the EOS flush and the team's
  // forwards of it): they are taken and forwarded too.
  bool receiving() const {
    return joined() ||
           (state == PeerState::kRemoved && draining_after_shutdown);
  }

  void push_event(PeerEvent::Kind kind, uint32_t peer_id,
                  const Endpoint& endpoint) {
    PeerEvent event;
    event.kind = kind;
    event.peer_id = peer_id;
    event.endpoint = endpoint;
    events.push_back(std::move(event));
  }

  void end_with(PeerEvent::Kind kind, RemoveReason reason,
                const std::string& text) {
    PeerEvent event;
    event.kind = kind;
    event.reason = reason;
    event.text = text;
    events.push_back(std::move(event));
  }
};

// a + b, stuck at the maximum instead of wrapping (deadlines far away).
inline uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace p2psp
