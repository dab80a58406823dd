// Tests of the frame layer: Framer -> chunks -> Deframer.
#include <gst/p2psp/framing.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace p2psp {
namespace {

// What the test sent, with where its frame lies in the framed byte stream.
struct SentItem {
  StreamItem item;
  uint64_t start = 0;  // stream offset of the frame header
  uint64_t end = 0;    // one past the frame's last byte
};

struct Chunk {
  ChunkPayload payload;
  uint64_t start = 0;  // stream offset of the chunk's first byte
};

struct Stream {
  std::vector<SentItem> items;
  std::vector<Chunk> chunks;
};

uint32_t random_flags(std::mt19937& rng) {
  return std::uniform_int_distribution<uint32_t>(0, 15)(rng);
}

uint64_t random_time(std::mt19937& rng) {
  if (rng() % 5 == 0) return kNoTime;
  return std::uniform_int_distribution<uint64_t>(0, UINT64_MAX - 1)(rng);
}

StreamItem random_item(std::mt19937& rng, size_t max_size) {
  StreamItem item;
  if (rng() % 8 == 0) {
    item.kind = StreamItem::Kind::kCaps;
    item.caps = "video/x-test, id=(int)" + std::to_string(rng());
    return item;
  }
  MediaBuffer& b = item.buffer;
  b.data.resize(std::uniform_int_distribution<size_t>(0, max_size)(rng));
  for (auto& byte : b.data) byte = static_cast<uint8_t>(rng());
  b.pts = random_time(rng);
  b.dts = random_time(rng);
  b.duration = random_time(rng);
  b.flags = random_flags(rng);
  return item;
}

// Frame header size per docs/protocol.md: 6 bytes plus 8 per timestamp the
// buffer has (caps frames have none).
size_t header_size(const StreamItem& item) {
  if (item.kind == StreamItem::Kind::kCaps) return 6;
  const MediaBuffer& b = item.buffer;
  return 6 + 8 * ((b.pts != kNoTime) + (b.dts != kNoTime) +
                  (b.duration != kNoTime));
}

size_t data_size(const StreamItem& item) {
  return item.kind == StreamItem::Kind::kCaps ? item.caps.size()
                                              : item.buffer.data.size();
}

size_t frame_size(const StreamItem& item) {
  return header_size(item) + data_size(item);
}

void push_item(Framer* framer, const StreamItem& item) {
  if (item.kind == StreamItem::Kind::kCaps) {
    framer->push_caps(item.caps);
  } else {
    framer->push_buffer(item.buffer);
  }
}

// Frames `items`, popping full chunks as they fill and, when
// partial_every > 0, a partial chunk after about one item in partial_every.
Stream frame_items(const std::vector<StreamItem>& items, size_t chunk_size,
                   std::mt19937& rng, int partial_every) {
  Stream stream;
  Framer framer(chunk_size);
  uint64_t stream_pos = 0;
  uint64_t chunk_pos = 0;
  auto collect = [&](bool partial) {
    ChunkPayload payload;
    while (framer.pop_full(&payload)) {
      const uint64_t start = chunk_pos;
      chunk_pos += payload.bytes.size();
      stream.chunks.push_back({std::move(payload), start});
    }
    if (partial && framer.pop_partial(&payload)) {
      const uint64_t start = chunk_pos;
      chunk_pos += payload.bytes.size();
      stream.chunks.push_back({std::move(payload), start});
    }
  };
  for (const StreamItem& item : items) {
    push_item(&framer, item);
    const uint64_t size = frame_size(item);
    stream.items.push_back({item, stream_pos, stream_pos + size});
    stream_pos += size;
    collect(partial_every > 0 && rng() % partial_every == 0);
  }
  while (framer.pending_bytes() > 0) collect(true);
  return stream;
}

std::vector<StreamItem> random_items(std::mt19937& rng, size_t count,
                                     size_t max_size) {
  std::vector<StreamItem> items;
  for (size_t i = 0; i < count; ++i)
    items.push_back(random_item(rng, max_size));
  return items;
}

struct Received {
  std::vector<StreamItem> items;
  Deframer::Stats stats;
};

void feed(Deframer* deframer, const Chunk& chunk) {
  deframer->push_chunk(chunk.payload.bytes.data(), chunk.payload.bytes.size(),
                       chunk.payload.first_frame_offset);
}

Received drain(Deframer* deframer) {
  Received received;
  StreamItem item;
  while (deframer->pop(&item)) received.items.push_back(std::move(item));
  received.stats = deframer->stats();
  return received;
}

// Deframes the chunks from `first` on; chunks in `lost` become gaps.
Received deframe(const Stream& stream, size_t first = 0,
                 const std::set<size_t>& lost = {}) {
  Deframer deframer;
  for (size_t i = first; i < stream.chunks.size(); ++i) {
    if (lost.count(i)) {
      deframer.push_gap();
    } else {
      feed(&deframer, stream.chunks[i]);
    }
  }
  return drain(&deframer);
}

// The items expected out when only the frames kept[i] survive: buffers as
// sent, the first buffer after a dropped frame (and the very first) DISCONT.
std::vector<StreamItem> expected_items(const Stream& stream,
                                       const std::vector<bool>& kept) {
  std::vector<StreamItem> expected;
  bool discont = true;
  for (size_t i = 0; i < stream.items.size(); ++i) {
    if (!kept[i]) {
      discont = true;
      continue;
    }
    StreamItem item = stream.items[i].item;
    if (item.kind == StreamItem::Kind::kBuffer) {
      if (discont) item.buffer.flags |= MediaBuffer::kDiscont;
      discont = false;
    }
    expected.push_back(std::move(item));
  }
  return expected;
}

void expect_same_item(const StreamItem& want, const StreamItem& got,
                      size_t index) {
  SCOPED_TRACE("item " + std::to_string(index));
  ASSERT_EQ(want.kind, got.kind);
  if (want.kind == StreamItem::Kind::kCaps) {
    EXPECT_EQ(want.caps, got.caps);
    return;
  }
  EXPECT_EQ(want.buffer.data, got.buffer.data);
  EXPECT_EQ(want.buffer.pts, got.buffer.pts);
  EXPECT_EQ(want.buffer.dts, got.buffer.dts);
  EXPECT_EQ(want.buffer.duration, got.buffer.duration);
  EXPECT_EQ(want.buffer.flags, got.buffer.flags);
}

void expect_same_items(const std::vector<StreamItem>& want,
                       const std::vector<StreamItem>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    expect_same_item(want[i], got[i], i);
    if (testing::Test::HasFailure()) return;
  }
}

