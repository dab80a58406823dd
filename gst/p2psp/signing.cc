#include <gst/p2psp/signing.h>
#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace p2psp {

namespace {

static_assert(kChunkKeySize == crypto_sign_PUBLICKEYBYTES);
static_assert(kChunkSignatureSize == crypto_sign_BYTES);
static_assert(kChunkKeySeedSize == crypto_sign_SEEDBYTES);

// Domain separation: these bytes never start anything else the key could
// be made to sign.
constexpr char kContext[] = "p2psp chunk signature v3";

// sodium_init() is idempotent and thread-safe; it picks the fastest
// implementations and opens the random source.
void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to start");
}

uint8_t* put_be(uint8_t* p, uint64_t v, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    *p++ = static_cast<uint8_t>(v >> shift);
  }
  return p;
}

}  // namespace

Bytes chunk_signed_bytes(const ChunkMsg& msg) {
  constexpr size_t kFields = 4 + 4 + 4 + 2 + 2 + 2;
  Bytes out(sizeof kContext + kFields + msg.payload_size);
  uint8_t* p = out.data();
  std::memcpy(p, kContext, sizeof kContext);
  p = put_be(p + sizeof kContext, msg.team_id, 4);
  p = put_be(p, msg.number, 4);
  p = put_be(p, msg.origin, 4);
  p = put_be(p, msg.send_time_ms, 2);
  p = put_be(p, msg.first_frame_offset, 2);
  p = put_be(p, msg.previous, 2);
  if (msg.payload_size > 0) std::memcpy(p, msg.payload, msg.payload_size);
  return out;
}

ChunkSigner::ChunkSigner() {
  init_sodium();
  crypto_sign_keypair(public_key_.data(), secret_key_.data());
}

ChunkSigner::ChunkSigner(const std::array<uint8_t, kChunkKeySeedSize>& seed) {
  init_sodium();
  crypto_sign_seed_keypair(public_key_.data(), secret_key_.data(), seed.data());
}

ChunkSigner::~ChunkSigner() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

ChunkSignature ChunkSigner::sign(const ChunkMsg& msg) const {
  const Bytes message = chunk_signed_bytes(msg);
  ChunkSignature signature;
  crypto_sign_detached(signature.data(), nullptr, message.data(),
                       message.size(), secret_key_.data());
  return signature;
}

ChunkCheck verify_chunk(const ChunkKey& key, const ChunkMsg& msg) {
  if (msg.signature == nullptr) return ChunkCheck::kUnsigned;
  const Bytes message = chunk_signed_bytes(msg);
  return crypto_sign_verify_detached(msg.signature, message.data(),
                                     message.size(), key.data()) == 0
             ? ChunkCheck::kValid
             : ChunkCheck::kBadSignature;
}

}  // namespace p2psp
