// gst-p2psp fuzzing: helpers shared by the libFuzzer targets.
//
// FUZZ_CHECK is an invariant: when it fails the target prints what broke and
// aborts, so libFuzzer records the input as a crash (a "finding"). It is not
// assert(): it stays on whatever NDEBUG says, since buildtype=debugoptimized
// builds keep asserts but a release build of the fuzzers must not lose them.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>
#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#define FUZZ_CHECK(cond)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                  \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

namespace p2psp::fuzz {

// Re-encodes a decoded datagram (the inverse of decode_udp).
inline Bytes encode_udp(const UdpMessage& msg) {
  struct Visitor {
    Bytes operator()(const ChunkMsg& m) const {
      return encode_chunk(m, m.origin);  // the signature, if any, too
    }
    Bytes operator()(const HelloMsg& m) const { return encode_hello(m); }
    Bytes operator()(const RegisterMsg& m) const { return encode_register(m); }
    Bytes operator()(const GoodbyeMsg& m) const { return encode_goodbye(m); }
    Bytes operator()(const LostMsg& m) const { return encode_lost(m); }
    Bytes operator()(const NackMsg& m) const { return encode_nack(m); }
    Bytes operator()(const RequestMsg& m) const { return encode_request(m); }
    Bytes operator()(const PruneMsg& m) const { return encode_prune(m); }
    Bytes operator()(const HeartbeatMsg& m) const {
      return encode_heartbeat(m);
    }
    Bytes operator()(const ProbeMsg& m) const { return encode_probe(m); }
  };
  return std::visit(Visitor{}, msg);
}

inline uint32_t team_of(const UdpMessage& msg) {
  return std::visit([](const auto& m) { return m.team_id; }, msg);
}

// A small address space, so that random picks hit the same endpoints again
// (members, neighbours, the splitter) as often as strangers.
inline Endpoint pick_endpoint(FuzzedDataProvider& fdp) {
  const uint8_t host = fdp.ConsumeIntegralInRange<uint8_t>(1, 8);
  const uint16_t port = fdp.ConsumeIntegralInRange<uint16_t>(4550, 4557);
  if (fdp.ConsumeIntegralInRange<uint8_t>(0, 15) == 0) {
    // IPv4-mapped IPv6: must be treated as the IPv4 address it maps.
    std::array<uint8_t, 16> a{};
    a[10] = a[11] = 0xff;
    a[12] = 10;
    a[15] = host;
    return Endpoint::ipv6(a, port);
  }
  return Endpoint::ipv4(10, 0, 0, host, port);
}

// Every datagram a core asks to send is a well-formed one of its team, to a
// real address, and fits a UDP datagram.
inline void check_udp_out(const Outbox& out, uint32_t team_id) {
  for (const UdpSend& s : out.udp) {
    FUZZ_CHECK(s.to.valid());
    FUZZ_CHECK(s.data != nullptr);
    FUZZ_CHECK(s.data->size() <= 65507);
    std::optional<UdpMessage> msg = decode_udp(s.data->data(), s.data->size());
    FUZZ_CHECK(msg.has_value());
    FUZZ_CHECK(team_of(*msg) == team_id);
  }
}

}  // namespace p2psp::fuzz
