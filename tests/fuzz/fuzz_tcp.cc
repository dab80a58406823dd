// Fuzz target: the TCP control channel - decode_tcp_body (handshake: JOIN,
// WELCOME, TEAM; control: PEER_JOINED, PEER_LEFT, REMOVED, GOODBYE, REJECT,
// ROLE) and the TcpReader that frames them out of a byte stream.
//
// Oracles:
//  - a body that decodes re-encodes to a message that decodes again to the
//    same encoding;
//  - the TcpReader gives the same messages and the same end state (needs
//    more bytes, or the stream is broken) whether the stream arrives at once
//    or cut in arbitrary pieces (TCP segments carry no message boundaries);
//  - a broken stream stays broken and keeps no bytes;
//  - the reader never holds more than it was fed.
#include <utility>

#include "fuzz_util.h"

using namespace p2psp;

namespace {

void check_round_trip(const TcpMessage& msg) {
  const Bytes framed = encode_tcp(msg);
  FUZZ_CHECK(framed.size() > 4);
  std::optional<TcpMessage> again =
      decode_tcp_body(framed.data() + 4, framed.size() - 4);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->index() == msg.index());
  FUZZ_CHECK(encode_tcp(*again) == framed);
}

// Messages (as their encodings) and the status that ended the read.
struct Read {
  std::vector<Bytes> messages;
  TcpReader::Status end = TcpReader::Status::kNeedMore;
};

void drain(TcpReader& reader, Read* read, size_t fed) {
  for (;;) {
    TcpMessage msg;
    const TcpReader::Status s = reader.next(&msg);
    FUZZ_CHECK(reader.buffered() <= fed);
    if (s == TcpReader::Status::kMessage) {
      check_round_trip(msg);
      read->messages.push_back(encode_tcp(msg));
      continue;
    }
    read->end = s;
    if (s == TcpReader::Status::kError) FUZZ_CHECK(reader.buffered() == 0);
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The whole input as one message body.
  if (std::optional<TcpMessage> msg = decode_tcp_body(data, size)) {
    check_round_trip(*msg);
  }

  // The whole input as a stream, with cut points taken from its tail.
  FuzzedDataProvider fdp(data, size);
  std::vector<size_t> cuts;
  const size_t n_cuts = fdp.ConsumeIntegralInRange<size_t>(0, 12);
  for (size_t i = 0; i < n_cuts; ++i) {
    cuts.push_back(fdp.ConsumeIntegralInRange<size_t>(1, 64));
  }
  const std::vector<uint8_t> stream = fdp.ConsumeRemainingBytes<uint8_t>();

  Read whole;
  {
    TcpReader reader;
    reader.feed(stream.data(), stream.size());
    drain(reader, &whole, stream.size());
  }

  Read pieces;
  {
    TcpReader reader;
    size_t at = 0;
    size_t i = 0;
    while (at < stream.size()) {
      // The last cut repeats, so a short cut list still covers the stream.
      const size_t len = std::min(
          stream.size() - at,
          cuts.empty() ? stream.size() : cuts[std::min(i, cuts.size() - 1)]);
      ++i;
      reader.feed(stream.data() + at, len);
      at += len;
      if (pieces.end == TcpReader::Status::kError) {
        TcpMessage msg;
        FUZZ_CHECK(reader.next(&msg) == TcpReader::Status::kError);
        FUZZ_CHECK(reader.buffered() == 0);
        continue;
      }
      drain(reader, &pieces, at);
    }
    if (stream.empty()) drain(reader, &pieces, 0);
  }

  FUZZ_CHECK(whole.end == pieces.end);
  FUZZ_CHECK(whole.messages == pieces.messages);
  return 0;
}
