// Tests of the playout (reordering) buffer.
#include <gst/p2psp/reorder.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace p2psp {
namespace {

using Insert = ReorderBuffer::Insert;
using Slot = ReorderBuffer::Slot;

// A chunk whose datagram carries its own number, so that a released slot can
// be checked to hold the chunk that was stored under that number.
StoredChunk make_chunk(ChunkNumber n, uint64_t arrival_us) {
  auto bytes = std::make_shared<Bytes>();
  for (int i = 3; i >= 0; --i) bytes->push_back((n >> (8 * i)) & 0xff);
  StoredChunk chunk;
  chunk.msg.number = n;
  chunk.msg.payload = bytes->data();
  chunk.msg.payload_size = bytes->size();
  chunk.datagram = std::move(bytes);
  chunk.arrival_us = arrival_us;
  return chunk;
}

ChunkNumber number_in_datagram(const StoredChunk& chunk) {
  ChunkNumber n = 0;
  for (uint8_t byte : *chunk.datagram) n = (n << 8) | byte;
  return n;
}

Insert put(ReorderBuffer* buffer, ChunkNumber n, uint64_t now_us) {
  return buffer->insert(make_chunk(n, now_us), now_us);
}

// Everything pop() releases at now_us, as (number, lost) pairs.
std::vector<std::pair<ChunkNumber, bool>> pop_all(ReorderBuffer* buffer,
                                                  uint64_t now_us) {
  std::vector<std::pair<ChunkNumber, bool>> released;
  Slot slot;
  while (buffer->pop(now_us, &slot)) {
    if (!slot.lost) {
      EXPECT_NE(slot.chunk.datagram, nullptr);
      if (slot.chunk.datagram) {
        EXPECT_EQ(number_in_datagram(slot.chunk), slot.number);
      }
    } else {
      EXPECT_EQ(slot.chunk.datagram, nullptr);
    }
    released.emplace_back(slot.number, slot.lost);
  }
  return released;
}

using Released = std::vector<std::pair<ChunkNumber, bool>>;

Released present_run(ChunkNumber first, ChunkNumber last) {
  Released run;
  for (ChunkNumber n = first; n != last + 1; ++n) run.emplace_back(n, false);
  return run;
}

TEST(Reorder, InOrderDeliveryAfterTheStartHold) {
  ReorderBuffer buffer(64, 1000);
  EXPECT_EQ(buffer.next_deadline_us(), UINT64_MAX);
  for (ChunkNumber n = 100; n < 110; ++n) {
    EXPECT_EQ(put(&buffer, n, 10 * (n - 100)), Insert::kAccepted);
  }
  EXPECT_EQ(buffer.next_deadline_us(), 1000u);
  EXPECT_TRUE(pop_all(&buffer, 999).empty());
  EXPECT_FALSE(buffer.started());
  EXPECT_EQ(pop_all(&buffer, 1000), present_run(100, 109));
  EXPECT_TRUE(buffer.started());
  for (ChunkNumber n = 110; n < 300; ++n) {
    const uint64_t now = 1000 + n;
    ASSERT_EQ(put(&buffer, n, now), Insert::kAccepted);
    EXPECT_EQ(buffer.next_deadline_us(), 0u);  // due at once
    ASSERT_EQ(pop_all(&buffer, now), present_run(n, n));
  }
  EXPECT_EQ(buffer.fill(), 0u);
  EXPECT_EQ(buffer.head(), 300u);
}

TEST(Reorder, ShuffleWithinTheWindowComesOutInOrder) {
  for (size_t capacity : {size_t{128}, size_t{96}}) {
    std::mt19937 rng(5);
    // Arrivals are 1 us apart: a block of 16 completes within the hold.
    ReorderBuffer buffer(capacity, 20);
    std::vector<ChunkNumber> numbers;
    for (ChunkNumber n = 1000; n < 1000 + 64 * 16; ++n) numbers.push_back(n);
    for (size_t i = 0; i < numbers.size(); i += 16) {
      std::shuffle(numbers.begin() + i, numbers.begin() + i + 16, rng);
    }
    Released released;
    uint64_t now = 0;
    for (ChunkNumber n : numbers) {
      ASSERT_EQ(put(&buffer, n, now), Insert::kAccepted) << n;
      const Released out = pop_all(&buffer, now);
      released.insert(released.end(), out.begin(), out.end());
      ++now;
    }
    const Released out = pop_all(&buffer, now + 1000);
    released.insert(released.end(), out.begin(), out.end());
    EXPECT_EQ(released, present_run(1000, 1000 + 64 * 16 - 1));
  }
}

TEST(Reorder, DuplicatesWhileHeldAndAfterRelease) {
  ReorderBuffer buffer(32, 50);
  EXPECT_EQ(put(&buffer, 5, 0), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 5, 1), Insert::kDuplicate);  // before the start
  EXPECT_EQ(put(&buffer, 7, 2), Insert::kAccepted);
  EXPECT_EQ(buffer.fill(), 2u);
  EXPECT_EQ(pop_all(&buffer, 50), present_run(5, 5));
  EXPECT_EQ(put(&buffer, 7, 51), Insert::kDuplicate);  // held after the start
  EXPECT_EQ(put(&buffer, 5, 51), Insert::kDuplicate);  // already released
  EXPECT_EQ(buffer.fill(), 1u);
  EXPECT_EQ(put(&buffer, 6, 52), Insert::kAccepted);
  EXPECT_EQ(pop_all(&buffer, 52), present_run(6, 7));
  EXPECT_EQ(put(&buffer, 6, 53), Insert::kDuplicate);
  EXPECT_EQ(put(&buffer, 7, 53), Insert::kDuplicate);
}

