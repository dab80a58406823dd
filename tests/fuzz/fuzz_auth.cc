// Fuzz target: authenticated teams - the CHALLENGE/AUTH/PROOF decoders, the
// sealed-datagram opener and the replay window (gst/p2psp/auth.h).
//
// The first byte picks the mode:
//  0: a handshake body (type CHALLENGE, AUTH or PROOF, then the input):
//     what decodes re-encodes to the same bytes;
//  1: the input as a received datagram, opened with a fixed key: no crash,
//     and nothing opens (a forgery would need the key), so nothing comes out;
//  2: the input sealed, one byte (picked by the input) flipped or not, and
//     opened: the untouched datagram comes back as it was, a flipped one
//     never opens;
//  3: a sequence of counters into a ReplayWindow, checked against a model
//     that remembers every counter accepted.
#include <gst/p2psp/auth.h>

#include <set>

#include "fuzz_util.h"

using namespace p2psp;

namespace {

auth::Key fixed_key() {
  auth::Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 13);
  return k;
}

void handshake_body(FuzzedDataProvider& fdp) {
  static constexpr TcpType kTypes[] = {TcpType::kChallenge, TcpType::kAuth,
                                       TcpType::kProof};
  Bytes body{static_cast<uint8_t>(kTypes[fdp.ConsumeIntegralInRange(0, 2)])};
  const Bytes rest = fdp.ConsumeRemainingBytes<uint8_t>();
  body.insert(body.end(), rest.begin(), rest.end());
  std::optional<TcpMessage> msg = decode_tcp_body(body.data(), body.size());
  if (!msg) return;
  const Bytes framed = encode_tcp(*msg);
  FUZZ_CHECK(Bytes(framed.begin() + 4, framed.end()) == body);
}

void open_received(FuzzedDataProvider& fdp) {
  const bool encrypt = fdp.ConsumeBool();
  const Bytes data = fdp.ConsumeRemainingBytes<uint8_t>();
  auth::DatagramCrypto crypto(fixed_key(), 1, encrypt);
  Bytes out;
  const auto result = crypto.open(data.data(), data.size(), &out);
  FUZZ_CHECK(result != auth::DatagramCrypto::Open::kOk);
  FUZZ_CHECK(out.empty());
}

void seal_and_tamper(FuzzedDataProvider& fdp) {
  const bool encrypt = fdp.ConsumeBool();
  const bool tamper = fdp.ConsumeBool();
  const size_t where = fdp.ConsumeIntegral<uint16_t>();
  const uint8_t mask = fdp.ConsumeIntegralInRange<uint8_t>(1, 255);
  Bytes plain = fdp.ConsumeRemainingBytes<uint8_t>();
  if (plain.size() < kUdpHeaderSize) return;
  // What a core would send: its header says magic and version, any type.
  plain[0] = kUdpMagic;
  plain[1] &= static_cast<uint8_t>(~kUdpFlagSealed);
  plain[2] = kProtocolVersion;
  auth::DatagramCrypto sender(fixed_key(), 7, encrypt);
  auth::DatagramCrypto receiver(fixed_key(), 8, encrypt);
  Bytes sealed = sender.seal(plain.data(), plain.size());
  FUZZ_CHECK(sealed.size() == plain.size() + auth::kSealOverhead);
  if (tamper) sealed[where % sealed.size()] ^= mask;
  Bytes out;
  const auto result = receiver.open(sealed.data(), sealed.size(), &out);
  if (tamper) {
    FUZZ_CHECK(result == auth::DatagramCrypto::Open::kUnauthenticated);
    FUZZ_CHECK(out.empty());
  } else {
    FUZZ_CHECK(result == auth::DatagramCrypto::Open::kOk);
    FUZZ_CHECK(out == plain);
    // The same datagram again is a replay.
    FUZZ_CHECK(receiver.open(sealed.data(), sealed.size(), &out) ==
               auth::DatagramCrypto::Open::kReplayed);
  }
}

void replay_window(FuzzedDataProvider& fdp) {
  auth::ReplayWindow window;
  std::set<uint64_t> accepted;
  uint64_t counter = fdp.ConsumeIntegral<uint64_t>() >> 1;
  while (fdp.remaining_bytes() > 0) {
    // Mostly small steps either way, sometimes a jump.
    const int16_t step = fdp.ConsumeIntegral<int16_t>();
    counter = step < 0 && counter < uint64_t(-step) ? 0 : counter + step;
    const bool fresh = accepted.count(counter) == 0;
    const uint64_t top = accepted.empty() ? 0 : *accepted.rbegin();
    const bool in_window = accepted.empty() || counter > top ||
                           top - counter < auth::ReplayWindow::kBits;
    const bool expected = fresh && in_window;
    FUZZ_CHECK(window.accept(counter) == expected);
    if (expected) accepted.insert(counter);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  switch (fdp.ConsumeIntegralInRange(0, 3)) {
    case 0:
      handshake_body(fdp);
      break;
    case 1:
      open_received(fdp);
      break;
    case 2:
      seal_and_tamper(fdp);
      break;
    default:
      replay_window(fdp);
      break;
  }
  return 0;
}
