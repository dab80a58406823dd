// gst-p2psp: the one way datagrams leave a core state machine, and the
// values a stranger must not guess (docs/security.md, "Address validation").
//
// - SecretSource: tokens, cookie keys: from the system CSPRNG, or from an
//   injected seed where a test or the simulator needs determinism. Never from
//   anything that travels on the wire.
// - CookieJar: stateless PROBE cookies, a keyed hash of the endpoint and the
//   peer id it stands for, valid for two epochs.
// - Egress: every UDP datagram a core sends goes through send(): sealed when
//   the team is protected, and sent to an address nobody validated only while
//   that keeps what this node sent there within kAmplificationFactor times
//   what it received from there (QUIC's rule, RFC 9000 section 8.1).
#pragma once

#include <gst/p2psp/auth.h>
#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace p2psp {

// A node sends an address it has not validated at most this many times the
// bytes it received from that address.
constexpr uint64_t kAmplificationFactor = 3;

class SecretSource {
 public:
  // nullopt: the system CSPRNG (libsodium randombytes_buf). A seed: a
  // deterministic stream (ChaCha20 keyed by the seed), for tests and the
  // simulator only.
  explicit SecretSource(std::optional<uint64_t> seed = std::nullopt);
  void fill(uint8_t* out, size_t size);
  uint64_t next_u64();
  uint64_t next_nonzero_u64();

 private:
  std::optional<std::array<uint8_t, 32>> seed_;
  uint64_t counter_ = 0;
};

class CookieJar {
 public:
  // Cookies last between one and two epochs.
  static constexpr Micros kEpochUs = 10000000;

  explicit CookieJar(SecretSource* secrets);
  // Never 0 (0 means "no cookie" on the wire).
  uint64_t issue(const Endpoint& to, uint32_t peer_id, Micros now) const;
  bool check(uint64_t cookie, const Endpoint& from, uint32_t peer_id,
             Micros now) const;

 private:
  uint64_t compute(const Endpoint& endpoint, uint32_t peer_id,
                   uint64_t epoch) const;
  std::array<uint8_t, 16> key_{};
};

struct EgressStats {
  uint64_t limited = 0;  // datagrams not sent: the amplification limit
  uint64_t limited_bytes = 0;
};

class Egress {
 public:
  using Validated = std::function<bool(const Endpoint&)>;
  // Addresses whose budget is tracked at once; past that the table starts
  // afresh, which can only refuse more.
  static constexpr size_t kMaxTracked = 4096;

  // validated: whether an address has proved it wants this node's datagrams
  // (a member's or neighbour's endpoint, the splitter's). crypto: the team's
  // datagram crypto once it has one (seals every send), else plain.
  Egress(Validated validated, std::unique_ptr<auth::DatagramCrypto>* crypto);

  // Counts a datagram received (as it came, sealed or not) towards the
  // budget for sending back to its source.
  void received(const Endpoint& from, size_t size);
  // Lets `bytes` more go to an address not validated, as if it had sent
  // bytes / kAmplificationFactor: for a PROBE to an address the splitter
  // named (a member's LAN endpoint, protocol.md 3.2), which has not spoken.
  void credit(const Endpoint& to, size_t bytes);
  // Queues `datagram` for `to` in out->udp. False (and counted) when the
  // amplification limit keeps it back.
  bool send(const Endpoint& to, const SharedBytes& datagram, Outbox* out);
  bool send(const Endpoint& to, Bytes datagram, Outbox* out);

  const EgressStats& stats() const { return stats_; }

 private:
  struct Budget {
    uint64_t received = 0;
    uint64_t sent = 0;
  };
  struct Sealed {
    SharedBytes plain;  // kept alive so its address is not reused
    SharedBytes sealed;
    uint64_t at = 0;  // the crypto's seal count when sealed
    // Who got this copy: a second copy to the same receiver (a NACK
    // answer) would be taken for a replay, so it is sealed afresh.
    std::vector<Endpoint> sent_to;
  };
  bool allowed(const Endpoint& to, size_t size);
  SharedBytes sealed(const SharedBytes& plain, const Endpoint& to);

  Validated validated_;
  std::unique_ptr<auth::DatagramCrypto>* crypto_;
  std::unordered_map<Endpoint, Budget, EndpointHash> budgets_;
  // One chunk goes to many neighbours: seal it once while its counter is
  // still well inside every receiver's replay window.
  std::vector<Sealed> recent_;
  EgressStats stats_;
};

}  // namespace p2psp