TEST(Reorder, MissingChunkIsLostOnlyAfterTheNextWaitedHold) {
  ReorderBuffer buffer(64, 100);
  put(&buffer, 0, 0);
  EXPECT_EQ(pop_all(&buffer, 100), present_run(0, 0));
  EXPECT_EQ(buffer.next_deadline_us(), UINT64_MAX);
  put(&buffer, 2, 150);
  put(&buffer, 3, 170);
  EXPECT_EQ(buffer.next_deadline_us(), 250u);
  for (uint64_t now = 150; now < 250; ++now) {
    ASSERT_TRUE(pop_all(&buffer, now).empty()) << now;
  }
  EXPECT_EQ(pop_all(&buffer, 250),
            (Released{{1, true}, {2, false}, {3, false}}));
  EXPECT_EQ(put(&buffer, 1, 260), Insert::kLate);
  EXPECT_EQ(buffer.fill(), 0u);
}

TEST(Reorder, DeadlineFollowsTheFirstPresentChunkAfterTheHead) {
  ReorderBuffer buffer(64, 100);
  put(&buffer, 10, 0);
  EXPECT_EQ(pop_all(&buffer, 100), present_run(10, 10));
  put(&buffer, 16, 500);  // arrives first but is further away
  put(&buffer, 14, 540);
  put(&buffer, 12, 520);
  // 11 is given up when 12 (the first present after it) has waited, however
  // long 16 has been waiting.
  EXPECT_EQ(buffer.next_deadline_us(), 620u);
  EXPECT_TRUE(pop_all(&buffer, 619).empty());
  EXPECT_EQ(pop_all(&buffer, 620), (Released{{11, true}, {12, false}}));
  // 13 now waits for 14, which arrived at 540.
  EXPECT_EQ(buffer.next_deadline_us(), 640u);
  EXPECT_EQ(put(&buffer, 11, 621), Insert::kLate);
  EXPECT_EQ(put(&buffer, 12, 621), Insert::kDuplicate);
  EXPECT_EQ(put(&buffer, 13, 630), Insert::kAccepted);
  EXPECT_EQ(buffer.next_deadline_us(), 0u);
  // 15 waits for 16, which has waited long enough already.
  EXPECT_EQ(pop_all(&buffer, 630),
            (Released{{13, false}, {14, false}, {15, true}, {16, false}}));
}

