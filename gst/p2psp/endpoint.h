// gst-p2psp: a network endpoint (IPv4 or IPv6 address and UDP/TCP port),
// free of any socket or GLib type so the core can stay sans-I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace p2psp {

struct Endpoint {
  enum class Family : uint8_t { kNone = 0, kIPv4 = 4, kIPv6 = 6 };

  Family family = Family::kNone;
  // Network byte order. IPv4 uses the first 4 bytes; the rest stay zero.
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;

  static Endpoint ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                       uint16_t port);
  static Endpoint ipv6(const std::array<uint8_t, 16>& addr, uint16_t port);
  // Accepts "1.2.3.4:5" and "[::1]:5". Returns nullopt on anything else.
  static std::optional<Endpoint> parse(const std::string& text);

  bool valid() const { return family != Family::kNone; }
  // "1.2.3.4:5" or "[::1]:5"; "none" for an invalid endpoint.
  std::string to_string() const;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) turned into plain IPv4,
  // so a dual-stack socket and an IPv4 socket name a peer the same way.
  Endpoint normalized() const;
  // Same address, other port.
  Endpoint with_port(uint16_t p) const;
  bool same_address(const Endpoint& o) const;

  bool operator==(const Endpoint& o) const;
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
  bool operator<(const Endpoint& o) const;
};

struct EndpointHash {
  size_t operator()(const Endpoint& e) const;
};

}  // namespace p2psp
