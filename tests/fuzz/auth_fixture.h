// gst-p2psp fuzzing: the fixed keys and nonces of fuzz_auth, shared with
// gen_corpus so that its channel seeds are near misses (right key, wrong
// direction or counter) rather than plain noise.
#pragma once

#include <gst/p2psp/auth.h>

#include <cstddef>
#include <cstdint>

namespace p2psp::fuzz {

inline auth::Key fixed_key() {
  auth::Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 13);
  return k;
}

inline auth::Nonce fixed_nonce(uint8_t seed) {
  auth::Nonce n;
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(seed + i);
  return n;
}

// The two ends of one sealed control channel after the handshake.
inline auth::ChannelCrypto fixed_channel(auth::Role self) {
  return auth::ChannelCrypto(fixed_key(), fixed_nonce(0x53), fixed_nonce(0x50),
                             self);
}

}  // namespace p2psp::fuzz
