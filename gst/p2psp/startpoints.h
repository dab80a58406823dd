// gst-p2psp: where a decoder can start, found in the stream itself (sans-I/O).
//
// The splitter's input may come without usable buffer flags: oggparse flags
// only the pages that end a keyframe packet, tsparse and raw byte sources
// (souphttpsrc, udpsrc, filesrc with no parser) flag nothing. StartPoints
// re-segments such a byte stream at container unit boundaries (Ogg pages,
// runs of MPEG-TS packets) and flags each unit the way a late joiner's
// keyframe gate reads them (docs/protocol.md 7.3):
//   * header units (Ogg BOS and header pages, TS PAT and PMT): kHeader and
//     kDeltaUnit (they pass the gate, they do not open it);
//   * random-access units: no kDeltaUnit (the gate opens there);
//   * everything else: kDeltaUnit.
// It also collects the header units a late joiner needs first; the splitter
// gives them to joiners as the caps' streamheader.
//
// Bounds-checked on every byte: garbage is skipped up to the next plausible
// unit (Ogg: capture pattern with a good CRC; TS: two sync bytes 188 apart).
#pragma once

#include <gst/p2psp/media.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace p2psp {

enum class Container {
  kUnknown,
  kOgg,
  kMpegTs,
  kMatroska,
  kFlv,
  kMpegAudio,  // MP1/MP2/MP3 frames (audio/mpeg, mpegversion=1)
  kAdts        // AAC in ADTS frames (audio/mpeg, mpegversion=2 or 4)
};

// The size of the MPEG audio (MP1/2/3) or ADTS frame whose header starts at
// p (n bytes available, at least 4 or 7), or 0 if no valid header starts
// there.
size_t mpeg_audio_frame_size(const uint8_t* p, size_t n);
size_t adts_frame_size(const uint8_t* p, size_t n);

// The container named by a GstCaps string's media type ("application/ogg,
// streamheader=..." -> kOgg); kUnknown for anything StartPoints does not
// parse.
Container container_from_caps(const std::string& caps);
// The media type of a caps string: up to the first ',' or ';' (trimmed).
std::string caps_media_type(const std::string& caps);
// True if the caps string carries a streamheader field.
bool caps_have_streamheader(const std::string& caps);
// caps with `streamheader=(buffer)< hex, ... >` appended to its (first)
// structure; caps unchanged if headers is empty, it already has one, or the
// headers total more than kMaxStreamheaderBytes (WELCOME stays small).
constexpr size_t kMaxStreamheaderBytes = 128 * 1024;
std::string caps_with_streamheader(
    const std::string& caps, const std::vector<std::vector<uint8_t>>& headers);

class StartPoints {
 public:
  struct Stats {
    uint64_t bytes_in = 0;
    uint64_t units = 0;          // units out (after merging)
    uint64_t random_access = 0;  // of which random-access units
    uint64_t header_units = 0;   // of which header units
    uint64_t skipped_bytes = 0;  // garbage skipped while resynchronising
    uint64_t resyncs = 0;        // times the parser lost the unit boundary
  };
  // A merged unit never grows beyond this (delta runs are cut here).
  static constexpr size_t kMaxUnit = 256 * 1024;

  explicit StartPoints(Container container);

  // Feeds one upstream buffer: its bytes, timestamps and DISCONT flag (its
  // other flags are replaced). Complete units become available to pop(); a
  // partial unit at the end waits for the next push().
  void push(const MediaBuffer& buffer);
  // Pops the next unit, flagged. A unit has the timestamps of the buffer it
  // starts with, if it starts where that buffer starts (none otherwise), and
  // kDiscont if a buffer it touches had it.
  bool pop(MediaBuffer* unit);
  // End of stream: whatever is left goes out as one delta unit.
  void flush();

  // Header units a late joiner needs first, in stream order; empty until all
  // of them have been seen. headers_version() grows whenever they change.
  // Ogg: the BOS and header pages of every logical stream of the current
  // link. MPEG-TS: the latest PAT and PMT packets (continuity counters
  // included, so the next ones in the stream follow them).
  const std::vector<std::vector<uint8_t>>& headers() const { return headers_; }
  uint64_t headers_version() const { return headers_version_; }
  Container container() const { return container_; }
  const Stats& stats() const { return stats_; }

  enum class Class { kHeader, kRandomAccess, kDelta };

