// gst-p2psp: team authentication and datagram protection (sans-I/O), on
// libsodium. See docs/security.md for the design and threat model and
// docs/protocol.md (section "Authenticated teams") for the wire layout.
//
// - A passphrase becomes a 32-byte key with Argon2id and a salt the splitter
//   picks at random once per start (so it derives once, never per join).
// - Two subkeys come from it: one for the handshake MACs (HMAC-SHA-512-256),
//   one for the datagram AEAD (ChaCha20-Poly1305, IETF).
// - Every datagram of a protected team is sealed: the clear common header
//   (kUdpFlagSealed set in its flags), the sender id and a 64-bit counter (the
//   nonce), the body (encrypted, or left clear but authenticated), a tag.
//   The header's flag kUdpFlagSealed (wire.h) marks it.
#pragma once

#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace p2psp::auth {

using Key = std::array<uint8_t, 32>;
using Salt = std::array<uint8_t, 16>;
using Nonce = std::array<uint8_t, 32>;
using Mac = std::array<uint8_t, 32>;

// Same bounds as srtsrc/srtsink's passphrase.
constexpr size_t kMinPassphrase = 10;
constexpr size_t kMaxPassphrase = 79;

// Argon2id cost, fixed by the protocol so a splitter cannot make a peer
// spend more memory than this: 8 MiB, 3 passes (about 20 ms).
constexpr size_t kKdfMemLimit = 8u << 20;
constexpr unsigned long long kKdfOpsLimit = 3;

// CHALLENGE flags: encrypt datagram bodies (otherwise authenticate only).
constexpr uint32_t kFlagEncrypt = 1u << 0;

// Sealed datagram layout: common header (8) with kUdpFlagSealed, u32 sender
// id, u64 counter, body, 16-byte tag.
constexpr size_t kSealedHeaderSize = kUdpHeaderSize + 4 + 8;
constexpr size_t kTagSize = 16;
constexpr size_t kSealOverhead = kSealedHeaderSize - kUdpHeaderSize + kTagSize;
// The splitter seals as sender 0 (peer ids start at 1).
constexpr uint32_t kSplitterSender = 0;

// Human reason why a passphrase is unusable, or nullopt if it is fine.
std::optional<std::string> passphrase_problem(const std::string& passphrase);

void random_bytes(uint8_t* out, size_t size);
template <size_t N>
std::array<uint8_t, N> random_array() {
  std::array<uint8_t, N> a;
  random_bytes(a.data(), a.size());
  return a;
}

struct Keys {
  Key handshake;  // HMAC key for the join proofs
  Key datagram;   // AEAD key for UDP
};
// Argon2id of the passphrase, then the two subkeys. False if the KDF could
// not run (out of memory).
bool derive_keys(const std::string& passphrase, const Salt& salt, Keys* out);

// Proof that the sender knows the passphrase, bound to both nonces, the salt
// and the flags (so a man in the middle cannot turn encryption off).
enum class Role : uint8_t { kPeer = 'P', kSplitter = 'S' };
Mac handshake_mac(const Key& key, Role role, const Salt& salt,
                  const Nonce& splitter_nonce, const Nonce& peer_nonce,
                  uint32_t flags);
bool verify_mac(const Mac& expected, const Mac& got);  // constant time

// Remembers which counters of one sender were accepted: anything at or
// below the highest one minus the window, or seen before, is a replay.
class ReplayWindow {
 public:
  static constexpr uint64_t kBits = 1024;
  // True (and remembered) the first time a counter shows up in the window.
  bool accept(uint64_t counter);

 private:
  bool test(uint64_t c) const {
    return bits_[(c % kBits) / 64] >> (c % 64) & 1;
  }
  void set(uint64_t c) { bits_[(c % kBits) / 64] |= uint64_t{1} << (c % 64); }
  void clear(uint64_t c) {
    bits_[(c % kBits) / 64] &= ~(uint64_t{1} << (c % 64));
  }
  bool any_ = false;
  uint64_t top_ = 0;
  std::array<uint64_t, kBits / 64> bits_{};
};

struct DatagramStats {
  uint64_t sealed = 0;
  uint64_t opened = 0;
  uint64_t unauthenticated = 0;  // not sealed, forged, tampered, wrong key
  uint64_t replayed = 0;
};

// Seals what one endpoint sends and opens what it receives, for one team
// session. Not thread-safe (neither is the core).
class DatagramCrypto {
 public:
  enum class Open { kOk, kUnauthenticated, kReplayed };
  // self: this endpoint's sender id (kSplitterSender or the peer id).
  DatagramCrypto(const Key& key, uint32_t self, bool encrypt);

  // A plaintext datagram (common header first) -> sealed; empty if it is
  // shorter than a common header.
  Bytes seal(const uint8_t* data, size_t size);
  // A sealed datagram -> the plaintext datagram in *out.
  Open open(const uint8_t* data, size_t size, Bytes* out);

  const DatagramStats& stats() const { return stats_; }
  bool encrypt() const { return encrypt_; }

 private:
  // Sender ids tracked at most (only holders of the key can add any).
  static constexpr size_t kMaxSenders = 4096;
  Key key_;
  uint32_t self_;
  bool encrypt_;
  uint64_t counter_ = 0;
  std::unordered_map<uint32_t, ReplayWindow> windows_;
  DatagramStats stats_;
};

// Opens *data in place of a sealed datagram (plaintext kept in *opened), or
// counts why it was refused in the caller's stats (Splitter and Peer stats
// share these field names). No crypto: the team is not protected, or not yet
// keyed, which refuses everything.
template <class Stats>
bool open_or_count(DatagramCrypto* crypto, const uint8_t** data, size_t* size,
                   Bytes* opened, Stats* stats) {
  auto result = DatagramCrypto::Open::kUnauthenticated;
  if (crypto) result = crypto->open(*data, *size, opened);
  switch (result) {
    case DatagramCrypto::Open::kOk:
      *data = opened->data();
      *size = opened->size();
      return true;
    case DatagramCrypto::Open::kReplayed:
      ++stats->replayed_datagrams;
      break;
    case DatagramCrypto::Open::kUnauthenticated:
      ++stats->unauthenticated_datagrams;
      break;
  }
  ++stats->rejected_datagrams;
  return false;
}

// The TCP control channel after the proofs: every message is sealed with a
// key of its own connection (from K_hs and both nonces), under a counter per
// direction that is not sent: TCP delivers in order, so a dropped, replayed,
// reordered or injected message fails the tag.
class ChannelCrypto {
 public:
  ChannelCrypto(const Key& handshake_key, const Nonce& splitter_nonce,
                const Nonce& peer_nonce, Role self);
  // One framed plaintext message (encode_tcp) -> one framed SEALED message.
  Bytes seal(const Bytes& framed);
  // The message inside, or nullopt if it does not open (the stream is then
  // broken: the caller closes it).
  std::optional<TcpMessage> open(const SealedMsg& sealed);

 private:
  std::array<uint8_t, 12> nonce(Role direction, uint64_t counter) const;
  Key key_;
  Role self_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
};

}  // namespace p2psp::auth
