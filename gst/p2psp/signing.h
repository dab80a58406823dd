// gst-p2psp: chunk signatures against pollution (docs/security.md,
// "Pollution"). The splitter signs every chunk datagram it cuts with a key
// pair made fresh at its start; peers verify each chunk before they accept,
// play or forward it. Ed25519 (libsodium): 64-byte signatures, one key pair
// per splitter run, the public key given to peers in the TCP handshake.
//
// No GStreamer, no sockets; libsodium's random source is the only outside
// input (for the key pair; tests and fuzzers use a fixed seed).
#pragma once

#include <gst/p2psp/wire.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace p2psp {

constexpr size_t kChunkKeySeedSize = 32;
using ChunkSignature = std::array<uint8_t, kChunkSignatureSize>;

// What a chunk signature covers: a context string, then team id, number,
// origin (always stated: peers re-encode a chunk with or without its origin
// on the way, protocol.md "CHUNK"), send time, first-frame offset, previous
// chunk of the origin (a forged one would misdirect NACKs), payload.
// msg.origin must be resolved (not kImplicitOrigin).
Bytes chunk_signed_bytes(const ChunkMsg& msg);

class ChunkSigner {
 public:
  // A fresh random key pair.
  ChunkSigner();
  // A key pair derived from a seed (tests, fuzzers: reproducible bytes).
  explicit ChunkSigner(const std::array<uint8_t, kChunkKeySeedSize>& seed);
  ~ChunkSigner();
  ChunkSigner(const ChunkSigner&) = delete;
  ChunkSigner& operator=(const ChunkSigner&) = delete;

  const ChunkKey& public_key() const { return public_key_; }
  // The signature of chunk_signed_bytes(msg).
  ChunkSignature sign(const ChunkMsg& msg) const;

 private:
  ChunkKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};
};

enum class ChunkCheck {
  kValid,         // signed by the key, not one byte changed
  kUnsigned,      // a plain CHUNK: refused once the team signs
  kBadSignature,  // altered, or signed with another key
};

// msg: as decoded, with its origin resolved (the implicit origin made
// explicit), or every chunk relayed with its origin stated would fail.
ChunkCheck verify_chunk(const ChunkKey& key, const ChunkMsg& msg);

}  // namespace p2psp
