// gst-p2psp: the one drain point of the peer core. Every datagram leaves
// through its Egress (sealed once the team has crypto, and only to validated
// addresses or within the amplification limit); every control message to
// the splitter through tcp() (sealed once the channel is). It owns the
// Egress; the keys stay with PeerAuth.
#pragma once

#include <gst/p2psp/auth.h>
#include <gst/p2psp/egress.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/wire.h>

#include <memory>

namespace p2psp {

class PeerTx {
 public:
  PeerTx(Egress::Validated validated,
         std::unique_ptr<auth::DatagramCrypto>* crypto,
         const std::unique_ptr<auth::ChannelCrypto>* channel, PeerStats* stats)
      : egress_(std::move(validated), crypto),
        channel_(channel),
        stats_(stats) {}

  // A chunk or a greeting (HELLO, PROBE, GOODBYE, REGISTER): the caller
  // counts what it stands for. False when the amplification limit held it.
  bool datagram(const Endpoint& to, const SharedBytes& bytes, Outbox* out) {
    return egress_.send(to, bytes, out);
  }
  bool datagram(const Endpoint& to, Bytes bytes, Outbox* out) {
    return egress_.send(to, std::move(bytes), out);
  }
  // Health messages (HEARTBEAT, NACK, LOST, REQUEST, PRUNE); their bytes are
  // kept apart from the chunk upload.
  void control(const Endpoint& to, Bytes bytes, Outbox* out);
  // To the splitter on the TCP channel; everything after PROOF is sealed.
  void tcp(const TcpMessage& msg, Outbox* out);

  Egress& egress() { return egress_; }

 private:
  Egress egress_;
  const std::unique_ptr<auth::ChannelCrypto>* channel_;
  PeerStats* stats_;
};

}  // namespace p2psp