 private:
  // What the parser says about the bytes at the front of the buffer.
  struct Parsed {
    enum class Result { kNeedMore, kUnit, kSkip } result = Result::kNeedMore;
    size_t size = 0;  // unit or skipped bytes (> 0 unless kNeedMore)
    Class cls = Class::kDelta;
  };
  Parsed parse_ogg(const uint8_t* p, size_t n);
  Parsed parse_ts(const uint8_t* p, size_t n);
  Parsed parse_mkv(const uint8_t* p, size_t n);
  Parsed parse_flv(const uint8_t* p, size_t n);
  // MP3/ADTS: every frame is a start point; out of sync, a header counts
  // only with a valid one right after its frame.
  Parsed parse_audio(const uint8_t* p, size_t n);
  bool audio_synced_ = false;
  Class classify_flv_tag(const uint8_t* tag, size_t size);
  void set_flv_headers();
  Parsed mkv_cluster_start(const uint8_t* p, size_t n, size_t head);
  void mkv_tracks(const uint8_t* p, size_t n);
  bool mkv_block_is_start(const uint8_t* p, size_t n, bool group);
  Class classify_ogg_page(const uint8_t* page, size_t size);
  Class classify_ts_packet(const uint8_t* pkt);
  void parse_pat(const uint8_t* pkt, size_t payload);
  void parse_pmt(const uint8_t* pkt, size_t payload);
  bool pes_starts_keyframe(const uint8_t* pkt, size_t payload, uint8_t type);
  void set_ts_headers();

  void consume();  // parses what is buffered into units
  void add_unit(size_t size, Class cls);
  void close_unit();

  Container container_;
  std::vector<uint8_t> buf_;  // bytes not yet parsed start at buf_[pos_]
  size_t pos_ = 0;
  uint64_t buf_offset_ = 0;  // stream offset of buf_[pos_]
  // Upstream buffers not yet fully consumed: stream offset and metadata.
  struct BufferStart {
    uint64_t offset = 0;
    uint64_t pts = kNoTime, dts = kNoTime, duration = kNoTime;
    bool discont = false;
  };
  std::deque<BufferStart> starts_;
  bool carry_discont_ = false;  // for the next unit (skipped DISCONT bytes)
  bool skipping_ = false;       // inside a run of garbage
  // The unit being merged: delta units join the unit before them (a
  // random-access or delta unit), headers stand alone.
  MediaBuffer open_;
  bool open_valid_ = false;
  Class open_cls_ = Class::kDelta;
  std::deque<MediaBuffer> ready_;

  std::vector<std::vector<uint8_t>> headers_;
  uint64_t headers_version_ = 0;
  Stats stats_;

  // Ogg: the logical streams of the current chain link.
  struct OggStream {
    enum class Codec {
      kUnknown,
      kTheora,
      kVorbis,
      kOpus,
      kVp8,
      kFlac,
      kSpeex,
      kSkeleton,
      kKate,
      kDaala
    };
    Codec codec = Codec::kUnknown;
    bool video = false;
    bool in_headers = true;
    int header_packets = 0;  // seen so far
    int expected = 0;        // header packets the codec has; 0: unknown
  };
  std::map<uint32_t, OggStream> ogg_streams_;
  bool ogg_seen_data_ = false;   // a data page since the last BOS page
  bool ogg_complete_ = false;    // every stream of the link is past its headers
  bool ogg_from_start_ = false;  // the link's BOS pages were seen
  std::vector<std::vector<uint8_t>> ogg_pending_headers_;

  // MPEG-TS program state.
  uint16_t pmt_pid_ = 0xFFFF;
  std::map<uint16_t, uint8_t> ts_streams_;  // elementary PID -> stream_type
  bool ts_has_video_ = false;
  std::vector<uint8_t> pat_packet_, pmt_packet_;
  int pmt_version_ = -1;

  // Matroska/WebM.
  bool mkv_seen_cluster_ = false;  // headers end at the first Cluster
  bool mkv_synced_ = false;        // the last element checked out
  std::vector<std::vector<uint8_t>> mkv_pending_headers_;
  std::map<uint64_t, bool> mkv_tracks_;  // track number -> is video

  // FLV: the header and the latest of each header tag.
  bool flv_synced_ = false;
  bool flv_has_video_ = true;  // from the FLV header's flags
  bool flv_seen_media_ = false;
  std::vector<uint8_t> flv_header_, flv_metadata_, flv_video_config_,
      flv_audio_config_;
  bool ts_synced_ = false;  // the last packet boundary was confirmed
};

// What the splitter puts between its input and the framer: StartPoints for
// the containers it parses (whatever upstream flagged: oggparse's flags are
// wrong for a joiner, tsparse and raw sources give none), the buffers as
// they are for everything else.
class StartPointFilter {
 public:
  // New caps from upstream: keeps the analyser while the container stays the
  // same (caps that only gain a streamheader must not reset it).
  void set_caps(const std::string& caps);
  // The items to frame for one input buffer, in order (the buffer itself
  // when no analyser runs).
  void push(const MediaBuffer& buffer, std::vector<MediaBuffer>* out);
  // End of stream: what the analyser still holds.
  void flush(std::vector<MediaBuffer>* out);
  // The caps joiners get in WELCOME: `caps` with the stream's headers as its
  // streamheader when upstream gave none and they are known.
  std::string welcome_caps(const std::string& caps) const;
  // Grows when welcome_caps() would change for the same caps.
  uint64_t headers_version() const {
    return analyser_ ? analyser_->headers_version() : 0;
  }
  const StartPoints* analyser() const { return analyser_.get(); }

 private:
  std::unique_ptr<StartPoints> analyser_;
};

}  // namespace p2psp
