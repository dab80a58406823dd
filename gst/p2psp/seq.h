// gst-p2psp: 32-bit chunk numbers with wrap-safe (serial number) comparison.
// The reference used 16-bit numbers that wrapped every 65536 chunks; 32 bits
// wrap after years, and these helpers keep ordering right across the wrap.
#pragma once

#include <cstdint>

namespace p2psp {

using ChunkNumber = uint32_t;

// True when a comes before b, modulo 2^32 (RFC 1982 style).
inline bool seq_before(ChunkNumber a, ChunkNumber b) {
  return static_cast<int32_t>(a - b) < 0;
}
inline bool seq_after(ChunkNumber a, ChunkNumber b) { return seq_before(b, a); }
// Signed distance b - a.
inline int32_t seq_distance(ChunkNumber a, ChunkNumber b) {
  return static_cast<int32_t>(b - a);
}

}  // namespace p2psp
