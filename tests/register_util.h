// gst-p2psp tests: registering with a splitter core by hand, as a peer does
// (docs/protocol.md section 3): REGISTER, the splitter's PROBE to that
// address, REGISTER again echoing the PROBE's cookie.
#pragma once

#include <gst/p2psp/splitter.h>
#include <gst/p2psp/wire.h>

#include <optional>
#include <variant>

namespace p2psp::test {

// The cookie of the last PROBE queued for `to`, which is taken out of *out
// so that callers counting datagrams see what they saw before PROBEs.
inline std::optional<uint64_t> take_probe(Outbox* out, const Endpoint& to) {
  for (auto it = out->udp.rbegin(); it != out->udp.rend(); ++it) {
    if (it->to != to.normalized() || !it->data) continue;
    const auto msg = decode_udp(it->data->data(), it->data->size());
    const auto* probe = msg ? std::get_if<ProbeMsg>(&*msg) : nullptr;
    if (!probe) continue;
    const uint64_t cookie = probe->cookie;
    out->udp.erase(std::next(it).base());
    return cookie;
  }
  return std::nullopt;
}

// REGISTER from `from`, then the echo of the PROBE it drew. False if no
// PROBE came back (wrong id or token).
inline bool register_at(Splitter& sp, const Endpoint& from, uint32_t team_id,
                        uint32_t peer_id, uint64_t token, Micros now,
                        Outbox* out) {
  Bytes reg = encode_register(RegisterMsg{team_id, peer_id, token, 0});
  sp.on_udp(from, reg.data(), reg.size(), now, out);
  const std::optional<uint64_t> cookie = take_probe(out, from);
  if (!cookie) return false;
  reg = encode_register(RegisterMsg{team_id, peer_id, token, *cookie});
  sp.on_udp(from, reg.data(), reg.size(), now, out);
  return true;
}

}  // namespace p2psp::test
