// gst-p2psp: ICY metadata removed from an Icecast/SHOUTcast stream
// (sans-I/O).
//
// A radio server asked for metadata (request header "Icy-MetaData: 1", which
// souphttpsrc sends by default, iradio-mode=true) puts a metadata block after
// every `metadata-interval` bytes of the stream: one length byte L, then
// 16 * L bytes of text such as "StreamTitle='...';" padded with NULs (L = 0:
// nothing new). GStreamer names such a stream `application/x-icy,
// metadata-interval=N`. The blocks are not part of the audio: left in, they
// cut frames and a joiner's decoder trips on them. IcyDeinterleaver takes
// them out, as icydemux does, so that the splitter typefinds and cuts the
// stream itself, and keeps the latest StreamTitle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace p2psp {

// True if a GstCaps string's media type is application/x-icy.
bool caps_are_icy(const std::string& caps);
// The metadata-interval field of such caps; 0 when absent or not a number.
size_t icy_metadata_interval(const std::string& caps);
// The title in one metadata block's text (StreamTitle='...';), false if
// there is none. The title ends at the first "';" (titles may hold quotes).
bool icy_stream_title(const uint8_t* text, size_t size, std::string* title);

class IcyDeinterleaver {
 public:
  // Servers use 8192 (SHOUTcast) to 16000 (Icecast); anything larger than
  // this is taken for a broken header and nothing is stripped.
  static constexpr size_t kMaxInterval = 1 << 20;
  struct Stats {
    uint64_t bytes_in = 0;
    uint64_t stream_bytes = 0;    // passed on
    uint64_t blocks = 0;          // metadata blocks, empty ones included
    uint64_t empty_blocks = 0;    // L = 0
    uint64_t metadata_bytes = 0;  // length bytes and block text
    uint64_t bad_blocks = 0;      // text that is not ICY metadata
    uint64_t titles = 0;          // StreamTitle changes seen
  };

  // interval 0 or above kMaxInterval: the stream carries no metadata we can
  // find, push() passes every byte on (valid() is false).
  explicit IcyDeinterleaver(size_t metadata_interval);
  bool valid() const { return interval_ != 0; }

  // Appends the stream bytes among data[0, size) to *out; metadata blocks may
  // be split across calls anywhere, their length byte included.
  void push(const uint8_t* data, size_t size, std::vector<uint8_t>* out);
  // The latest StreamTitle, once per change (false if none is new).
  bool take_title(std::string* title);
  const Stats& stats() const { return stats_; }

 private:
  void finish_block();

  size_t interval_;
  size_t until_block_;          // stream bytes before the next length byte
  size_t block_left_ = 0;       // text bytes of the current block still to come
  bool in_block_ = false;       // between a length byte and the block's end
  std::vector<uint8_t> block_;  // text of the current block (<= 4080 bytes)
  std::string title_;
  bool title_new_ = false;
  Stats stats_;
};

}  // namespace p2psp
