// gst-p2psp: the tracker's state (sans-I/O), issue 16.
#include <gst/p2psp/tracker.h>

#include <algorithm>
#include <tuple>

namespace p2psp {

bool Tracker::valid_channel(const std::string& name) {
  if (name.empty() || name.size() > kMaxChannelName || name[0] == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

Tracker::Tracker(const TrackerConfig& config) : config_(config) {}

Tracker::AnnounceResult Tracker::announce(const TeamAnnouncement& a,
                                          Micros now) {
  if (!valid_channel(a.channel) || !a.endpoint.valid() ||
      a.endpoint.port == 0) {
    return AnnounceResult::kInvalid;
  }
  expire(now);
  auto channel = channels_.find(a.channel);
  if (channel == channels_.end()) {
    if (channels_.size() >= config_.max_channels) {
      return AnnounceResult::kTooMany;
    }
    channel = channels_.emplace(a.channel, Teams()).first;
  }
  Teams& teams = channel->second;
  for (const auto& [id, team] : teams) {
    if (id != a.team_id && team.last.endpoint == a.endpoint) {
      return AnnounceResult::kEndpointTaken;
    }
  }
  auto it = teams.find(a.team_id);
  if (it == teams.end()) {
    if (teams.size() >= config_.max_teams_per_channel) {
      if (teams.empty()) channels_.erase(channel);
      return AnnounceResult::kTooMany;
    }
    TrackedTeam fresh;
    fresh.first_seen_us = now;
    fresh.last.peers = a.peers;
    it = teams.emplace(a.team_id, fresh).first;
  }
  TrackedTeam& team = it->second;
  // The members that arrived since the last announcement are, as far as the
  // tracker can tell, the joiners it sent there first.
  const uint32_t arrived =
      a.peers > team.last.peers ? a.peers - team.last.peers : 0;
  for (uint32_t i = 0; i < arrived && !team.pending.empty(); ++i) {
    team.pending.pop_front();
  }
  team.last = a;
  if (team.last.members.size() > TeamAnnouncement::kMaxMembers) {
    team.last.members.resize(TeamAnnouncement::kMaxMembers);
  }
  team.announced_us = now;
  return AnnounceResult::kAccepted;
}

void Tracker::withdraw(const std::string& channel, uint32_t team_id) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  it->second.erase(team_id);
  if (it->second.empty()) channels_.erase(it);
}

std::optional<TrackedTeam> Tracker::pick(const std::string& channel, Micros now,
                                         const Endpoint& avoid) {
  expire(now);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return std::nullopt;
  TrackedTeam* best = nullptr;
  uint32_t best_id = 0;
  for (auto& [id, team] : it->second) {
    if (team.full() || (avoid.valid() && team.last.endpoint == avoid)) {
      continue;
    }
    const auto key = std::make_tuple(team.load(), team.first_seen_us, id);
    if (!best ||
        key < std::make_tuple(best->load(), best->first_seen_us, best_id)) {
      best = &team;
      best_id = id;
    }
  }
  if (!best) return std::nullopt;
  best->pending.push_back(now);
  ++best->joiners_sent;
  return *best;
}

uint32_t Tracker::moves_for(const std::string& channel, uint32_t team_id,
                            Micros now) {
  auto c = channels_.find(channel);
  if (config_.rebalance_gap == 0 || c == channels_.end()) return 0;
  auto it = c->second.find(team_id);
  if (it == c->second.end() || it->second.last.peers == 0) return 0;
  TrackedTeam& team = it->second;
  uint32_t lightest = UINT32_MAX;
  for (const auto& [id, other] : c->second) {
    if (id != team_id && !other.full()) {
      lightest = std::min(lightest, other.load());
    }
  }
  if (lightest == UINT32_MAX || team.load() < lightest + config_.rebalance_gap)
    return 0;
  if (team.moves_asked == 0) {
    team.move_interval_us = config_.move_interval_us;
  } else {
    if (!team.move_judged &&
        now >= team.move_asked_us + config_.move_interval_us) {
      // The last move did not shrink the team: ask less often.
      const bool shrank = team.last.peers < team.peers_at_move;
      team.move_interval_us = shrank ? config_.move_interval_us
                                     : std::min(team.move_interval_us * 2,
                                                config_.max_move_interval_us);
      team.move_judged = true;
    }
    if (now < team.move_asked_us + team.move_interval_us) return 0;
  }
  team.move_asked_us = now;
  team.peers_at_move = team.last.peers;
  team.move_judged = false;
  ++team.moves_asked;
  return 1;
}

void Tracker::expire(Micros now) {
  for (auto channel = channels_.begin(); channel != channels_.end();) {
    Teams& teams = channel->second;
    for (auto team = teams.begin(); team != teams.end();) {
      if (now >= team->second.announced_us + config_.team_timeout_us) {
        team = teams.erase(team);
        continue;
      }
      auto& pending = team->second.pending;
      while (!pending.empty() &&
             now >= pending.front() + config_.pending_grace_us) {
        pending.pop_front();
      }
      ++team;
    }
    channel = teams.empty() ? channels_.erase(channel) : std::next(channel);
  }
}

std::vector<ChannelStatus> Tracker::status(Micros now) {
  expire(now);
  std::vector<ChannelStatus> out;
  for (const auto& [name, teams] : channels_) {
    ChannelStatus c;
    c.name = name;
    for (const auto& [id, team] : teams) {
      c.teams.push_back(team);
      c.peers += team.last.peers;
    }
    out.push_back(std::move(c));
  }
  return out;
}

size_t Tracker::num_teams() const {
  size_t n = 0;
  for (const auto& [name, teams] : channels_) n += teams.size();
  return n;
}

}  // namespace p2psp
