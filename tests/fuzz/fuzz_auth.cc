// Fuzz target: authenticated teams - the CHALLENGE/AUTH/PROOF decoders, the
// sealed-datagram opener, the replay window and the sealed TCP control
// channel (gst/p2psp/auth.h).
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
//     that remembers every counter accepted;
//  4: the input as a TCP message body: if it is a SEALED message, the
//     splitter end of a fixed channel must not open it (no key, no forgery);
//  5: a session on a fixed channel, both directions: messages the input
//     picks, each delivered, tampered, dropped, replayed, swapped with the
//     next or held in flight (so the directions cross), against a model of
//     the receiver's counter (see Lane); whatever is in flight at the end
//     is delivered.
#include <gst/p2psp/auth.h>

#include <deque>
#include <set>

#include "auth_fixture.h"
#include "fuzz_util.h"

using namespace p2psp;
using fuzz::fixed_key;

namespace {

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

// What the splitter and the peer do with a message read on a sealed
// connection: only a SEALED one that opens is taken, anything else closes it.
std::optional<TcpMessage> receive(auth::ChannelCrypto& rx,
                                  const Bytes& framed) {
  std::optional<TcpMessage> msg =
      decode_tcp_body(framed.data() + 4, framed.size() - 4);
  const auto* sealed = msg ? std::get_if<SealedMsg>(&*msg) : nullptr;
  if (!sealed) return std::nullopt;
  return rx.open(*sealed);
}

void open_forged_channel(FuzzedDataProvider& fdp) {
  const Bytes body = fdp.ConsumeRemainingBytes<uint8_t>();
  const std::optional<TcpMessage> msg =
      decode_tcp_body(body.data(), body.size());
  const auto* sealed = msg ? std::get_if<SealedMsg>(&*msg) : nullptr;
  if (!sealed) return;
  auto splitter = fuzz::fixed_channel(auth::Role::kSplitter);
  FUZZ_CHECK(!splitter.open(*sealed).has_value());
}

// A plaintext control message from the input, framed (encode_tcp). Only
// canonical encodings of messages that decode: the channel's promise is to
// give back what was sealed, and a body that does not decode is refused
// inside open() by design.
Bytes pick_plaintext(FuzzedDataProvider& fdp) {
  TcpMessage msg = TcpGoodbyeMsg{};
  switch (fdp.ConsumeIntegralInRange<uint8_t>(0, 4)) {
    case 0:
      break;
    case 1:
      msg = PeerLeftMsg{fdp.ConsumeIntegral<uint32_t>()};
      break;
    case 2:
      msg = PeerJoinedMsg{
          PeerInfo{fdp.ConsumeIntegral<uint32_t>(), fuzz::pick_endpoint(fdp)}};
      break;
    case 3:
      msg = PollutedMsg{fdp.ConsumeIntegral<uint32_t>(),
                        fdp.ConsumeIntegral<uint32_t>(),
                        fdp.ConsumeIntegral<uint32_t>()};
      break;
    default: {
      // Any message, SEALED included (sealed twice must not open).
      const Bytes body = fdp.ConsumeBytes<uint8_t>(
          fdp.ConsumeIntegralInRange<uint16_t>(0, 1024));
      if (auto m = decode_tcp_body(body.data(), body.size())) msg = *m;
      break;
    }
  }
  const Bytes framed = encode_tcp(msg);
  std::optional<TcpMessage> again =
      decode_tcp_body(framed.data() + 4, framed.size() - 4);
  if (!again) return encode_tcp(TcpGoodbyeMsg{});
  return encode_tcp(*again);
}

// One direction of the channel. The model of the receiver is a counter:
// sealed message number i opens if and only if it arrives intact when the
// receiver has opened exactly i messages (and it is not itself SEALED). It
// knows nothing of the actions, so it judges them independently.
struct Lane {
  struct Sent {
    Bytes plain;   // framed plaintext
    Bytes framed;  // framed SEALED message
    uint64_t index = 0;
  };
  Lane(auth::ChannelCrypto& tx, auth::ChannelCrypto& rx) : tx(tx), rx(rx) {}
  auth::ChannelCrypto& tx;
  auth::ChannelCrypto& rx;
  uint64_t sealed = 0;
  uint64_t opened = 0;
  std::optional<Sent> last_delivered;
  std::deque<Sent> in_flight;  // sealed, not yet delivered nor dropped

