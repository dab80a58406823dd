// gst-p2psp: the peer's side of an authenticated join (docs/security.md):
// the keys derived from the passphrase, the CHALLENGE / AUTH / PROOF
// handshake, the datagram crypto every datagram is sealed with once WELCOME
// came, and the sealed TCP channel after PROOF. Owns all key material.
#pragma once

#include <gst/p2psp/auth.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_tx.h>
#include <gst/p2psp/wire.h>

#include <memory>
#include <optional>
#include <string>

namespace p2psp {

class PeerAuth {
 public:
  explicit PeerAuth(std::string passphrase)
      : passphrase_(std::move(passphrase)) {}

  bool enabled() const { return !passphrase_.empty(); }
  bool splitter_proved() const { return splitter_proved_; }

  // A handshake step while joining; false if msg is not one. A failed step
  // sets *failure (the join ends, RemoveReason::kAuth).
  bool on_message(const TcpMessage& msg, PeerTx* tx, Outbox* out,
                  std::string* failure);
  // WELCOME gave our id: datagrams are sealed from now on.
  void on_welcome(uint32_t peer_id);
  // With a passphrase, only sealed datagrams from key holders get through
  // (and nothing before WELCOME gave us the team's crypto).
  bool open_datagram(const uint8_t** data, size_t* size, PeerStats* stats);
  // A TCP message after PROOF: false if it is not sealed or does not open.
  bool unseal(TcpMessage* msg);
  bool channel_open() const { return static_cast<bool>(channel_); }

  std::unique_ptr<auth::DatagramCrypto>* crypto() { return &crypto_; }
  const std::unique_ptr<auth::ChannelCrypto>* channel() const {
    return &channel_;
  }
  bool sealing() const { return static_cast<bool>(crypto_); }

 private:
  void on_challenge(const ChallengeMsg& challenge, PeerTx* tx, Outbox* out,
                    std::string* failure);
  void on_proof(const ProofMsg& proof, std::string* failure);
  auth::Mac mac_of(auth::Role role) const;

  std::string passphrase_;
  // Keys once CHALLENGE came, crypto once WELCOME did.
  std::optional<auth::Keys> keys_;
  uint32_t flags_ = 0;  // CHALLENGE's; both proofs cover them
  auth::Salt salt_{};
  auth::Nonce splitter_nonce_{};
  auth::Nonce peer_nonce_{};
  bool splitter_proved_ = false;
  std::unique_ptr<auth::DatagramCrypto> crypto_;
  std::unique_ptr<auth::ChannelCrypto> channel_;  // TCP, after PROOF
  Bytes opened_;  // plaintext of the datagram being handled
};

}  // namespace p2psp
