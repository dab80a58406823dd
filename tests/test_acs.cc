// Loss evidence for NACKs (gst/p2psp/nack.h) and adaptive chunk shares
// (gst/p2psp/acs.h), on their own.
#include <gst/p2psp/acs.h>
#include <gst/p2psp/nack.h>
#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace p2psp {
namespace {

constexpr Micros kSecond = 1000000;

TEST(Spread, MaximumOverTwoWindowsThenForgotten) {
  SpreadEstimator spread(2 * kSecond);
  EXPECT_EQ(spread.value(), 0u);
  spread.add(400000, 0);
  spread.add(100000, kSecond);
  EXPECT_EQ(spread.value(), 400000u);
  spread.add(50000, 2 * kSecond + 1);  // new window: the old one is kept
  EXPECT_EQ(spread.value(), 400000u);
  spread.add(60000, 4 * kSecond + 2);  // two windows on: forgotten
  EXPECT_EQ(spread.value(), 60000u);
  EXPECT_EQ(spread.samples(), 4u);
}

TEST(Spread, NoTimeBasedNackUntilEnoughSamples) {
  SpreadEstimator spread;
  for (int i = 0; i < 63; ++i) spread.add(400000, i);
  EXPECT_EQ(learned_nack_delay(spread, 20000, 64), UINT64_MAX);
  spread.add(400000, 63);
  EXPECT_EQ(learned_nack_delay(spread, 20000, 64), 400000u + 100000 + 20000);
}

// RFC 6298: the first answer sets the round trip and half of it as the
// variation (timeout 3 x); steady answers shrink the variation towards
// the floor; a slow answer widens it at once.
TEST(SplitterRtt, TimeoutFromTheAnswersAtLeastTheFloor) {
  SplitterRtt rtt;
  EXPECT_EQ(rtt.timeout(10000), UINT64_MAX);
  rtt.add(40000);
  EXPECT_EQ(rtt.timeout(10000), 40000u + 4 * 20000);
  for (int i = 0; i < 40; ++i) rtt.add(40000);
  EXPECT_LT(rtt.timeout(10000), 41000u);
  EXPECT_GE(rtt.timeout(10000), 40000u);
  rtt.add(120000);  // one late answer: srtt +10 ms, variation +20 ms
  EXPECT_GT(rtt.timeout(10000), 120000u);
  SplitterRtt fast;
  fast.add(200);  // loopback
  EXPECT_EQ(fast.timeout(10000), 10000u);
}

TEST(OriginNewest, LaterAcrossTheWrap) {
  OriginNewest newest;
  EXPECT_FALSE(newest.later_than(7, 10));
  newest.note(7, 0xFFFFFFF0u);
  newest.note(7, 5);            // after the wrap
  newest.note(7, 0xFFFFFFF8u);  // older: ignored
  EXPECT_TRUE(newest.later_than(7, 4));
  EXPECT_TRUE(newest.later_than(7, 0xFFFFFFFFu));
  EXPECT_FALSE(newest.later_than(7, 5));
  newest.forget(7);
  EXPECT_FALSE(newest.later_than(7, 4));
}

TEST(RetransmitAllowance, BurstThenOnePerChunkCutAtTheShare) {
  RetransmitAllowance allowance(250, 2);  // a quarter per chunk, burst 2
  EXPECT_TRUE(allowance.take());
  EXPECT_TRUE(allowance.take());
  EXPECT_FALSE(allowance.take());
  for (int i = 0; i < 3; ++i) allowance.on_chunk_cut();
  EXPECT_FALSE(allowance.take());
  allowance.on_chunk_cut();
  EXPECT_TRUE(allowance.take());
  RetransmitAllowance unlimited(0, 0);
  EXPECT_TRUE(unlimited.take());
}

// Deals `chunks` with `shares`, `ids` in member order; counts per id.
std::map<uint32_t, int> deal(AdaptiveShares& shares,
                             const std::vector<uint32_t>& ids, int chunks) {
  std::map<uint32_t, int> dealt;
  for (int i = 0; i < chunks; ++i) {
    const size_t at = shares.pick(ids.size(), [&](size_t k) { return ids[k]; });
    if (at < ids.size()) ++dealt[ids[at]];
  }
  return dealt;
}

TEST(AdaptiveShares, UniformUntilAMemberStatesItForwardsNothing) {
  AdaptiveShares shares;
  shares.add(1, 0);
  shares.add(2, 0);
  EXPECT_TRUE(shares.uniform());
  shares.add(3, 0, /*stated_kbps=*/0);
  EXPECT_FALSE(shares.uniform());
  EXPECT_EQ(shares.share(3), 0);
  EXPECT_DOUBLE_EQ(shares.share(1), 0.5);
  const auto dealt = deal(shares, {1, 2, 3}, 100);
  EXPECT_EQ(dealt.count(3), 0u);
  EXPECT_EQ(dealt.at(1), 50);
  EXPECT_EQ(dealt.at(2), 50);
  shares.remove(3);
  EXPECT_TRUE(shares.uniform());
}

// A member whose copies the team misses (NACKs reaching the splitter) is
// cut once its period is judged; one that is missed in full, to nothing.
TEST(AdaptiveShares, MissedCopiesCutTheWeight) {
  AcsConfig config;
  config.min_dealt = 2;
  AdaptiveShares shares(config);
  const std::vector<uint32_t> ids = {1, 2, 3, 4, 5};
  for (uint32_t id : ids) shares.add(id, 0);
  ChunkNumber number = 0;
  Micros now = 0;
  // Period 1: 20 chunks each; member 5's copies all missed (4 per chunk),
  // member 4's half missed.
  for (int i = 0; i < 100; ++i) {
    const uint32_t id = ids[i % ids.size()];
    shares.note_dealt(id, 1000, now);
    if (id == 5) shares.note_nack(5, number), shares.note_nack(5, number);
    if (id == 5) shares.note_nack(5, number), shares.note_nack(5, number);
    if (id == 4) shares.note_nack(4, number), shares.note_nack(4, number);
    ++number;
  }
  now += config.period_us;
  shares.update(now, ids.size(), number);  // period 1 is now "previous"
  EXPECT_TRUE(shares.uniform());
  now += config.period_us;
  shares.update(now, ids.size(), number);  // judged
  EXPECT_EQ(shares.weight(5), 0);
  EXPECT_NEAR(shares.forwarding(4), 0.5, 1e-9);
  EXPECT_NEAR(shares.weight(4), 0.25, 1e-9);
  EXPECT_EQ(shares.weight(1), 1);
  EXPECT_NEAR(shares.share(4), 0.25 / 3.25, 1e-9);
}

// A stated limit needs the stream rate: until it is known the member is
// dealt nothing; then its share keeps its copies within the limit.
TEST(AdaptiveShares, StatedLimitFollowsTheMeasuredStreamRate) {
  AdaptiveShares shares;
  for (uint32_t id = 1; id <= 10; ++id) shares.add(id, 0);
  shares.add(11, 0, /*stated_kbps=*/2000);
  EXPECT_EQ(shares.weight(11), 0);
  // 1 Mb/s of 1000-byte chunks: one every 8 ms, for 0.6 s.
  for (Micros t = 0; t <= 600000; t += 8000) shares.note_dealt(1, 1000, t);
  // 2000 kb/s / (1000 kb/s x 1.3) = 1.54 copies over 10 others: share
  // 0.154, weight 0.154 x (10 + w) -> about 1.8, capped at 1.
  EXPECT_EQ(shares.weight(11), 1);
  AdaptiveShares thin;
  for (uint32_t id = 1; id <= 10; ++id) thin.add(id, 0);
  thin.add(11, 0, /*stated_kbps=*/400);
  for (Micros t = 0; t <= 600000; t += 8000) thin.note_dealt(1, 1000, t);
  // One chunk to 10 others at 400 kb/s: 10 x 1060 x 8 / 400k = 0.21 s,
  // within the burst bound; 0.31 copies -> weight about 0.31 x 10.x / 10.
  EXPECT_GT(thin.weight(11), 0.3);
  EXPECT_LT(thin.weight(11), 0.33);
}

// Every member states its uplink (tests/nat/uplink.sh): nobody is left
// with weight 1 to carry the rest, so the widest uplink takes weight 1 and
// the others theirs in proportion (they were all 0, and the splitter fell
// back to an even round robin).
TEST(AdaptiveShares, EveryMemberStatingALimitIsDealtInProportion) {
  AdaptiveShares shares;
  for (uint32_t id = 1; id <= 12; ++id) {
    shares.add(id, 0, /*stated_kbps=*/id % 2 ? 300 : 2500);
  }
  // Before the stream rate is known: in proportion to the limits too.
  for (uint32_t id = 1; id <= 12; ++id) {
    EXPECT_NEAR(shares.weight(id), id % 2 ? 300.0 / 2500 : 1, 1e-9);
  }
  for (Micros t = 0; t <= 600000; t += 8000) shares.note_dealt(1, 1000, t);
  EXPECT_FALSE(shares.uniform());
  for (uint32_t id = 1; id <= 12; ++id) {
    SCOPED_TRACE("member " + std::to_string(id));
    EXPECT_NEAR(shares.weight(id), id % 2 ? 300.0 / 2500 : 1, 1e-9);
  }
  AdaptiveShares riders;  // free riders and 1.5x, every one stated
  for (uint32_t id = 1; id <= 12; ++id) {
    riders.add(id, 0, /*stated_kbps=*/id % 4 == 2 ? 0 : 1500);
  }
  for (Micros t = 0; t <= 600000; t += 8000) riders.note_dealt(1, 1000, t);
  for (uint32_t id = 1; id <= 12; ++id) {
    EXPECT_EQ(riders.weight(id), id % 4 == 2 ? 0 : 1) << "member " << id;
  }
}

TEST(AdaptiveShares, LimitTooThinForOneFloodIsDealtNothing) {
  AdaptiveShares shares;
  for (uint32_t id = 1; id <= 100; ++id) shares.add(id, 0);
  shares.add(101, 0, /*stated_kbps=*/300);  // 100 x 8480 bits: 2.8 s
  for (Micros t = 0; t <= 600000; t += 8000) shares.note_dealt(1, 1000, t);
  EXPECT_EQ(shares.weight(101), 0);
}

// As deal(), each chunk noted as dealt (10 ms apart from `t`); a pick of
// nobody deals nothing.
std::map<uint32_t, int> deal_noted(AdaptiveShares& shares,
                                   const std::vector<uint32_t>& ids, int n,
                                   Micros t) {
  std::map<uint32_t, int> dealt;
  for (int i = 0; i < n; ++i, t += 10000) {
    const size_t at = shares.pick(ids.size(), [&](size_t k) { return ids[k]; });
    if (at == ids.size()) continue;
    ++dealt[ids[at]];
    shares.note_dealt(ids[at], 1000, t);
  }
  return dealt;
}

// Members 1 to n, the last dealt a chunk every 10 ms for 0.2 s.
std::vector<uint32_t> streaming_team(AdaptiveShares& shares, uint32_t n) {
  std::vector<uint32_t> ids;
  for (uint32_t id = 1; id <= n; ++id) {
    ids.push_back(id);
    shares.add(id, 0);
  }
  for (Micros t = 0; t < 200000; t += 10000) shares.note_dealt(n, 1000, t);
  return ids;
}

// Flood checks' uplink timing (protocol.md 10.7). In a team of 12 a member
// being timed is dealt nothing (an equal share would deal it several
// chunks in 600 ms); its learned uplink then limits it as a stated one
// would, and one that carries an equal share is no limit.
TEST(AdaptiveShares, TimedUplinksLimitThinMembersOnly) {
  AdaptiveShares shares;
  const std::vector<uint32_t> ids = streaming_team(shares, 12);
  Micros t = 200000;
  for (uint32_t id = 1; id <= 12; ++id) shares.note_echo(id, true, t, 600000);
  EXPECT_FALSE(shares.uniform());
  shares.end_timing(12);
  const auto dealt = deal_noted(shares, ids, 20, t);  // to t = 390 ms
  EXPECT_EQ(dealt.size(), 1u);                        // member 12 only
  EXPECT_EQ(dealt.at(12), 20);
  t += 200000;
  // Timed before the stream rate is known: against the widest uplink.
  shares.note_flood_rate(1, 300);
  shares.note_flood_rate(2, 2500);
  for (uint32_t id = 1; id <= 12; ++id) shares.end_timing(id);
  EXPECT_NEAR(shares.weight(1), 300.0 / 2500, 1e-9);
  EXPECT_EQ(shares.weight(2), 1);
  EXPECT_EQ(shares.learned_kbps(1), 300);
  EXPECT_EQ(shares.learned_kbps(3), -1);
  // About 1 Mb/s measured: 300 kb/s carry 300 / (1000 x 1.3) copies over
  // 11 others, a share of about 0.02 (an equal one is 0.083); 2500 kb/s carry
  // more than an equal share: member 2 is dealt as an unmeasured member.
  for (; t <= 800000; t += 8000) shares.note_dealt(12, 1000, t);
  EXPECT_GT(shares.share(1), 0.015);
  EXPECT_LT(shares.share(1), 0.025);
  EXPECT_EQ(shares.weight(2), 1);
  EXPECT_EQ(shares.weight(3), 1);
}

// A team of 100 at 100 chunks a second: an equal share deals a member 0.6
// chunks in 600 ms, so timing holds nobody back.
TEST(AdaptiveShares, TimingInALargeTeamHoldsNobodyBack) {
  AdaptiveShares shares;
  const std::vector<uint32_t> ids = streaming_team(shares, 100);
  const Micros t = 200000;
  shares.note_echo(1, true, t, 600000);
  const auto dealt = deal_noted(shares, ids, 300, t);
  EXPECT_EQ(dealt.at(1), 3);
}

// Flood checks (protocol.md 10.7): a member is on trial until it echoes a
// chunk in time, and is dealt no other chunk meanwhile; a proven member
// carries re-dealt chunks, the one busy least recently first; a member
// that missed its trial is dealt nothing for good.
TEST(AdaptiveShares, TrialThenProvenOrDealtNothing) {
  AdaptiveShares shares;
  const std::vector<uint32_t> ids = {1, 2, 3};
  for (uint32_t id : ids) shares.add(id, 0);
  const auto id_at = [&](size_t k) { return ids[k]; };
  EXPECT_EQ(shares.pick_carrier(3, id_at, 1, 0), 3u);  // nobody proven yet
  EXPECT_TRUE(shares.on_trial(1));
  EXPECT_FALSE(shares.uniform());
  // Member 1 awaits its echo: the others get the chunks.
  auto dealt = deal(shares, ids, 10);
  EXPECT_EQ(dealt.count(1), 0u);
  EXPECT_EQ(dealt.at(2), 5);
  shares.note_echo(1);
  EXPECT_TRUE(shares.proven(1));
  EXPECT_FALSE(shares.on_trial(1));  // proven: never on trial again
  EXPECT_TRUE(shares.uniform());
  EXPECT_TRUE(shares.on_trial(2));
  shares.note_missed_echo(2);
  EXPECT_EQ(shares.weight(2), 0);
  EXPECT_EQ(shares.forwarding(2), 0);
  EXPECT_FALSE(shares.proven(2));
  dealt = deal(shares, ids, 10);
  EXPECT_EQ(dealt.count(2), 0u);
  // Only member 1 is proven: it carries 2's chunk, not 2 nor the unproven 3.
  EXPECT_EQ(shares.pick_carrier(3, id_at, 2, 1000), 0u);
  EXPECT_TRUE(shares.on_trial(3));
  shares.note_echo(3);
  shares.note_dealt(3, 1000, 2000);
  // 1 carried at 1000, 3 was dealt a chunk at 2000: 1 again.
  EXPECT_EQ(shares.pick_carrier(3, id_at, 2, 3000), 0u);
  EXPECT_EQ(shares.pick_carrier(3, id_at, 2, 4000), 2u);
  // Never the origin itself.
  EXPECT_EQ(shares.pick_carrier(3, id_at, 1, 5000), 2u);
  shares.remove(3);
  shares.remove(2);
  EXPECT_TRUE(shares.uniform());
}

}  // namespace
}  // namespace p2psp