bool touches(const SentItem& frame, const Chunk& chunk) {
  const uint64_t chunk_end = chunk.start + chunk.payload.bytes.size();
  return frame.start < chunk_end && chunk.start < frame.end;
}

// The byte layout of docs/protocol.md, written out independently.
Bytes encode_frame_by_hand(const StreamItem& item) {
  Bytes out;
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back((v >> (8 * i)) & 0xff);
  };
  const bool caps = item.kind == StreamItem::Kind::kCaps;
  const MediaBuffer& b = item.buffer;
  const bool pts = !caps && b.pts != kNoTime;
  const bool dts = !caps && b.dts != kNoTime;
  const bool duration = !caps && b.duration != kNoTime;
  put((caps ? 1 : 0) | (pts ? 0x10 : 0) | (dts ? 0x20 : 0) |
          (duration ? 0x40 : 0),
      1);
  put(caps ? 0 : b.flags, 1);
  put(data_size(item), 4);
  if (pts) put(b.pts, 8);
  if (dts) put(b.dts, 8);
  if (duration) put(b.duration, 8);
  if (caps) {
    out.insert(out.end(), item.caps.begin(), item.caps.end());
  } else {
    out.insert(out.end(), item.buffer.data.begin(), item.buffer.data.end());
  }
  return out;
}

const size_t kChunkSizes[] = {64, 1024, 1400};

TEST(Framing, RoundTripKeepsBytesMetadataAndOrder) {
  for (size_t chunk_size : kChunkSizes) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk_size));
    std::mt19937 rng(static_cast<uint32_t>(chunk_size));
    const Stream stream = frame_items(random_items(rng, 300, 5000), chunk_size,
                                      rng, /*partial_every=*/4);
    const Received received = deframe(stream);
    const std::vector<bool> all(stream.items.size(), true);
    expect_same_items(expected_items(stream, all), received.items);
    EXPECT_EQ(received.stats.frames, stream.items.size());
    EXPECT_EQ(received.stats.malformed, 0u);
    EXPECT_EQ(received.stats.dropped_frames, 0u);
  }
}