  Sent seal(FuzzedDataProvider& fdp) {
    Sent s;
    s.plain = pick_plaintext(fdp);
    s.framed = tx.seal(s.plain);
    s.index = sealed++;
    // The SEALED type byte and the tag around the plaintext's type and body.
    FUZZ_CHECK(s.framed.size() == s.plain.size() + 1 + auth::kTagSize);
    FUZZ_CHECK(s.framed[4] == static_cast<uint8_t>(TcpType::kSealed));
    return s;
  }

  // False once a message does not open: the caller closes the stream then,
  // so the session ends.
  bool deliver(const Sent& s, const Bytes& framed) {
    const bool intact = framed == s.framed;
    const bool double_sealed =
        s.plain[4] == static_cast<uint8_t>(TcpType::kSealed);
    const bool expected = intact && s.index == opened && !double_sealed;
    const std::optional<TcpMessage> got = receive(rx, framed);
    FUZZ_CHECK(got.has_value() == expected);
    if (!expected) return false;
    FUZZ_CHECK(encode_tcp(*got) == s.plain);
    ++opened;
    last_delivered = s;
    return true;
  }
};

// Seals a message into the lane, then does one thing to the oldest one in
// flight. Messages held in flight in both directions cross, as on a real
// full-duplex connection.
bool session_step(FuzzedDataProvider& fdp, Lane& lane) {
  lane.in_flight.push_back(lane.seal(fdp));
  const auto take = [&lane] {
    Lane::Sent s = std::move(lane.in_flight.front());
    lane.in_flight.pop_front();
    return s;
  };
  switch (fdp.ConsumeIntegralInRange<uint8_t>(0, 5)) {
    case 0: {  // deliver
      const Lane::Sent s = take();
      return lane.deliver(s, s.framed);
    }
    case 1: {  // tamper one byte after the length prefix (framing is
               // fuzz-tcp's business: a bad length desynchronises the reader)
      const Lane::Sent s = take();
      const size_t where =
          4 + fdp.ConsumeIntegral<uint16_t>() % (s.framed.size() - 4);
      Bytes tampered = s.framed;
      tampered[where] ^= fdp.ConsumeIntegralInRange<uint8_t>(1, 255);
      return lane.deliver(s, tampered);
    }
    case 2:  // drop
      take();
      return true;
    case 3: {  // replay the last message delivered (or this one, twice)
      if (!lane.last_delivered) {
        const Lane::Sent s = take();
        if (!lane.deliver(s, s.framed)) return false;
      }
      const Lane::Sent old = *lane.last_delivered;
      return lane.deliver(old, old.framed);
    }
    case 4: {  // swap with the next message
      if (lane.in_flight.size() < 2) lane.in_flight.push_back(lane.seal(fdp));
      std::swap(lane.in_flight[0], lane.in_flight[1]);
      const Lane::Sent s = take();
      return lane.deliver(s, s.framed);
    }
    default:  // hold it in flight
      return true;
  }
}

// At the end of the input what is still in flight arrives, in order.
bool flush(Lane& lane) {
  for (const Lane::Sent& s : lane.in_flight) {
    if (!lane.deliver(s, s.framed)) return false;
  }
  return true;
}

void channel_session(FuzzedDataProvider& fdp) {
  auto peer = fuzz::fixed_channel(auth::Role::kPeer);
  auto splitter = fuzz::fixed_channel(auth::Role::kSplitter);
  // Each end both seals and opens, as on a real connection, so counters or
  // nonces mixed up between the directions would show.
  Lane to_splitter(peer, splitter);
  Lane to_peer(splitter, peer);
  for (int steps = 0; steps < 256 && fdp.remaining_bytes() > 0; ++steps) {
    Lane& lane = fdp.ConsumeBool() ? to_peer : to_splitter;
    if (!session_step(fdp, lane)) return;
  }
  if (flush(to_splitter)) flush(to_peer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Modes 0-3 keep their numbers: the committed corpus picks them.
  switch (fdp.ConsumeIntegralInRange(0, 5)) {
    case 0:
      handshake_body(fdp);
      break;
    case 1:
      open_received(fdp);
      break;
    case 2:
      seal_and_tamper(fdp);
      break;
    case 3:
      replay_window(fdp);
      break;
    case 4:
      open_forged_channel(fdp);
      break;
    default:
      channel_session(fdp);
      break;
  }
  return 0;
}
