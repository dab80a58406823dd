// gst-p2psp: where a decoder can start, found in the stream itself.
// See startpoints.h and docs/protocol.md section 7.3.
#include <gst/p2psp/startpoints.h>

#include <algorithm>
#include <cstring>

namespace p2psp {

namespace {

uint32_t le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial 0.
const uint32_t* ogg_crc_table() {
  static const auto* table = [] {
    static uint32_t t[256];
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t r = i << 24;
      for (int k = 0; k < 8; k++)
        r = (r & 0x80000000u) ? (r << 1) ^ 0x04c11db7u : (r << 1);
      t[i] = r;
    }
    return t;
  }();
  return table;
}

// CRC of a page with its CRC field (bytes 22..25) taken as zero.
uint32_t ogg_page_crc(const uint8_t* p, size_t n) {
  const uint32_t* t = ogg_crc_table();
  uint32_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t b = (i >= 22 && i < 26) ? 0 : p[i];
    crc = (crc << 8) ^ t[((crc >> 24) ^ b) & 0xff];
  }
  return crc;
}

bool starts_with(const uint8_t* p, size_t n, const char* prefix) {
  const size_t k = std::strlen(prefix);
  return n >= k && std::memcmp(p, prefix, k) == 0;
}

bool is_ts_video(uint8_t type) {
  return type == 0x01 || type == 0x02 || type == 0x10 || type == 0x1b ||
         type == 0x24;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
  return s.substr(b, e - b);
}

}  // namespace

std::string caps_media_type(const std::string& caps) {
  return trim(caps.substr(0, caps.find_first_of(",;")));
}

Container container_from_caps(const std::string& caps) {
  const std::string type = caps_media_type(caps);
  if (type == "application/ogg" || type == "audio/ogg" || type == "video/ogg" ||
      type == "application/x-ogg")
    return Container::kOgg;
  if (type == "video/mpegts") return Container::kMpegTs;
  if (type == "video/x-matroska" || type == "video/webm" ||
      type == "audio/x-matroska" || type == "audio/webm")
    return Container::kMatroska;
  if (type == "video/x-flv") return Container::kFlv;
  if (type == "audio/mpeg") {
    // Elementary MPEG audio; "stream-format=raw" AAC has no frames to find.
    if (caps.find("mpegversion=(int)1") != std::string::npos ||
        caps.find("mpegversion=1") != std::string::npos)
      return Container::kMpegAudio;
    if (caps.find("adts") != std::string::npos) return Container::kAdts;
  }
  return Container::kUnknown;
}

// ISO/IEC 11172-3 and 13818-3 frame headers: sync (11 bits), version,
// layer, protection, bitrate index, sampling index, padding.
size_t mpeg_audio_frame_size(const uint8_t* p, size_t n) {
  if (n < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0) return 0;
  const int version = (p[1] >> 3) & 3;  // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  const int layer = (p[1] >> 1) & 3;    // 3: I, 2: II, 1: III
  const int bitrate_index = p[2] >> 4;
  const int rate_index = (p[2] >> 2) & 3;
  if (version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 ||
      rate_index == 3) {
    return 0;  // reserved values, or "free format" (no length to find)
  }
  static const int kKbps[2][3][15] = {
      {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
       {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
       {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}},
      {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}}};
  static const int kRate[3] = {44100, 48000, 32000};
  const bool mpeg1 = version == 3;
  const int rate = kRate[rate_index] >> (mpeg1 ? 0 : version == 2 ? 1 : 2);
  const int bps = kKbps[mpeg1 ? 0 : 1][3 - layer][bitrate_index] * 1000;
  const int padding = (p[2] >> 1) & 1;
  if (layer == 3) return static_cast<size_t>((12 * bps / rate + padding) * 4);
  const int per_frame = (layer == 1 && !mpeg1) ? 72 : 144;
  return static_cast<size_t>(per_frame * bps / rate + padding);
}

// ISO/IEC 13818-7 ADTS: sync (12 bits), layer 0, frame length (13 bits)
// counting the 7- or 9-byte header.
size_t adts_frame_size(const uint8_t* p, size_t n) {
  if (n < 7 || p[0] != 0xFF || (p[1] & 0xF6) != 0xF0) return 0;
  if (((p[2] >> 2) & 0xF) > 12) return 0;  // sampling frequency index
  const size_t length = (static_cast<size_t>(p[3] & 3) << 11) |
                        (static_cast<size_t>(p[4]) << 3) | (p[5] >> 5);
  const size_t header = (p[1] & 1) ? 7 : 9;
  return length > header ? length : 0;
}

bool caps_have_streamheader(const std::string& caps) {
  return caps.find("streamheader=") != std::string::npos ||
         caps.find("streamheader =") != std::string::npos;
}

