// Fuzz target: the playout (reordering) buffer, fed random insert / pop /
// missing / find / reset sequences with an advancing clock, checked against
// a model (the set of accepted numbers not yet released).
//
// Invariants:
//  - fill() equals the model's size and never exceeds capacity();
//  - an accepted number was not held already (no double accept); a number
//    held is refused as a duplicate;
//  - find(n) gives back exactly what was inserted as n, and only while held;
//  - after the start, pop() releases consecutive numbers; a present slot is a
//    held chunk (the same datagram), a lost slot a number never held;
//  - missing() lists numbers in order, none of them held;
//  - pop() says nothing is ready only while next_deadline_us() is ahead (a
//    wrapper sleeping until the deadline never stalls);
//  - at the end, popping at the end of time releases every held chunk.
#include <gst/p2psp/reorder.h>

#include <map>

#include "fuzz_util.h"

using namespace p2psp;

namespace {

StoredChunk make_chunk(ChunkNumber n, uint64_t now) {
  auto datagram = std::make_shared<const Bytes>(
      encode_chunk(1, n, 7, 0, 0, reinterpret_cast<const uint8_t*>("x"), 1));
  StoredChunk c;
  const std::optional<UdpMessage> m =
      decode_udp(datagram->data(), datagram->size());
  c.msg = std::get<ChunkMsg>(*m);
  c.datagram = std::move(datagram);
  c.arrival_us = now;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const size_t capacity = fdp.ConsumeIntegralInRange<size_t>(1, 300);
  const uint64_t hold = fdp.ConsumeIntegralInRange<uint64_t>(0, 1000000);
  ReorderBuffer rb(capacity, hold);
  FUZZ_CHECK(rb.capacity() == capacity);
  // Near the 2^32 wrap half of the time: serial-number arithmetic must hold.
  const ChunkNumber base =
      fdp.ConsumeBool() ? UINT32_MAX - 100 : fdp.ConsumeIntegral<uint32_t>();

  std::map<ChunkNumber, SharedBytes> held;  // the model
  uint64_t now = 0;
  bool have_last = false;  // a pop since the start (or the last reset)
  ChunkNumber last = 0;

  auto pop_all = [&](uint64_t at) {
    ReorderBuffer::Slot slot;
    for (size_t guard = 0;; ++guard) {
      FUZZ_CHECK(guard <= (1u << 20));  // pop() must end: bounded window
      if (!rb.pop(at, &slot)) {
        FUZZ_CHECK(rb.fill() == 0 || rb.next_deadline_us() > at);
        break;
      }
      FUZZ_CHECK(rb.started());
      if (have_last) FUZZ_CHECK(slot.number == last + 1);
      have_last = true;
      last = slot.number;
      auto it = held.find(slot.number);
      if (slot.lost) {
        FUZZ_CHECK(it == held.end());
        FUZZ_CHECK(slot.chunk.datagram == nullptr);
      } else {
        FUZZ_CHECK(it != held.end());
        FUZZ_CHECK(slot.chunk.datagram == it->second);
        FUZZ_CHECK(slot.chunk.msg.number == slot.number);
        held.erase(it);
      }
      FUZZ_CHECK(rb.fill() == held.size());
    }
  };

  while (fdp.remaining_bytes() > 0) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
      case 1:
      case 2: {  // insert
        ChunkNumber n;
        switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
          case 0:
            n = rb.head() + fdp.ConsumeIntegralInRange<int32_t>(-20, 80);
            break;
          case 1:
            n = rb.newest() + fdp.ConsumeIntegralInRange<int32_t>(-80, 20);
            break;
          case 2:
            n = base + fdp.ConsumeIntegralInRange<uint32_t>(0, 600);
            break;
          default:
            n = fdp.ConsumeIntegral<uint32_t>();
        }
        const bool was_held = held.count(n) != 0;
        StoredChunk c = make_chunk(n, now);
        const ReorderBuffer::Insert r = rb.insert(c, now);
        if (was_held) FUZZ_CHECK(r == ReorderBuffer::Insert::kDuplicate);
        if (r == ReorderBuffer::Insert::kAccepted) {
          FUZZ_CHECK(!was_held);
          held[n] = c.datagram;
        }
        FUZZ_CHECK(rb.fill() == held.size());
        FUZZ_CHECK(rb.fill() <= rb.capacity());
        const StoredChunk* found = rb.find(n);
        FUZZ_CHECK((found != nullptr) == (held.count(n) != 0));
        if (found) FUZZ_CHECK(found->datagram == held[n]);
        break;
      }
      case 3:  // time passes
        now += fdp.ConsumeIntegralInRange<uint64_t>(0, 300000);
        break;
      case 4:
        pop_all(now);
        break;
      case 5: {  // what loss recovery would NACK
        const uint64_t seen_by =
            fdp.ConsumeBool() ? UINT64_MAX
                              : now - std::min<uint64_t>(
                                          now, fdp.ConsumeIntegral<uint16_t>());
        const std::vector<ReorderBuffer::Gap> gaps =
            rb.missing(seen_by, fdp.ConsumeIntegralInRange<size_t>(0, 500));
        for (size_t i = 0; i < gaps.size(); ++i) {
          FUZZ_CHECK(held.count(gaps[i].number) == 0);
          FUZZ_CHECK(gaps[i].since_us <= seen_by);
          if (i > 0) FUZZ_CHECK(seq_before(gaps[i - 1].number, gaps[i].number));
        }
        break;
      }
      case 6: {  // find every held number
        for (const auto& [n, datagram] : held) {
          const StoredChunk* found = rb.find(n);
          FUZZ_CHECK(found != nullptr && found->datagram == datagram);
        }
        break;
      }
      case 7:
        if (fdp.ConsumeIntegralInRange<int>(0, 7) == 0) {
          rb.reset();
          held.clear();
          have_last = false;
          FUZZ_CHECK(rb.fill() == 0);
        } else {
          rb.set_hold_us(fdp.ConsumeIntegralInRange<uint64_t>(0, 1000000));
        }
        break;
    }
  }
  pop_all(UINT64_MAX);
  FUZZ_CHECK(held.empty());
  return 0;
}
