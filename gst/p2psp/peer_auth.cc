// gst-p2psp: the peer's side of an authenticated join (see peer_auth.h).
#include <gst/p2psp/peer_auth.h>

namespace p2psp {

bool PeerAuth::on_message(const TcpMessage& msg, PeerTx* tx, Outbox* out,
                          std::string* failure) {
  if (const auto* c = std::get_if<ChallengeMsg>(&msg); c && !keys_) {
    on_challenge(*c, tx, out, failure);
    return true;
  }
  if (const auto* p = std::get_if<ProofMsg>(&msg);
      p && keys_ && !splitter_proved_) {
    on_proof(*p, failure);
    return true;
  }
  if (std::holds_alternative<WelcomeMsg>(msg) && !splitter_proved_) {
    // No challenge: an open team. Joining it would leak the stream's
    // protection the user asked for.
    *failure = "splitter has no passphrase but one was set";
    return true;
  }
  return false;
}

// Derives the keys with the splitter's salt and proves we know them.
void PeerAuth::on_challenge(const ChallengeMsg& challenge, PeerTx* tx,
                            Outbox* out, std::string* failure) {
  keys_.emplace();
  if (!auth::derive_keys(passphrase_, challenge.salt, &*keys_)) {
    keys_.reset();
    *failure = "passphrase key derivation failed (out of memory?)";
    return;
  }
  flags_ = challenge.flags;
  splitter_nonce_ = challenge.nonce;
  salt_ = challenge.salt;
  peer_nonce_ = auth::random_array<sizeof(auth::Nonce)>();
  // The channel is not open yet: AUTH goes in the clear.
  tx->tcp(AuthMsg{peer_nonce_, mac_of(auth::Role::kPeer)}, out);
}

auth::Mac PeerAuth::mac_of(auth::Role role) const {
  return auth::handshake_mac(keys_->handshake, role, salt_, splitter_nonce_,
                             peer_nonce_, flags_);
}

void PeerAuth::on_proof(const ProofMsg& proof, std::string* failure) {
  if (!auth::verify_mac(mac_of(auth::Role::kSplitter), proof.mac)) {
    *failure = "the splitter could not prove it knows the passphrase";
    return;
  }
  splitter_proved_ = true;
  channel_ = std::make_unique<auth::ChannelCrypto>(
      keys_->handshake, splitter_nonce_, peer_nonce_, auth::Role::kPeer);
}

void PeerAuth::on_welcome(uint32_t peer_id) {
  if (!keys_) return;
  crypto_ = std::make_unique<auth::DatagramCrypto>(
      keys_->datagram, peer_id, (flags_ & auth::kFlagEncrypt) != 0);
}

bool PeerAuth::open_datagram(const uint8_t** data, size_t* size,
                             PeerStats* stats) {
  if (passphrase_.empty()) return true;
  return auth::open_or_count(crypto_.get(), data, size, &opened_, stats);
}

bool PeerAuth::unseal(TcpMessage* msg) {
  const auto* sealed = std::get_if<SealedMsg>(msg);
  std::optional<TcpMessage> inner;
  if (sealed) inner = channel_->open(*sealed);
  if (!inner) return false;
  *msg = std::move(*inner);
  return true;
}

}  // namespace p2psp
