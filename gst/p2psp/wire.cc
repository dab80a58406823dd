#include <gst/p2psp/wire.h>

#include <cstring>
#include <type_traits>

namespace p2psp {

namespace {

// ------------------------------------------------------------ helpers ----

// Appends big-endian integers and raw bytes to a buffer.
class Writer {
 public:
  explicit Writer(Bytes* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(v); }
  void u16(uint16_t v) { uint_be(v, 2); }
  void u32(uint32_t v) { uint_be(v, 4); }
  void u64(uint64_t v) { uint_be(v, 8); }
  void raw(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_->insert(out_->end(), p, p + size);
  }
  void string(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void endpoint(const Endpoint& e) {
    u8(static_cast<uint8_t>(e.family));
    raw(e.addr.data(), address_size(e.family));
    u16(e.port);
  }
  static size_t address_size(Endpoint::Family f) {
    return f == Endpoint::Family::kIPv6 ? 16 : 4;
  }

 private:
  void uint_be(uint64_t v, int bytes) {
    for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
      out_->push_back(static_cast<uint8_t>(v >> shift));
    }
  }
  Bytes* out_;
};

// Bounds-checked big-endian cursor. Once a read runs past the end, every
// later read fails too and ok() stays false, so decoders can read a whole
// message and check once.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? static_cast<size_t>(end_ - p_) : 0; }
  bool at_end() const { return ok_ && p_ == end_; }

  uint8_t u8() { return static_cast<uint8_t>(uint_be(1)); }
  uint16_t u16() { return static_cast<uint16_t>(uint_be(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint_be(4)); }
  uint64_t u64() { return uint_be(8); }

  const uint8_t* take(size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return nullptr;
    }
    const uint8_t* start = p_;
    p_ += n;
    return start;
  }
  std::string string() {
    uint32_t len = u32();
    const uint8_t* bytes = take(len);
    if (!bytes) return {};
    return std::string(reinterpret_cast<const char*>(bytes), len);
  }
  Endpoint endpoint() {
    uint8_t family = u8();
    Endpoint e;
    if (family == 4) {
      e.family = Endpoint::Family::kIPv4;
    } else if (family == 6) {
      e.family = Endpoint::Family::kIPv6;
    } else {
      ok_ = false;
      return e;
    }
    const uint8_t* addr = take(Writer::address_size(e.family));
    if (addr) std::memcpy(e.addr.data(), addr, Writer::address_size(e.family));
    e.port = u16();
    return e;
  }
  void fail() { ok_ = false; }