TEST(Reorder, StartPicksTheSmallestOfTheFirstHoldWindow) {
  ReorderBuffer buffer(64, 100);
  put(&buffer, 10, 0);
  put(&buffer, 8, 30);
  put(&buffer, 12, 60);
  put(&buffer, 7, 99);
  EXPECT_EQ(buffer.next_deadline_us(), 100u);
  EXPECT_TRUE(pop_all(&buffer, 99).empty());
  // 9 waits for 10 (arrived at 0): already due. 11 waits for 12 until 160.
  EXPECT_EQ(pop_all(&buffer, 100),
            (Released{{7, false}, {8, false}, {9, true}, {10, false}}));
  EXPECT_EQ(put(&buffer, 6, 101), Insert::kLate);
  EXPECT_EQ(pop_all(&buffer, 160), (Released{{11, true}, {12, false}}));
}

TEST(Reorder, WrapsAroundTheChunkNumberSpace) {
  // Capacities that do not divide 2^32: a plain number % capacity slot index
  // would collide across the wrap.
  for (size_t capacity : {size_t{64}, size_t{48}, size_t{12}}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    std::mt19937 rng(static_cast<uint32_t>(capacity));
    // Arrivals 5 us apart: a shuffled block of 3 completes within the hold.
    ReorderBuffer buffer(capacity, 15);
    std::vector<ChunkNumber> numbers;
    for (ChunkNumber n = 0xFFFFFFF0u; n != 0x11u; ++n) numbers.push_back(n);
    for (size_t i = 0; i + 3 <= numbers.size(); i += 3) {
      std::shuffle(numbers.begin() + i, numbers.begin() + i + 3, rng);
    }
    const ChunkNumber skipped = 0x2;  // never arrives
    Released released;
    uint64_t now = 0;
    for (ChunkNumber n : numbers) {
      if (n == skipped) continue;
      ASSERT_EQ(put(&buffer, n, now), Insert::kAccepted) << n;
      const Released out = pop_all(&buffer, now);
      released.insert(released.end(), out.begin(), out.end());
      now += 5;
    }
    const Released out = pop_all(&buffer, now + 1000);
    released.insert(released.end(), out.begin(), out.end());
    Released expected = present_run(0xFFFFFFF0u, 0x10u);
    for (auto& [n, lost] : expected) lost = n == skipped;
    EXPECT_EQ(released, expected);
    EXPECT_EQ(put(&buffer, 0x10u, now), Insert::kDuplicate);
    // Released numbers are remembered for one capacity behind the head.
    EXPECT_EQ(put(&buffer, 0xFFFFFFFFu, now),
              capacity >= 18 ? Insert::kDuplicate : Insert::kLate);
    EXPECT_EQ(put(&buffer, skipped, now), Insert::kLate);
  }
}

TEST(Reorder, TooFarAheadBeforeAndAfterTheStart) {
  ReorderBuffer buffer(16, 100);
  EXPECT_EQ(put(&buffer, 100, 0), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 108, 1), Insert::kTooFarAhead);
  EXPECT_EQ(put(&buffer, 92, 1), Insert::kTooFarAhead);
  EXPECT_EQ(put(&buffer, 107, 1), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 93, 1), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 100u + 0x80000000u, 1), Insert::kTooFarAhead);
  EXPECT_EQ(buffer.fill(), 3u);
  const Released out = pop_all(&buffer, 100);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front(), (std::pair<ChunkNumber, bool>{93, false}));
  // The window is [head, head + 16).
  const ChunkNumber head = buffer.head();
  EXPECT_EQ(put(&buffer, head + 16, 101), Insert::kTooFarAhead);
  EXPECT_EQ(put(&buffer, head + 15, 101), Insert::kAccepted);
}

