// gst-p2psp: the peer core's drain point (see peer_tx.h).
#include <gst/p2psp/peer_tx.h>

namespace p2psp {

void PeerTx::control(const Endpoint& to, Bytes bytes, Outbox* out) {
  stats_->control_bytes_up += bytes.size();
  egress_.send(to, std::move(bytes), out);
}

void PeerTx::tcp(const TcpMessage& msg, Outbox* out) {
  Bytes framed = encode_tcp(msg);
  if (*channel_) framed = (*channel_)->seal(framed);
  out->tcp.push_back(TcpSend{0, std::move(framed)});
}

}  // namespace p2psp