 private:
  uint64_t uint_be(size_t bytes) {
    const uint8_t* p = take(bytes);
    if (!p) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// Smallest encoded endpoint: family byte, IPv4 address, port.
constexpr size_t kMinEndpointSize = 1 + 4 + 2;
constexpr size_t kHelloSize = kUdpHeaderSize + 4 + 8;
constexpr size_t kRegisterSize = kUdpHeaderSize + 4 + 8 + 8;
constexpr size_t kGoodbyeSize = kUdpHeaderSize + 4;
constexpr size_t kLostFixedSize = kUdpHeaderSize + 4 + 8 + 2;
constexpr size_t kNackFixedSize = kUdpHeaderSize + 4 + 2;
constexpr size_t kRequestSize = kUdpHeaderSize + 4 + 4;
constexpr size_t kHeartbeatSize = kUdpHeaderSize + 4 + 8;
// Cookie, peer id, 4 reserved bytes: no single bit flip of the type byte
// turns a PRUNE (16 bytes) or a HELLO (20) into a PROBE.
constexpr size_t kProbeSize = kUdpHeaderSize + 8 + 4 + 4;

// ---------------------------------------------------------------- UDP ----

void write_udp_header(Writer& w, UdpType type, uint32_t team_id,
                      uint8_t flags = 0) {
  w.u8(kUdpMagic);
  w.u8(flags);
  w.u8(kProtocolVersion);
  w.u8(static_cast<uint8_t>(type));
  w.u32(team_id);
}

std::optional<UdpMessage> decode_chunk(Reader& r, uint32_t team_id,
                                       uint8_t flags) {
  ChunkMsg m;
  m.team_id = team_id;
  m.number = r.u32();
  m.first_frame_offset = r.u16();
  m.send_time_ms = r.u16();
  m.previous = r.u16();
  if (flags & kUdpFlagOrigin) {
    m.origin = r.u32();
    // An explicit origin names a peer; "implicit" has its own encoding.
    if (m.origin == kImplicitOrigin) return std::nullopt;
  } else if (flags & kUdpFlagFlood) {
    return std::nullopt;  // a re-dealt chunk always names its origin
  }
  m.flood = (flags & kUdpFlagFlood) != 0;
  const size_t trailer = (flags & kUdpFlagSigned) ? kChunkSignatureSize : 0;
  if (!r.ok() || r.remaining() < trailer) return std::nullopt;
  m.payload_size = r.remaining() - trailer;
  if (m.payload_size == 0 || m.payload_size > kMaxChunkPayload) {
    return std::nullopt;
  }
  if (m.first_frame_offset != kNoFrameStart &&
      m.first_frame_offset >= m.payload_size) {
    return std::nullopt;
  }
  m.payload = r.take(m.payload_size);
  if (trailer != 0) m.signature = r.take(trailer);
  return m;
}

std::optional<UdpMessage> decode_hello(Reader& r, uint32_t team_id,
                                       size_t size) {
  if (size != kHelloSize) return std::nullopt;
  HelloMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  m.cookie = r.u64();
  return m;
}

std::optional<UdpMessage> decode_goodbye(Reader& r, uint32_t team_id,
                                         size_t size) {
  if (size != kGoodbyeSize) return std::nullopt;
  GoodbyeMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  return m;
}

std::optional<UdpMessage> decode_probe(Reader& r, uint32_t team_id,
                                       size_t size) {
  if (size != kProbeSize) return std::nullopt;
  ProbeMsg m;
  m.team_id = team_id;
  m.cookie = r.u64();
  m.peer_id = r.u32();
  // Reserved: must be zero, so a later use of it is never misread.
  if (r.u32() != 0 || m.cookie == 0) return std::nullopt;
  return m;
}

std::optional<UdpMessage> decode_register(Reader& r, uint32_t team_id,
                                          size_t size) {
  if (size != kRegisterSize) return std::nullopt;
  RegisterMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  m.token = r.u64();
  m.cookie = r.u64();
  return m;
}

// A u16 count (1..kMaxNackNumbers) then exactly that many u32 numbers, to
// the end of the datagram.
bool read_numbers(Reader& r, std::vector<ChunkNumber>* numbers) {
  const uint16_t count = r.u16();
  if (!r.ok() || count == 0 || count > kMaxNackNumbers ||
      r.remaining() != size_t{count} * 4) {
    return false;
  }
  numbers->reserve(count);
  for (uint16_t i = 0; i < count; ++i) numbers->push_back(r.u32());
  return r.at_end();
}

void write_numbers(Writer& w, const std::vector<ChunkNumber>& numbers) {
  w.u16(static_cast<uint16_t>(numbers.size()));
  for (ChunkNumber n : numbers) w.u32(n);
}

std::optional<UdpMessage> decode_lost(Reader& r, uint32_t team_id,
                                      size_t size) {
  if (size < kLostFixedSize) return std::nullopt;
  LostMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  m.token = r.u64();
  if (!read_numbers(r, &m.numbers)) return std::nullopt;
  return m;
}

std::optional<UdpMessage> decode_nack(Reader& r, uint32_t team_id,
                                      size_t size) {
  if (size < kNackFixedSize) return std::nullopt;
  NackMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  if (!read_numbers(r, &m.numbers)) return std::nullopt;
  return m;
}

// REQUEST and PRUNE share a layout: header + peer id + origin.
template <typename Msg>
std::optional<UdpMessage> decode_origin_msg(Reader& r, uint32_t team_id,
                                            size_t size) {
  if (size != kRequestSize) return std::nullopt;
  Msg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  m.origin = r.u32();
  return m;
}

std::optional<UdpMessage> decode_heartbeat(Reader& r, uint32_t team_id,
                                           size_t size) {
  if (size != kHeartbeatSize) return std::nullopt;
  HeartbeatMsg m;
  m.team_id = team_id;
  m.peer_id = r.u32();
  m.token = r.u64();
  return m;
}

// ---------------------------------------------------------------- TCP ----

TcpType type_of(const TcpMessage& m) {
  // The variant's alternatives are listed in TcpType order, from 1.
  return static_cast<TcpType>(m.index() + 1);
}

struct BodyWriter {
  Writer& w;
  void operator()(const JoinMsg& m) {
    w.raw(kJoinMagic, sizeof kJoinMagic);
    w.u8(m.version);
    w.u32(m.flags);
    if (m.flags & kFlagUploadLimit) w.u32(m.upload_limit_kbps);
    if ((m.flags & kFlagLocalEndpoints) == 0) return;
    w.u8(static_cast<uint8_t>(m.local_endpoints.size()));
    for (const Endpoint& e : m.local_endpoints) w.endpoint(e);
  }
  void operator()(const WelcomeMsg& m) {
    w.u8(m.version);
    w.u32(m.team_id);
    w.u32(m.peer_id);
    w.u64(m.token);
    w.u32(m.chunk_size);
    w.u16(m.splitter_udp_port);
    w.string(m.caps);
  }
  void operator()(const TeamMsg& m) {
    w.endpoint(m.public_endpoint);
    w.u32(m.next_chunk);
    w.u32(static_cast<uint32_t>(m.peers.size()));
    for (const PeerInfo& p : m.peers) peer_info(p);
  }
  void operator()(const PeerJoinedMsg& m) { peer_info(m.peer); }
  void operator()(const PeerLeftMsg& m) { w.u32(m.peer_id); }
  void operator()(const RemovedMsg& m) {
    w.u8(static_cast<uint8_t>(m.reason));
    w.string(m.text);
  }
  void operator()(const TcpGoodbyeMsg&) {}
  void operator()(const RejectMsg& m) {
    w.u8(static_cast<uint8_t>(m.reason));
    w.string(m.text);
  }
  void operator()(const RoleMsg& m) { w.u32(m.flags); }
  void operator()(const ChallengeMsg& m) {
    w.raw(m.salt.data(), m.salt.size());
    w.raw(m.nonce.data(), m.nonce.size());
    w.u32(m.flags);
  }
  void operator()(const AuthMsg& m) {
    w.raw(m.nonce.data(), m.nonce.size());
    w.raw(m.mac.data(), m.mac.size());
  }
  void operator()(const ProofMsg& m) { w.raw(m.mac.data(), m.mac.size()); }
  void operator()(const ChunkKeyMsg& m) { w.raw(m.key.data(), m.key.size()); }
  void operator()(const PollutedMsg& m) {
    w.u32(m.sender);
    w.u32(m.number);
    w.u32(m.origin);
  }
  void operator()(const SealedMsg& m) { w.raw(m.box.data(), m.box.size()); }
  void operator()(const BurstMsg& m) {
    w.u32(m.first);
    w.u32(m.count);
  }
  void operator()(const MulticastMsg& m) { w.endpoint(m.group); }
  void operator()(const MulticastReceivingMsg&) {}
  void operator()(const MulticastMemberMsg& m) { w.u32(m.peer_id); }
  void operator()(const PeerLocalMsg& m) {
    w.u32(m.peer_id);
    w.endpoint(m.endpoint);
  }

 private:
  void peer_info(const PeerInfo& p) {
    w.u32(p.id);
    w.endpoint(p.endpoint);
  }
};

PeerInfo read_peer_info(Reader& r) {
  PeerInfo p;
  p.id = r.u32();
  p.endpoint = r.endpoint();
  return p;
}

RemoveReason read_reason(Reader& r) {
  uint8_t v = r.u8();
  if (v > static_cast<uint8_t>(RemoveReason::kAuth)) r.fail();
  return static_cast<RemoveReason>(v);
}

JoinMsg read_join(Reader& r) {
  JoinMsg m;
  const uint8_t* magic = r.take(sizeof kJoinMagic);
  if (magic && std::memcmp(magic, kJoinMagic, sizeof kJoinMagic) != 0) {
    r.fail();
  }
  // Any version decodes, so the splitter can answer REJECT kVersion.
  m.version = r.u8();
  m.flags = r.u32();
  if (m.flags & kFlagUploadLimit) m.upload_limit_kbps = r.u32();
  if ((m.flags & kFlagLocalEndpoints) == 0) return m;
  const uint8_t count = r.u8();
  if (!r.ok() || count == 0 || count > kMaxLocalEndpoints) {
    r.fail();
    return m;
  }
  for (uint8_t i = 0; i < count && r.ok(); ++i) {
    m.local_endpoints.push_back(r.endpoint());
  }
  return m;
}

WelcomeMsg read_welcome(Reader& r) {
  WelcomeMsg m;
  m.version = r.u8();
  m.team_id = r.u32();
  m.peer_id = r.u32();
  m.token = r.u64();
  m.chunk_size = r.u32();
  m.splitter_udp_port = r.u16();
  m.caps = r.string();
  return m;
}

TeamMsg read_team(Reader& r) {
  TeamMsg m;
  m.public_endpoint = r.endpoint();
  m.next_chunk = r.u32();
  uint32_t count = r.u32();
  // Refuse a count the remaining bytes cannot hold before reserving memory
  // for it: a hostile count must not become a huge allocation.
  if (!r.ok() || count > r.remaining() / (4 + kMinEndpointSize)) {
    r.fail();
    return m;
  }
  m.peers.reserve(count);
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    m.peers.push_back(read_peer_info(r));
  }
  return m;
}

template <size_t N>
void read_array(Reader& r, std::array<uint8_t, N>* out) {
  const uint8_t* p = r.take(N);
  if (p) std::memcpy(out->data(), p, N);
}

ChallengeMsg read_challenge(Reader& r) {
  ChallengeMsg m;
  read_array(r, &m.salt);
  read_array(r, &m.nonce);
  m.flags = r.u32();
  return m;
}

AuthMsg read_auth(Reader& r) {
  AuthMsg m;
  read_array(r, &m.nonce);
  read_array(r, &m.mac);
  return m;
}

std::optional<TcpMessage> read_body(TcpType type, Reader& r) {
  switch (type) {
    case TcpType::kJoin:
      return read_join(r);
    case TcpType::kWelcome:
      return read_welcome(r);
    case TcpType::kTeam:
      return read_team(r);
    case TcpType::kPeerJoined:
      return PeerJoinedMsg{read_peer_info(r)};
    case TcpType::kPeerLeft:
      return PeerLeftMsg{r.u32()};
    case TcpType::kRemoved: {
      RemovedMsg m;
      m.reason = read_reason(r);
      m.text = r.string();
      return m;
    }
    case TcpType::kGoodbye:
      return TcpGoodbyeMsg{};
    case TcpType::kReject: {
      RejectMsg m;
      m.reason = read_reason(r);
      m.text = r.string();
      return m;
    }
    case TcpType::kRole:
      return RoleMsg{r.u32()};
    case TcpType::kChallenge:
      return read_challenge(r);
    case TcpType::kAuth:
      return read_auth(r);
    case TcpType::kProof: {
      ProofMsg m;
      read_array(r, &m.mac);
      return m;
    }
    case TcpType::kChunkKey: {
      ChunkKeyMsg m;
      read_array(r, &m.key);
      return m;
    }
    case TcpType::kPolluted: {
      PollutedMsg m;
      m.sender = r.u32();
      m.number = r.u32();
      m.origin = r.u32();
      return m;
    }
    case TcpType::kPeerLocal: {
      PeerLocalMsg m;
      m.peer_id = r.u32();
      m.endpoint = r.endpoint();
      return m;
    }
    case TcpType::kMulticast:
      return MulticastMsg{r.endpoint()};
    case TcpType::kMulticastReceiving:
      return MulticastReceivingMsg{};
    case TcpType::kMulticastMember:
      return MulticastMemberMsg{r.u32()};
    case TcpType::kSealed: {
      // At least a tag and a type byte.
      const size_t n = r.remaining();
      if (n < 17) r.fail();
      const uint8_t* p = r.take(n);
      SealedMsg m;
      if (p) m.box.assign(p, p + n);
      return m;
    }
    case TcpType::kBurst: {
      BurstMsg m;
      m.first = r.u32();
      m.count = r.u32();
      return m;
    }
  }
  return std::nullopt;  // unknown type
}

// TcpReader: consumed bytes are dropped once there are this many, or once
// they outnumber the unread ones.
constexpr size_t kCompactThreshold = 4096;

}  // namespace

// ---------------------------------------------------------------- UDP ----

std::optional<UdpMessage> decode_udp(const uint8_t* data, size_t size) {
  if (data == nullptr) return std::nullopt;
  Reader r(data, size);
  const uint8_t magic = r.u8();
  const uint8_t flags = r.u8();
  const uint8_t version = r.u8();
  const uint8_t type = r.u8();
  const uint32_t team_id = r.u32();
  if (!r.ok() || magic != kUdpMagic || version != kProtocolVersion ||
      (flags & ~kUdpKnownFlags) != 0) {
    return std::nullopt;
  }
  // Only CHUNK has flags so far.
  if (flags != 0 && static_cast<UdpType>(type) != UdpType::kChunk) {
    return std::nullopt;
  }
  switch (static_cast<UdpType>(type)) {
    case UdpType::kChunk:
      return decode_chunk(r, team_id, flags);
    case UdpType::kHello:
      return decode_hello(r, team_id, size);
    case UdpType::kRegister:
      return decode_register(r, team_id, size);
    case UdpType::kGoodbye:
      return decode_goodbye(r, team_id, size);
    case UdpType::kLost:
      return decode_lost(r, team_id, size);
    case UdpType::kNack:
      return decode_nack(r, team_id, size);
    case UdpType::kRequest:
      return decode_origin_msg<RequestMsg>(r, team_id, size);
    case UdpType::kPrune:
      return decode_origin_msg<PruneMsg>(r, team_id, size);
    case UdpType::kHeartbeat:
      return decode_heartbeat(r, team_id, size);
    case UdpType::kProbe:
      return decode_probe(r, team_id, size);
  }
  return std::nullopt;
}

namespace {

void write_chunk(uint32_t team_id, ChunkNumber number, uint32_t origin,
                 uint32_t send_time_ms, uint16_t first_frame_offset,
                 const uint8_t* payload, size_t payload_size,
                 const uint8_t* signature, uint16_t previous, Bytes* out,
                 uint8_t extra_flags = 0) {
  const bool explicit_origin = origin != kImplicitOrigin;
  out->clear();
  out->reserve(kChunkHeaderSize + (explicit_origin ? kChunkOriginSize : 0) +
               payload_size + (signature ? kChunkSignatureSize : 0));
  Writer w(out);
  write_udp_header(w, UdpType::kChunk, team_id,
                   (explicit_origin ? kUdpFlagOrigin : 0) |
                       (signature ? kUdpFlagSigned : 0) | extra_flags);
  w.u32(number);
  w.u16(first_frame_offset);
  w.u16(static_cast<uint16_t>(send_time_ms));
  w.u16(previous);
  if (explicit_origin) w.u32(origin);
  if (payload_size > 0) w.raw(payload, payload_size);
  if (signature) w.raw(signature, kChunkSignatureSize);
}

}  // namespace

Bytes encode_chunk(uint32_t team_id, ChunkNumber number, uint32_t origin,
                   uint32_t send_time_ms, uint16_t first_frame_offset,
                   const uint8_t* payload, size_t payload_size,
                   const uint8_t* signature, uint16_t previous) {
  Bytes out;
  write_chunk(team_id, number, origin, send_time_ms, first_frame_offset,
              payload, payload_size, signature, previous, &out);
  return out;
}

Bytes encode_chunk(const ChunkMsg& chunk, uint32_t origin) {
  Bytes out;
  encode_chunk(chunk, origin, &out);
  return out;
}

// `chunk` with `origin` (and any extra flag) into *out.
static void write_chunk_msg(const ChunkMsg& chunk, uint32_t origin, Bytes* out,
                            uint8_t extra_flags = 0) {
  write_chunk(chunk.team_id, chunk.number, origin, chunk.send_time_ms,
              chunk.first_frame_offset, chunk.payload, chunk.payload_size,
              chunk.signature, chunk.previous, out, extra_flags);
}

void encode_chunk(const ChunkMsg& chunk, uint32_t origin, Bytes* out) {
  write_chunk_msg(chunk, origin, out);
}

Bytes encode_flood_chunk(const ChunkMsg& chunk, uint32_t origin) {
  Bytes out;
  if (origin == kImplicitOrigin) return out;
  write_chunk_msg(chunk, origin, &out, kUdpFlagFlood);
  return out;
}

Bytes encode_hello(const HelloMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kHello, m.team_id);
  w.u32(m.peer_id);
  w.u64(m.cookie);
  return out;
}

