// gst-p2psp: ICY metadata removed from an Icecast/SHOUTcast stream.
#include "gst/p2psp/icy.h"

#include <gst/p2psp/startpoints.h>

#include <algorithm>
#include <cstring>

namespace p2psp {

namespace {

constexpr size_t kBlockUnit = 16;  // a block is 16 * L bytes

// The text of a block ends at its NUL padding; after the first NUL only
// NULs may follow, and the text holds no control characters but tab and
// line ends. Anything else means the length byte was not one (the interval
// is wrong or the stream lost bytes).
bool block_text_ok(const uint8_t* p, size_t n, size_t* text_size) {
  size_t end = n;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (c == 0) {
      if (end == n) end = i;
      continue;
    }
    if (end != n) return false;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  *text_size = end;
  if (end == 0) return true;
  // Every ICY block is key='value'; pairs.
  static const char kAssign[] = "='";
  return std::search(p, p + end, kAssign, kAssign + 2) != p + end;
}

}  // namespace

bool caps_are_icy(const std::string& caps) {
  return caps_media_type(caps) == "application/x-icy";
}

size_t icy_metadata_interval(const std::string& caps) {
  if (!caps_are_icy(caps)) return 0;
  static const std::string kField = "metadata-interval=";
  const size_t at = caps.find(kField);
  if (at == std::string::npos) return 0;
  size_t i = at + kField.size();
  if (caps.compare(i, 5, "(int)") == 0) i += 5;
  size_t value = 0;
  bool digits = false;
  while (i < caps.size() && caps[i] >= '0' && caps[i] <= '9') {
    value = value * 10 + static_cast<size_t>(caps[i] - '0');
    digits = true;
    if (value > IcyDeinterleaver::kMaxInterval) return 0;
    ++i;
  }
  return digits ? value : 0;
}

bool icy_stream_title(const uint8_t* text, size_t size, std::string* title) {
  static const char kKey[] = "StreamTitle='";
  static const char kEnd[] = "';";
  const uint8_t* end = text + size;
  const uint8_t* at = std::search(text, end, kKey, kKey + sizeof(kKey) - 1);
  if (at == end) return false;
  const uint8_t* value = at + sizeof(kKey) - 1;
  const uint8_t* stop = std::search(value, end, kEnd, kEnd + 2);
  // A block cut short of its "';" still ends the title at the padding.
  if (stop == end) stop = std::find(value, end, uint8_t{0});
  title->assign(value, stop);
  return true;
}

IcyDeinterleaver::IcyDeinterleaver(size_t metadata_interval)
    : interval_(metadata_interval <= kMaxInterval ? metadata_interval : 0),
      until_block_(interval_) {}

void IcyDeinterleaver::push(const uint8_t* data, size_t size,
                            std::vector<uint8_t>* out) {
  stats_.bytes_in += size;
  if (!valid()) {
    out->insert(out->end(), data, data + size);
    stats_.stream_bytes += size;
    return;
  }
  size_t i = 0;
  while (i < size) {
    if (in_block_) {
      const size_t take = std::min(block_left_, size - i);
      block_.insert(block_.end(), data + i, data + i + take);
      block_left_ -= take;
      i += take;
      stats_.metadata_bytes += take;
      if (block_left_ == 0) finish_block();
    } else if (until_block_ == 0) {
      // The length byte.
      block_left_ = kBlockUnit * data[i];
      ++i;
      ++stats_.metadata_bytes;
      block_.clear();
      in_block_ = true;
      if (block_left_ == 0) finish_block();
    } else {
      const size_t take = std::min(until_block_, size - i);
      out->insert(out->end(), data + i, data + i + take);
      until_block_ -= take;
      i += take;
      stats_.stream_bytes += take;
    }
  }
}

void IcyDeinterleaver::finish_block() {
  in_block_ = false;
  until_block_ = interval_;
  ++stats_.blocks;
  if (block_.empty()) {
    ++stats_.empty_blocks;
    return;
  }
  size_t text_size = 0;
  if (!block_text_ok(block_.data(), block_.size(), &text_size)) {
    ++stats_.bad_blocks;
    return;
  }
  std::string title;
  if (icy_stream_title(block_.data(), text_size, &title) && title != title_) {
    title_ = std::move(title);
    title_new_ = true;
    ++stats_.titles;
  }
}

bool IcyDeinterleaver::take_title(std::string* title) {
  if (!title_new_) return false;
  title_new_ = false;
  *title = title_;
  return true;
}

}  // namespace p2psp