TEST(Reorder, FillCountsHeldChunksOnly) {
  ReorderBuffer buffer(32, 10);
  for (ChunkNumber n : {1u, 2u, 4u, 5u}) put(&buffer, n, 0);
  EXPECT_EQ(buffer.fill(), 4u);
  put(&buffer, 2, 0);    // duplicate
  put(&buffer, 200, 0);  // too far ahead
  EXPECT_EQ(buffer.fill(), 4u);
  EXPECT_EQ(
      pop_all(&buffer, 10),
      (Released{{1, false}, {2, false}, {3, true}, {4, false}, {5, false}}));
  EXPECT_EQ(buffer.fill(), 0u);
  put(&buffer, 7, 20);
  EXPECT_EQ(buffer.fill(), 1u);
  buffer.reset();
  EXPECT_EQ(buffer.fill(), 0u);
  EXPECT_FALSE(buffer.started());
  EXPECT_EQ(buffer.next_deadline_us(), UINT64_MAX);
  // After a reset any number starts a new window, with a new start hold.
  EXPECT_EQ(put(&buffer, 5000, 30), Insert::kAccepted);
  EXPECT_TRUE(pop_all(&buffer, 39).empty());
  EXPECT_EQ(pop_all(&buffer, 40), present_run(5000, 5000));
}

TEST(Reorder, HoldCanChangeWhileWaiting) {
  ReorderBuffer buffer(32, 100);
  put(&buffer, 0, 0);
  pop_all(&buffer, 100);
  put(&buffer, 2, 200);
  buffer.set_hold_us(10);
  EXPECT_EQ(buffer.next_deadline_us(), 210u);
  EXPECT_EQ(pop_all(&buffer, 210), (Released{{1, true}, {2, false}}));
}

// A lossy, jittery, duplicating network feeding the buffer. Checks that every
// number in the stream is released exactly once, in order, and as present
// exactly when a copy was accepted.
struct Simulation {
  ChunkNumber first = 0;
  size_t chunks = 0;
  uint64_t period_us = 10;
  uint64_t jitter_us = 0;
  uint64_t hold_us = 0;
  size_t capacity = 0;
  uint32_t seed = 0;

  struct Outcome {
    std::map<ChunkNumber, int> released_present;  // number -> times
    std::map<ChunkNumber, int> released_lost;
    std::vector<ChunkNumber> order;
    std::map<ChunkNumber, int> accepted;
    std::map<ChunkNumber, bool> delivered;
    size_t late = 0;
    size_t too_far = 0;
  };

  Outcome run() const {
    std::mt19937 rng(seed);
    std::vector<std::pair<uint64_t, ChunkNumber>> arrivals;
    Outcome outcome;
    for (size_t i = 0; i < chunks; ++i) {
      const ChunkNumber n = first + static_cast<ChunkNumber>(i);
      const uint32_t roll = rng() % 10;
      if (roll == 0) continue;  // lost on the way
      const int copies = roll == 1 ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        arrivals.emplace_back(i * period_us + rng() % (jitter_us + 1), n);
      }
      outcome.delivered[n] = true;
    }
    std::stable_sort(
        arrivals.begin(), arrivals.end(),
        [](const auto& a, const auto& b) { return a.first < b.first; });

    ReorderBuffer buffer(capacity, hold_us);
    auto release = [&](uint64_t now) {
      Slot slot;
      while (buffer.pop(now, &slot)) {
        auto& count = slot.lost ? outcome.released_lost[slot.number]
                                : outcome.released_present[slot.number];
        ++count;
        outcome.order.push_back(slot.number);
      }
    };
    for (const auto& [time, n] : arrivals) {
      release(time);
      switch (buffer.insert(make_chunk(n, time), time)) {
        case Insert::kAccepted:
          ++outcome.accepted[n];
          break;
        case Insert::kDuplicate:
          EXPECT_EQ(outcome.accepted.count(n), 1u) << n;
          break;
        case Insert::kLate:
          ++outcome.late;
          EXPECT_EQ(outcome.released_present.count(n), 0u) << n;
          break;
        case Insert::kTooFarAhead:
          ++outcome.too_far;
          break;
      }
      release(time);
    }
    release(arrivals.back().first + 100 * hold_us);
    return outcome;
  }
};

