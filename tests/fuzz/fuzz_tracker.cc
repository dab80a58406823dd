// Fuzz target: what a stranger can POST to p2psp-tracker, and what a
// tracker (or whoever answers at its address) can answer the elements. The
// bytes are an announcement body, then (same bytes) a withdrawal and the
// answers the elements read; whatever parses is fed to a tracker core with
// small limits, and a join is picked.
//
// Invariants: parsing never crashes; an accepted announcement has a valid
// channel name, an endpoint with a port and at most 64 members, and what
// the elements' writer makes of it parses again; the core never holds more
// channels or teams than its limits allow.
#include <gst/p2psp/tracker.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tracker_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static p2psp::TrackerConfig config = [] {
    p2psp::TrackerConfig c;
    c.max_channels = 8;
    c.max_teams_per_channel = 4;
    return c;
  }();
  static p2psp::Tracker tracker(config);
  static p2psp::Micros now = 0;
  now += 100000;
  const std::string body(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto a = p2psp_tracker::parse_announcement(body, "192.0.2.1", &error);
  if (a) {
    if (!p2psp::Tracker::valid_channel(a->channel) || a->endpoint.port == 0 ||
        a->members.size() > p2psp::TeamAnnouncement::kMaxMembers) {
      std::abort();
    }
    p2psp_tracker::AnnouncementBody again;
    again.team = *a;
    again.port = a->endpoint.port;
    if (!p2psp_tracker::parse_announcement(
            p2psp_tracker::announcement_json(again), "192.0.2.1", &error)) {
      std::abort();  // the writer and the parser disagree
    }
    tracker.announce(*a, now);
    tracker.moves_for(a->channel, a->team_id, now);
    tracker.pick(a->channel, now);
  } else if (error.empty()) {
    std::abort();  // a refusal always says why
  }
  std::string channel;
  uint32_t team_id = 0;
  if (p2psp_tracker::parse_withdrawal(body, &channel, &team_id, &error)) {
    tracker.withdraw(channel, team_id);
  }
  if (p2psp_tracker::parse_announce_reply(body) > 16) std::abort();
  p2psp_tracker::parse_join_uri(body);
  p2psp_tracker::parse_error(body);
  if (tracker.num_teams() > config.max_channels * config.max_teams_per_channel)
    std::abort();
  return 0;
}
