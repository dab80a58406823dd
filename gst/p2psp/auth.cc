#include <gst/p2psp/auth.h>
#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace p2psp::auth {

namespace {

// Context of the subkeys (crypto_kdf wants exactly 8 bytes).
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES] = {'P', '2', 'P', 'S',
                                                       'P', 'v', '1', '_'};
constexpr uint64_t kHandshakeSubkey = 1;
constexpr uint64_t kDatagramSubkey = 2;
constexpr char kMacLabel[] = "P2PSP join proof";

void init_sodium() {
  // Idempotent and thread-safe; only fails without a usable RNG.
  if (sodium_init() < 0) throw std::runtime_error("libsodium init failed");
}

void put_be(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

using AeadNonce =
    std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES>;

// 96-bit nonce: sender id and its counter, unique per key while every
// sender uses its own id (the splitter hands ids out once per start).
AeadNonce nonce_of(const uint8_t* sealed_header) {
  AeadNonce n;
  std::memcpy(n.data(), sealed_header + kUdpHeaderSize, n.size());
  return n;
}

}  // namespace

std::optional<std::string> passphrase_problem(const std::string& passphrase) {
  if (passphrase.size() < kMinPassphrase ||
      passphrase.size() > kMaxPassphrase) {
    return "passphrase must be " + std::to_string(kMinPassphrase) + " to " +
           std::to_string(kMaxPassphrase) + " characters long, not " +
           std::to_string(passphrase.size());
  }
  return std::nullopt;
}

void random_bytes(uint8_t* out, size_t size) {
  init_sodium();
  randombytes_buf(out, size);
}

bool derive_keys(const std::string& passphrase, const Salt& salt, Keys* out) {
  static_assert(sizeof(Salt) == crypto_pwhash_SALTBYTES);
  init_sodium();
  Key master;
  if (crypto_pwhash(master.data(), master.size(), passphrase.data(),
                    passphrase.size(), salt.data(), kKdfOpsLimit, kKdfMemLimit,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return false;
  }
  crypto_kdf_derive_from_key(out->handshake.data(), out->handshake.size(),
                             kHandshakeSubkey, kKdfContext, master.data());
  crypto_kdf_derive_from_key(out->datagram.data(), out->datagram.size(),
                             kDatagramSubkey, kKdfContext, master.data());
  sodium_memzero(master.data(), master.size());
  return true;
}

Mac handshake_mac(const Key& key, Role role, const Salt& salt,
                  const Nonce& splitter_nonce, const Nonce& peer_nonce,
                  uint32_t flags) {
  static_assert(sizeof(Mac) == crypto_auth_hmacsha512256_BYTES);
  static_assert(sizeof(Key) == crypto_auth_hmacsha512256_KEYBYTES);
  uint8_t tail[5];
  tail[0] = static_cast<uint8_t>(role);
  put_be(tail + 1, flags, 4);
  crypto_auth_hmacsha512256_state st;
  crypto_auth_hmacsha512256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha512256_update(
      &st, reinterpret_cast<const uint8_t*>(kMacLabel), sizeof kMacLabel);
  crypto_auth_hmacsha512256_update(&st, tail, sizeof tail);
  crypto_auth_hmacsha512256_update(&st, salt.data(), salt.size());
  crypto_auth_hmacsha512256_update(&st, splitter_nonce.data(),
                                   splitter_nonce.size());
  crypto_auth_hmacsha512256_update(&st, peer_nonce.data(), peer_nonce.size());
  Mac mac;
  crypto_auth_hmacsha512256_final(&st, mac.data());
  return mac;
}

bool verify_mac(const Mac& expected, const Mac& got) {
  return crypto_verify_32(expected.data(), got.data()) == 0;
}

// ---------------------------------------------------------------- replay --

bool ReplayWindow::accept(uint64_t counter) {
  if (!any_) {
    any_ = true;
    top_ = counter;
    set(counter);
    return true;
  }
  if (counter > top_) {
    const uint64_t ahead = counter - top_;
    if (ahead >= kBits) {
      bits_.fill(0);
    } else {
      for (uint64_t c = top_ + 1; c <= counter; ++c) clear(c);
    }
    top_ = counter;
    set(counter);
    return true;
  }
  if (top_ - counter >= kBits || test(counter)) return false;
  set(counter);
  return true;
}

// ---------------------------------------------------------------- AEAD ----

DatagramCrypto::DatagramCrypto(const Key& key, uint32_t self, bool encrypt)
    : key_(key), self_(self), encrypt_(encrypt) {
  static_assert(sizeof(Key) == crypto_aead_chacha20poly1305_IETF_KEYBYTES);
  static_assert(kTagSize == crypto_aead_chacha20poly1305_IETF_ABYTES);
  init_sodium();
}

Bytes DatagramCrypto::seal(const uint8_t* data, size_t size) {
  if (data == nullptr || size < kUdpHeaderSize) return {};
  const size_t body = size - kUdpHeaderSize;
  Bytes sealed(kSealedHeaderSize + body + kTagSize);
  uint8_t* p = sealed.data();
  std::memcpy(p, data, kUdpHeaderSize);
  p[1] |= kUdpFlagSealed;
  put_be(p + kUdpHeaderSize, self_, 4);
  put_be(p + kUdpHeaderSize + 4, counter_++, 8);
  const AeadNonce nonce = nonce_of(p);
  uint8_t* body_out = p + kSealedHeaderSize;
  if (encrypt_) {
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        body_out, body_out + body, nullptr, data + kUdpHeaderSize, body, p,
        kSealedHeaderSize, nullptr, nonce.data(), key_.data());
  } else {
    // Authenticate only: the whole datagram is associated data, the
    // message is empty (libsodium wants non-null pointers all the same).
    if (body != 0) std::memcpy(body_out, data + kUdpHeaderSize, body);
    uint8_t none = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        &none, body_out + body, nullptr, &none, 0, p, kSealedHeaderSize + body,
        nullptr, nonce.data(), key_.data());
  }
  ++stats_.sealed;
  return sealed;
}

