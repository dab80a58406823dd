// gst-p2psp: IP multicast on the splitter's LAN (P2PSP's IMS,
// docs/protocol.md 8.5).
//
// The splitter names a group after WELCOME (MULTICAST). A member whose
// host receives the group says so (MULTICAST_RECEIVING) after its first
// chunk from there; from then on the chunks the round-robin gives it go to
// the group, with their origin stated, instead of to its endpoint. Every
// member on the LAN takes every chunk from the group, and the origin floods
// its own only to neighbours that do not receive the group (members
// elsewhere), which feed the LAN with theirs as in plain DBS. So each chunk
// leaves the splitter once, whatever the number of members on its LAN.
#pragma once

#include <gst/p2psp/outbox.h>

namespace p2psp {

// A new member's chunks also go to the group this long, so that a member
// on the LAN finds out it receives the group (it has nothing else to tell
// from): a few of its chunks, twice.
constexpr Micros kMulticastDiscoveryUs = 2000000;

struct MulticastRoute {
  bool group = false;    // send the chunk to the group (origin stated)
  bool unicast = false;  // send it to the member's endpoint
};

// Where the splitter sends a chunk whose origin the round-robin picked.
inline MulticastRoute multicast_route(bool group_configured,
                                      bool member_receives_group,
                                      Micros member_age_us) {
  if (!group_configured) return MulticastRoute{false, true};
  if (member_receives_group) return MulticastRoute{true, false};
  return MulticastRoute{member_age_us < kMulticastDiscoveryUs, true};
}

}  // namespace p2psp
