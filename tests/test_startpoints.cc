// Start points found in the stream (gst/p2psp/startpoints.h), on real
// container bytes: tests/data/startpoints/ holds small files made with
// gst-launch-1.0 (see tests/data/startpoints/README).
#include <gst/p2psp/startpoints.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace p2psp;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_sample(const std::string& name) {
  std::ifstream f(std::string(P2PSP_TEST_DATA) + "/startpoints/" + name,
                  std::ios::binary);
  EXPECT_TRUE(f.good()) << name;
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

struct Unit {
  uint64_t offset = 0;
  MediaBuffer buffer;
  bool header() const { return buffer.flags & MediaBuffer::kHeader; }
  bool random_access() const { return buffer.is_keyframe(); }
};

struct Analysis {
  std::vector<Unit> units;
  StartPoints::Stats stats;
  std::vector<Bytes> headers;
  uint64_t headers_version = 0;
  Bytes out;  // every unit, concatenated
  size_t count(bool (Unit::*what)() const) const {
    size_t n = 0;
    for (const Unit& u : units) n += (u.*what)() ? 1 : 0;
    return n;
  }
};

// Feeds data in pieces of `step` bytes (buffer i gets pts i).
Analysis analyse(Container c, const Bytes& data, size_t step) {
  StartPoints sp(c);
  Analysis run;
  auto drain = [&] {
    MediaBuffer b;
    while (sp.pop(&b)) {
      Unit u;
      u.offset = run.out.size();
      run.out.insert(run.out.end(), b.data.begin(), b.data.end());
      u.buffer = std::move(b);
      run.units.push_back(std::move(u));
    }
  };
  uint64_t index = 0;
  for (size_t i = 0; i < data.size(); i += step, ++index) {
    MediaBuffer b;
    b.data.assign(data.begin() + i,
                  data.begin() + std::min(data.size(), i + step));
    b.pts = index * 1000;
    sp.push(b);
    drain();
  }
  sp.flush();
  drain();
  run.stats = sp.stats();
  run.headers = sp.headers();
  run.headers_version = sp.headers_version();
  return run;
}

// Offsets of the random-access and header units.
std::vector<std::pair<uint64_t, bool>> marks(const Analysis& run) {
  std::vector<std::pair<uint64_t, bool>> m;
  for (const Unit& u : run.units) {
    if (u.header())
      m.emplace_back(u.offset, true);
    else if (u.random_access())
      m.emplace_back(u.offset, false);
  }
  return m;
}

uint32_t le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24);
}

// The Ogg pages of a byte string: offset, size.
std::vector<std::pair<size_t, size_t>> ogg_pages(const Bytes& d) {
  std::vector<std::pair<size_t, size_t>> pages;
  size_t i = 0;
  while (i + 27 <= d.size() && std::memcmp(&d[i], "OggS", 4) == 0) {
    size_t n = d[i + 26], body = 0;
    for (size_t k = 0; k < n; k++) body += d[i + 27 + k];
    pages.emplace_back(i, 27 + n + body);
    i += 27 + n + body;
  }
  return pages;
}

// First byte of the first packet that begins in the Ogg page at p.
int first_packet_byte(const uint8_t* p) {
  if (p[5] & 1) return -1;  // starts with a continued packet
  return p[27 + p[26]];
}

const std::vector<size_t> kSteps = {1, 7, 188, 1000, 4096, 1 << 20};

void expect_faithful(Container c, const Bytes& data, const Analysis& whole) {
  for (size_t step : kSteps) {
    SCOPED_TRACE("step " + std::to_string(step));
    const Analysis run = analyse(c, data, step);
    EXPECT_EQ(run.out, data);  // re-segmented, never altered
    EXPECT_EQ(run.stats.skipped_bytes, 0u);
    EXPECT_EQ(marks(run), marks(whole));
    EXPECT_EQ(run.headers, whole.headers);
  }
}

}  // namespace