TEST(Framing, ChunksAreFullExceptPartialOnesAndJoinToTheFrameBytes) {
  for (size_t chunk_size : kChunkSizes) {
    std::mt19937 rng(7);
    const Stream stream =
        frame_items(random_items(rng, 100, 3000), chunk_size, rng, 3);
    Bytes joined;
    size_t partial_chunks = 0;
    for (const Chunk& chunk : stream.chunks) {
      ASSERT_LE(chunk.payload.bytes.size(), chunk_size);
      ASSERT_GT(chunk.payload.bytes.size(), 0u);
      if (chunk.payload.bytes.size() < chunk_size) ++partial_chunks;
      joined.insert(joined.end(), chunk.payload.bytes.begin(),
                    chunk.payload.bytes.end());
    }
    EXPECT_GT(partial_chunks, 0u);  // the test did exercise pop_partial
    Bytes by_hand;
    for (const SentItem& sent : stream.items) {
      const Bytes frame = encode_frame_by_hand(sent.item);
      by_hand.insert(by_hand.end(), frame.begin(), frame.end());
    }
    EXPECT_EQ(by_hand, joined);
  }
}

TEST(Framing, FirstFrameOffsetIsTheFirstFrameStartingInTheChunk) {
  for (size_t chunk_size : kChunkSizes) {
    std::mt19937 rng(11);
    const Stream stream =
        frame_items(random_items(rng, 200, 2000), chunk_size, rng, 5);
    size_t with_start = 0;
    size_t without_start = 0;
    for (const Chunk& chunk : stream.chunks) {
      const uint64_t end = chunk.start + chunk.payload.bytes.size();
      uint16_t expected = kNoFrameStart;
      for (const SentItem& sent : stream.items) {
        if (sent.start >= chunk.start && sent.start < end) {
          expected = static_cast<uint16_t>(sent.start - chunk.start);
          break;
        }
      }
      EXPECT_EQ(expected, chunk.payload.first_frame_offset);
      ++(expected == kNoFrameStart ? without_start : with_start);
    }
    EXPECT_GT(with_start, 0u);
    if (chunk_size == 64) {
      EXPECT_GT(without_start, 0u);
    }
  }
}

TEST(Framing, PopPartialNeverExceedsChunkSizeAndPopFullWaits) {
  Framer framer(100);
  ChunkPayload payload;
  EXPECT_FALSE(framer.pop_partial(&payload));
  MediaBuffer buffer;
  buffer.data.assign(10, 0xab);
  framer.push_buffer(buffer);
  EXPECT_EQ(framer.pending_bytes(), 6u + 10);  // no timestamps
  EXPECT_FALSE(framer.pop_full(&payload));
  buffer.data.assign(300, 0xcd);
  framer.push_buffer(buffer);
  ASSERT_TRUE(framer.pop_partial(&payload));
  EXPECT_EQ(payload.bytes.size(), 100u);
  EXPECT_EQ(payload.first_frame_offset, 0);
  ASSERT_TRUE(framer.pop_full(&payload));
  EXPECT_EQ(payload.bytes.size(), 100u);
  EXPECT_EQ(payload.first_frame_offset, kNoFrameStart);
}

TEST(Framing, LargeBacklogIsCutWhileMoreFramesArrive) {
  // Hundreds of KiB queued before the first chunk is cut, then cutting and
  // framing interleave: the framer's buffer is consumed from the front while
  // it grows at the back.
  std::mt19937 rng(17);
  const std::vector<StreamItem> items = random_items(rng, 400, 5000);
  Framer framer(1400);
  std::vector<ChunkPayload> chunks;
  ChunkPayload payload;
  for (size_t i = 0; i < items.size(); ++i) {
    push_item(&framer, items[i]);
    if (i < 200) continue;
    for (int k = 0; k < 3 && framer.pop_full(&payload); ++k) {
      chunks.push_back(payload);
    }
  }
  while (framer.pop_partial(&payload)) chunks.push_back(payload);
  EXPECT_EQ(framer.pending_bytes(), 0u);

  Deframer deframer;
  for (const ChunkPayload& chunk : chunks) {
    deframer.push_chunk(chunk.bytes.data(), chunk.bytes.size(),
                        chunk.first_frame_offset);
  }
  const Received received = drain(&deframer);
  ASSERT_EQ(received.items.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    StreamItem want = items[i];
    if (i == 0) want.buffer.flags |= MediaBuffer::kDiscont;
    expect_same_item(want, received.items[i], i);
  }
}

TEST(Framing, BufferLargerThanTheDeframerAcceptsIsNotSent) {
  Framer framer(1000);
  MediaBuffer huge;
  huge.data.resize(size_t{kMaxFrameSize} + 1);
  framer.push_buffer(huge);
  EXPECT_EQ(framer.pending_bytes(), 0u);
}