Bytes encode_register(const RegisterMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kRegister, m.team_id);
  w.u32(m.peer_id);
  w.u64(m.token);
  w.u64(m.cookie);
  return out;
}

Bytes encode_goodbye(const GoodbyeMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kGoodbye, m.team_id);
  w.u32(m.peer_id);
  return out;
}

Bytes encode_lost(const LostMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kLost, m.team_id);
  w.u32(m.peer_id);
  w.u64(m.token);
  write_numbers(w, m.numbers);
  return out;
}

Bytes encode_nack(const NackMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kNack, m.team_id);
  w.u32(m.peer_id);
  write_numbers(w, m.numbers);
  return out;
}

Bytes encode_request(const RequestMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kRequest, m.team_id);
  w.u32(m.peer_id);
  w.u32(m.origin);
  return out;
}

Bytes encode_prune(const PruneMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kPrune, m.team_id);
  w.u32(m.peer_id);
  w.u32(m.origin);
  return out;
}

Bytes encode_heartbeat(const HeartbeatMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kHeartbeat, m.team_id);
  w.u32(m.peer_id);
  w.u64(m.token);
  return out;
}

Bytes encode_probe(const ProbeMsg& m) {
  Bytes out;
  Writer w(&out);
  write_udp_header(w, UdpType::kProbe, m.team_id);
  w.u64(m.cookie);
  w.u32(m.peer_id);
  w.u32(0);
  return out;
}