TEST(StartPointsCaps, ContainerFromCaps) {
  EXPECT_EQ(container_from_caps("application/ogg"), Container::kOgg);
  EXPECT_EQ(
      container_from_caps(" application/ogg , streamheader=(buffer)< 00 >"),
      Container::kOgg);
  EXPECT_EQ(container_from_caps("audio/ogg"), Container::kOgg);
  EXPECT_EQ(container_from_caps("video/mpegts, systemstream=(boolean)true"),
            Container::kMpegTs);
  EXPECT_EQ(container_from_caps("video/x-matroska"), Container::kMatroska);
  EXPECT_EQ(container_from_caps("video/webm"), Container::kMatroska);
  EXPECT_EQ(container_from_caps("video/x-flv"), Container::kFlv);
  EXPECT_EQ(container_from_caps("audio/mpeg"), Container::kUnknown);
  EXPECT_EQ(container_from_caps(""), Container::kUnknown);
  EXPECT_EQ(caps_media_type("video/webm; video/x-matroska"), "video/webm");
}

TEST(StartPointsCaps, StreamheaderAppended) {
  const std::vector<Bytes> h = {{0x4f, 0x67}, {0x00, 0xff, 0x10}};
  EXPECT_EQ(caps_with_streamheader("application/ogg", h),
            "application/ogg, streamheader=(buffer)< 4f67, 00ff10 >");
  EXPECT_EQ(caps_with_streamheader("video/mpegts, packetsize=(int)188", h),
            "video/mpegts, packetsize=(int)188, "
            "streamheader=(buffer)< 4f67, 00ff10 >");
  // Upstream's own streamheader is kept; nothing to add is a no-op.
  const std::string with = "application/ogg, streamheader=(buffer)< 01 >";
  EXPECT_EQ(caps_with_streamheader(with, h), with);
  EXPECT_EQ(caps_with_streamheader("application/ogg", {}), "application/ogg");
  EXPECT_EQ(caps_with_streamheader("application/ogg",
                                   {Bytes(kMaxStreamheaderBytes + 1, 0x4f)}),
            "application/ogg");
  EXPECT_TRUE(caps_have_streamheader(with));
  EXPECT_FALSE(caps_have_streamheader("application/ogg"));
}

TEST(StartPointsOgg, TheoraVorbisKeyframePages) {
  const Bytes data = read_sample("theora-vorbis.ogg");
  ASSERT_FALSE(data.empty());
  const Analysis run = analyse(Container::kOgg, data, 4096);
  // theoraenc keyframe-force=10, 30 frames: keyframes 0, 10, 20.
  EXPECT_EQ(run.count(&Unit::random_access), 3u);
  EXPECT_EQ(run.stats.random_access, 3u);
  // Headers: the two BOS pages and the header pages, the file's prefix.
  const auto pages = ogg_pages(data);
  ASSERT_GE(pages.size(), 6u);
  ASSERT_EQ(run.headers.size(), 4u);
  size_t off = 0;
  for (size_t i = 0; i < run.headers.size(); ++i) {
    EXPECT_EQ(run.headers[i],
              Bytes(data.begin() + pages[i].first,
                    data.begin() + pages[i].first + pages[i].second));
    off += run.headers[i].size();
  }
  EXPECT_EQ(run.headers_version, 1u);
  // Each random-access unit starts with a page that begins a Theora
  // keyframe packet (first bit 0: data; second bit 0: intra frame).
  // The BOS page whose packet is Theora's identification header.
  const auto& bos = std::memcmp(&data[pages[0].first + 29], "theora", 6) == 0
                        ? pages[0]
                        : pages[1];
  ASSERT_EQ(std::memcmp(&data[bos.first + 29], "theora", 6), 0);
  const uint32_t theora_serial = le32(&data[bos.first + 14]);
  for (const Unit& u : run.units) {
    if (u.header()) {
      EXPECT_LT(u.offset, off);
      EXPECT_TRUE(u.buffer.flags & MediaBuffer::kDeltaUnit);
      continue;
    }
    EXPECT_GE(u.offset, off);
    if (!u.random_access()) continue;
    const uint8_t* p = u.buffer.data.data();
    ASSERT_EQ(std::memcmp(p, "OggS", 4), 0);
    EXPECT_EQ(le32(p + 14), theora_serial);
    const int b = first_packet_byte(p);
    ASSERT_GE(b, 0);
    EXPECT_EQ(b & 0xc0, 0);
  }
  expect_faithful(Container::kOgg, data, run);
}

