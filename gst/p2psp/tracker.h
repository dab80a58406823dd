// gst-p2psp: the tracker's state (sans-I/O), issue 16.
//
// A channel is what a viewer asks for by name (an Icecast mountpoint); it is
// served by one or more teams, each a splitter. Splitters announce their
// team to the tracker periodically; a joining peer asks the tracker which
// team of a channel to join. The tracker balances joiners across the teams
// of a channel (least loaded first, never a full one) and forgets a team
// whose announcements stop.
//
// Announcements lag behind joins (a splitter announces once a second), so a
// burst of joiners would all be sent to the team that looked emptiest. The
// tracker therefore counts the joiners it sent to a team since its latest
// announcement as members already, until they show up in an announcement or
// a grace period passes.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace p2psp {

struct TrackerConfig {
  // A team not announced for this long is forgotten.
  Micros team_timeout_us = 5000000;
  // Joiners sent to a team count towards its size for this long, unless an
  // announcement taken after them includes them.
  Micros pending_grace_us = 3000000;
  // Rebalancing (docs/tracker.md): a team this many members above the
  // lightest team of its channel that has room is asked to move one member
  // (which rejoins through the tracker, to the lightest team). 0: never.
  uint32_t rebalance_gap = 2;
  // At most one move per team this often; doubled (up to
  // max_move_interval_us) while a move does not make the team smaller,
  // e.g. a member that rejoins the same team by a direct URI.
  Micros move_interval_us = 2000000;
  Micros max_move_interval_us = 60000000;
  size_t max_channels = 1024;
  size_t max_teams_per_channel = 256;
};

// One member as the splitter reports it, for the team's picture on the
// status page (what p2psp-teamviz draws from the splitter's stats).
struct TeamMember {
  uint32_t id = 0;
  Endpoint endpoint;  // UDP, as the splitter sees it
  bool monitor = false;
  uint64_t chunks_sent = 0;   // by the splitter to it
  uint32_t loss_counter = 0;  // monitors' reports against it
};

// What a splitter says about its team.
struct TeamAnnouncement {
  std::string channel;  // kMaxChannelName bytes at most, see valid_channel()
  uint32_t team_id = 0;
  Endpoint endpoint;       // where peers join (the splitter's TCP endpoint)
  uint32_t peers = 0;      // members now
  uint32_t max_peers = 0;  // 0: no limit
  uint64_t bitrate_bps = 0;
  uint64_t chunks_cut = 0;
  uint64_t chunks_lost_reported = 0;  // monitors' LOST reports
  Micros uptime_us = 0;
  // The first kMaxMembers members (a summary: `peers` counts them all).
  static constexpr size_t kMaxMembers = 64;
  std::vector<TeamMember> members;
};

struct TrackedTeam {
  TeamAnnouncement last;
  Micros announced_us = 0;  // when `last` arrived
  Micros first_seen_us = 0;
  // When the joiners sent and not yet seen in an announcement were sent,
  // oldest first (within the grace period).
  std::deque<Micros> pending;
  uint64_t joiners_sent = 0;  // in all
  // Rebalancing: when a move was last asked, the members then, the wait
  // before the next one, and moves asked in all.
  Micros move_asked_us = 0;
  uint32_t peers_at_move = 0;
  Micros move_interval_us = 0;
  bool move_judged = false;
  uint64_t moves_asked = 0;

  // Members now, counting the joiners sent since the last announcement.
  uint32_t load() const {
    return last.peers + static_cast<uint32_t>(pending.size());
  }
  bool full() const { return last.max_peers != 0 && load() >= last.max_peers; }
};

struct ChannelStatus {
  std::string name;
  std::vector<TrackedTeam> teams;  // by team id
  uint32_t peers = 0;              // sum of the teams' announced members
};

class Tracker {
 public:
  enum class AnnounceResult {
    kAccepted,
    kInvalid,        // bad channel name, no endpoint
    kTooMany,        // max_channels or max_teams_per_channel reached
    kEndpointTaken,  // another live team of the channel announces there
  };
  static constexpr size_t kMaxChannelName = 64;
  // Channel names: 1 to kMaxChannelName of [A-Za-z0-9._-], not starting with
  // a dot (they appear in URIs and file names).
  static bool valid_channel(const std::string& name);

  explicit Tracker(const TrackerConfig& config = TrackerConfig());

  AnnounceResult announce(const TeamAnnouncement& a, Micros now);
  // A splitter that stops says so: its team is forgotten at once.
  void withdraw(const std::string& channel, uint32_t team_id);
  // The team a joiner of `channel` should join: the least loaded one that is
  // not full (ties: the longest-running one, then the lowest id), other
  // than `avoid` (a team the joiner just failed to reach, while the tracker
  // has not noticed its splitter is gone). Counted as sent to it. None when
  // the channel has no team with room.
  std::optional<TrackedTeam> pick(const std::string& channel, Micros now,
                                  const Endpoint& avoid = Endpoint());
  // How many members the team should move to another team of its channel
  // now (0 or 1; asked after its announcement): when it has
  // rebalance_gap or more members than the lightest team with room. The
  // splitter removes one, which rejoins through the tracker, avoiding it.
  // Joins alone cannot keep teams even: a team added to a full channel
  // starts empty while the others stay full.
  uint32_t moves_for(const std::string& channel, uint32_t team_id, Micros now);
  // Forgets silent teams and empty channels, ends pending grace periods.
  void expire(Micros now);
  std::vector<ChannelStatus> status(Micros now);
  size_t num_teams() const;
  bool has_channel(const std::string& channel) const {
    return channels_.count(channel) != 0;
  }

 private:
  using Teams = std::map<uint32_t, TrackedTeam>;
  TrackerConfig config_;
  std::map<std::string, Teams> channels_;
};

}  // namespace p2psp
