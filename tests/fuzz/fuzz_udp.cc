// Fuzz target: decode_udp, every datagram type.
//
// Oracle besides "no crash, no sanitizer report": whatever decodes must
// re-encode to a datagram that decodes again to the same encoding (the
// decoder and the encoders agree), and a decoded chunk's payload view lies
// inside the datagram.
#include "fuzz_util.h"

using namespace p2psp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<UdpMessage> msg = decode_udp(data, size);
  if (!msg) return 0;
  if (const auto* chunk = std::get_if<ChunkMsg>(&*msg)) {
    FUZZ_CHECK(chunk->payload_size <= kMaxChunkPayload);
    FUZZ_CHECK(chunk->payload_size == 0 ||
               (chunk->payload >= data &&
                chunk->payload + chunk->payload_size <= data + size));
  }
  if (const auto* lost = std::get_if<LostMsg>(&*msg)) {
    FUZZ_CHECK(!lost->numbers.empty());
    FUZZ_CHECK(lost->numbers.size() <= kMaxNackNumbers);
  }
  if (const auto* nack = std::get_if<NackMsg>(&*msg)) {
    FUZZ_CHECK(!nack->numbers.empty());
    FUZZ_CHECK(nack->numbers.size() <= kMaxNackNumbers);
  }
  const Bytes once = fuzz::encode_udp(*msg);
  FUZZ_CHECK(once.size() <= size);  // no field grows on the way back
  std::optional<UdpMessage> again = decode_udp(once.data(), once.size());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->index() == msg->index());
  FUZZ_CHECK(fuzz::encode_udp(*again) == once);
  return 0;
}