TEST(StartPointsOgg, Vp8OpusKeyframePages) {
  const Bytes data = read_sample("vp8-opus.ogg");
  ASSERT_FALSE(data.empty());
  const Analysis run = analyse(Container::kOgg, data, 4096);
  EXPECT_EQ(run.stats.random_access, 3u);  // keyframe-max-dist=10, 30 frames
  EXPECT_GE(run.headers.size(), 3u);
  for (const Unit& u : run.units) {
    if (u.header() || !u.random_access()) continue;
    const int b = first_packet_byte(u.buffer.data.data());
    ASSERT_GE(b, 0);
    EXPECT_EQ(b & 1, 0);  // VP8 frame tag: key frame
  }
  expect_faithful(Container::kOgg, data, run);
}

TEST(StartPointsOgg, AudioOnlyStartsAtAnyDataPage) {
  const Bytes data = read_sample("vorbis.ogg");
  ASSERT_FALSE(data.empty());
  const Analysis run = analyse(Container::kOgg, data, 1);
  const auto pages = ogg_pages(data);
  ASSERT_EQ(run.headers.size(), 2u);  // BOS, then comment + setup
  EXPECT_EQ(run.stats.header_units, 2u);
  EXPECT_EQ(run.stats.random_access, pages.size() - 2);
  for (const Unit& u : run.units) EXPECT_TRUE(u.header() || u.random_access());
  expect_faithful(Container::kOgg, data, run);
}

TEST(StartPointsOgg, ChainedStreamGivesNewHeaders) {
  const Bytes one = read_sample("vorbis.ogg");
  Bytes two = one;
  two.insert(two.end(), one.begin(), one.end());
  const Analysis run = analyse(Container::kOgg, two, 500);
  EXPECT_EQ(run.headers_version, 2u);
  EXPECT_EQ(run.stats.header_units, 4u);
  EXPECT_EQ(run.headers, analyse(Container::kOgg, one, 500).headers);
}

TEST(StartPointsOgg, StartedMidStreamHasNoStartPoint) {
  // Without the BOS pages the codecs are unknown: nothing is a start
  // point (the peer's bounded wait takes over) and there are no headers.
  const Bytes data = read_sample("theora-vorbis.ogg");
  const auto pages = ogg_pages(data);
  const Bytes tail(data.begin() + pages[6].first, data.end());
  const Analysis run = analyse(Container::kOgg, tail, 4096);
  EXPECT_EQ(run.stats.random_access, 0u);
  EXPECT_TRUE(run.headers.empty());
  EXPECT_EQ(run.out, tail);
}

TEST(StartPointsOgg, ResynchronisesAfterGarbage) {
  const Bytes data = read_sample("theora-vorbis.ogg");
  std::mt19937 rng(13);
  Bytes garbage(5000);
  for (uint8_t& b : garbage) {
    b = static_cast<uint8_t>(rng());
    if (b == 'O') b = 'o';  // no capture pattern by chance
  }
  Bytes input = garbage;
  input.insert(input.end(), data.begin(), data.end());
  const Analysis run = analyse(Container::kOgg, input, 333);
  EXPECT_EQ(run.stats.skipped_bytes, garbage.size());
  EXPECT_EQ(run.stats.resyncs, 1u);
  EXPECT_EQ(run.stats.random_access, 3u);
  EXPECT_EQ(run.out, data);

  // A damaged page (bad CRC) is skipped; the next pages are found again.
  Bytes damaged = data;
  const auto pages = ogg_pages(data);
  damaged[pages[8].first + 40] ^= 0x55;
  const Analysis hurt = analyse(Container::kOgg, damaged, 4096);
  EXPECT_GE(hurt.stats.skipped_bytes, pages[8].second);
  EXPECT_LT(hurt.stats.skipped_bytes, pages[8].second + 4);
  EXPECT_GE(hurt.stats.random_access, 2u);
  EXPECT_EQ(hurt.headers.size(), 4u);
}

