// gst-p2psp tests: what a core put in its outbox, decoded and counted.
#pragma once

#include <gst/p2psp/outbox.h>
#include <gst/p2psp/wire.h>

#include <optional>
#include <variant>

namespace p2psp::test {

inline std::optional<UdpMessage> decode(const UdpSend& send) {
  return decode_udp(send.data->data(), send.data->size());
}

// Datagrams of type Msg queued for `to`.
template <typename Msg>
size_t count_to(const Outbox& out, const Endpoint& to) {
  size_t n = 0;
  for (const UdpSend& send : out.udp) {
    const auto msg = decode(send);
    if (send.to == to && msg && std::holds_alternative<Msg>(*msg)) ++n;
  }
  return n;
}

}  // namespace p2psp::test