std::string caps_with_streamheader(
    const std::string& caps, const std::vector<std::vector<uint8_t>>& headers) {
  if (headers.empty() || caps.empty() || caps_have_streamheader(caps))
    return caps;
  // WELCOME must stay far below a TCP message's limit (1 MiB): headers
  // bigger than this (an Ogg comment header with cover art...) are left
  // out, and joiners start without them.
  size_t total = 0;
  for (const auto& h : headers) total += h.size();
  if (total > kMaxStreamheaderBytes) return caps;
  std::string out = trim(caps.substr(0, caps.find(';')));
  static const char kHex[] = "0123456789abcdef";
  out += ", streamheader=(buffer)< ";
  for (size_t i = 0; i < headers.size(); i++) {
    if (i > 0) out += ", ";
    for (uint8_t b : headers[i]) {
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  out += " >";
  return out;
}

StartPoints::StartPoints(Container container) : container_(container) {}

void StartPoints::push(const MediaBuffer& buffer) {
  stats_.bytes_in += buffer.data.size();
  BufferStart start;
  start.offset = buf_offset_ + (buf_.size() - pos_);
  start.pts = buffer.pts;
  start.dts = buffer.dts;
  start.duration = buffer.duration;
  start.discont = (buffer.flags & MediaBuffer::kDiscont) != 0;
  if (!buffer.data.empty()) {
    starts_.push_back(start);
  } else if (start.discont) {
    carry_discont_ = true;
  }
  buf_.insert(buf_.end(), buffer.data.begin(), buffer.data.end());
  consume();
  close_unit();
}

bool StartPoints::pop(MediaBuffer* unit) {
  if (ready_.empty()) return false;
  *unit = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

void StartPoints::flush() {
  const size_t n = buf_.size() - pos_;
  if (n > 0) {
    close_unit();
    add_unit(n, Class::kDelta);
    pos_ += n;
    buf_offset_ += n;
  }
  close_unit();
  buf_.clear();
  pos_ = 0;
}

void StartPoints::consume() {
  for (;;) {
    const size_t n = buf_.size() - pos_;
    if (n == 0) break;
    const uint8_t* p = buf_.data() + pos_;
    const Parsed r = container_ == Container::kOgg        ? parse_ogg(p, n)
                     : container_ == Container::kMpegTs   ? parse_ts(p, n)
                     : container_ == Container::kMatroska ? parse_mkv(p, n)
                     : container_ == Container::kFlv      ? parse_flv(p, n)
                                                          : parse_audio(p, n);
    if (r.result == Parsed::Result::kNeedMore) break;
    const size_t size = std::min(std::max<size_t>(r.size, 1), n);
    if (r.result == Parsed::Result::kSkip) {
      stats_.skipped_bytes += size;
      if (!skipping_) ++stats_.resyncs;
      skipping_ = true;
      const uint64_t end = buf_offset_ + size;
      while (!starts_.empty() && starts_.front().offset < end) {
        carry_discont_ |= starts_.front().discont;
        starts_.pop_front();
      }
    } else {
      skipping_ = false;
      add_unit(size, r.cls);
    }
    pos_ += size;
    buf_offset_ += size;
  }
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
}

void StartPoints::add_unit(size_t size, Class cls) {
  const uint8_t* p = buf_.data() + pos_;
  const uint64_t begin = buf_offset_, end = buf_offset_ + size;
  bool discont = carry_discont_;
  carry_discont_ = false;
  bool at_start = false;
  BufferStart first;
  while (!starts_.empty() && starts_.front().offset < end) {
    const BufferStart& s = starts_.front();
    discont |= s.discont;
    if (s.offset == begin) {
      at_start = true;
      first = s;
    }
    starts_.pop_front();
  }
  if (cls == Class::kDelta && open_valid_ && !discont && !at_start &&
      open_.data.size() + size <= kMaxUnit) {
    open_.data.insert(open_.data.end(), p, p + size);
    return;
  }
  close_unit();
  MediaBuffer unit;
  unit.data.assign(p, p + size);
  if (at_start) {
    unit.pts = first.pts;
    unit.dts = first.dts;
    // A duration only while the unit is the whole buffer.
    const bool whole = starts_.empty() ? (buf_.size() - pos_ == size)
                                       : (starts_.front().offset == end);
    if (whole) unit.duration = first.duration;
  }
  unit.flags = discont ? static_cast<uint32_t>(MediaBuffer::kDiscont) : 0u;
  switch (cls) {
    case Class::kHeader:
      unit.flags |= MediaBuffer::kHeader | MediaBuffer::kDeltaUnit;
      ++stats_.header_units;
      ++stats_.units;
      ready_.push_back(std::move(unit));
      return;
    case Class::kRandomAccess:
      ++stats_.random_access;
      break;
    case Class::kDelta:
      unit.flags |= MediaBuffer::kDeltaUnit;
      break;
  }
  open_ = std::move(unit);
  open_valid_ = true;
  open_cls_ = cls;
}

void StartPoints::close_unit() {
  if (!open_valid_) return;
  open_valid_ = false;
  ++stats_.units;
  ready_.push_back(std::move(open_));
  open_ = MediaBuffer();
}

// ------------------------------------------------------------------ Ogg ---

StartPoints::Parsed StartPoints::parse_ogg(const uint8_t* p, size_t n) {
  Parsed r;
  static const uint8_t kCapture[4] = {'O', 'g', 'g', 'S'};
  if (std::memcmp(p, kCapture, std::min<size_t>(n, 4)) != 0) {
    // Skip to the next capture pattern, keeping a possible partial one.
    r.result = Parsed::Result::kSkip;
    r.size = n;
    for (size_t k = 1; k < n; k++) {
      if (std::memcmp(p + k, kCapture, std::min<size_t>(n - k, 4)) == 0) {
        r.size = k;
        break;
      }
    }
    return r;
  }
  if (n < 27) return r;
  if (p[4] != 0) {
    r.result = Parsed::Result::kSkip;
    r.size = 1;
    return r;
  }
  const size_t nseg = p[26];
  if (n < 27 + nseg) return r;
  size_t body = 0;
  for (size_t i = 0; i < nseg; i++) body += p[27 + i];
  const size_t total = 27 + nseg + body;
  if (n < total) return r;
  if (ogg_page_crc(p, total) != le32(p + 22)) {
    r.result = Parsed::Result::kSkip;
    r.size = 1;
    return r;
  }
  r.result = Parsed::Result::kUnit;
  r.size = total;
  r.cls = classify_ogg_page(p, total);
  return r;
}

StartPoints::Class StartPoints::classify_ogg_page(const uint8_t* page,
                                                  size_t size) {
  using C = OggStream::Codec;
  const uint8_t htype = page[5];
  const uint32_t serial = le32(page + 14);
  const size_t nseg = page[26];
  const uint8_t* lacing = page + 27;
  const uint8_t* body = page + 27 + nseg;
  const size_t body_size = size - 27 - nseg;
  const bool continued = htype & 0x01;
  const bool bos = htype & 0x02;
  const bool eos = htype & 0x04;

  if (bos) {
    if (ogg_seen_data_ || ogg_complete_) {
      // A new link of a chained stream: new headers.
      ogg_streams_.clear();
      ogg_pending_headers_.clear();
      ogg_seen_data_ = false;
      ogg_complete_ = false;
    }
    ogg_from_start_ = true;
    OggStream st;
    size_t first = 0;
    while (first < nseg && lacing[first] == 255) first++;
    size_t len = 0;
    for (size_t i = 0; i < nseg && i <= first; i++) len += lacing[i];
    len = std::min(len, body_size);
    const uint8_t* b = body;
    if (starts_with(b, len, "\x80theora")) {
      st.codec = C::kTheora;
      st.video = true;
      st.expected = 3;
    } else if (starts_with(b, len, "\x01vorbis")) {
      st.codec = C::kVorbis;
      st.expected = 3;
    } else if (starts_with(b, len, "OpusHead")) {
      st.codec = C::kOpus;
      st.expected = 2;
    } else if (starts_with(b, len, "OVP80\x01")) {
      st.codec = C::kVp8;
      st.video = true;
      st.expected = 2;
    } else if (starts_with(b, len,
                           "\x7f"
                           "FLAC")) {
      st.codec = C::kFlac;
      const int more = len >= 9 ? (b[7] << 8 | b[8]) : 0;
      st.expected = more > 0 ? more + 1 : 0;
    } else if (starts_with(b, len, "Speex   ")) {
      st.codec = C::kSpeex;
      st.expected = 2;
    } else if (len >= 8 && std::memcmp(b, "fishead\0", 8) == 0) {
      st.codec = C::kSkeleton;  // headers until its EOS page
    } else if (starts_with(b, len, "\x80kate")) {
      st.codec = C::kKate;
    } else if (starts_with(b, len,
                           "\x80"
                           "daala")) {
      // A video codec whose keyframe flag is not parsed here: a stream with
      // it never gets a start point and joiners use the bounded wait.
      st.codec = C::kDaala;
      st.video = true;
      st.expected = 3;
    } else {
      st.expected = 1;  // unknown codec: the BOS page is its header
    }
    st.header_packets = 1;
    if (st.expected == 1 || (st.codec == C::kSkeleton && eos))
      st.in_headers = false;
    ogg_streams_[serial] = st;
    ogg_pending_headers_.emplace_back(page, page + size);
    return Class::kHeader;
  }

  auto it = ogg_streams_.find(serial);
  if (it == ogg_streams_.end()) {
    ogg_seen_data_ = true;
    return Class::kDelta;  // a stream whose BOS page we did not see
  }
  OggStream& st = it->second;
  bool header_page = continued && st.in_headers;
  bool keyframe = false;
  // Walk the packets that begin in this page.
  size_t off = 0;
  bool packet_begins = !continued;
  for (size_t i = 0; i < nseg; i++) {
    if (packet_begins) {
      // The bytes of this packet inside the page.
      size_t len = 0;
      for (size_t j = i; j < nseg; j++) {
        len += lacing[j];
        if (lacing[j] < 255) break;
      }
      len = std::min(len, body_size - std::min(off, body_size));
      const uint8_t* pkt = body + std::min(off, body_size);
      bool is_header = false;
      if (st.in_headers) {
        switch (st.codec) {
          case C::kTheora:
          case C::kKate:
          case C::kDaala:
            is_header = len > 0 && (pkt[0] & 0x80);
            break;
          case C::kVorbis:
            is_header = len > 0 && (pkt[0] & 0x01);
            break;
          case C::kOpus:
            is_header = starts_with(pkt, len, "OpusTags");
            break;
          case C::kVp8:
            is_header = starts_with(pkt, len, "OVP80");
            break;
          case C::kFlac:
            is_header = len > 0 && pkt[0] != 0xff;
            break;
          case C::kSpeex:
          case C::kSkeleton:
            is_header = true;
            break;
          case C::kUnknown:
            break;
        }
      }
      if (is_header) {
        header_page = true;
        st.header_packets++;
        if (st.expected > 0 && st.header_packets >= st.expected)
          st.in_headers = false;
      } else {
        st.in_headers = false;
        if (st.video && len > 0) {
          if (st.codec == C::kTheora && !(pkt[0] & 0x80) && !(pkt[0] & 0x40))
            keyframe = true;
          if (st.codec == C::kVp8 && !(pkt[0] & 0x01)) keyframe = true;
        }
      }
    }
    off += lacing[i];
    packet_begins = lacing[i] < 255;
  }
  if (st.codec == C::kSkeleton && eos) st.in_headers = false;

  if (header_page) {
    ogg_pending_headers_.emplace_back(page, page + size);
  } else {
    ogg_seen_data_ = true;
  }
  if (!ogg_complete_) {
    bool all = !ogg_streams_.empty();
    for (const auto& [s, o] : ogg_streams_) all = all && !o.in_headers;
    if (all) {
      ogg_complete_ = true;
      headers_ = ogg_pending_headers_;
      ++headers_version_;
    }
  }
  if (header_page) return Class::kHeader;
  if (!ogg_complete_) return Class::kDelta;
  bool has_video = false;
  for (const auto& [s, o] : ogg_streams_) has_video = has_video || o.video;
  if (!has_video || keyframe) return Class::kRandomAccess;
  return Class::kDelta;
}

// -------------------------------------------------------------- MPEG-TS ---

StartPoints::Parsed StartPoints::parse_audio(const uint8_t* p, size_t n) {
  auto frame_size = [this](const uint8_t* q, size_t m) {
    return container_ == Container::kAdts ? adts_frame_size(q, m)
                                          : mpeg_audio_frame_size(q, m);
  };
  const size_t header = container_ == Container::kAdts ? 7 : 4;
  Parsed r;
  if (n < header) return r;
  const size_t size = frame_size(p, n);
  if (size == 0) {
    audio_synced_ = false;
    r.result = Parsed::Result::kSkip;
    r.size = 1;
    while (r.size < n && p[r.size] != 0xFF) ++r.size;
    return r;
  }
  if (!audio_synced_) {
    // A stray 0xFF byte pair looks like a header now and then: believe one
    // only when the next frame's header follows it.
    if (n < size + header) return r;
    if (frame_size(p + size, n - size) == 0) {
      r.result = Parsed::Result::kSkip;
      r.size = 1;
      return r;
    }
    audio_synced_ = true;
  }
  if (n < size) return r;
  r.result = Parsed::Result::kUnit;
  r.size = size;
  r.cls = Class::kRandomAccess;  // audio frames decode on their own
  return r;
}

StartPoints::Parsed StartPoints::parse_ts(const uint8_t* p, size_t n) {
  constexpr size_t kPacket = 188;
  Parsed r;
  if (p[0] != 0x47) {
    ts_synced_ = false;
    r.result = Parsed::Result::kSkip;
    r.size = n;
    for (size_t k = 1; k < n; k++) {
      if (p[k] == 0x47 && (k + kPacket >= n || p[k + kPacket] == 0x47)) {
        r.size = k;
        break;
      }
    }
    return r;
  }
  if (!ts_synced_) {
    // Out of sync, a sync byte counts only with the next one 188 bytes on.
    if (n <= kPacket) return r;
    if (p[kPacket] != 0x47) {
      r.result = Parsed::Result::kSkip;
      r.size = 1;
      return r;
    }
    ts_synced_ = true;
  }
  if (n < kPacket) return r;
  r.result = Parsed::Result::kUnit;
  r.size = kPacket;
  r.cls = classify_ts_packet(p);
  return r;
}

StartPoints::Class StartPoints::classify_ts_packet(const uint8_t* p) {
  if (p[1] & 0x80) return Class::kDelta;  // transport error
  const uint16_t pid = static_cast<uint16_t>(((p[1] & 0x1f) << 8) | p[2]);
  const bool pusi = p[1] & 0x40;
  const uint8_t afc = (p[3] >> 4) & 3;
  if (afc == 0) return Class::kDelta;
  size_t off = 4;
  bool rai = false;
  if (afc & 2) {
    const size_t alen = p[4];
    if (5 + alen > 188) return Class::kDelta;
    if (alen > 0) rai = p[5] & 0x40;
    off = 5 + alen;
  }
  const bool payload = (afc & 1) && off < 188;
  if (pid == 0) {
    if (pusi && payload) parse_pat(p, off);
    return Class::kHeader;
  }
  if (pid == pmt_pid_) {
    if (pusi && payload) parse_pmt(p, off);
    return Class::kHeader;
  }
  if (pmt_packet_.empty()) return Class::kDelta;
  auto it = ts_streams_.find(pid);
  if (it == ts_streams_.end() || !pusi) return Class::kDelta;
  if (!ts_has_video_) return Class::kRandomAccess;  // audio starts anywhere
  if (!is_ts_video(it->second)) return Class::kDelta;
  if (rai || (payload && pes_starts_keyframe(p, off, it->second)))
    return Class::kRandomAccess;
  return Class::kDelta;
}

void StartPoints::parse_pat(const uint8_t* p, size_t off) {
  const size_t s = off + 1 + p[off];
  if (s + 8 > 188 || p[s] != 0x00) return;
  const size_t section_length = ((p[s + 1] & 0x0f) << 8) | p[s + 2];
  const size_t end = std::min<size_t>(s + 3 + section_length, 188);
  if (end < s + 12) return;
  for (size_t i = s + 8; i + 4 <= end - 4; i += 4) {
    const uint16_t program = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    const uint16_t pid =
        static_cast<uint16_t>(((p[i + 2] & 0x1f) << 8) | p[i + 3]);
    if (program == 0) continue;  // network PID
    if (pid != pmt_pid_) {
      pmt_pid_ = pid;
      ts_streams_.clear();
      ts_has_video_ = false;
      pmt_packet_.clear();
      pmt_version_ = -1;
      pat_packet_.assign(p, p + 188);
    } else {
      pat_packet_.assign(p, p + 188);  // the latest copy, see parse_pmt()
      set_ts_headers();
    }
    return;
  }
}

void StartPoints::parse_pmt(const uint8_t* p, size_t off) {
  const size_t s = off + 1 + p[off];
  if (s + 12 > 188 || p[s] != 0x02) return;
  const size_t section_length = ((p[s + 1] & 0x0f) << 8) | p[s + 2];
  const int version = (p[s + 5] >> 1) & 0x1f;
  if (version == pmt_version_ && !pmt_packet_.empty()) {
    // The latest copies: a joiner's next in-band PAT/PMT then continues
    // their continuity counters (tsdemux warns of a jump).
    pmt_packet_.assign(p, p + 188);
    set_ts_headers();
    return;
  }
  const size_t end = std::min<size_t>(s + 3 + section_length, 188);
  const size_t pil = ((p[s + 10] & 0x0f) << 8) | p[s + 11];
  ts_streams_.clear();
  ts_has_video_ = false;
  // The elementary stream loop ends before the CRC (or at the packet's end
  // for a PMT longer than one packet: what is in this packet is used).
  const size_t loop_end = end >= s + 3 + section_length ? end - 4 : end;
  for (size_t i = s + 12 + pil; i + 5 <= loop_end;) {
    const uint8_t type = p[i];
    const uint16_t pid =
        static_cast<uint16_t>(((p[i + 1] & 0x1f) << 8) | p[i + 2]);
    const size_t eil = ((p[i + 3] & 0x0f) << 8) | p[i + 4];
    ts_streams_[pid] = type;
    ts_has_video_ = ts_has_video_ || is_ts_video(type);
    i += 5 + eil;
  }
  pmt_version_ = version;
  pmt_packet_.assign(p, p + 188);
  set_ts_headers();
}

void StartPoints::set_ts_headers() {
  if (pat_packet_.empty() || pmt_packet_.empty()) return;
  std::vector<std::vector<uint8_t>> headers = {pat_packet_, pmt_packet_};
  if (headers == headers_) return;
  headers_ = std::move(headers);
  ++headers_version_;
}

bool StartPoints::pes_starts_keyframe(const uint8_t* pkt, size_t off,
                                      uint8_t type) {
  const uint8_t* q = pkt + off;
  const size_t len = 188 - off;
  if (len < 9 || q[0] != 0 || q[1] != 0 || q[2] != 1) return false;
  size_t i = 9 + q[8];
  for (; i + 6 <= len; i++) {
    if (q[i] != 0 || q[i + 1] != 0 || q[i + 2] != 1) continue;
    const uint8_t b = q[i + 3];
    switch (type) {
      case 0x1b: {  // H.264: IDR or SPS first; a non-IDR slice first: no
        const int nal = b & 0x1f;
        if (nal == 5 || nal == 7) return true;
        if (nal == 1) return false;
        break;
      }
      case 0x24: {  // H.265: VPS/SPS/PPS or an IRAP picture
        const int nal = (b >> 1) & 0x3f;
        if (nal >= 32 && nal <= 34) return true;
        if (nal >= 16 && nal <= 21) return true;
        if (nal <= 9) return false;
        break;
      }
      case 0x01:
      case 0x02:  // MPEG-1/2 video: sequence header, or an I picture
        if (b == 0xb3 || b == 0xb8) return true;
        if (b == 0x00) return ((q[i + 5] >> 3) & 7) == 1;
        break;
      case 0x10:  // MPEG-4 part 2: VOS/GOV, or an I-VOP
        if (b == 0xb0 || b == 0xb3) return true;
        if (b == 0xb6) return (q[i + 4] >> 6) == 0;
        break;
      default:
        return false;
    }
  }
  return false;
}

// ------------------------------------------------------------ Matroska ---

namespace {

constexpr uint32_t kMkvEbml = 0x1A45DFA3;
constexpr uint32_t kMkvSegment = 0x18538067;
constexpr uint32_t kMkvCluster = 0x1F43B675;
constexpr uint32_t kMkvTracks = 0x1654AE6B;
constexpr uint32_t kMkvTrackEntry = 0xAE;
constexpr uint32_t kMkvTrackNumber = 0xD7;
constexpr uint32_t kMkvTrackType = 0x83;
constexpr uint32_t kMkvSimpleBlock = 0xA3;
constexpr uint32_t kMkvBlockGroup = 0xA0;
constexpr uint32_t kMkvBlock = 0xA1;
constexpr uint32_t kMkvReferenceBlock = 0xFB;
// Elements larger than this are taken for garbage (bounded buffering).
constexpr uint64_t kMkvMaxElement = 16u << 20;
constexpr uint64_t kMkvUnknownSize = UINT64_MAX;

// An EBML element header: ID (marker bits kept) and data size.
struct MkvHead {
  enum class Result { kOk, kNeedMore, kBad } result = Result::kBad;
  uint32_t id = 0;
  uint64_t size = 0;  // kMkvUnknownSize: all ones
  size_t head = 0;    // bytes of ID + size
};

// Length of a variable-size integer from its first byte (0: invalid).
size_t vint_length(uint8_t b, size_t max) {
  for (size_t len = 1; len <= max; len++)
    if (b & (0x80 >> (len - 1))) return len;
  return 0;
}

MkvHead mkv_head(const uint8_t* p, size_t n) {
  MkvHead h;
  if (n == 0) {
    h.result = MkvHead::Result::kNeedMore;
    return h;
  }
  const size_t id_len = vint_length(p[0], 4);
  if (id_len == 0) return h;
  if (n < id_len + 1) {
    h.result = MkvHead::Result::kNeedMore;
    return h;
  }
  for (size_t i = 0; i < id_len; i++) h.id = (h.id << 8) | p[i];
  const size_t size_len = vint_length(p[id_len], 8);
  if (size_len == 0) return h;
  if (n < id_len + size_len) {
    h.result = MkvHead::Result::kNeedMore;
    return h;
  }
  uint64_t v = p[id_len] & (0xff >> size_len);
  bool all_ones = v == (0xffu >> size_len);
  for (size_t i = 1; i < size_len; i++) {
    v = (v << 8) | p[id_len + i];
    all_ones = all_ones && p[id_len + i] == 0xff;
  }
  h.size = all_ones ? kMkvUnknownSize : v;
  h.head = id_len + size_len;
  h.result = MkvHead::Result::kOk;
  return h;
}

bool mkv_top_level(uint32_t id) {
  switch (id) {
    case 0x114D9B74:  // SeekHead
    case 0x1549A966:  // Info
    case kMkvTracks:
    case 0x1C53BB6B:  // Cues
    case 0x1043A770:  // Chapters
    case 0x1254C367:  // Tags
    case 0x1941A469:  // Attachments
      return true;
    default:
      return false;
  }
}

// IDs met at the levels walked: Segment children and Cluster children.
bool mkv_known_id(uint32_t id) {
  if (mkv_top_level(id)) return true;
  switch (id) {
    case 0xE7:  // Timecode
    case 0xA7:  // Position
    case 0xAB:  // PrevSize
    case kMkvSimpleBlock:
    case kMkvBlockGroup:
    case 0xAF:    // EncryptedBlock
    case 0x5854:  // SilentTracks
    case 0xEC:    // Void
    case 0xBF:    // CRC-32
      return true;
    default:
      return false;
  }
}

uint64_t mkv_uint(const uint8_t* p, uint64_t n) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < n && i < 8; i++) v = (v << 8) | p[i];
  return v;
}

}  // namespace

// The unit at the front: an element (or, for the EBML Segment and a
// Cluster, the element's head: their children follow as units of their
// own). A Cluster's unit runs to the end of its first block, so it can be
// judged as a start point: a video keyframe (or any block without video).
StartPoints::Parsed StartPoints::parse_mkv(const uint8_t* p, size_t n) {
  Parsed r;
  const MkvHead h = mkv_head(p, n);
  auto skip_to_next = [&] {
    // Resynchronise at the next Cluster or EBML header.
    r.result = Parsed::Result::kSkip;
    r.size = n > 3 ? n - 3 : 1;
    for (size_t k = 1; k + 4 <= n; k++) {
      const uint32_t id = (uint32_t(p[k]) << 24) | (p[k + 1] << 16) |
                          (p[k + 2] << 8) | p[k + 3];
      if (id == kMkvCluster || id == kMkvEbml) {
        r.size = k;
        break;
      }
    }
    return r;
  };
  if (h.result == MkvHead::Result::kNeedMore) return r;
  if (h.result == MkvHead::Result::kBad) return skip_to_next();
  // EBML has no sync word: out of sync, only an EBML header, Segment or
  // Cluster is believed; in sync, only the IDs a live stream has at the
  // levels it walks (anything else loses sync).
  const bool anchor =
      h.id == kMkvEbml || h.id == kMkvSegment || h.id == kMkvCluster;
  if (!anchor && (!mkv_synced_ || !mkv_known_id(h.id))) {
    mkv_synced_ = false;
    return skip_to_next();
  }
  mkv_synced_ = true;
  if (h.id == kMkvSegment) {
    r.result = Parsed::Result::kUnit;
    r.size = h.head;
    if (mkv_seen_cluster_) {
      // A new segment (a restarted muxer): new headers.
      mkv_seen_cluster_ = false;
      mkv_pending_headers_.clear();
      mkv_tracks_.clear();
    }
    mkv_pending_headers_.emplace_back(p, p + h.head);
    r.cls = Class::kHeader;
    return r;
  }
  if (h.id == kMkvCluster) return mkv_cluster_start(p, n, h.head);
  if (h.size == kMkvUnknownSize || h.size > kMkvMaxElement) {
    return skip_to_next();
  }
  if (n < h.head + h.size) return r;
  const size_t total = h.head + static_cast<size_t>(h.size);
  r.result = Parsed::Result::kUnit;
  r.size = total;
  if (h.id == kMkvEbml) {
    if (mkv_seen_cluster_) {
      mkv_seen_cluster_ = false;
      mkv_pending_headers_.clear();
      mkv_tracks_.clear();
    }
    mkv_pending_headers_.emplace_back(p, p + total);
    r.cls = Class::kHeader;
  } else if (mkv_top_level(h.id) && !mkv_seen_cluster_) {
    if (h.id == kMkvTracks) mkv_tracks(p + h.head, total - h.head);
    mkv_pending_headers_.emplace_back(p, p + total);
    r.cls = Class::kHeader;
  } else if (h.id == 0xEC || h.id == 0xBF) {  // Void, CRC-32
    r.cls = mkv_seen_cluster_ ? Class::kDelta : Class::kHeader;
    if (!mkv_seen_cluster_) mkv_pending_headers_.emplace_back(p, p + total);
  } else {
    r.cls = Class::kDelta;
  }
  return r;
}

StartPoints::Parsed StartPoints::mkv_cluster_start(const uint8_t* p, size_t n,
                                                   size_t head) {
  Parsed r;
  if (!mkv_seen_cluster_) {
    // The headers end here: what a joiner needs before any cluster.
    mkv_seen_cluster_ = true;
    if (!mkv_pending_headers_.empty()) {
      headers_ = mkv_pending_headers_;
      ++headers_version_;
    }
  }
  // Children up to the first block (Timecode, Position, ... come first).
  size_t off = head;
  for (;;) {
    const MkvHead c = mkv_head(p + off, n - off);
    if (c.result == MkvHead::Result::kNeedMore) {
      if (n - off > kMkvMaxElement) break;
      return r;  // wait for the block (the cluster was counted already)
    }
    if (c.result == MkvHead::Result::kBad || c.size == kMkvUnknownSize ||
        c.size > kMkvMaxElement || c.id == kMkvCluster || mkv_top_level(c.id)) {
      // No block in this cluster: its head alone, not a start point.
      r.result = Parsed::Result::kUnit;
      r.size = head;
      r.cls = Class::kDelta;
      return r;
    }
    const size_t end = off + c.head + static_cast<size_t>(c.size);
    if (end > n) return r;  // need more
    if (c.id == kMkvSimpleBlock || c.id == kMkvBlockGroup) {
      r.result = Parsed::Result::kUnit;
      r.size = end;
      r.cls = mkv_block_is_start(p + off + c.head, end - off - c.head,
                                 c.id == kMkvBlockGroup)
                  ? Class::kRandomAccess
                  : Class::kDelta;
      return r;
    }
    off = end;
  }
  r.result = Parsed::Result::kUnit;
  r.size = head;
  r.cls = Class::kDelta;
  return r;
}

void StartPoints::mkv_tracks(const uint8_t* p, size_t n) {
  size_t off = 0;
  while (off < n) {
    const MkvHead e = mkv_head(p + off, n - off);
    if (e.result != MkvHead::Result::kOk || e.size > n - off - e.head) return;
    if (e.id == kMkvTrackEntry) {
      const uint8_t* q = p + off + e.head;
      const size_t m = static_cast<size_t>(e.size);
      uint64_t number = 0, type = 0;
      size_t i = 0;
      while (i < m) {
        const MkvHead f = mkv_head(q + i, m - i);
        if (f.result != MkvHead::Result::kOk || f.size > m - i - f.head) break;
        if (f.id == kMkvTrackNumber) number = mkv_uint(q + i + f.head, f.size);
        if (f.id == kMkvTrackType) type = mkv_uint(q + i + f.head, f.size);
        i += f.head + static_cast<size_t>(f.size);
      }
      if (number != 0) mkv_tracks_[number] = type == 1;
    }
    off += e.head + static_cast<size_t>(e.size);
  }
}

bool StartPoints::mkv_block_is_start(const uint8_t* p, size_t n, bool group) {
  const uint8_t* block = p;
  size_t size = n;
  bool referenced = false;
  if (group) {
    block = nullptr;
    size_t i = 0;
    while (i < n) {
      const MkvHead f = mkv_head(p + i, n - i);
      if (f.result != MkvHead::Result::kOk || f.size > n - i - f.head) break;
      if (f.id == kMkvBlock) {
        block = p + i + f.head;
        size = static_cast<size_t>(f.size);
      }
      if (f.id == kMkvReferenceBlock) referenced = true;
      i += f.head + static_cast<size_t>(f.size);
    }
    if (block == nullptr) return false;
  }
  // Block: track number (EBML vint), int16 timecode, flags.
  if (size < 1) return false;
  const size_t len = vint_length(block[0], 8);
  if (len == 0 || size < len + 3) return false;
  uint64_t track = block[0] & (0xff >> len);
  for (size_t i = 1; i < len; i++) track = (track << 8) | block[i];
  const bool keyframe = group ? !referenced : (block[len + 2] & 0x80) != 0;
  bool has_video = false;
  for (const auto& [t, video] : mkv_tracks_) has_video = has_video || video;
  if (mkv_tracks_.empty()) return false;  // the Tracks were not seen
  if (!has_video) return true;            // audio starts at any cluster
  auto it = mkv_tracks_.find(track);
  return it != mkv_tracks_.end() && it->second && keyframe;
}

// ----------------------------------------------------------------- FLV ---

// Units: the FLV header with PreviousTagSize0, then each tag with the
// PreviousTagSize after it.
StartPoints::Parsed StartPoints::parse_flv(const uint8_t* p, size_t n) {
  Parsed r;
  auto skip = [&] {
    flv_synced_ = false;
    r.result = Parsed::Result::kSkip;
    r.size = 1;
    for (size_t k = 1; k < n; k++) {
      if (p[k] == 8 || p[k] == 9 || p[k] == 18 || p[k] == 'F') {
        r.size = k;
        break;
      }
    }
    if (r.size == 1 && n > 1 &&
        !(p[1] == 8 || p[1] == 9 || p[1] == 18 || p[1] == 'F'))
      r.size = n;
    return r;
  };
  if (p[0] == 'F') {
    if (n < 3) return r;
    if (p[1] == 'L' && p[2] == 'V') {
      if (n < 9) return r;
      const uint32_t offset =
          (uint32_t(p[5]) << 24) | (p[6] << 16) | (p[7] << 8) | p[8];
      if (offset < 9 || offset > 1024) return skip();
      if (n < offset + 4) return r;
      // A new FLV stream: new headers.
      flv_header_.assign(p, p + offset + 4);
      flv_metadata_.clear();
      flv_video_config_.clear();
      flv_audio_config_.clear();
      flv_seen_media_ = false;
      flv_has_video_ = (p[4] & 0x01) != 0;
      flv_synced_ = true;
      r.result = Parsed::Result::kUnit;
      r.size = offset + 4;
      r.cls = Class::kHeader;
      return r;
    }
    return skip();
  }
  const uint8_t type = p[0] & 0x1f;
  if ((p[0] & 0xc0) != 0 || (type != 8 && type != 9 && type != 18))
    return skip();
  if (n < 11) return r;
  const size_t data_size = (size_t(p[1]) << 16) | (p[2] << 8) | p[3];
  const bool stream_id_zero = p[8] == 0 && p[9] == 0 && p[10] == 0;
  if (!stream_id_zero || data_size > (16u << 20)) return skip();
  const size_t total = 11 + data_size + 4;
  if (n < total) return r;
  const uint32_t previous = (uint32_t(p[total - 4]) << 24) |
                            (p[total - 3] << 16) | (p[total - 2] << 8) |
                            p[total - 1];
  // In sync a wrong PreviousTagSize is tolerated (some muxers write 0);
  // out of sync it is what tells a tag from garbage.
  if (previous != 11 + data_size && !(flv_synced_ && previous == 0))
    return skip();
  flv_synced_ = true;
  r.result = Parsed::Result::kUnit;
  r.size = total;
  r.cls = classify_flv_tag(p, total);
  return r;
}

StartPoints::Class StartPoints::classify_flv_tag(const uint8_t* tag,
                                                 size_t size) {
  const uint8_t type = tag[0] & 0x1f;
  const uint8_t* data = tag + 11;
  const size_t n = size - 15;
  std::vector<uint8_t>* header = nullptr;
  if (type == 18) {
    header = &flv_metadata_;  // onMetaData (and any script data)
  } else if (type == 9 && n >= 2) {
    const int codec = data[0] & 0x0f;
    if ((codec == 7 || codec == 12) && data[1] == 0)
      header = &flv_video_config_;
  } else if (type == 8 && n >= 2) {
    if ((data[0] >> 4) == 10 && data[1] == 0) header = &flv_audio_config_;
  }
  if (header != nullptr) {
    header->assign(tag, tag + size);
    if (flv_seen_media_) set_flv_headers();  // changed mid-stream
    return Class::kHeader;
  }
  if (!flv_seen_media_) {
    flv_seen_media_ = true;
    set_flv_headers();
  }
  if (flv_header_.empty()) return Class::kDelta;  // joined mid-stream
  if (type == 9 && n >= 1) {
    // Frame type 1: a keyframe (AVC: a NALU packet, not end of sequence).
    const bool key = (data[0] >> 4) == 1;
    const int codec = data[0] & 0x0f;
    if (key && (codec != 7 || (n >= 2 && data[1] == 1)))
      return Class::kRandomAccess;
    return Class::kDelta;
  }
  if (type == 8 && !flv_has_video_) return Class::kRandomAccess;
  return Class::kDelta;
}

void StartPoints::set_flv_headers() {
  std::vector<std::vector<uint8_t>> headers;
  for (const auto* h :
       {&flv_header_, &flv_metadata_, &flv_video_config_, &flv_audio_config_}) {
    if (!h->empty()) headers.push_back(*h);
  }
  if (flv_header_.empty() || headers == headers_) return;
  headers_ = std::move(headers);
  ++headers_version_;
}

// ------------------------------------------------------------- filter ---

void StartPointFilter::set_caps(const std::string& caps) {
  const Container c = container_from_caps(caps);
  // Matroska and FLV muxers that put the headers in the caps (matroskamux/
  // webmmux streamable=true, matroskaparse, flvmux) flag keyframes
  // themselves: only a raw Matroska or FLV byte stream is analysed.
  if (c == Container::kUnknown ||
      ((c == Container::kMatroska || c == Container::kFlv) &&
       caps_have_streamheader(caps) &&
       !(analyser_ && analyser_->container() == c))) {
    analyser_.reset();
  } else if (!analyser_ || analyser_->container() != c) {
    analyser_ = std::make_unique<StartPoints>(c);
  }
}

void StartPointFilter::push(const MediaBuffer& buffer,
                            std::vector<MediaBuffer>* out) {
  if (!analyser_) {
    out->push_back(buffer);
    return;
  }
  analyser_->push(buffer);
  MediaBuffer unit;
  while (analyser_->pop(&unit)) out->push_back(std::move(unit));
}

void StartPointFilter::flush(std::vector<MediaBuffer>* out) {
  if (!analyser_) return;
  analyser_->flush();
  MediaBuffer unit;
  while (analyser_->pop(&unit)) out->push_back(std::move(unit));
}

std::string StartPointFilter::welcome_caps(const std::string& caps) const {
  if (!analyser_ || container_from_caps(caps) != analyser_->container())
    return caps;
  return caps_with_streamheader(caps, analyser_->headers());
}

}  // namespace p2psp