TEST(StartPointsOgg, TimestampsFollowBufferStarts) {
  // One page a buffer (what oggparse gives): every unit keeps its buffer's
  // pts; across buffers of another size only units that start a buffer do.
  const Bytes data = read_sample("theora-vorbis.ogg");
  const auto pages = ogg_pages(data);
  StartPoints sp(Container::kOgg);
  std::vector<MediaBuffer> out;
  for (size_t i = 0; i < pages.size(); ++i) {
    MediaBuffer b;
    b.data.assign(data.begin() + pages[i].first,
                  data.begin() + pages[i].first + pages[i].second);
    b.pts = 1000 + i;
    b.duration = 7;
    b.flags = MediaBuffer::kDeltaUnit |
              (i == 5 ? uint32_t{MediaBuffer::kDiscont} : 0u);
    sp.push(b);
    MediaBuffer u;
    while (sp.pop(&u)) out.push_back(u);
  }
  ASSERT_EQ(out.size(), pages.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].pts, 1000 + i);
    EXPECT_EQ(out[i].duration, 7u);
    EXPECT_EQ((out[i].flags & MediaBuffer::kDiscont) != 0, i == 5);
  }
}

TEST(StartPointsTs, H264KeyframesAndProgramHeaders) {
  const Bytes data = read_sample("h264-aac.ts");
  ASSERT_EQ(data.size() % 188, 0u);
  const Analysis run = analyse(Container::kMpegTs, data, 1316);
  // x264enc key-int-max=10, 30 frames: 3 IDR pictures.
  EXPECT_EQ(run.stats.random_access, 3u);
  ASSERT_EQ(run.headers.size(), 2u);
  const Bytes& pat = run.headers[0];
  const Bytes& pmt = run.headers[1];
  EXPECT_EQ(pat[0], 0x47);
  EXPECT_EQ(((pat[1] & 0x1f) << 8) | pat[2], 0);  // PID 0
  const size_t section = 4 + ((pat[3] & 0x20) ? 1 + pat[4] : 0) + 1;
  const int pmt_pid =
      ((pat[section + 8 + 2] & 0x1f) << 8) | pat[section + 8 + 3];
  EXPECT_EQ(((pmt[1] & 0x1f) << 8) | pmt[2], pmt_pid);
  // The latest copies: the stream's last PAT and PMT.
  Bytes last_pat, last_pmt;
  for (size_t i = 0; i < data.size(); i += 188) {
    const int pid = ((data[i + 1] & 0x1f) << 8) | data[i + 2];
    if (pid == 0) last_pat.assign(data.begin() + i, data.begin() + i + 188);
    if (pid == pmt_pid)
      last_pmt.assign(data.begin() + i, data.begin() + i + 188);
  }
  EXPECT_EQ(pat, last_pat);
  EXPECT_EQ(pmt, last_pmt);
  for (const Unit& u : run.units) {
    EXPECT_EQ(u.buffer.data.size() % 188, 0u);
    if (u.header()) {
      EXPECT_EQ(u.buffer.data.size(), 188u);  // one PAT or PMT packet
      continue;
    }
    if (!u.random_access()) continue;
    // mpegtsmux sets the random_access_indicator on keyframes.
    const uint8_t* p = u.buffer.data.data();
    EXPECT_TRUE(p[1] & 0x40);                // PES start
    ASSERT_TRUE((p[3] & 0x20) && p[4] > 0);  // adaptation field
    EXPECT_TRUE(p[5] & 0x40);                // random access
  }
  expect_faithful(Container::kMpegTs, data, run);
}

TEST(StartPointsTs, AudioOnlyStartsAtEveryPes) {
  const Bytes data = read_sample("aac.ts");
  const Analysis run = analyse(Container::kMpegTs, data, 188 * 7);
  size_t pes = 0;
  for (size_t i = 0; i < data.size(); i += 188) {
    const int pid = ((data[i + 1] & 0x1f) << 8) | data[i + 2];
    if (pid != 0 && pid < 0x1fff && (data[i + 1] & 0x40) && pid != 32) ++pes;
  }
  EXPECT_GT(run.stats.random_access, 0u);
  EXPECT_EQ(run.stats.random_access, pes);
  expect_faithful(Container::kMpegTs, data, run);
}

