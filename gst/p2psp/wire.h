// gst-p2psp: wire format, version 4 (see docs/protocol.md, which is the
// normative text; keep the two in step).
//
// Every decoder here is bounds-checked: it reads only inside [data, data+size)
// and returns nullopt (or an error) on any malformed input. Decoders are
// fuzzable entry points.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/seq.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace p2psp {

using Bytes = std::vector<uint8_t>;
using SharedBytes = std::shared_ptr<const Bytes>;

constexpr uint8_t kProtocolVersion = 4;

// ---------------------------------------------------------------- UDP ----
// Common header, 8 bytes: u8 magic 0x50 ("P"), u8 flags, u8 version, u8 type,
// u32 team id. All integers big-endian.
constexpr uint8_t kUdpMagic = 0x50;
constexpr size_t kUdpHeaderSize = 8;
// Common-header flags. A receiver drops a datagram with a flag it does not
// know (a later extension must never be misread as payload).
// CHUNK: a u32 origin follows the chunk header. Without it the origin is
// implicit: the receiver itself when the splitter sends the chunk, the
// sending peer otherwise (protocol.md, "CHUNK").
constexpr uint8_t kUdpFlagOrigin = 1u << 0;
// SEALED (authenticated teams, auth.h): sender id, counter and tag wrap the
// datagram. auth::DatagramCrypto opens it before decode_udp, which never
// accepts this flag.
constexpr uint8_t kUdpFlagSealed = 1u << 7;
// CHUNK: a kChunkSignatureSize-byte Ed25519 signature by the splitter ends
// the datagram (protocol.md, "Chunk signatures").
constexpr uint8_t kUdpFlagSigned = 1u << 1;
// CHUNK, with ORIGIN only: "flood this chunk, it is not yours". The
// splitter re-deals a chunk whose origin did not echo it in time to
// another member, which floods it to its neighbours as a relay of the
// stated origin (protocol.md 10.7); nobody floods it further.
constexpr uint8_t kUdpFlagFlood = 1u << 2;
constexpr uint8_t kUdpKnownFlags =
    kUdpFlagOrigin | kUdpFlagSigned | kUdpFlagFlood;
constexpr size_t kChunkSignatureSize = 64;
constexpr size_t kChunkKeySize = 32;
using ChunkKey = std::array<uint8_t, kChunkKeySize>;
// Chunk datagram header (common header included), without the optional
// origin.
constexpr size_t kChunkHeaderSize = 18;
constexpr size_t kChunkOriginSize = 4;
// ChunkMsg::origin of a chunk whose origin is implicit; peer ids start at 1.
constexpr uint32_t kImplicitOrigin = 0;
// ChunkMsg::origin of a chunk cut while the team was empty: sent to nobody,
// kept only for join bursts (docs/protocol.md 7.4); never a peer id.
constexpr uint32_t kNoMemberOrigin = 0xFFFFFFFFu;
// Largest UDP payload that crosses a 1500-byte MTU without fragmentation
// over IPv6 (1500 - 40 - 8); IPv4 allows 1472. The default chunk size keeps
// even a chunk with an explicit origin within it, for either family.
constexpr size_t kMaxUnfragmentedDatagram = 1452;
constexpr size_t kDefaultChunkSize =
    kMaxUnfragmentedDatagram - kChunkHeaderSize - kChunkOriginSize;  // 1430
// ChunkMsg::previous when the splitter dealt the origin no earlier chunk it
// can name (a new member, or one further back than 16 bits reach).
constexpr uint16_t kNoPrevious = 0;
// No frame starts in this chunk.
constexpr uint16_t kNoFrameStart = 0xFFFF;
// Largest chunk payload: keeps a chunk datagram under 64 KiB and lets
// first_frame_offset fit 16 bits with kNoFrameStart reserved.
constexpr size_t kMaxChunkPayload = 65000;