TEST(Framing, LosingOneChunkDropsExactlyTheFramesItTouched) {
  for (size_t chunk_size : {size_t{64}, size_t{1024}}) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk_size));
    std::mt19937 rng(23);
    const Stream stream =
        frame_items(random_items(rng, 60, 700), chunk_size, rng, 6);
    for (size_t lost = 0; lost < stream.chunks.size(); ++lost) {
      SCOPED_TRACE("lost chunk " + std::to_string(lost));
      const Chunk& gap = stream.chunks[lost];
      std::vector<bool> kept(stream.items.size());
      uint64_t in_progress = 0;
      for (size_t i = 0; i < stream.items.size(); ++i) {
        const SentItem& sent = stream.items[i];
        kept[i] = !touches(sent, gap);
        if (sent.start < gap.start && sent.end > gap.start) ++in_progress;
      }
      const Received received = deframe(stream, 0, {lost});
      expect_same_items(expected_items(stream, kept), received.items);
      EXPECT_EQ(received.stats.dropped_frames, in_progress);
      EXPECT_EQ(received.stats.malformed, 0u);
      if (testing::Test::HasFailure()) return;
    }
  }
}

TEST(Framing, LateStartResyncsAtTheFirstFrameStart) {
  std::mt19937 rng(31);
  const Stream stream = frame_items(random_items(rng, 80, 600), 64, rng, 0);
  for (size_t first = 0; first < stream.chunks.size(); ++first) {
    SCOPED_TRACE("first chunk " + std::to_string(first));
    const uint64_t joined_at = stream.chunks[first].start;
    std::vector<bool> kept(stream.items.size());
    for (size_t i = 0; i < stream.items.size(); ++i) {
      kept[i] = stream.items[i].start >= joined_at;
    }
    const Received received = deframe(stream, first);
    expect_same_items(expected_items(stream, kept), received.items);
    EXPECT_EQ(received.stats.malformed, 0u);
    EXPECT_EQ(received.stats.dropped_frames, 0u);
    if (testing::Test::HasFailure()) return;
  }
}

TEST(Framing, FrameSpanningHundredChunks) {
  std::mt19937 rng(41);
  std::vector<StreamItem> items = random_items(rng, 3, 50);
  StreamItem big = random_item(rng, 0);
  big.kind = StreamItem::Kind::kBuffer;
  big.buffer.data.resize(99 * 64 + 10);
  for (auto& byte : big.buffer.data) byte = static_cast<uint8_t>(rng());
  items.push_back(big);
  const auto tail = random_items(rng, 3, 50);
  items.insert(items.end(), tail.begin(), tail.end());
  const Stream stream = frame_items(items, 64, rng, 0);

  const SentItem& sent_big = stream.items[3];
  std::vector<size_t> spanned;
  for (size_t i = 0; i < stream.chunks.size(); ++i) {
    if (touches(sent_big, stream.chunks[i])) spanned.push_back(i);
  }
  ASSERT_GE(spanned.size(), 100u);

  const std::vector<bool> all(stream.items.size(), true);
  expect_same_items(expected_items(stream, all), deframe(stream).items);

  std::vector<bool> without_big = all;
  without_big[3] = false;
  const Received received = deframe(stream, 0, {spanned[50]});
  expect_same_items(expected_items(stream, without_big), received.items);
  EXPECT_EQ(received.stats.dropped_frames, 1u);
}

TEST(Framing, ChunkContradictingThePartialFrameResyncsAtItsFrameStart) {
  // A chunk from another stream (a restarted splitter) arrives while a frame
  // of the old stream is half assembled.
  std::mt19937 rng(53);
  StreamItem big = random_item(rng, 0);
  big.kind = StreamItem::Kind::kBuffer;
  big.buffer.data.assign(500, 0);
  const Stream old_stream = frame_items({big}, 64, rng, 0);
  const Stream new_stream = frame_items(random_items(rng, 20, 100), 64, rng, 0);
  ASSERT_EQ(new_stream.chunks[0].payload.first_frame_offset, 0);

  Deframer deframer;
  feed(&deframer, old_stream.chunks[0]);
  for (const Chunk& chunk : new_stream.chunks) feed(&deframer, chunk);
  const Received received = drain(&deframer);
  const std::vector<bool> all(new_stream.items.size(), true);
  expect_same_items(expected_items(new_stream, all), received.items);
  EXPECT_EQ(received.stats.malformed, 1u);
}