TEST(StartPointsTs, ResynchronisesAfterGarbage) {
  const Bytes data = read_sample("h264-aac.ts");
  std::mt19937 rng(7);
  Bytes input(3001);
  for (uint8_t& b : input) b = static_cast<uint8_t>(rng());
  input.insert(input.end(), data.begin(), data.end());
  const Analysis run = analyse(Container::kMpegTs, input, 333);
  EXPECT_EQ(run.stats.skipped_bytes, 3001u);
  EXPECT_EQ(run.stats.random_access, 3u);
  EXPECT_EQ(run.out, data);
  // A lost sync byte in the middle: that packet is skipped, the rest found.
  Bytes damaged = data;
  damaged[188 * 40] = 0x00;
  const Analysis hurt = analyse(Container::kMpegTs, damaged, 1316);
  EXPECT_EQ(hurt.stats.skipped_bytes, 188u);
  EXPECT_EQ(hurt.out.size(), data.size() - 188);
}

TEST(StartPointsMatroska, Vp8KeyframeClustersAndHeaders) {
  const Bytes data = read_sample("vp8-vorbis.webm");
  ASSERT_FALSE(data.empty());
  const Analysis run = analyse(Container::kMatroska, data, 4096);
  // keyframe-max-dist=10, 30 frames: 3 clusters start with a keyframe.
  EXPECT_EQ(run.stats.random_access, 3u);
  // EBML header, Segment head, Info, Tracks: the file up to the 1st Cluster.
  ASSERT_EQ(run.headers.size(), 4u);
  Bytes prefix;
  for (const Bytes& h : run.headers)
    prefix.insert(prefix.end(), h.begin(), h.end());
  ASSERT_LE(prefix.size() + 4, data.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), data.begin()));
  EXPECT_EQ(data[prefix.size()], 0x1f);  // a Cluster follows
  for (const Unit& u : run.units) {
    if (u.header() || !u.random_access()) continue;
    const uint8_t* p = u.buffer.data.data();
    EXPECT_EQ(std::memcmp(p, "\x1f\x43\xb6\x75", 4), 0);  // Cluster
  }
  expect_faithful(Container::kMatroska, data, run);
}

TEST(StartPointsMatroska, ResynchronisesAtTheNextCluster) {
  const Bytes data = read_sample("vp8-vorbis.webm");
  std::mt19937 rng(3);
  Bytes input(2000);
  for (uint8_t& b : input) b = static_cast<uint8_t>(rng() | 0x01);
  input.insert(input.end(), data.begin(), data.end());
  const Analysis run = analyse(Container::kMatroska, input, 700);
  EXPECT_GE(run.stats.skipped_bytes, 2000u);
  EXPECT_EQ(run.stats.random_access, 3u);
  EXPECT_EQ(run.headers.size(), 4u);
  // Started mid-stream (no Tracks seen): no start point, no headers.
  const Bytes tail(data.begin() + 5000, data.end());
  const Analysis mid = analyse(Container::kMatroska, tail, 700);
  EXPECT_EQ(mid.stats.random_access, 0u);
  EXPECT_TRUE(mid.headers.empty());
}