DatagramCrypto::Open DatagramCrypto::open(const uint8_t* data, size_t size,
                                          Bytes* out) {
  if (data == nullptr || size < kSealedHeaderSize + kTagSize ||
      data[0] != kUdpMagic || data[2] != kProtocolVersion ||
      (data[1] & kUdpFlagSealed) == 0) {
    ++stats_.unauthenticated;
    return Open::kUnauthenticated;
  }
  const uint32_t sender = static_cast<uint32_t>(get_be(data + 8, 4));
  const uint64_t counter = get_be(data + 12, 8);
  const size_t body = size - kSealedHeaderSize - kTagSize;
  const uint8_t* body_in = data + kSealedHeaderSize;
  const uint8_t* tag = body_in + body;
  const AeadNonce nonce = nonce_of(data);
  out->resize(kUdpHeaderSize + body);
  int rc;
  if (encrypt_) {
    rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        out->data() + kUdpHeaderSize, nullptr, body_in, body, tag, data,
        kSealedHeaderSize, nonce.data(), key_.data());
  } else {
    uint8_t none = 0;
    rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        &none, nullptr, &none, 0, tag, data, kSealedHeaderSize + body,
        nonce.data(), key_.data());
    if (rc == 0 && body != 0) {
      std::memcpy(out->data() + kUdpHeaderSize, body_in, body);
    }
  }
  // Our own datagrams reflected back are not news from the team.
  if (rc != 0 || sender == self_) {
    out->clear();
    ++stats_.unauthenticated;
    return Open::kUnauthenticated;
  }
  // Only a key holder gets here, but one could still invent sender ids to
  // grow the table: past the cap, forget the others (a member could then
  // replay their old datagrams, which it could forge anyway).
  if (windows_.size() >= kMaxSenders && windows_.count(sender) == 0) {
    windows_.clear();
  }
  if (!windows_[sender].accept(counter)) {
    out->clear();
    ++stats_.replayed;
    return Open::kReplayed;
  }
  std::memcpy(out->data(), data, kUdpHeaderSize);
  (*out)[1] &= static_cast<uint8_t>(~kUdpFlagSealed);
  ++stats_.opened;
  return Open::kOk;
}

// ---------------------------------------------------------------- TCP -----

ChannelCrypto::ChannelCrypto(const Key& handshake_key,
                             const Nonce& splitter_nonce,
                             const Nonce& peer_nonce, Role self)
    : self_(self) {
  init_sodium();
  // A key per connection: the counters restart at 0 on every connection.
  static constexpr char kLabel[] = "P2PSP control channel";
  crypto_generichash_state st;
  crypto_generichash_init(&st, handshake_key.data(), handshake_key.size(),
                          key_.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kLabel),
                            sizeof kLabel);
  crypto_generichash_update(&st, splitter_nonce.data(), splitter_nonce.size());
  crypto_generichash_update(&st, peer_nonce.data(), peer_nonce.size());
  crypto_generichash_final(&st, key_.data(), key_.size());
}

std::array<uint8_t, 12> ChannelCrypto::nonce(Role direction,
                                             uint64_t counter) const {
  std::array<uint8_t, 12> n{};
  n[0] = static_cast<uint8_t>(direction);
  put_be(n.data() + 4, counter, 8);
  return n;
}

Bytes ChannelCrypto::seal(const Bytes& framed) {
  // Drop the length prefix: the type byte and body are sealed.
  const uint8_t* plain = framed.data() + 4;
  const size_t size = framed.size() - 4;
  SealedMsg sealed;
  sealed.box.resize(size + kTagSize);
  const auto n = nonce(self_, sent_++);
  crypto_aead_chacha20poly1305_ietf_encrypt(sealed.box.data(), nullptr, plain,
                                            size, nullptr, 0, nullptr, n.data(),
                                            key_.data());
  return encode_tcp(sealed);
}

std::optional<TcpMessage> ChannelCrypto::open(const SealedMsg& sealed) {
  if (sealed.box.size() <= kTagSize) return std::nullopt;
  const Role peer = self_ == Role::kPeer ? Role::kSplitter : Role::kPeer;
  const auto n = nonce(peer, received_);
  Bytes plain(sealed.box.size() - kTagSize);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          plain.data(), nullptr, nullptr, sealed.box.data(), sealed.box.size(),
          nullptr, 0, n.data(), key_.data()) != 0) {
    return std::nullopt;
  }
  ++received_;
  std::optional<TcpMessage> msg = decode_tcp_body(plain.data(), plain.size());
  // Sealed twice is not a thing.
  if (msg && std::holds_alternative<SealedMsg>(*msg)) return std::nullopt;
  return msg;
}

}  // namespace p2psp::auth