TEST(Framing, FrameEndingAtChunkEndButNextChunkDisagrees) {
  // Header (6, no timestamps) + 58 bytes fills a 64-byte chunk exactly: the
  // next frame must start at offset 0 of the next chunk.
  MediaBuffer exact;
  exact.data.assign(58, 0x11);
  MediaBuffer second;
  second.data.assign(5, 0x22);
  Framer framer(64);
  framer.push_buffer(exact);
  framer.push_buffer(second);
  ChunkPayload first_chunk, second_chunk;
  ASSERT_TRUE(framer.pop_full(&first_chunk));
  ASSERT_TRUE(framer.pop_partial(&second_chunk));
  ASSERT_EQ(second_chunk.first_frame_offset, 0);

  Deframer deframer;
  deframer.push_chunk(first_chunk.bytes.data(), first_chunk.bytes.size(),
                      first_chunk.first_frame_offset);
  deframer.push_chunk(second_chunk.bytes.data(), second_chunk.bytes.size(),
                      kNoFrameStart);
  const Received received = drain(&deframer);
  ASSERT_EQ(received.items.size(), 1u);
  EXPECT_EQ(received.items[0].buffer.data, exact.data);
  EXPECT_EQ(received.stats.malformed, 1u);
}

TEST(Framing, BufferDiscontFromTheSplitterIsKeptAndGapMarksTheNext) {
  Framer framer(1000);
  MediaBuffer plain;
  plain.data = {1, 2, 3};
  MediaBuffer discont = plain;
  discont.flags = MediaBuffer::kDiscont | MediaBuffer::kDeltaUnit;
  framer.push_buffer(plain);
  framer.push_buffer(plain);
  framer.push_buffer(discont);
  ChunkPayload payload;
  ASSERT_TRUE(framer.pop_partial(&payload));
  Deframer deframer;
  deframer.push_chunk(payload.bytes.data(), payload.bytes.size(),
                      payload.first_frame_offset);
  deframer.push_gap();
  deframer.push_chunk(payload.bytes.data(), payload.bytes.size(),
                      payload.first_frame_offset);
  std::vector<uint32_t> flags;
  for (const StreamItem& item : drain(&deframer).items) {
    flags.push_back(item.buffer.flags);
  }
  const uint32_t d = MediaBuffer::kDiscont;
  const uint32_t dd = MediaBuffer::kDiscont | MediaBuffer::kDeltaUnit;
  EXPECT_EQ(flags, (std::vector<uint32_t>{d, 0, dd, d, 0, dd}));
}

// A header as the deframer sees it; fields can be made invalid one by one.
// first: the kind and field bits byte. The header is followed by as many
// timestamps as its field bits announce (zero-valued).
Bytes header_bytes(uint8_t first, uint32_t size) {
  Bytes out(6, 0);
  out[0] = first;
  for (int i = 0; i < 4; ++i) out[2 + i] = (size >> (24 - 8 * i)) & 0xff;
  for (uint8_t bit : {0x10, 0x20, 0x40}) {
    if (first & bit) out.resize(out.size() + 8, 0);
  }
  return out;
}

TEST(Framing, InvalidHeadersAreMalformed) {
  // Kinds 2 and 3, each reserved bit, a size over the limit.
  const Bytes bad[] = {header_bytes(2, 0),
                       header_bytes(3, 0),
                       header_bytes(0x04, 0),
                       header_bytes(0x08, 0),
                       header_bytes(0x80, 4),
                       header_bytes(0x90, 0),
                       header_bytes(1, kMaxFrameSize + 1)};
  for (const Bytes& header : bad) {
    Deframer deframer;
    deframer.push_chunk(header.data(), header.size(), 0);
    const Bytes good = header_bytes(0, 0);
    // Still unsynced: a chunk without a frame start is ignored.
    deframer.push_chunk(good.data(), good.size(), kNoFrameStart);
    EXPECT_EQ(drain(&deframer).items.size(), 0u);
    EXPECT_EQ(deframer.stats().malformed, 1u);
    deframer.push_chunk(good.data(), good.size(), 0);
    const Received received = drain(&deframer);
    ASSERT_EQ(received.items.size(), 1u);
    EXPECT_EQ(received.items[0].buffer.flags, MediaBuffer::kDiscont);
  }
  const Bytes largest = header_bytes(0, kMaxFrameSize);
  Deframer deframer;
  deframer.push_chunk(largest.data(), largest.size(), 0);
  EXPECT_EQ(deframer.stats().malformed, 0u);
}