TEST(StartPointsFlv, KeyframeTagsAndSequenceHeaders) {
  const Bytes data = read_sample("h264-aac.flv");
  ASSERT_GT(data.size(), 13u);
  const Analysis run = analyse(Container::kFlv, data, 4096);
  EXPECT_EQ(run.stats.random_access, 3u);  // key-int-max=10, 30 frames
  // FLV header (+ PreviousTagSize0), onMetaData, AVC and AAC sequence
  // headers.
  ASSERT_EQ(run.headers.size(), 4u);
  EXPECT_EQ(std::memcmp(run.headers[0].data(), "FLV", 3), 0);
  EXPECT_EQ(run.headers[0].size(), 13u);
  EXPECT_EQ(run.headers[1][0], 18);  // script data
  EXPECT_EQ(run.headers[2][0], 9);   // video
  EXPECT_EQ(run.headers[2][11] & 0x0f, 7);
  EXPECT_EQ(run.headers[2][12], 0);  // AVC sequence header
  EXPECT_EQ(run.headers[3][0], 8);   // audio
  EXPECT_EQ(run.headers[3][11] >> 4, 10);
  EXPECT_EQ(run.headers[3][12], 0);  // AAC sequence header
  for (const Unit& u : run.units) {
    if (u.header() || !u.random_access()) continue;
    const uint8_t* p = u.buffer.data.data();
    EXPECT_EQ(p[0], 9);
    EXPECT_EQ(p[11] >> 4, 1);  // keyframe
    EXPECT_EQ(p[12], 1);       // AVC NALU
  }
  expect_faithful(Container::kFlv, data, run);
}

TEST(StartPointsFlv, ResynchronisesOnTagBoundaries) {
  const Bytes data = read_sample("h264-aac.flv");
  std::mt19937 rng(5);
  Bytes input(1500);
  for (uint8_t& b : input) b = static_cast<uint8_t>(rng());
  input.insert(input.end(), data.begin(), data.end());
  const Analysis run = analyse(Container::kFlv, input, 900);
  EXPECT_EQ(run.stats.random_access, 3u);
  EXPECT_EQ(run.headers.size(), 4u);
  EXPECT_EQ(run.out.size() + run.stats.skipped_bytes, input.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(),
                         run.out.end() - static_cast<ptrdiff_t>(data.size())));
}

// ------------------------------------------------- MP3 and ADTS audio ---

// Frame offsets by walking the headers from the start (the samples are
// clean), to check the analyser against.
std::vector<size_t> audio_frames(const Bytes& d, Container c) {
  std::vector<size_t> at;
  size_t pos = 0;
  for (;;) {
    const size_t size =
        c == Container::kAdts
            ? adts_frame_size(d.data() + pos, d.size() - pos)
            : mpeg_audio_frame_size(d.data() + pos, d.size() - pos);
    if (size == 0 || pos + size > d.size()) break;
    at.push_back(pos);
    pos += size;
  }
  return at;
}

void expect_every_frame_a_start(Container c, const char* sample) {
  const Bytes data = read_sample(sample);
  const std::vector<size_t> frames = audio_frames(data, c);
  ASSERT_GT(frames.size(), 30u) << sample;
  for (size_t step : {1u, 333u, 4096u}) {
    const Analysis run = analyse(c, data, step);
    EXPECT_EQ(run.out, data) << step;
    EXPECT_EQ(run.stats.skipped_bytes, 0u);
    // Every frame starts a unit that opens the gate.
    size_t checked = 0;
    for (const Unit& u : run.units) {
      if (u.random_access()) {
        EXPECT_TRUE(std::binary_search(frames.begin(), frames.end(), u.offset))
            << u.offset;
        ++checked;
      }
    }
    EXPECT_EQ(checked, frames.size()) << step;
  }
}

TEST(StartPointsAudio, Mp3FramesAreStartPoints) {
  EXPECT_EQ(container_from_caps("audio/mpeg, mpegversion=(int)1, layer=(int)3"),
            Container::kMpegAudio);
  expect_every_frame_a_start(Container::kMpegAudio, "tone.mp3");
}

TEST(StartPointsAudio, AdtsFramesAreStartPoints) {
  EXPECT_EQ(
      container_from_caps("audio/mpeg, framed=(boolean)false, "
                          "mpegversion=(int)4, stream-format=(string)adts"),
      Container::kAdts);
  EXPECT_EQ(container_from_caps("audio/mpeg, mpegversion=(int)4, "
                                "stream-format=(string)raw"),
            Container::kUnknown);
  expect_every_frame_a_start(Container::kAdts, "tone.aac");
}