enum class UdpType : uint8_t {
  kChunk = 1,     // splitter -> origin peer, origin peer -> other peers
  kHello = 2,     // peer -> peer on join
  kRegister = 3,  // peer -> splitter: binds the peer's UDP endpoint
  kGoodbye = 4,   // peer -> peers on leave
  // Team health (protocol.md section 10).
  kLost = 5,       // monitor -> splitter: chunks it had to NACK
  kNack = 6,       // peer -> peer or splitter: please re-send these chunks
  kRequest = 7,    // peer -> peer: relay the chunks of an origin to me
  kPrune = 8,      // peer -> peer: stop relaying an origin to me
  kHeartbeat = 9,  // peer -> splitter: still alive
  // Return routability (protocol.md section 3.1): an unguessable cookie a
  // node must echo from an address before it sends that address much.
  kProbe = 10,  // splitter or peer -> an endpoint not yet validated
};

// Most chunk numbers one LOST or NACK carries.
constexpr size_t kMaxNackNumbers = 64;

// A chunk, decoded as a view into the datagram it came from.
struct ChunkMsg {
  uint32_t team_id = 0;
  ChunkNumber number = 0;
  // Peer id of the chunk's origin peer, or kImplicitOrigin when the datagram
  // leaves it out (the receiver resolves it from who sent the datagram).
  uint32_t origin = kImplicitOrigin;
  uint16_t send_time_ms = 0;  // splitter clock, ms mod 65536; delay stats
  uint16_t first_frame_offset = kNoFrameStart;
  // How far back the splitter dealt this origin its previous chunk (that
  // chunk is number - previous), or kNoPrevious. Receivers learn from it
  // which missing chunk is lost and whose it was (protocol.md 4.1, 10.4).
  uint16_t previous = kNoPrevious;
  const uint8_t* payload = nullptr;
  size_t payload_size = 0;
  // Flag SIGNED: the kChunkSignatureSize bytes ending the datagram (see
  // signing.h for what they cover). nullptr when unsigned.
  const uint8_t* signature = nullptr;
  // Flag FLOOD: a re-dealt chunk, flooded by a member that is not its
  // origin (protocol.md 10.7).
  bool flood = false;
};
// A cookie is the echo of a PROBE's; 0 when there is none to echo.
struct HelloMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;
  uint64_t cookie = 0;
};
struct RegisterMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;
  uint64_t token = 0;
  uint64_t cookie = 0;
};
struct GoodbyeMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;
};
// LOST and NACK: 1..kMaxNackNumbers chunk numbers.
struct LostMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;  // the reporting monitor
  uint64_t token = 0;    // its token, from WELCOME
  std::vector<ChunkNumber> numbers;
};
struct NackMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;  // the requester
  std::vector<ChunkNumber> numbers;
};
// REQUEST and PRUNE share a layout.
struct RequestMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;  // the requester
  uint32_t origin = 0;   // whose chunks to relay
};
struct PruneMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;  // the requester
  uint32_t origin = 0;   // whose chunks to stop relaying
};
struct HeartbeatMsg {
  uint32_t team_id = 0;
  uint32_t peer_id = 0;
  uint64_t token = 0;
};
struct ProbeMsg {
  uint32_t team_id = 0;
  uint64_t cookie = 0;   // never 0
  uint32_t peer_id = 0;  // whom the prober expects at this address
};
// Alternatives are in UdpType order, from 1.
using UdpMessage =
    std::variant<ChunkMsg, HelloMsg, RegisterMsg, GoodbyeMsg, LostMsg, NackMsg,
                 RequestMsg, PruneMsg, HeartbeatMsg, ProbeMsg>;

std::optional<UdpMessage> decode_udp(const uint8_t* data, size_t size);

// origin kImplicitOrigin leaves the origin out of the datagram; send_time_ms
// is sent mod 65536.
// signature: kChunkSignatureSize bytes (flag SIGNED), or nullptr.
Bytes encode_chunk(uint32_t team_id, ChunkNumber number, uint32_t origin,
                   uint32_t send_time_ms, uint16_t first_frame_offset,
                   const uint8_t* payload, size_t payload_size,
                   const uint8_t* signature = nullptr,
                   uint16_t previous = kNoPrevious);