void expect_consistent(const Simulation::Outcome& outcome) {
  for (size_t i = 1; i < outcome.order.size(); ++i) {
    ASSERT_EQ(outcome.order[i], outcome.order[i - 1] + 1) << i;
  }
  for (const auto& [n, times] : outcome.released_present) {
    ASSERT_EQ(times, 1) << n;
    ASSERT_EQ(outcome.released_lost.count(n), 0u) << n;
    ASSERT_EQ(outcome.accepted.at(n), 1) << n;
  }
  for (const auto& [n, times] : outcome.released_lost) ASSERT_EQ(times, 1) << n;
  for (const auto& [n, times] : outcome.accepted) {
    ASSERT_EQ(times, 1) << n;
    ASSERT_EQ(outcome.released_present.count(n), 1u) << n;
  }
}

TEST(Reorder, RandomNetworkWithJitterBelowHoldLosesOnlyWhatWasLost) {
  for (ChunkNumber first : {0u, 0xFFFFF000u, 123456u}) {
    SCOPED_TRACE("first " + std::to_string(first));
    Simulation sim;
    sim.first = first;
    sim.chunks = 20000;
    sim.jitter_us = 400;
    sim.hold_us = 500;
    sim.capacity = 250;
    sim.seed = first ^ 77;
    const Simulation::Outcome outcome = sim.run();
    expect_consistent(outcome);
    EXPECT_EQ(outcome.late, 0u);
    EXPECT_EQ(outcome.too_far, 0u);
    // Released: exactly every number from the first to the last delivered,
    // as present exactly when it was delivered.
    ChunkNumber lowest = first;
    while (!outcome.delivered.count(lowest)) ++lowest;
    ChunkNumber highest = first + static_cast<ChunkNumber>(sim.chunks - 1);
    while (!outcome.delivered.count(highest)) --highest;
    ASSERT_FALSE(outcome.order.empty());
    EXPECT_EQ(outcome.order.front(), lowest);
    EXPECT_EQ(outcome.order.back(), highest);
    for (ChunkNumber n : outcome.order) {
      ASSERT_EQ(outcome.delivered.count(n), outcome.released_present.count(n))
          << n;
    }
  }
}

TEST(Reorder, RandomNetworkWithJitterAboveHoldStaysConsistent) {
  Simulation sim;
  sim.first = 0xFFFFFF00u;
  sim.chunks = 20000;
  sim.jitter_us = 2000;
  sim.hold_us = 300;
  sim.capacity = 100;
  sim.seed = 99;
  const Simulation::Outcome outcome = sim.run();
  expect_consistent(outcome);
  EXPECT_GT(outcome.late, 0u);  // the run did exercise late arrivals
  EXPECT_GT(outcome.released_present.size(), sim.chunks / 4);
}

// ------------------------------------------------------------ gaps ------

std::vector<ChunkNumber> numbers_of(const std::vector<ReorderBuffer::Gap>& g) {
  std::vector<ChunkNumber> numbers;
  for (const auto& gap : g) numbers.push_back(gap.number);
  return numbers;
}

TEST(ReorderGaps, ListsSkippedNumbersWithTheTimeTheyWereSeenMissing) {
  ReorderBuffer buffer(64, 100000);
  put(&buffer, 10, 1000);
  EXPECT_TRUE(buffer.missing(UINT64_MAX).empty());
  put(&buffer, 13, 2000);  // 11 and 12 are missing since 2000
  put(&buffer, 16, 5000);  // 14 and 15 since 5000
  EXPECT_EQ(buffer.newest(), 16u);
  const auto all = buffer.missing(UINT64_MAX);
  EXPECT_EQ(numbers_of(all), (std::vector<ChunkNumber>{11, 12, 14, 15}));
  EXPECT_EQ(all[0].since_us, 2000u);
  EXPECT_EQ(all[3].since_us, 5000u);
  EXPECT_EQ(numbers_of(buffer.missing(4999)),
            (std::vector<ChunkNumber>{11, 12}));
  EXPECT_EQ(numbers_of(buffer.missing(UINT64_MAX, 3)),
            (std::vector<ChunkNumber>{11, 12, 14}));
  EXPECT_TRUE(buffer.missing(1999).empty());
}

