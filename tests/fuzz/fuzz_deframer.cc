// Fuzz target: buffer framing inside the chunk stream (Framer -> Deframer).
//
// The first input byte picks a mode:
//  - garbage: chunks of random bytes with random first-frame offsets, gaps
//    and pops in random order, like what a hostile or broken team delivers;
//  - round trip: random buffers and caps framed by the Framer, cut in chunks
//    of a random size, delivered in order with random chunks lost (gaps).
//
// Oracles: no crash; stats only grow; no item larger than kMaxFrameSize.
// Round trip: without a loss the items come out exactly as they went in
// (only the first buffer gains DISCONT); with losses they are a subsequence
// of the input (never a frame spliced from two), and the first buffer after
// a loss carries DISCONT.
#include <gst/p2psp/framing.h>

#include "fuzz_util.h"

using namespace p2psp;

namespace {

void check_stats(const Deframer::Stats& before, const Deframer::Stats& now) {
  FUZZ_CHECK(now.frames >= before.frames);
  FUZZ_CHECK(now.dropped_frames >= before.dropped_frames);
  FUZZ_CHECK(now.malformed >= before.malformed);
}

void garbage(FuzzedDataProvider& fdp) {
  Deframer d;
  while (fdp.remaining_bytes() > 0) {
    const Deframer::Stats before = d.stats();
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
      case 1: {
        const size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 300);
        const uint16_t offset =
            fdp.ConsumeBool() ? kNoFrameStart
                              : fdp.ConsumeIntegralInRange<uint16_t>(0, 310);
        std::vector<uint8_t> payload = fdp.ConsumeBytes<uint8_t>(n);
        d.push_chunk(payload.data(), payload.size(), offset);
        break;
      }
      case 2:
        d.push_gap();
        break;
      case 3: {
        StreamItem item;
        while (d.pop(&item)) {
          FUZZ_CHECK(item.buffer.data.size() <= kMaxFrameSize);
        }
        break;
      }
    }
    check_stats(before, d.stats());
  }
  StreamItem item;
  while (d.pop(&item)) FUZZ_CHECK(item.buffer.data.size() <= kMaxFrameSize);
}

bool same_item(const StreamItem& in, const StreamItem& out) {
  if (in.kind != out.kind) return false;
  if (in.kind == StreamItem::Kind::kCaps) return in.caps == out.caps;
  const MediaBuffer& a = in.buffer;
  const MediaBuffer& b = out.buffer;
  return a.data == b.data && a.pts == b.pts && a.dts == b.dts &&
         a.duration == b.duration &&
         a.flags == (b.flags & ~uint32_t{MediaBuffer::kDiscont});
}

void round_trip(FuzzedDataProvider& fdp) {
  Framer framer(fdp.ConsumeIntegralInRange<size_t>(1, 600));
  std::vector<StreamItem> in;
  std::vector<ChunkPayload> chunks;
  const size_t n_items = fdp.ConsumeIntegralInRange<size_t>(0, 40);
  for (size_t i = 0; i < n_items && fdp.remaining_bytes() > 0; ++i) {
    StreamItem item;
    if (fdp.ConsumeIntegralInRange<int>(0, 7) == 0) {
      item.kind = StreamItem::Kind::kCaps;
      item.caps = fdp.ConsumeRandomLengthString(200);
      framer.push_caps(item.caps);
    } else {
      MediaBuffer& b = item.buffer;
      b.data = fdp.ConsumeBytes<uint8_t>(
          fdp.ConsumeIntegralInRange<size_t>(0, 2000));
      b.pts = fdp.ConsumeBool() ? kNoTime : fdp.ConsumeIntegral<uint64_t>();
      b.dts = fdp.ConsumeBool() ? kNoTime : fdp.ConsumeIntegral<uint64_t>();
      b.duration =
          fdp.ConsumeBool() ? kNoTime : fdp.ConsumeIntegral<uint64_t>();
      // DISCONT is the deframer's to set; the other flags must survive.
      b.flags =
          fdp.ConsumeIntegral<uint32_t>() &
          (MediaBuffer::kHeader | MediaBuffer::kDeltaUnit | MediaBuffer::kGap);
      framer.push_buffer(b);
    }
    in.push_back(std::move(item));
    ChunkPayload c;
    while (framer.pop_full(&c)) {
      FUZZ_CHECK(c.bytes.size() == framer.chunk_payload_size());
      chunks.push_back(std::move(c));
    }
  }
  ChunkPayload c;
  while (framer.pop_partial(&c)) chunks.push_back(std::move(c));
  FUZZ_CHECK(framer.pending_bytes() == 0);

  // Which chunks get lost: one bit each, from what input is left.
  Deframer d;
  std::vector<StreamItem> out;
  std::vector<bool> after_gap;  // per output item: first buffer after a loss
  bool any_gap = false;
  bool gap_pending = false;
  for (const ChunkPayload& chunk : chunks) {
    FUZZ_CHECK(chunk.first_frame_offset == kNoFrameStart ||
               chunk.first_frame_offset < chunk.bytes.size());
    const Deframer::Stats before = d.stats();
    if (fdp.remaining_bytes() > 0 &&
        fdp.ConsumeIntegralInRange<int>(0, 3) == 0) {
      d.push_gap();
      any_gap = gap_pending = true;
    } else {
      d.push_chunk(chunk.bytes.data(), chunk.bytes.size(),
                   chunk.first_frame_offset);
    }
    check_stats(before, d.stats());
    StreamItem item;
    while (d.pop(&item)) {
      const bool is_buffer = item.kind == StreamItem::Kind::kBuffer;
      after_gap.push_back(is_buffer && gap_pending);
      if (is_buffer) gap_pending = false;
      out.push_back(std::move(item));
    }
  }
  FUZZ_CHECK(d.stats().malformed == 0);  // the framer's output is well formed

  if (!any_gap) {
    FUZZ_CHECK(out.size() == in.size());
    bool first_buffer = true;
    for (size_t i = 0; i < in.size(); ++i) {
      FUZZ_CHECK(same_item(in[i], out[i]));
      if (out[i].kind != StreamItem::Kind::kBuffer) continue;
      const bool discont = out[i].buffer.flags & MediaBuffer::kDiscont;
      FUZZ_CHECK(discont == first_buffer);
      first_buffer = false;
    }
    return;
  }
  size_t j = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    while (j < in.size() && !same_item(in[j], out[i])) ++j;
    FUZZ_CHECK(j < in.size());  // out[i] is no input item, or out of order
    ++j;
    if (after_gap[i]) {
      FUZZ_CHECK(out[i].buffer.flags & MediaBuffer::kDiscont);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  if (fdp.ConsumeBool()) {
    round_trip(fdp);
  } else {
    garbage(fdp);
  }
  return 0;
}