// The same chunk with its origin stated (or left out for kImplicitOrigin):
// for a chunk sent on by someone other than the one its implicit origin
// would name (NACK answers, relays). The signature and the previous chunk,
// if any, go along: the signature does not cover how the origin is encoded.
Bytes encode_chunk(const ChunkMsg& chunk, uint32_t origin);
// The same into *out (emptied first; its capacity is used again).
void encode_chunk(const ChunkMsg& chunk, uint32_t origin, Bytes* out);
// The same chunk re-dealt: with its origin stated and flag
// FLOOD: the receiver floods it for that origin (protocol.md 10.7).
Bytes encode_flood_chunk(const ChunkMsg& chunk, uint32_t origin);
Bytes encode_hello(const HelloMsg& m);
Bytes encode_register(const RegisterMsg& m);
Bytes encode_goodbye(const GoodbyeMsg& m);
// LOST and NACK need 1..kMaxNackNumbers numbers; callers split longer lists.
Bytes encode_lost(const LostMsg& m);
Bytes encode_nack(const NackMsg& m);
Bytes encode_request(const RequestMsg& m);
Bytes encode_prune(const PruneMsg& m);
Bytes encode_heartbeat(const HeartbeatMsg& m);
Bytes encode_probe(const ProbeMsg& m);

// ---------------------------------------------------------------- TCP ----
// Framing: u32 length (of type byte + body, 1..kMaxTcpMessage), u8 type, body.
constexpr uint32_t kMaxTcpMessage = 1u << 20;
// What a peer sends the splitter (JOIN, GOODBYE) is small: the splitter reads
// no longer message, so a stranger's length prefix cannot make it buffer 1 MiB.
constexpr uint32_t kMaxPeerTcpMessage = 8192;
// First bytes of a JOIN body: ASCII "P2PSP" then the version byte.
constexpr char kJoinMagic[5] = {'P', '2', 'P', 'S', 'P'};

enum class TcpType : uint8_t {
  kJoin = 1,        // peer -> splitter
  kWelcome = 2,     // splitter -> peer
  kTeam = 3,        // splitter -> peer, once its UDP endpoint is registered
  kPeerJoined = 4,  // splitter -> peers
  kPeerLeft = 5,    // splitter -> peers
  kRemoved = 6,     // splitter -> peer: you are no longer in the team
  kGoodbye = 7,     // peer -> splitter: leaving
  kReject = 8,      // splitter -> peer: join refused
  kRole = 9,        // splitter -> peer: the role it gives the peer
  // Authenticated join (protocol.md section 11).
  kChallenge = 10,  // splitter -> peer: salt, nonce, flags
  kAuth = 11,       // peer -> splitter: nonce, proof
  kProof = 12,      // splitter -> peer: proof, then WELCOME
  // Pollution (protocol.md, "Chunk signatures").
  kChunkKey = 13,  // splitter -> peer, before WELCOME: chunks are signed
  kPolluted = 14,  // peer -> splitter: this member sent an altered chunk
  kSealed = 15,    // either way, after the proofs: an AEAD-sealed message
  kBurst = 16,     // splitter -> peer, before TEAM: the join burst's chunks
  // Peers behind one NAT (protocol.md 3.2): a member's LAN endpoint.
  kPeerLocal = 17,  // splitter -> peer
  // IP multicast on the splitter's LAN (protocol.md 8.5).
  kMulticast = 18,           // splitter -> peer, after WELCOME: the group
  kMulticastReceiving = 19,  // peer -> splitter: chunks come from the group
  kMulticastMember = 20,     // splitter -> peers: this member receives it
};

