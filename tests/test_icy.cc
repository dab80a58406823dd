// ICY metadata removed from a radio stream (gst/p2psp/icy.h).
#include <gst/p2psp/icy.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using namespace p2psp;

namespace {

using Bytes = std::vector<uint8_t>;

// A metadata block as a server sends it: length byte, text, NUL padding.
Bytes block(const std::string& text) {
  const size_t units = (text.size() + 15) / 16;
  Bytes b;
  b.push_back(static_cast<uint8_t>(units));
  b.insert(b.end(), text.begin(), text.end());
  b.resize(1 + units * 16, 0);
  return b;
}

// Stream bytes 0, 1, 2, ... so that any misplaced byte shows.
Bytes stream_bytes(size_t from, size_t n) {
  Bytes b;
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(from + i));
  return b;
}

// `intervals` runs of `interval` stream bytes, each followed by a block
// (texts[i], cycling; "" is an empty block).
struct Interleaved {
  Bytes wire, stream;
};
Interleaved interleave(size_t interval, size_t intervals,
                       const std::vector<std::string>& texts) {
  Interleaved r;
  for (size_t i = 0; i < intervals; ++i) {
    const Bytes s = stream_bytes(r.stream.size(), interval);
    r.stream.insert(r.stream.end(), s.begin(), s.end());
    r.wire.insert(r.wire.end(), s.begin(), s.end());
    const Bytes b = block(texts[i % texts.size()]);
    r.wire.insert(r.wire.end(), b.begin(), b.end());
  }
  return r;
}

Bytes feed_in_pieces(IcyDeinterleaver* d, const Bytes& wire,
                     const std::vector<size_t>& sizes) {
  Bytes out;
  size_t at = 0;
  for (size_t i = 0; at < wire.size(); ++i) {
    const size_t n = std::min(sizes[i % sizes.size()], wire.size() - at);
    d->push(wire.data() + at, n, &out);
    at += n;
  }
  return out;
}

}  // namespace

TEST(IcyCaps, IntervalFromCaps) {
  EXPECT_TRUE(caps_are_icy("application/x-icy, metadata-interval=(int)16000"));
  EXPECT_FALSE(caps_are_icy("audio/mpeg, mpegversion=(int)1"));
  EXPECT_EQ(
      icy_metadata_interval("application/x-icy, metadata-interval=(int)16000"),
      16000u);
  EXPECT_EQ(icy_metadata_interval("application/x-icy, metadata-interval=8192"),
            8192u);
  EXPECT_EQ(icy_metadata_interval("application/x-icy"), 0u);
  EXPECT_EQ(icy_metadata_interval("application/x-icy, metadata-interval=x"),
            0u);
  EXPECT_EQ(icy_metadata_interval(
                "application/x-icy, metadata-interval=(int)99999999999"),
            0u);
  EXPECT_EQ(icy_metadata_interval("audio/mpeg, metadata-interval=16000"), 0u);
}

TEST(IcyTitle, ParsesStreamTitle) {
  std::string t;
  const std::string text = "StreamTitle='Rock'n'roll';StreamUrl='x';";
  ASSERT_TRUE(icy_stream_title(reinterpret_cast<const uint8_t*>(text.data()),
                               text.size(), &t));
  EXPECT_EQ(t, "Rock'n'roll");
  const std::string none = "StreamUrl='x';";
  EXPECT_FALSE(icy_stream_title(reinterpret_cast<const uint8_t*>(none.data()),
                                none.size(), &t));
}

TEST(IcyDeinterleaver, StripsBlocksWhole) {
  const Interleaved in =
      interleave(100, 5, {"StreamTitle='One';", "", "StreamTitle='Two';", ""});
  IcyDeinterleaver d(100);
  Bytes out;
  d.push(in.wire.data(), in.wire.size(), &out);
  EXPECT_EQ(out, in.stream);
  EXPECT_EQ(d.stats().blocks, 5u);
  EXPECT_EQ(d.stats().empty_blocks, 2u);
  EXPECT_EQ(d.stats().bad_blocks, 0u);
  EXPECT_EQ(d.stats().stream_bytes + d.stats().metadata_bytes, in.wire.size());
  std::string title;
  ASSERT_TRUE(d.take_title(&title));
  EXPECT_EQ(title, "One");  // One, Two, then One again: the latest
  EXPECT_EQ(d.stats().titles, 3u);
  EXPECT_FALSE(d.take_title(&title));
}