TEST(ReorderGaps, FilledAndReleasedNumbersAreNoLongerMissing) {
  ReorderBuffer buffer(64, 100000);
  put(&buffer, 10, 0);
  put(&buffer, 14, 0);
  put(&buffer, 12, 10);  // fills a gap in the middle
  put(&buffer, 11, 20);  // fills the front gap
  EXPECT_EQ(numbers_of(buffer.missing(UINT64_MAX)),
            std::vector<ChunkNumber>{13});
  // 13 is declared lost at the hold: released numbers are not missing.
  pop_all(&buffer, 100000);
  EXPECT_TRUE(buffer.missing(UINT64_MAX).empty());
  // A late 13 is not a gap either.
  EXPECT_EQ(put(&buffer, 13, 200000), Insert::kLate);
  EXPECT_TRUE(buffer.missing(UINT64_MAX).empty());
}

TEST(ReorderGaps, EarlierArrivalsBeforeTheStartOpenGapsBelow) {
  ReorderBuffer buffer(64, 100000);
  put(&buffer, 20, 0);
  put(&buffer, 19, 5);  // adjacent: nothing between
  EXPECT_TRUE(buffer.missing(UINT64_MAX).empty());
  put(&buffer, 16, 10);  // the start moves down; 17 and 18 are missing
  put(&buffer, 22, 20);
  const auto gaps = buffer.missing(UINT64_MAX);
  EXPECT_EQ(numbers_of(gaps), (std::vector<ChunkNumber>{17, 18, 21}));
  EXPECT_EQ(gaps[0].since_us, 10u);
  // After the start nothing below the head is missing.
  pop_all(&buffer, 100000);
  EXPECT_EQ(put(&buffer, 10, 100001), Insert::kLate);
  for (const auto& gap : buffer.missing(UINT64_MAX)) {
    EXPECT_FALSE(seq_before(gap.number, 16));
  }
}

TEST(ReorderGaps, WorkAcrossTheWrap) {
  ReorderBuffer buffer(64, 100000);
  put(&buffer, 0xFFFFFFFEu, 0);
  put(&buffer, 1, 10);
  EXPECT_EQ(numbers_of(buffer.missing(UINT64_MAX)),
            (std::vector<ChunkNumber>{0xFFFFFFFFu, 0}));
}

TEST(ReorderGaps, FindReturnsHeldChunksOnly) {
  ReorderBuffer buffer(8, 1000);
  put(&buffer, 5, 0);
  put(&buffer, 7, 0);
  ASSERT_NE(buffer.find(5), nullptr);
  EXPECT_EQ(number_in_datagram(*buffer.find(7)), 7u);
  EXPECT_EQ(buffer.find(6), nullptr);
  EXPECT_EQ(buffer.find(13), nullptr);  // same slot as 5, another number
  EXPECT_EQ(buffer.find(5 + 8 * 1000), nullptr);
  pop_all(&buffer, 1000);
  EXPECT_EQ(buffer.find(5), nullptr);
  buffer.reset();
  EXPECT_EQ(buffer.find(7), nullptr);
  EXPECT_TRUE(buffer.missing(UINT64_MAX).empty());
}

}  // namespace
}  // namespace p2psp