// JOIN flags and ROLE flags.
constexpr uint32_t kFlagMonitor = 1u << 0;
// JOIN flag: the peer has a passphrase and wants an authenticated join.
constexpr uint32_t kFlagAuth = 1u << 1;
// JOIN flag: the peer takes a join burst (BURST, protocol.md 7.4).
constexpr uint32_t kFlagBurst = 1u << 2;
// JOIN: a u32 upload limit (kb/s) follows the flags (docs/protocol.md).
constexpr uint32_t kFlagUploadLimit = 1u << 3;
// JOIN flag: a u8 count (1..kMaxLocalEndpoints) and that many endpoints
// follow, the peer's own UDP endpoints on its LAN (protocol.md 3.2).
constexpr uint32_t kFlagLocalEndpoints = 1u << 4;
// JOIN flag: the peer echoes its chunks when ROLE asks and floods FLOOD
// chunks (protocol.md 10.7). ROLE flag: echo each chunk dealt to you to
// the splitter after a quarter of your flood of it.
constexpr uint32_t kFlagEcho = 1u << 5;
constexpr uint32_t kRoleFlagEcho = 1u << 1;
// ROLE flag, with kRoleFlagEcho: echo your first own chunk once more after
// the last copy of its flood (protocol.md 10.7): the time between its two
// echoes is that of three quarters of a flood through your uplink.
constexpr uint32_t kRoleFlagEchoFloodEnd = 1u << 2;
constexpr size_t kMaxLocalEndpoints = 4;

enum class RemoveReason : uint8_t {
  kUnknown = 0,
  kShutdown = 1,       // splitter stopping
  kProtocolError = 2,  // peer broke the protocol
  kTimeout = 3,        // handshake or liveness timeout
  kTeamFull = 4,       // max-peers reached
  kVersion = 5,        // unsupported protocol version
  kExpelled = 6,       // operator or loss-based expulsion
  kAuth = 7,           // passphrase missing, unexpected or wrong
};

struct PeerInfo {
  uint32_t id = 0;
  Endpoint endpoint;  // public UDP endpoint as the splitter sees it
  bool operator==(const PeerInfo& o) const {
    return id == o.id && endpoint == o.endpoint;
  }
};

