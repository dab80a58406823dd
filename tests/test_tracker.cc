// The tracker's state (gst/p2psp/tracker.h): announcements, balancing of
// joiners across a channel's teams, expiry.
#include <gst/p2psp/tracker.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

namespace p2psp {
namespace {

constexpr Micros kSecond = 1000000;

TeamAnnouncement team(const std::string& channel, uint32_t id, uint32_t peers,
                      uint32_t max_peers = 6) {
  TeamAnnouncement a;
  a.channel = channel;
  a.team_id = id;
  a.endpoint = Endpoint::ipv4(10, 0, 0, static_cast<uint8_t>(id), 4552);
  a.peers = peers;
  a.max_peers = max_peers;
  return a;
}

TEST(Tracker, ChannelNamesAreChecked) {
  EXPECT_TRUE(Tracker::valid_channel("live"));
  EXPECT_TRUE(Tracker::valid_channel("radio-1.ogg"));
  EXPECT_FALSE(Tracker::valid_channel(""));
  EXPECT_FALSE(Tracker::valid_channel(".hidden"));
  EXPECT_FALSE(Tracker::valid_channel("a/b"));
  EXPECT_FALSE(Tracker::valid_channel("a b"));
  EXPECT_FALSE(Tracker::valid_channel(std::string(65, 'a')));
  EXPECT_TRUE(Tracker::valid_channel(std::string(64, 'a')));
  Tracker t;
  EXPECT_EQ(t.announce(team("../x", 1, 0), 0),
            Tracker::AnnounceResult::kInvalid);
  TeamAnnouncement no_port = team("live", 1, 0);
  no_port.endpoint.port = 0;
  EXPECT_EQ(t.announce(no_port, 0), Tracker::AnnounceResult::kInvalid);
  EXPECT_EQ(t.num_teams(), 0u);
}

TEST(Tracker, UnknownChannelHasNoTeam) {
  Tracker t;
  EXPECT_FALSE(t.pick("live", 0));
  ASSERT_EQ(t.announce(team("live", 1, 0), 0),
            Tracker::AnnounceResult::kAccepted);
  EXPECT_FALSE(t.pick("other", 0));
  ASSERT_TRUE(t.pick("live", 0));
}

// 30 joiners arrive faster than the splitters announce: the joiners sent
// since the last announcement count, so the teams stay within one peer.
TEST(Tracker, BurstOfJoinersIsSpreadEvenly) {
  Tracker t;
  for (uint32_t id = 1; id <= 5; ++id) t.announce(team("live", id, 0), 0);
  std::map<uint32_t, int> sent;
  for (int i = 0; i < 30; ++i) {
    auto picked = t.pick("live", 1000 + i);
    ASSERT_TRUE(picked) << i;
    ++sent[picked->last.team_id];
  }
  for (uint32_t id = 1; id <= 5; ++id) EXPECT_EQ(sent[id], 6) << id;
  // Every team is full now (6 of 6, counting the pending joiners).
  EXPECT_FALSE(t.pick("live", 2000));
}

TEST(Tracker, AnnouncementsReplacePendingJoiners) {
  Tracker t;
  t.announce(team("live", 1, 0), 0);
  t.announce(team("live", 2, 0), 0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(t.pick("live", 10));
  // Team 1 saw its 2 joiners arrive, team 2 only 1 of them: 2 + (1 + 1).
  t.announce(team("live", 1, 2), 100);
  t.announce(team("live", 2, 1), 100);
  auto status = t.status(100);
  ASSERT_EQ(status.size(), 1u);
  ASSERT_EQ(status[0].teams.size(), 2u);
  EXPECT_EQ(status[0].teams[0].load(), 2u);
  EXPECT_EQ(status[0].teams[1].load(), 2u);
  EXPECT_EQ(status[0].peers, 3u);
  // The joiner that never arrived stops counting after the grace period.
  status = t.status(10 + TrackerConfig().pending_grace_us);
  EXPECT_EQ(status[0].teams[1].load(), 1u);
  // So the next joiner goes to team 2.
  EXPECT_EQ(t.pick("live", 10 + TrackerConfig().pending_grace_us)->last.team_id,
            2u);
}

TEST(Tracker, FullTeamsAreSkippedAndNoLimitMeansNoLimit) {
  Tracker t;
  t.announce(team("live", 1, 6), 0);  // full
  t.announce(team("live", 2, 5), 0);
  EXPECT_EQ(t.pick("live", 1)->last.team_id, 2u);
  EXPECT_FALSE(t.pick("live", 2));  // 2 is full now too
  t.announce(team("radio", 3, 1000, 0), 0);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(t.pick("radio", 3));
}

TEST(Tracker, SilentOrWithdrawnTeamsAreForgotten) {
  TrackerConfig config;
  config.team_timeout_us = 5 * kSecond;
  Tracker t(config);
  t.announce(team("live", 1, 0), 0);
  t.announce(team("live", 2, 3), 0);
  t.announce(team("live", 2, 3), 4 * kSecond);
  // Team 1 went silent: joiners go to team 2 although it has more peers.
  EXPECT_EQ(t.pick("live", 5 * kSecond)->last.team_id, 2u);
  EXPECT_EQ(t.num_teams(), 1u);
  t.withdraw("live", 2);
  EXPECT_EQ(t.num_teams(), 0u);
  EXPECT_TRUE(t.status(5 * kSecond).empty());
}

TEST(Tracker, OneEndpointIsOneTeam) {
  Tracker t;
  t.announce(team("live", 1, 0), 0);
  TeamAnnouncement squatter = team("live", 9, 0);
  squatter.endpoint = team("live", 1, 0).endpoint;
  EXPECT_EQ(t.announce(squatter, 1), Tracker::AnnounceResult::kEndpointTaken);
  EXPECT_EQ(t.num_teams(), 1u);
}

TEST(Tracker, LimitsBoundWhatAnnouncementsCanMakeItHold) {
  TrackerConfig config;
  config.max_channels = 3;
  config.max_teams_per_channel = 2;
  Tracker t(config);
  for (int c = 0; c < 3; ++c) {
    ASSERT_EQ(t.announce(team("c" + std::to_string(c), 1, 0), 0),
              Tracker::AnnounceResult::kAccepted);
  }
  EXPECT_EQ(t.announce(team("c3", 1, 0), 0), Tracker::AnnounceResult::kTooMany);
  ASSERT_EQ(t.announce(team("c0", 2, 0), 0),
            Tracker::AnnounceResult::kAccepted);
  EXPECT_EQ(t.announce(team("c0", 3, 0), 0), Tracker::AnnounceResult::kTooMany);
  EXPECT_EQ(t.num_teams(), 4u);
}

// Random announcements, joins and time: the picked team is always a least
// loaded one with room.
TEST(Tracker, PickIsAlwaysALeastLoadedTeamWithRoom) {
  std::mt19937 rng(3);
  Tracker t;
  Micros now = 0;
  for (int step = 0; step < 5000; ++step) {
    now += rng() % 200000;
    const uint32_t id = 1 + rng() % 8;
    if (rng() % 3 == 0) {
      t.announce(team("live", id, rng() % 8, 8), now);
      continue;
    }
    const auto before = t.status(now);
    auto picked = t.pick("live", now);
    uint32_t least = UINT32_MAX;
    for (const auto& c : before) {
      for (const auto& tt : c.teams) {
        if (!tt.full()) least = std::min(least, tt.load());
      }
    }
    if (!picked) {
      EXPECT_EQ(least, UINT32_MAX);
      continue;
    }
    EXPECT_EQ(picked->load() - 1, least);  // load() counts the new joiner
  }
}

// A team added to a full channel starts empty: the full ones are asked to
// move members to it, one at a time, until the teams are within one.
TEST(Tracker, FullTeamsMoveMembersToANewTeam) {
  Tracker t;
  Micros now = kSecond;
  uint32_t sizes[4] = {0, 6, 6, 0};
  for (int round = 0; round < 20; ++round) {
    for (uint32_t id = 1; id <= 3; ++id) {
      ASSERT_EQ(t.announce(team("live", id, sizes[id]), now),
                Tracker::AnnounceResult::kAccepted);
      if (t.moves_for("live", id, now) == 0) continue;
      // The splitter removes one member; it rejoins through the tracker.
      --sizes[id];
      auto picked = t.pick("live", now, team("live", id, 0).endpoint);
      ASSERT_TRUE(picked);
      ++sizes[picked->last.team_id];
    }
    now += kSecond;
  }
  EXPECT_EQ(sizes[1] + sizes[2] + sizes[3], 12u);
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_EQ(sizes[id], 4u) << id;
}

TEST(Tracker, NoMoveWithinTheGapOrWithoutRoomOrWhenDisabled) {
  Tracker t;
  t.announce(team("live", 1, 4), 0);
  t.announce(team("live", 2, 3), 0);
  EXPECT_EQ(t.moves_for("live", 1, 0), 0u);  // within one
  t.announce(team("live", 3, 5), 0);
  EXPECT_EQ(t.moves_for("live", 3, 0), 1u);  // 2 above team 2
  t.announce(team("live", 1, 6), kSecond);
  t.announce(team("live", 2, 6), kSecond);
  t.announce(team("live", 4, 6, 8), kSecond);
  EXPECT_EQ(t.moves_for("live", 4, kSecond), 0u);  // the others are full
  TrackerConfig off;
  off.rebalance_gap = 0;
  Tracker never(off);
  never.announce(team("live", 1, 6), 0);
  never.announce(team("live", 2, 0), 0);
  EXPECT_EQ(never.moves_for("live", 1, 0), 0u);
  EXPECT_EQ(never.moves_for("nothing", 1, 0), 0u);
}

// A member that comes back to the same team (a direct URI) does not make
// the team move someone every 2 s: the wait doubles while moves fail.
TEST(Tracker, MovesThatDoNotShrinkTheTeamBackOff) {
  Tracker t;
  t.announce(team("live", 2, 0), 0);
  std::vector<Micros> asked;
  for (Micros now = 0; now <= 40 * kSecond; now += kSecond / 2) {
    t.announce(team("live", 1, 6), now);
    t.announce(team("live", 2, 0), now);
    if (t.moves_for("live", 1, now) == 1) asked.push_back(now);
  }
  ASSERT_GE(asked.size(), 4u);
  EXPECT_EQ(asked[1] - asked[0], 4 * kSecond);
  EXPECT_EQ(asked[2] - asked[1], 8 * kSecond);
  EXPECT_EQ(asked[3] - asked[2], 16 * kSecond);
}

}  // namespace
}  // namespace p2psp