TEST(IcyDeinterleaver, BlocksSplitAcrossBuffersAnywhere) {
  const Interleaved in = interleave(
      37, 40,
      {"StreamTitle='A long title, over two units';", "", "StreamTitle='B';"});
  // Every piece size from 1 up: length bytes and block texts fall on every
  // buffer boundary.
  for (size_t piece = 1; piece <= 80; ++piece) {
    IcyDeinterleaver d(37);
    EXPECT_EQ(feed_in_pieces(&d, in.wire, {piece}), in.stream) << piece;
    EXPECT_EQ(d.stats().blocks, 40u) << piece;
    EXPECT_EQ(d.stats().bad_blocks, 0u) << piece;
  }
  std::mt19937 rng(13);
  std::vector<size_t> sizes;
  for (int i = 0; i < 64; ++i) sizes.push_back(1 + rng() % 300);
  IcyDeinterleaver d(37);
  EXPECT_EQ(feed_in_pieces(&d, in.wire, sizes), in.stream);
}

TEST(IcyDeinterleaver, TitleOncePerChange) {
  const Interleaved in =
      interleave(10, 4, {"StreamTitle='Same';", "", "StreamTitle='Same';"});
  IcyDeinterleaver d(10);
  Bytes out;
  std::string t;
  d.push(in.wire.data(), 11 + 1 + 32, &out);  // first block whole
  ASSERT_TRUE(d.take_title(&t));
  EXPECT_EQ(t, "Same");
  d.push(in.wire.data() + 44, in.wire.size() - 44, &out);
  EXPECT_FALSE(d.take_title(&t));
  EXPECT_EQ(out, in.stream);
}

TEST(IcyDeinterleaver, BadBlockIsCountedAndStillStripped) {
  // The length byte says 2 units (32 bytes) but the text is binary: the
  // interval does not match the stream. The framing is all there is to go
  // by, so the bytes go (as with icydemux); the title does not change.
  Interleaved in = interleave(20, 3, {"StreamTitle='Good';"});
  const size_t second = 20 + (1 + 32) + 20;  // its length byte
  in.wire[second + 1 + 3] = 0x01;            // control byte inside the text
  IcyDeinterleaver d(20);
  Bytes out;
  d.push(in.wire.data(), in.wire.size(), &out);
  EXPECT_EQ(out, in.stream);
  EXPECT_EQ(d.stats().bad_blocks, 1u);
  std::string t;
  ASSERT_TRUE(d.take_title(&t));
  EXPECT_EQ(t, "Good");
  EXPECT_EQ(d.stats().titles, 1u);
}

TEST(IcyDeinterleaver, LargestLengthByteAndTextAfterPadding) {
  // L = 255: 4080 bytes, the most a block holds; text after NUL padding is
  // not metadata.
  Bytes wire = stream_bytes(0, 8);
  wire.push_back(255);
  Bytes text(4080, 0);
  const std::string t = "StreamTitle='x';";
  std::copy(t.begin(), t.end(), text.begin());
  text[4000] = 'z';
  wire.insert(wire.end(), text.begin(), text.end());
  const Bytes tail = stream_bytes(8, 8);
  wire.insert(wire.end(), tail.begin(), tail.end());
  IcyDeinterleaver d(8);
  Bytes out;
  d.push(wire.data(), wire.size(), &out);
  EXPECT_EQ(out, stream_bytes(0, 16));
  EXPECT_EQ(d.stats().bad_blocks, 1u);
  std::string title;
  EXPECT_FALSE(d.take_title(&title));
}

TEST(IcyDeinterleaver, BadIntervalPassesEverything) {
  for (size_t interval : {size_t{0}, IcyDeinterleaver::kMaxInterval + 1}) {
    IcyDeinterleaver d(interval);
    EXPECT_FALSE(d.valid());
    const Bytes in = stream_bytes(0, 500);
    Bytes out;
    d.push(in.data(), in.size(), &out);
    EXPECT_EQ(out, in);
    EXPECT_EQ(d.stats().blocks, 0u);
  }
}

TEST(IcyDeinterleaver, EndsInsideABlock) {
  // A stream cut inside a block passes its stream bytes and nothing else.
  const Interleaved in = interleave(16, 2, {"StreamTitle='Cut here';"});
  IcyDeinterleaver d(16);
  Bytes out;
  d.push(in.wire.data(), 16 + 1 + 5, &out);
  EXPECT_EQ(out, stream_bytes(0, 16));
  EXPECT_EQ(d.stats().blocks, 0u);
}
