#include <arpa/inet.h>
#include <gst/p2psp/endpoint.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace p2psp {

namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0,    0,
                                                     0, 0, 0, 0, 0xff, 0xff};

// A decimal port of 1..5 digits, no sign, no leading '+', at most 65535.
std::optional<uint16_t> parse_port(const std::string& text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::optional<Endpoint> parse_bracketed_ipv6(const std::string& text) {
  size_t close = text.find(']');
  if (close == std::string::npos || close + 1 >= text.size() ||
      text[close + 1] != ':') {
    return std::nullopt;
  }
  std::string host = text.substr(1, close - 1);
  auto port = parse_port(text.substr(close + 2));
  std::array<uint8_t, 16> addr{};
  // inet_pton rejects zone ids ("%eth0"), which we do not support either.
  if (!port || inet_pton(AF_INET6, host.c_str(), addr.data()) != 1) {
    return std::nullopt;
  }
  return Endpoint::ipv6(addr, *port);
}

std::optional<Endpoint> parse_ipv4(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  auto port = parse_port(text.substr(colon + 1));
  uint8_t addr[4];
  // inet_pton(AF_INET) accepts only the strict dotted-quad form, so
  // "1.2.3" or "01.2.3.4" are refused.
  if (!port || inet_pton(AF_INET, host.c_str(), addr) != 1) {
    return std::nullopt;
  }
  return Endpoint::ipv4(addr[0], addr[1], addr[2], addr[3], *port);
}

}  // namespace

Endpoint Endpoint::ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                        uint16_t port) {
  Endpoint e;
  e.family = Family::kIPv4;
  e.addr[0] = a;
  e.addr[1] = b;
  e.addr[2] = c;
  e.addr[3] = d;
  e.port = port;
  return e;
}

Endpoint Endpoint::ipv6(const std::array<uint8_t, 16>& addr, uint16_t port) {
  Endpoint e;
  e.family = Family::kIPv6;
  e.addr = addr;
  e.port = port;
  return e;
}

std::optional<Endpoint> Endpoint::parse(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text[0] == '[') return parse_bracketed_ipv6(text);
  return parse_ipv4(text);
}

std::string Endpoint::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case Family::kIPv4:
      inet_ntop(AF_INET, addr.data(), host, sizeof host);
      return std::string(host) + ":" + std::to_string(port);
    case Family::kIPv6:
      inet_ntop(AF_INET6, addr.data(), host, sizeof host);
      return "[" + std::string(host) + "]:" + std::to_string(port);
    case Family::kNone:
      break;
  }
  return "none";
}

Endpoint Endpoint::normalized() const {
  if (family != Family::kIPv6 ||
      !std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(),
                  addr.begin())) {
    return *this;
  }
  return ipv4(addr[12], addr[13], addr[14], addr[15], port);
}

Endpoint Endpoint::with_port(uint16_t p) const {
  Endpoint e = *this;
  e.port = p;
  return e;
}

bool Endpoint::same_address(const Endpoint& o) const {
  return family == o.family && addr == o.addr;
}

bool Endpoint::operator==(const Endpoint& o) const {
  return same_address(o) && port == o.port;
}

bool Endpoint::operator<(const Endpoint& o) const {
  return std::tie(family, addr, port) < std::tie(o.family, o.addr, o.port);
}

size_t EndpointHash::operator()(const Endpoint& e) const {
  // FNV-1a over family, address and port: cheap and spreads well enough for
  // the small tables (one entry per peer) it keys.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  mix(static_cast<uint8_t>(e.family));
  for (uint8_t b : e.addr) mix(b);
  mix(static_cast<uint8_t>(e.port >> 8));
  mix(static_cast<uint8_t>(e.port & 0xff));
  return static_cast<size_t>(h);
}

}  // namespace p2psp
