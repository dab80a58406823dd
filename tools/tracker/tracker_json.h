// gst-p2psp tracker: the JSON bodies of its HTTP API (docs/tracker.md), to
// and from the core's types, for both sides: the tracker (p2psp-tracker)
// and the elements (plugin/gstp2psptracker.cc), so one library writes and
// reads each body. Parsing is strict about types and bounds and never
// trusts a field it did not check: what a stranger POSTs goes through here
// first. json-glib; kept out of the GLib-free core (gst/p2psp/).
#pragma once

#include <gst/p2psp/tracker.h>

#include <optional>
#include <string>

namespace p2psp_tracker {

// Announcements and withdrawals are small; anything longer is refused
// before it is parsed. An announcement's member summary is at most
// TeamAnnouncement::kMaxMembers (64) entries of about 120 bytes (an IPv6
// endpoint), so 16 KiB holds the longest valid one with room to spare.
constexpr size_t kMaxRequestBody = 16384;

// What a splitter announces: the core's TeamAnnouncement, but with `host`
// as text (empty: the tracker takes the address the request came from).
struct AnnouncementBody {
  p2psp::TeamAnnouncement team;  // its endpoint is not used
  std::string host;
  uint16_t port = 0;
};
std::string announcement_json(const AnnouncementBody& a);
std::string withdrawal_json(const std::string& channel, uint32_t team_id);
// The tracker's answer to an announcement: {"interval-ms", "move"}.
std::string announce_reply_json(uint32_t moves);
// "move" of an announce answer (0 when absent or malformed).
uint32_t parse_announce_reply(const std::string& body);
// The "uri" of a join answer; empty when there is none.
std::string parse_join_uri(const std::string& body);
// The "error" of an error answer; empty when there is none.
std::string parse_error(const std::string& body);

// An announcement ("channel", "team-id", "port" required; "host" optional:
// `peer_host`, the address the request came from, when absent or empty).
// nullopt, with *error set, on anything malformed.
std::optional<p2psp::TeamAnnouncement> parse_announcement(
    const std::string& body, const std::string& peer_host, std::string* error);
// A withdrawal: {"channel": ..., "team-id": ...}.
bool parse_withdrawal(const std::string& body, std::string* channel,
                      uint32_t* team_id, std::string* error);

std::string join_json(const p2psp::TrackedTeam& team);
// now_us: the clock the core was given (for "announced-ms-ago").
std::string status_json(const std::vector<p2psp::ChannelStatus>& channels,
                        p2psp::Micros now_us, p2psp::Micros uptime_us);
std::string error_json(const std::string& message);

}  // namespace p2psp_tracker
