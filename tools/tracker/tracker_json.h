// gst-p2psp tracker: the JSON bodies of its HTTP API (docs/tracker.md), to
// and from the core's types. Parsing is strict about types and bounds and
// never trusts a field it did not check: what a stranger POSTs goes through
// here first.
#pragma once

#include <gst/p2psp/tracker.h>

#include <optional>
#include <string>

namespace p2psp_tracker {

// Announcements and withdrawals are small; anything longer is refused
// before it is parsed.
constexpr size_t kMaxRequestBody = 4096;

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