namespace p2psp {
namespace {

TEST(Reorder, ExpectFromStartsAtTheAnchorAndListsWhatIsMissing) {
  ReorderBuffer buffer(64, 1000);
  buffer.expect_from(0xFFFFFFFE);  // across the wrap, too
  EXPECT_TRUE(buffer.started());
  EXPECT_EQ(put(&buffer, 1, 100), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 0xFFFFFFFD, 100), Insert::kLate);
  const auto gaps = buffer.missing(100);
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_EQ(gaps[0].number, 0xFFFFFFFEu);
  EXPECT_EQ(gaps[2].number, 0u);
  EXPECT_TRUE(pop_all(&buffer, 1099).empty());
  EXPECT_EQ(put(&buffer, 0xFFFFFFFF, 500), Insert::kAccepted);
  const Released want = {
      {0xFFFFFFFE, true}, {0xFFFFFFFF, false}, {0, true}, {1, false}};
  // 0xFFFFFFFE waits on 0xFFFFFFFF, which arrived at 500.
  EXPECT_TRUE(pop_all(&buffer, 1499).empty());
  EXPECT_EQ(pop_all(&buffer, 1500), want);
}

TEST(Reorder, ExpectFromAfterEarlyArrivalsFillsTheGapBelowThem) {
  ReorderBuffer buffer(64, 1000);
  EXPECT_EQ(put(&buffer, 12, 100), Insert::kAccepted);
  EXPECT_EQ(put(&buffer, 11, 150), Insert::kAccepted);
  buffer.expect_from(9);
  EXPECT_TRUE(buffer.started());
  EXPECT_EQ(buffer.head(), 9u);
  const auto gaps = buffer.missing(1000);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].number, 9u);
  EXPECT_EQ(gaps[1].number, 10u);
  EXPECT_EQ(put(&buffer, 9, 200), Insert::kAccepted);
  EXPECT_EQ(pop_all(&buffer, 200), present_run(9, 9));
  const Released rest = {{10, true}, {11, false}, {12, false}};
  EXPECT_EQ(pop_all(&buffer, 1150), rest);
}

TEST(Reorder, StaleAnchorIsIgnored) {
  ReorderBuffer buffer(64, 1000);
  EXPECT_EQ(put(&buffer, 500, 100), Insert::kAccepted);
  buffer.expect_from(10);  // far behind what arrives: not this stream
  EXPECT_FALSE(buffer.started());
  EXPECT_EQ(pop_all(&buffer, 1100), present_run(500, 500));
}

}  // namespace
}  // namespace p2psp

namespace p2psp {
namespace {

TEST(Reorder, GapBookkeepingStaysWithinTheWindowWithoutMissingCalls) {
  // With NACK off nobody calls missing(): the gap list must still shrink as
  // the head passes, or memory grows with every lost chunk.
  ReorderBuffer buffer(64, 10);
  uint64_t now = 0;
  for (ChunkNumber n = 0; n < 200000; n += 2) {
    now += 10;
    put(&buffer, n, now);
    pop_all(&buffer, now + 10);
    ASSERT_LE(buffer.tracked_gaps(), buffer.capacity());
  }
}

// hold_from(): a gap and the chunk waiting behind it count their hold from
// then, not from when they came (a peer not yet a member could not ask).
TEST(Reorder, HoldFromRestartsTheWaitOfGapsAndHeldChunks) {
  ReorderBuffer buffer(64, 1000);
  ASSERT_EQ(put(&buffer, 10, 0), Insert::kAccepted);
  buffer.expect_from(10);
  ASSERT_EQ(put(&buffer, 12, 100), Insert::kAccepted);
  buffer.hold_from(5000);
  auto gaps = buffer.missing(UINT64_MAX);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].number, 11u);
  EXPECT_EQ(gaps[0].since_us, 5000u);
  EXPECT_EQ(pop_all(&buffer, 5000), (Released{{10, false}}));
  EXPECT_EQ(buffer.next_deadline_us(), 6000u);
  EXPECT_TRUE(pop_all(&buffer, 5999).empty());
  EXPECT_EQ(pop_all(&buffer, 6000), (Released{{11, true}, {12, false}}));
  // Chunks that come later wait from their own arrival, as before.
  ASSERT_EQ(put(&buffer, 14, 7000), Insert::kAccepted);
  EXPECT_TRUE(pop_all(&buffer, 7999).empty());
  EXPECT_EQ(pop_all(&buffer, 8000), (Released{{13, true}, {14, false}}));
}

}  // namespace
}  // namespace p2psp
