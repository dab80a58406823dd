// gst-p2psp: what a core state machine asks its I/O wrapper to do.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/wire.h>

#include <cstdint>
#include <vector>

namespace p2psp {

using ConnId = uint64_t;

struct UdpSend {
  Endpoint to;
  SharedBytes data;  // shared: one chunk goes to many neighbours
  // Must leave after every datagram queued before it (a flood-check echo
  // times the copies ahead of it, protocol.md 10.7): a sender that groups
  // datagrams by destination does not move it, nor anything after it,
  // ahead of those.
  bool in_order = false;
};

struct TcpSend {
  ConnId conn = 0;  // the peer core has one connection and uses 0
  Bytes data;
};

struct Outbox {
  std::vector<UdpSend> udp;
  std::vector<TcpSend> tcp;
  // Connections the wrapper must close, after sending what is queued for them.
  std::vector<ConnId> tcp_close;

  void clear() {
    udp.clear();
    tcp.clear();
    tcp_close.clear();
  }
  bool empty() const { return udp.empty() && tcp.empty() && tcp_close.empty(); }
};

// Microseconds on a monotonic clock chosen by the wrapper (or the simulator).
using Micros = uint64_t;

}  // namespace p2psp