// Joined mid-frame (an Icecast listener's first bytes) and garbage with
// stray sync-like bytes: skipped up to the first frame followed by another.
TEST(StartPointsAudio, ResynchronisesMidFrameAndAfterGarbage) {
  for (auto [c, sample] : {std::pair{Container::kMpegAudio, "tone.mp3"},
                           std::pair{Container::kAdts, "tone.aac"}}) {
    const Bytes data = read_sample(sample);
    const std::vector<size_t> frames = audio_frames(data, c);
    Bytes input(data.begin() + frames[3] + 17, data.end());
    const size_t lead = frames[4] - (frames[3] + 17);
    std::mt19937 rng(5);
    Bytes garbage(2000);
    for (uint8_t& b : garbage) b = static_cast<uint8_t>(rng());
    for (size_t k = 0; k < garbage.size(); k += 97) garbage[k] = 0xFF;
    input.insert(input.begin(), garbage.begin(), garbage.end());
    const Analysis run = analyse(c, input, 500);
    EXPECT_EQ(run.stats.skipped_bytes, garbage.size() + lead) << sample;
    EXPECT_EQ(run.out, Bytes(data.begin() + frames[4], data.end())) << sample;
  }
}

TEST(StartPoints, GarbageNeverCrashesAndAccountsForEveryByte) {
  std::mt19937 rng(1);
  for (Container c :
       {Container::kOgg, Container::kMpegTs, Container::kMatroska,
        Container::kFlv, Container::kMpegAudio, Container::kAdts}) {
    for (int round = 0; round < 50; ++round) {
      Bytes input(rng() % 20000);
      for (uint8_t& b : input) b = static_cast<uint8_t>(rng());
      // Sprinkle plausible starts.
      for (int k = 0; k < 20 && !input.empty(); ++k) {
        const size_t at = rng() % input.size();
        if (c == Container::kOgg && at + 4 <= input.size())
          std::memcpy(&input[at], "OggS", 4);
        else if (c == Container::kMatroska && at + 4 <= input.size())
          std::memcpy(&input[at], "\x1f\x43\xb6\x75", 4);
        else if (c == Container::kMpegAudio || c == Container::kAdts)
          input[at] = 0xFF;
        else
          input[at] = 0x47;
      }
      const Analysis run = analyse(c, input, 1 + rng() % 3000);
      EXPECT_EQ(run.out.size() + run.stats.skipped_bytes, input.size());
    }
  }
}

TEST(StartPointFilter, WelcomeCapsGetTheFoundHeaders) {
  const Bytes data = read_sample("theora-vorbis.ogg");
  StartPointFilter f;
  f.set_caps("application/ogg");
  EXPECT_EQ(f.welcome_caps("application/ogg"), "application/ogg");
  std::vector<MediaBuffer> out;
  MediaBuffer b;
  b.data = data;
  f.push(b, &out);
  EXPECT_GT(out.size(), 4u);
  EXPECT_EQ(f.headers_version(), 1u);
  const std::string caps = f.welcome_caps("application/ogg");
  EXPECT_EQ(caps.rfind("application/ogg, streamheader=(buffer)< 4f676753", 0),
            0u);
  // Caps that only gain upstream's streamheader keep the analyser.
  f.set_caps("application/ogg, streamheader=(buffer)< 00 >");
  EXPECT_EQ(f.headers_version(), 1u);
  // Matroska with upstream's streamheader (matroskamux streamable=true,
  // matroskaparse) keeps upstream's flags; a raw one is analysed.
  f.set_caps("video/webm, streamheader=(buffer)< 00 >");
  EXPECT_EQ(f.analyser(), nullptr);
  f.set_caps("video/webm");
  ASSERT_NE(f.analyser(), nullptr);
  EXPECT_EQ(f.analyser()->container(), Container::kMatroska);
  // Another container drops it; unknown ones pass buffers as they are (MP3
  // and ADTS are analysed since the media matrix showed joiners starting
  // mid-frame; raw audio has no frames to find).
  f.set_caps("audio/x-raw, format=(string)S16LE");
  EXPECT_EQ(f.analyser(), nullptr);
  out.clear();
  f.push(b, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, data);
}
