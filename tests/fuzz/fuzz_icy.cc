// Fuzz target: ICY metadata taken out of a radio stream (gst/p2psp/icy.h),
// what the splitter runs on every byte of an application/x-icy input.
//
// Input: two bytes of metadata-interval (0 and values past kMaxInterval
// included, through the top bits), one byte choosing whether the rest is
// fed whole or in pieces whose sizes come from the input's tail, then the
// stream.
//
// Oracles: no crash; every byte is either passed on or counted as metadata;
// what is passed on equals what a byte-at-a-time model of the framing
// passes on, however the input is cut; a title never outgrows a block; an
// interval out of range passes everything.
#include <gst/p2psp/icy.h>

#include "fuzz_util.h"

using namespace p2psp;

namespace {

// The framing, one byte at a time: `interval` stream bytes, a length byte
// L, 16 * L metadata bytes, and again.
std::vector<uint8_t> model(size_t interval, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  size_t until_block = interval, block_left = 0;
  bool in_block = false;
  for (uint8_t b : in) {
    if (in_block) {
      if (--block_left == 0) in_block = false, until_block = interval;
    } else if (until_block == 0) {
      block_left = 16u * b;
      if (block_left != 0)
        in_block = true;
      else
        until_block = interval;
    } else {
      out.push_back(b);
      --until_block;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t interval = (size_t{data[0]} << 8) | data[1];
  if (data[0] & 0x80) interval = IcyDeinterleaver::kMaxInterval + data[1];
  const bool whole = data[2] & 1;
  FuzzedDataProvider fdp(data + 3, size - 3);
  IcyDeinterleaver d(interval);
  std::vector<uint8_t> in, out;
  while (fdp.remaining_bytes() > 0) {
    const size_t n = whole ? fdp.remaining_bytes()
                           : fdp.ConsumeIntegralInRange<size_t>(0, 600);
    const std::vector<uint8_t> piece = fdp.ConsumeBytes<uint8_t>(n);
    in.insert(in.end(), piece.begin(), piece.end());
    d.push(piece.data(), piece.size(), &out);
    const IcyDeinterleaver::Stats& s = d.stats();
    FUZZ_CHECK(s.bytes_in == in.size());
    FUZZ_CHECK(s.stream_bytes == out.size());
    FUZZ_CHECK(s.stream_bytes + s.metadata_bytes == s.bytes_in);
    FUZZ_CHECK(s.empty_blocks + s.bad_blocks <= s.blocks);
    std::string title;
    if (d.take_title(&title)) FUZZ_CHECK(title.size() <= 16 * 255);
  }
  if (!d.valid()) {
    FUZZ_CHECK(interval == 0 || interval > IcyDeinterleaver::kMaxInterval);
    FUZZ_CHECK(out == in);
  } else {
    FUZZ_CHECK(out == model(interval, in));
  }
  return 0;
}