// ---------------------------------------------------------------- TCP ----

Bytes encode_tcp(const TcpMessage& m) {
  Bytes out(4, 0);  // length, patched below
  Writer w(&out);
  w.u8(static_cast<uint8_t>(type_of(m)));
  std::visit(BodyWriter{w}, m);
  uint32_t length = static_cast<uint32_t>(out.size() - 4);
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<uint8_t>(length >> (24 - 8 * i));
  }
  return out;
}

std::optional<TcpMessage> decode_tcp_body(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0) return std::nullopt;
  Reader r(data, size);
  auto type = static_cast<TcpType>(r.u8());
  std::optional<TcpMessage> msg = read_body(type, r);
  if (!msg || !r.at_end()) return std::nullopt;  // also rejects trailing bytes
  return msg;
}

void TcpReader::feed(const uint8_t* data, size_t size) {
  // A broken stream is never read again: keep no more of it.
  if (error_ || size == 0) return;
  compact();
  buf_.insert(buf_.end(), data, data + size);
}

TcpReader::Status TcpReader::next(TcpMessage* out) {
  if (error_) return Status::kError;
  if (buffered() < 4) return Status::kNeedMore;
  const uint8_t* p = buf_.data() + pos_;
  uint32_t length = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                    (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  if (length == 0 || length > kMaxTcpMessage || length > max_message_) {
    error_ = true;
  } else if (buffered() - 4 < length) {
    return Status::kNeedMore;
  } else {
    std::optional<TcpMessage> msg = decode_tcp_body(p + 4, length);
    pos_ += 4 + length;
    if (msg) {
      *out = std::move(*msg);
      compact();
      return Status::kMessage;
    }
    error_ = true;
  }
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  return Status::kError;
}

void TcpReader::compact() {
  if (pos_ == 0) return;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ >= kCompactThreshold || pos_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
}

}  // namespace p2psp