TEST(Framing, FirstFrameOffsetBeyondThePayloadIsMalformed) {
  const Bytes good = header_bytes(0, 0);
  Deframer deframer;
  deframer.push_chunk(good.data(), good.size(), 32);
  EXPECT_EQ(deframer.stats().malformed, 1u);
  EXPECT_EQ(drain(&deframer).items.size(), 0u);
}

bool is_sent_item(const std::vector<SentItem>& sent, const StreamItem& got) {
  for (const SentItem& s : sent) {
    const StreamItem& want = s.item;
    if (want.kind != got.kind) continue;
    if (want.kind == StreamItem::Kind::kCaps) {
      if (want.caps == got.caps) return true;
      continue;
    }
    const MediaBuffer& a = want.buffer;
    const MediaBuffer& b = got.buffer;
    if (a.data == b.data && a.pts == b.pts && a.dts == b.dts &&
        a.duration == b.duration &&
        (a.flags | MediaBuffer::kDiscont) == (b.flags | MediaBuffer::kDiscont))
      return true;
  }
  return false;
}

// Overwrites stream bytes [offset, offset + bytes.size()) inside the chunks.
void patch_stream(std::vector<Chunk>* chunks, uint64_t offset,
                  const Bytes& bytes) {
  for (Chunk& chunk : *chunks) {
    for (size_t i = 0; i < chunk.payload.bytes.size(); ++i) {
      const uint64_t at = chunk.start + i;
      if (at >= offset && at < offset + bytes.size()) {
        chunk.payload.bytes[i] = bytes[at - offset];
      }
    }
  }
}

TEST(Framing, FuzzCorruptHeadersAndGarbageNeverCrash) {
  std::mt19937 rng(1234);
  const Stream clean = frame_items(random_items(rng, 12, 150), 64, rng, 3);
  uint64_t outputs = 0;
  for (int iteration = 0; iteration < 100000; ++iteration) {
    std::vector<Chunk> chunks = clean.chunks;
    const size_t victim = rng() % clean.items.size();
    const SentItem& target = clean.items[victim];
    const bool corrupt_header = rng() % 2 == 0;
    if (corrupt_header) {
      // An invalid kind, reserved bit or size in one frame's header.
      Bytes field;
      uint64_t at = target.start;
      switch (rng() % 3) {
        case 0:  // kind 2 or 3, any field bits
          field = {static_cast<uint8_t>((2 + rng() % 2) | (rng() & 0x70))};
          break;
        case 1: {  // a reserved bit
          const uint8_t reserved[] = {0x04, 0x08, 0x80};
          field = {static_cast<uint8_t>(rng() | reserved[rng() % 3])};
          break;
        }
        default: {
          const uint32_t size = kMaxFrameSize + 1 + rng() % 1000;
          field = {static_cast<uint8_t>(size >> 24),
                   static_cast<uint8_t>(size >> 16),
                   static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size)};
          at += 2;
        }
      }
      patch_stream(&chunks, at, field);
    } else {
      // Garbage: random bytes, offsets, lengths, and gaps.
      for (Chunk& chunk : chunks) {
        const uint32_t roll = rng() % 8;
        if (roll == 0) {
          for (auto& byte : chunk.payload.bytes) byte = rng();
        } else if (roll == 1) {
          chunk.payload.first_frame_offset = rng() % 80;
        } else if (roll == 2) {
          chunk.payload.bytes.resize(rng() % 70, 0xff);
        }
      }
    }
    Deframer deframer;
    for (const Chunk& chunk : chunks) {
      if (!corrupt_header && rng() % 10 == 0) deframer.push_gap();
      feed(&deframer, chunk);
    }
    const Received received = drain(&deframer);
    ASSERT_EQ(received.stats.frames, received.items.size());
    outputs += received.items.size();
    if (!corrupt_header) continue;
    ASSERT_GE(received.stats.malformed, 1u) << "iteration " << iteration;
    for (const StreamItem& item : received.items) {
      ASSERT_TRUE(is_sent_item(clean.items, item)) << "iteration " << iteration;
      if (item.kind == StreamItem::Kind::kBuffer &&
          target.item.kind == StreamItem::Kind::kBuffer &&
          !target.item.buffer.data.empty()) {
        ASSERT_NE(item.buffer.data, target.item.buffer.data)
            << "corrupted frame came out, iteration " << iteration;
      }
    }
  }
  EXPECT_GT(outputs, 0u);
}

}  // namespace
}  // namespace p2psp
