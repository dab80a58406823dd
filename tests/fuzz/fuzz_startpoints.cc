// Fuzz target: start points found in the stream (gst/p2psp/startpoints.h),
// the parser the splitter runs on Ogg and MPEG-TS bytes from upstream.
//
// The first input byte picks the container (bit 3: FLV, else bit 2:
// Matroska, else bit 0: MPEG-TS or Ogg) and
// whether the rest is fed whole (bit 1) or cut in pieces whose sizes come
// from the input's tail; the rest is the stream. The committed corpus starts
// from real files (tests/data/startpoints/) so mutations stay near valid
// pages and packets.
//
// Oracles: no crash; every byte comes out in a unit or is counted skipped
// (nothing invented, nothing lost); units are non-empty and bounded; MPEG-TS
// units are whole packets; the stats only grow; headers come out bounded;
// without skipping, the units concatenate back to the input.
#include <gst/p2psp/startpoints.h>

#include "fuzz_util.h"

using namespace p2psp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  const Container c = (data[0] & 0x30) == 0x10   ? Container::kMpegAudio
                      : (data[0] & 0x30) == 0x20 ? Container::kAdts
                      : (data[0] & 8)            ? Container::kFlv
                      : (data[0] & 4)            ? Container::kMatroska
                      : (data[0] & 1)            ? Container::kMpegTs
                                                 : Container::kOgg;
  const bool whole = data[0] & 2;
  StartPoints sp(c);
  std::vector<uint8_t> in, out;
  uint64_t units = 0;
  auto drain = [&] {
    MediaBuffer u;
    while (sp.pop(&u)) {
      FUZZ_CHECK(!u.data.empty());
      FUZZ_CHECK(u.data.size() <= StartPoints::kMaxUnit + (16u << 20) + 64);
      if (c == Container::kMpegTs) FUZZ_CHECK(u.data.size() % 188 == 0);
      if (u.flags & MediaBuffer::kHeader)
        FUZZ_CHECK(u.flags & MediaBuffer::kDeltaUnit);
      out.insert(out.end(), u.data.begin(), u.data.end());
      ++units;
    }
  };
  StartPoints::Stats before = sp.stats();
  while (fdp.remaining_bytes() > 0) {
    const size_t n = whole ? fdp.remaining_bytes()
                           : fdp.ConsumeIntegralInRange<size_t>(0, 5000);
    MediaBuffer b;
    b.data = fdp.ConsumeBytes<uint8_t>(n);
    b.pts = in.size();
    if (!whole && fdp.ConsumeIntegralInRange<int>(0, 15) == 0)
      b.flags |= MediaBuffer::kDiscont;
    in.insert(in.end(), b.data.begin(), b.data.end());
    sp.push(b);
    drain();
    const StartPoints::Stats& now = sp.stats();
    FUZZ_CHECK(now.bytes_in >= before.bytes_in);
    FUZZ_CHECK(now.units >= before.units);
    FUZZ_CHECK(now.skipped_bytes >= before.skipped_bytes);
    FUZZ_CHECK(now.resyncs >= before.resyncs);
    FUZZ_CHECK(now.random_access + now.header_units <= now.units);
    // What is neither out nor skipped waits for more: one unit at most.
    FUZZ_CHECK(out.size() + now.skipped_bytes <= in.size());
    // (Ogg: one page; MPEG-TS: one packet; Matroska: one element.)
    FUZZ_CHECK(in.size() - out.size() - now.skipped_bytes <=
               (c == Container::kMatroska || c == Container::kFlv
                    ? (16u << 20) + 64
                    : 65536 + 188));
    before = now;
    size_t header_bytes = 0;
    for (const auto& h : sp.headers()) header_bytes += h.size();
    FUZZ_CHECK(header_bytes <= in.size());
  }
  // flush() sends what is left as one unit, which for MPEG-TS need not be
  // whole packets: the accounting is checked on the others.
  if (c != Container::kMpegTs) {
    sp.flush();
    drain();
    FUZZ_CHECK(out.size() + sp.stats().skipped_bytes == in.size());
    if (sp.stats().skipped_bytes == 0) FUZZ_CHECK(out == in);
  }
  FUZZ_CHECK(sp.stats().units == units);
  return 0;
}
