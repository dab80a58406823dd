// gst-p2psp: media buffers as the core sees them (no GStreamer types).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace p2psp {

constexpr uint64_t kNoTime = UINT64_MAX;

struct MediaBuffer {
  // Mirrors the GstBufferFlags that must survive the trip.
  enum Flags : uint32_t {
    kHeader = 1u << 0,
    kDeltaUnit = 1u << 1,
    kDiscont = 1u << 2,
    kGap = 1u << 3,
  };
  std::vector<uint8_t> data;
  uint64_t pts = kNoTime;  // ns, splitter running time
  uint64_t dts = kNoTime;  // ns, splitter running time
  uint64_t duration = kNoTime;
  uint32_t flags = 0;

  // A decoder can start here. HEADER buffers count when they are not delta
  // units: mpegtsmux flags the packets that open a keyframe HEADER.
  bool is_keyframe() const { return !(flags & kDeltaUnit); }
};

// One item of the framed stream: a buffer, or new caps that apply to the
// buffers after it.
struct StreamItem {
  enum class Kind { kBuffer, kCaps };
  Kind kind = Kind::kBuffer;
  MediaBuffer buffer;  // kBuffer
  std::string caps;    // kCaps: GstCaps string
};

}  // namespace p2psp