struct JoinMsg {
  // A constructor, so that JoinMsg{version, flags[, upload limit]} still
  // names every field.
  explicit JoinMsg(uint8_t v = kProtocolVersion, uint32_t f = 0,
                   uint32_t upload_kbps = 0)
      : version(v), flags(f), upload_limit_kbps(upload_kbps) {}
  uint8_t version = kProtocolVersion;
  uint32_t flags = 0;  // kFlagMonitor, kFlagAuth, kFlagBurst,
                       // kFlagUploadLimit, kFlagLocalEndpoints
  // With kFlagUploadLimit: what the peer may upload, kb/s (0: nothing).
  uint32_t upload_limit_kbps = 0;
  // With kFlagLocalEndpoints: 1..kMaxLocalEndpoints; else empty. The
  // encoder writes the list only with the flag.
  std::vector<Endpoint> local_endpoints;
};
struct WelcomeMsg {
  uint8_t version = kProtocolVersion;
  uint32_t team_id = 0;
  uint32_t peer_id = 0;
  uint64_t token = 0;  // echoed in the UDP REGISTER
  uint32_t chunk_size = 0;
  uint16_t splitter_udp_port = 0;
  std::string caps;  // GstCaps string (with streamheader), may be empty
};
struct TeamMsg {
  Endpoint public_endpoint;     // the joining peer's, as the splitter sees it
  ChunkNumber next_chunk = 0;   // number of the next chunk the splitter cuts
  std::vector<PeerInfo> peers;  // everyone else in the team
};
struct PeerJoinedMsg {
  PeerInfo peer;
};
struct PeerLeftMsg {
  uint32_t peer_id = 0;
};
struct RemovedMsg {
  RemoveReason reason = RemoveReason::kUnknown;
  std::string text;
};
struct TcpGoodbyeMsg {};
// Sent before TEAM to a peer the splitter treats as a monitor.
struct RoleMsg {
  uint32_t flags = 0;  // kFlagMonitor; other bits reserved, zero
};
struct RejectMsg {
  RemoveReason reason = RemoveReason::kUnknown;
  std::string text;
};
// Authenticated join: CHALLENGE, AUTH, PROOF (sizes in auth.h).
using AuthSalt = std::array<uint8_t, 16>;
using AuthNonce = std::array<uint8_t, 32>;
using AuthMac = std::array<uint8_t, 32>;
struct ChallengeMsg {
  AuthSalt salt{};     // Argon2id salt, random per splitter start
  AuthNonce nonce{};   // splitter's, random per join
  uint32_t flags = 0;  // auth::kFlagEncrypt; other bits reserved, zero
};
struct AuthMsg {
  AuthNonce nonce{};  // peer's, random per join
  AuthMac mac{};      // peer's proof
};
struct ProofMsg {
  AuthMac mac{};  // splitter's proof
};
// The splitter's chunk-signing public key (Ed25519). A peer that got it
// drops every chunk not signed by it.
struct ChunkKeyMsg {
  ChunkKey key{};
};
// A chunk that failed verification, and the member it came from (the
// datagram's sender, which may be a relay rather than the origin).
struct PollutedMsg {
  uint32_t sender = 0;
  ChunkNumber number = 0;
  uint32_t origin = 0;
};
// The chunks [first, first + count) come from the splitter, paced, with
// their origins stated: the recent stream from its latest start point.
struct BurstMsg {
  ChunkNumber first = 0;
  uint32_t count = 0;
};
// A member that shares our public address said it listens on `endpoint` on
// its LAN too. Unlike PEER_JOINED this names an address nobody validated:
// the receiver PROBEs it before sending anything else there.
struct PeerLocalMsg {
  uint32_t peer_id = 0;
  Endpoint endpoint;
};
// The group (address and port) the splitter also sends chunks to.
struct MulticastMsg {
  Endpoint group;
};
// The peer receives the splitter's chunks from the group: its own can go
// there instead of to its endpoint.
struct MulticastReceivingMsg {};
// A member receives the group: its own chunks need not be sent to it.
struct MulticastMemberMsg {
  uint32_t peer_id = 0;
};
// Any other message (type byte + body), encrypted and authenticated
// (auth::ChannelCrypto): ciphertext then 16-byte tag.
struct SealedMsg {
  Bytes box;
};
using TcpMessage =
    std::variant<JoinMsg, WelcomeMsg, TeamMsg, PeerJoinedMsg, PeerLeftMsg,
                 RemovedMsg, TcpGoodbyeMsg, RejectMsg, RoleMsg, ChallengeMsg,
                 AuthMsg, ProofMsg, ChunkKeyMsg, PollutedMsg, SealedMsg,
                 BurstMsg, PeerLocalMsg, MulticastMsg, MulticastReceivingMsg,
                 MulticastMemberMsg>;

// Encodes one framed TCP message (length prefix included).
Bytes encode_tcp(const TcpMessage& m);
// Decodes one message body (type byte + body, no length prefix).
std::optional<TcpMessage> decode_tcp_body(const uint8_t* data, size_t size);

// Reassembles framed TCP messages from a byte stream.
class TcpReader {
 public:
  enum class Status { kMessage, kNeedMore, kError };
  // Messages longer than max_message (at most kMaxTcpMessage) are errors.
  explicit TcpReader(uint32_t max_message = kMaxTcpMessage)
      : max_message_(max_message) {}
  void feed(const uint8_t* data, size_t size);
  // kMessage fills *out; kError means the stream is garbage (bad length or a
  // body that does not decode): the caller closes the connection.
  Status next(TcpMessage* out);
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  // Drops consumed bytes once they dominate the buffer, so memory stays
  // bounded by one pending message plus what was fed since.
  void compact();
  uint32_t max_message_;
  Bytes buf_;
  size_t pos_ = 0;
  bool error_ = false;  // sticky: a byte stream cannot resynchronise
};

}  // namespace p2psp
