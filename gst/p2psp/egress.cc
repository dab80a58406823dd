// gst-p2psp: the one way datagrams leave a core, and its secrets.
#include <gst/p2psp/egress.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace p2psp {

namespace {

// Beyond this many seals since, a cached sealed copy could fall out of a
// receiver's replay window (auth::ReplayWindow::kBits) behind newer ones.
constexpr uint64_t kMaxSealAge = auth::ReplayWindow::kBits / 4;
constexpr size_t kMaxSealCache = 64;

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

}  // namespace

// ------------------------------------------------------------ secrets ----

SecretSource::SecretSource(std::optional<uint64_t> seed) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium init failed");
  if (!seed) return;
  std::array<uint8_t, 32> key{};
  put_u64(key.data(), *seed);
  // A fixed label, so a seeded stream never equals another use of the seed.
  std::memcpy(key.data() + 8, "p2psp-seeded-rng-for-tests", 24);
  seed_ = key;
}

void SecretSource::fill(uint8_t* out, size_t size) {
  if (!seed_) {
    randombytes_buf(out, size);
    return;
  }
  // randombytes_buf_deterministic takes a 32-byte seed: the counter goes in
  // its first bytes, so each call draws a fresh stream.
  std::array<uint8_t, randombytes_SEEDBYTES> seed = *seed_;
  put_u64(seed.data() + 24, ++counter_);
  randombytes_buf_deterministic(out, size, seed.data());
}

uint64_t SecretSource::next_u64() {
  uint8_t b[8];
  fill(b, sizeof b);
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  return v;
}

uint64_t SecretSource::next_nonzero_u64() {
  for (;;) {
    const uint64_t v = next_u64();
    if (v != 0) return v;
  }
}

// ------------------------------------------------------------ cookies ----

CookieJar::CookieJar(SecretSource* secrets) {
  static_assert(sizeof(key_) == crypto_shorthash_KEYBYTES);
  secrets->fill(key_.data(), key_.size());
}

uint64_t CookieJar::compute(const Endpoint& endpoint, uint32_t peer_id,
                            uint64_t epoch) const {
  const Endpoint e = endpoint.normalized();
  uint8_t in[1 + 16 + 2 + 4 + 8];
  in[0] = static_cast<uint8_t>(e.family);
  std::memcpy(in + 1, e.addr.data(), 16);
  in[17] = static_cast<uint8_t>(e.port >> 8);
  in[18] = static_cast<uint8_t>(e.port);
  for (int i = 0; i < 4; ++i)
    in[19 + i] = static_cast<uint8_t>(peer_id >> (24 - 8 * i));
  put_u64(in + 23, epoch);
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, in, sizeof in, key_.data());
  uint64_t v = 0;
  for (uint8_t x : out) v = (v << 8) | x;
  return v == 0 ? 1 : v;
}

uint64_t CookieJar::issue(const Endpoint& to, uint32_t peer_id,
                          Micros now) const {
  return compute(to, peer_id, now / kEpochUs);
}

bool CookieJar::check(uint64_t cookie, const Endpoint& from, uint32_t peer_id,
                      Micros now) const {
  if (cookie == 0) return false;
  const uint64_t epoch = now / kEpochUs;
  // Not constant time: a wrong guess learns nothing about the next one, and
  // each guess costs the guesser a datagram.
  if (cookie == compute(from, peer_id, epoch)) return true;
  return epoch > 0 && cookie == compute(from, peer_id, epoch - 1);
}

// ------------------------------------------------------------ egress -----

Egress::Egress(Validated validated,
               std::unique_ptr<auth::DatagramCrypto>* crypto)
    : validated_(std::move(validated)), crypto_(crypto) {}

void Egress::received(const Endpoint& from, size_t size) {
  const Endpoint source = from.normalized();
  if (validated_(source)) return;
  if (budgets_.size() >= kMaxTracked && budgets_.count(source) == 0) {
    budgets_.clear();
  }
  budgets_[source].received += size;
}

void Egress::credit(const Endpoint& to, size_t bytes) {
  const Endpoint dest = to.normalized();
  if (validated_(dest)) return;
  if (budgets_.size() >= kMaxTracked && budgets_.count(dest) == 0) {
    budgets_.clear();
  }
  budgets_[dest].received +=
      (bytes + kAmplificationFactor - 1) / kAmplificationFactor;
}

bool Egress::allowed(const Endpoint& to, size_t size) {
  if (validated_(to)) return true;
  auto it = budgets_.find(to);
  if (it == budgets_.end()) return false;
  Budget& b = it->second;
  if (b.sent + size > kAmplificationFactor * b.received) return false;
  b.sent += size;
  return true;
}

SharedBytes Egress::sealed(const SharedBytes& plain, const Endpoint& to) {
  auth::DatagramCrypto* crypto = crypto_ ? crypto_->get() : nullptr;
  if (!crypto) return plain;
  const uint64_t now = crypto->stats().sealed;
  recent_.erase(
      std::remove_if(recent_.begin(), recent_.end(),
                     [&](const Sealed& s) { return now - s.at > kMaxSealAge; }),
      recent_.end());
  for (Sealed& s : recent_) {
    if (s.plain != plain) continue;
    if (std::find(s.sent_to.begin(), s.sent_to.end(), to) != s.sent_to.end()) {
      break;  // that receiver has this copy: seal a new one
    }
    s.sent_to.push_back(to);
    return s.sealed;
  }
  auto copy =
      std::make_shared<const Bytes>(crypto->seal(plain->data(), plain->size()));
  if (recent_.size() >= kMaxSealCache) recent_.erase(recent_.begin());
  recent_.push_back(Sealed{plain, copy, crypto->stats().sealed, {to}});
  return copy;
}

bool Egress::send(const Endpoint& to, const SharedBytes& datagram,
                  Outbox* out) {
  if (!datagram) return false;
  const Endpoint dest = to.normalized();
  const bool sealing = crypto_ && *crypto_;
  const size_t size = datagram->size() + (sealing ? auth::kSealOverhead : 0);
  if (!allowed(dest, size)) {
    ++stats_.limited;
    stats_.limited_bytes += size;
    return false;
  }
  out->udp.push_back(UdpSend{dest, sealed(datagram, dest)});
  return true;
}

bool Egress::send(const Endpoint& to, Bytes datagram, Outbox* out) {
  return send(to, std::make_shared<const Bytes>(std::move(datagram)), out);
}

}  // namespace p2psp
