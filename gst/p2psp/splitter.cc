// gst-p2psp: the splitter state machine (sans-I/O).
#include <gst/p2psp/acs.h>
#include <gst/p2psp/auth.h>
#include <gst/p2psp/burst.h>
#include <gst/p2psp/bytes_pool.h>
#include <gst/p2psp/egress.h>
#include <gst/p2psp/join_limiter.h>
#include <gst/p2psp/lan.h>
#include <gst/p2psp/multicast.h>
#include <gst/p2psp/nack.h>
#include <gst/p2psp/signing.h>
#include <gst/p2psp/splitter.h>
#include <gst/p2psp/startpoints.h>
#include <gst/p2psp/token_bucket.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <variant>

namespace p2psp {

size_t unfragmented_chunk_size(bool signed_chunks, bool sealed) {
  return kMaxUnfragmentedDatagram - kChunkHeaderSize - kChunkOriginSize -
         (signed_chunks ? kChunkSignatureSize : 0) -
         (sealed ? auth::kSealOverhead : 0);
}

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

// Flood-end echoes closer to the quarter echo than two of the peers' 10 ms
// flush timers time the peer, not its uplink.
constexpr Micros kMinUplinkSpanUs = 20000;
// IP and UDP headers, which an uplink carries too.
constexpr uint64_t kIpv4UdpBytes = 28;
constexpr uint64_t kIpv6UdpBytes = 48;

AcsConfig acs_config(const SplitterConfig& config) {
  AcsConfig acs;
  acs.enabled = config.learn_shares;
  return acs;
}

}  // namespace

struct Splitter::Impl {
  enum class ConnState { kAwaitJoin, kAwaitAuth, kAwaitRegister, kMember };

  struct Conn {
    ConnId id = 0;
    Endpoint remote;
    ConnState state = ConnState::kAwaitJoin;
    // Peers send the splitter only short messages.
    TcpReader reader{kMaxPeerTcpMessage};
    Micros accepted_us = 0;
    bool welcomed = false;
    uint32_t peer_id = 0;
    uint64_t token = 0;
    uint32_t join_flags = 0;
    int64_t upload_limit_kbps = -1;         // stated in JOIN; -1: none
    std::vector<Endpoint> local_endpoints;  // from JOIN
    auth::Nonce challenge{};                // the nonce sent in CHALLENGE
    uint64_t caps_frame_at_welcome = 0;     // caps_frame_end then
    // Authenticated team: everything after PROOF is sealed, both ways.
    std::unique_ptr<auth::ChannelCrypto> channel;
    // The latest PROBEs sent to it (cookie, when): the REGISTER that echoes
    // one times the round trip, which flood checks allow for.
    std::vector<std::pair<uint64_t, Micros>> probes;
    Micros round_trip_us = 0;
  };

  struct Member {
    ConnId conn = 0;
    uint64_t token = 0;
    TokenBucket retransmit_budget;
    std::optional<BurstPacer> burst;  // its join burst, while under way
    SplitterPeerStats stats;
    std::set<uint32_t> accusers;  // members that reported it for pollution
    // The last chunk dealt to it, for the next one's `previous` field.
    std::optional<ChunkNumber> last_dealt;
    bool echoes = false;        // it echoes its chunks (flood checks)
    bool uplink_timed = false;  // its first flood's end echo came or not
    // While that end echo is awaited: the quarter echo's time and chunk.
    // Kept here, not only on the chunk's Origin, whose ring slot a fast
    // stream reuses within the wait (4096 slots: from about 6,800 chunks a
    // second), which left the member dealt nothing for good.
    Micros timing_since_us = 0;
    ChunkNumber timing_chunk = 0;
    Micros round_trip_us = 0;  // PROBE to REGISTER, when it joined
  };

  // One recently cut chunk: who it went to, and (in the shorter datagram
  // ring) its bytes, re-sent unchanged on NACK.
  struct Origin {
    bool valid = false;
    ChunkNumber number = 0;
    uint32_t peer_id = 0;
    // With learn_shares: members other than the origin that NACKed it,
    // until half the team did (then `undelivered`); retries count once.
    std::vector<uint32_t> nackers;
    bool undelivered = false;
    // Flood checks: the member on trial whose echo of it is awaited, 0
    // once echoed or when none is.
    uint32_t echo_from = 0;
    bool echo_missed = false;  // not in time: re-dealt
    // A trial chunk's flood-end echo may follow (ROLE flag): when the
    // quarter echo came, and the copies its origin had to send.
    Micros quarter_echo_us = 0;
    uint32_t copies = 0;
  };
  struct Sent {
    ChunkNumber number = 0;
    SharedBytes datagram;  // as sent to its origin: the origin left out
  };

  explicit Impl(const SplitterConfig& c)
      : config(c),
        framer(c.chunk_size ? c.chunk_size
                            : unfragmented_chunk_size(c.sign_chunks,
                                                      !c.passphrase.empty())),
        secrets(c.secret_seed),
        cookies(&secrets),
        egress(
            [this](const Endpoint& e) {
              // The group is the operator's choice, not a stranger's.
              return is_member_endpoint(e) ||
                     (config.multicast_group.valid() &&
                      e == config.multicast_group.normalized());
            },
            &crypto),
        join_limiter(c.max_joins_per_address, c.join_window_us,
                     c.max_tracked_addresses),
        next_chunk(c.first_chunk) {
    if (c.sign_chunks) signer = std::make_unique<ChunkSigner>();
    // The framer clamps the size; peers must be told the real one.
    config.chunk_size = static_cast<uint32_t>(framer.chunk_payload_size());
    const size_t history = std::max<size_t>(config.history_chunks, 1);
    const size_t datagram_size = config.chunk_size + kChunkHeaderSize +
                                 kChunkOriginSize +
                                 (signer ? kChunkSignatureSize : 0);
    origins.resize(history);
    sent.resize(std::clamp<size_t>(config.history_max_bytes / datagram_size, 1,
                                   history));
    if (!config.passphrase.empty()) set_up_auth();
  }

  // Derives the keys once per start: joins only cost an HMAC, so they
  // cannot be used to make the splitter burn CPU on Argon2.
  void set_up_auth() {
    if (auto problem = auth::passphrase_problem(config.passphrase)) {
      throw std::invalid_argument(*problem);
    }
    salt = auth::random_array<sizeof(auth::Salt)>();
    keys.emplace();
    if (!auth::derive_keys(config.passphrase, salt, &*keys)) {
      throw std::runtime_error("passphrase key derivation failed");
    }
    crypto = std::make_unique<auth::DatagramCrypto>(
        keys->datagram, auth::kSplitterSender, config.encrypt);
  }

  uint32_t auth_flags() const {
    return config.encrypt ? auth::kFlagEncrypt : 0;
  }

  SplitterConfig config;
  std::unique_ptr<ChunkSigner> signer;  // null unless sign_chunks
  Framer framer;
  // Each chunk cut goes through `cut` (its room kept) into a datagram from
  // the pool: no allocation per chunk once the pool holds the chunks kept.
  ChunkPayload cut;
  BytesPool datagrams;
  // Tokens and cookies: what a stranger must not guess (docs/security.md).
  SecretSource secrets;
  CookieJar cookies;
  // Every datagram leaves through it: sealed, and only to members' endpoints
  // (or within 3x what an address sent). It reads `crypto` at each send.
  Egress egress;
  JoinLimiter join_limiter;
  ChunkNumber next_chunk;
  // The total NACK budget (gst/p2psp/nack.h), earned as chunks are cut.
  RetransmitAllowance retransmit_allowance{config.retransmit_share_permille,
                                           config.retransmit_total_burst};
  // Adaptive chunk shares (gst/p2psp/acs.h).
  AdaptiveShares shares{acs_config(config)};
  uint32_t next_peer_id = 1;
  size_t round_robin = 0;
  std::string caps;         // what WELCOME gives joiners
  std::string framed_caps;  // the latest caps frame in the stream
  bool has_framed_caps = false;
  uint64_t caps_frame_end = 0;  // stream position just after the latest
  // Start points and headers found in the stream (docs/protocol.md 7.3).
  StartPointFilter start_filter;
  std::string upstream_caps;  // caps as set_caps() gave them
  uint64_t welcome_headers_version = 0;
  StartPointIndex start_points;  // for join bursts (7.4)
  std::set<uint32_t> bursting;   // members with a burst under way
  void take_caps(const std::string& new_caps);
  void frame_unit(const MediaBuffer& unit);
  void frame_buffer(const MediaBuffer& buffer);
  Micros pending_since_us = 0;

  std::unordered_map<ConnId, Conn> conns;
  // Connections still in the handshake, by acceptance time: the earliest
  // timeout without a scan of every member's connection.
  std::set<std::pair<Micros, ConnId>> handshakes;
  // Members in join order: the round-robin order of chunk origins.
  std::vector<Member> members;
  // Peer id -> position in `members`: every datagram looks its sender up.
  std::unordered_map<uint32_t, size_t> member_index;
  // Validated UDP endpoints (members'), the only ones that get chunks.
  std::unordered_map<Endpoint, uint32_t, EndpointHash> member_by_endpoint;
  // Peer id -> conn, for peers that got WELCOME but have not registered.
  std::unordered_map<uint32_t, ConnId> awaiting_register;

  SplitterStats stats;
  std::vector<SplitterEvent> events;

  // Authenticated team: set when config.passphrase is.
  auth::Salt salt{};
  std::optional<auth::Keys> keys;
  std::unique_ptr<auth::DatagramCrypto> crypto;

  // Flood checks: when each awaited echo is due, and each member's uplink
  // timing ends at the latest (by member id).
  std::set<std::pair<Micros, ChunkNumber>> echo_due;
  std::set<std::pair<Micros, uint32_t>> timing_due;
  std::vector<Origin> origins;  // indexed by chunk number modulo size
  std::vector<Sent> sent;       // likewise
  // Next time a member may have gone silent for too long, or UINT64_MAX.
  Micros liveness_due_us = UINT64_MAX;
  Micros decay_due_us = UINT64_MAX;  // UINT64_MAX while all counters are 0

  // ------------------------------------------------------------ helpers --

  Member* find_member(uint32_t peer_id) {
    auto it = member_index.find(peer_id);
    return it == member_index.end() ? nullptr : &members[it->second];
  }
  const Member* find_member(uint32_t peer_id) const {
    auto it = member_index.find(peer_id);
    return it == member_index.end() ? nullptr : &members[it->second];
  }

  void reindex_members() {
    member_index.clear();
    member_by_endpoint.clear();
    for (size_t i = 0; i < members.size(); ++i) {
      member_index[members[i].stats.id] = i;
      member_by_endpoint[members[i].stats.endpoint] = members[i].stats.id;
    }
  }

  bool is_member_endpoint(const Endpoint& e) const {
    return member_by_endpoint.count(e) != 0;
  }

  // The member with this id, if the datagram comes from its endpoint.
  Member* member_at(uint32_t peer_id, const Endpoint& from) {
    Member* member = find_member(peer_id);
    if (!member || member->stats.endpoint != from.normalized()) return nullptr;
    return member;
  }

  size_t monitors_in_team() const {
    return static_cast<size_t>(
        std::count_if(members.begin(), members.end(),
                      [](const Member& m) { return m.stats.monitor; }));
  }

  void send_tcp(ConnId conn, const TcpMessage& msg, Outbox* out) {
    Bytes framed = encode_tcp(msg);
    auto it = conns.find(conn);
    if (it != conns.end() && it->second.channel) {
      framed = it->second.channel->seal(framed);
    }
    out->tcp.push_back(TcpSend{conn, std::move(framed)});
  }

  void end_handshake(const Conn& conn) {
    handshakes.erase({conn.accepted_us, conn.id});
  }

  void close_conn(ConnId conn, Outbox* out) {
    auto it = conns.find(conn);
    if (it == conns.end()) return;
    if (it->second.state == ConnState::kAwaitRegister) {
      awaiting_register.erase(it->second.peer_id);
    }
    end_handshake(it->second);
    conns.erase(it);
    out->tcp_close.push_back(conn);
  }

  // Takes a member out of the team and tells everyone else. The caller
  // decides whether the member itself is told why (REMOVED) first.
  void drop_member(uint32_t peer_id, RemoveReason reason, Outbox* out) {
    auto found = member_index.find(peer_id);
    if (found == member_index.end()) return;
    const size_t index = found->second;
    const Member gone = members[index];
    members.erase(members.begin() + static_cast<ptrdiff_t>(index));
    reindex_members();
    shares.remove(peer_id);
    // Only members' reports count: a reporter that leaves takes its
    // accusations along (see handle_polluted).
    for (Member& m : members) {
      m.accusers.erase(peer_id);
      m.stats.pollution_accusers = static_cast<uint32_t>(m.accusers.size());
    }
    // Keep the round-robin position on the member that followed the one
    // removed, so nobody is skipped or served twice in this round.
    if (index < round_robin) --round_robin;
    for (const Member& m : members) {
      send_tcp(m.conn, PeerLeftMsg{peer_id}, out);
    }
    close_conn(gone.conn, out);
    ++stats.peers_left;
    if (gone.stats.multicast) --stats.multicast_members;
    events.push_back(SplitterEvent{SplitterEvent::Kind::kPeerRemoved, peer_id,
                                   gone.stats.endpoint, reason});
  }

  // A connection broke the protocol (garbage, or a message out of place).
  void reject_misbehaving(Conn& conn, Outbox* out) {
    ++stats.rejected_connections;
    if (conn.state == ConnState::kMember) {
      drop_member(conn.peer_id, RemoveReason::kProtocolError, out);
    } else {
      close_conn(conn.id, out);
    }
  }

  void reject_join(Conn& conn, RemoveReason reason, const std::string& text,
                   Outbox* out) {
    ++stats.rejected_connections;
    send_tcp(conn.id, RejectMsg{reason, text}, out);
    close_conn(conn.id, out);
  }

  // ------------------------------------------------------------ TCP ------

  // Checked before anything is kept for the connection: a flood of them
  // costs a socket for one poll round each, nothing more.
  const char* refusal_for(const Endpoint& remote, Micros now) {
    if (config.max_handshakes != 0 &&
        handshakes.size() >= config.max_handshakes) {
      return "too many joins in progress; try again later";
    }
    if (!join_limiter.admit(remote, now)) {
      return "too many connections from this address; try again later";
    }
    return nullptr;
  }

  void refuse_connection(ConnId conn, const char* why, Outbox* out) {
    ++stats.rejected_connections;
    ++stats.joins_limited;
    send_tcp(conn, RejectMsg{RemoveReason::kTeamFull, why}, out);
    out->tcp_close.push_back(conn);
  }

  void handle_join(Conn& conn, const JoinMsg& join, Outbox* out) {
    if (join.version != kProtocolVersion) {
      reject_join(conn, RemoveReason::kVersion,
                  "unsupported protocol version " +
                      std::to_string(join.version) + "; this splitter speaks " +
                      std::to_string(kProtocolVersion),
                  out);
      return;
    }
    conn.join_flags = join.flags;
    if (join.flags & kFlagUploadLimit) {
      conn.upload_limit_kbps = join.upload_limit_kbps;
    }
    conn.local_endpoints = join.local_endpoints;
    const bool wants_auth = (join.flags & kFlagAuth) != 0;
    if (wants_auth != keys.has_value()) {
      ++stats.auth_failures;
      reject_join(conn, RemoveReason::kAuth,
                  keys ? "team needs a passphrase"
                       : "splitter has no passphrase but one was set",
                  out);
      return;
    }
    if (keys) {
      send_challenge(conn, out);
    } else {
      admit(conn, out);
    }
  }

  void send_challenge(Conn& conn, Outbox* out) {
    conn.state = ConnState::kAwaitAuth;
    conn.challenge = auth::random_array<sizeof(auth::Nonce)>();
    send_tcp(conn.id, ChallengeMsg{salt, conn.challenge, auth_flags()}, out);
  }

  void handle_auth(Conn& conn, const AuthMsg& msg, Outbox* out) {
    const auth::Mac expected =
        auth::handshake_mac(keys->handshake, auth::Role::kPeer, salt,
                            conn.challenge, msg.nonce, auth_flags());
    if (!auth::verify_mac(expected, msg.mac)) {
      ++stats.auth_failures;
      reject_join(conn, RemoveReason::kAuth, "wrong passphrase", out);
      return;
    }
    const ProofMsg proof{
        auth::handshake_mac(keys->handshake, auth::Role::kSplitter, salt,
                            conn.challenge, msg.nonce, auth_flags())};
    // PROOF goes first even if admit() refuses: the peer then knows the
    // REJECT that follows is really from this splitter.
    send_tcp(conn.id, proof, out);
    conn.channel = std::make_unique<auth::ChannelCrypto>(
        keys->handshake, conn.challenge, msg.nonce, auth::Role::kSplitter);
    admit(conn, out);
  }

  // WELCOME, unless the team is full.
  void admit(Conn& conn, Outbox* out) {
    const size_t joining = members.size() + awaiting_register.size();
    if (config.max_peers != 0 && joining >= config.max_peers) {
      reject_join(conn, RemoveReason::kTeamFull,
                  "team full (" + std::to_string(config.max_peers) + " peers)",
                  out);
      return;
    }
    conn.peer_id = next_peer_id++;
    conn.token = secrets.next_nonzero_u64();
    conn.state = ConnState::kAwaitRegister;
    conn.welcomed = true;
    awaiting_register[conn.peer_id] = conn.id;
    WelcomeMsg welcome;
    welcome.team_id = config.team_id;
    welcome.peer_id = conn.peer_id;
    welcome.token = conn.token;
    welcome.chunk_size = config.chunk_size;
    welcome.splitter_udp_port = config.udp_port;
    welcome.caps = caps;
    conn.caps_frame_at_welcome = caps_frame_end;
    // Before WELCOME, so the peer knows the key before any chunk can come.
    if (signer) send_tcp(conn.id, ChunkKeyMsg{signer->public_key()}, out);
    send_tcp(conn.id, welcome, out);
    if (config.multicast_group.valid()) {
      send_tcp(conn.id, MulticastMsg{config.multicast_group}, out);
    }
  }

  // Returns false when the connection is gone and reading must stop.
  bool handle_tcp_message(Conn& conn, const TcpMessage& msg, Outbox* out) {
    const bool is_join = std::holds_alternative<JoinMsg>(msg);
    const bool is_goodbye = std::holds_alternative<TcpGoodbyeMsg>(msg);
    if (conn.state == ConnState::kAwaitJoin && is_join) {
      // A refused join erases conn: read its id first.
      const ConnId id = conn.id;
      handle_join(conn, std::get<JoinMsg>(msg), out);
      return conns.count(id) != 0;
    }
    if (conn.state == ConnState::kAwaitAuth &&
        std::holds_alternative<AuthMsg>(msg)) {
      const ConnId id = conn.id;
      handle_auth(conn, std::get<AuthMsg>(msg), out);
      return conns.count(id) != 0;
    }
    if (const auto* polluted = std::get_if<PollutedMsg>(&msg);
        polluted && conn.state == ConnState::kMember) {
      // The reporter is the TCP session's member, not a spoofable datagram.
      const ConnId id = conn.id;
      handle_polluted(conn.peer_id, *polluted, out);
      return conns.count(id) != 0;
    }
    if (std::holds_alternative<MulticastReceivingMsg>(msg) &&
        conn.state == ConnState::kMember) {
      Member* member = find_member(conn.peer_id);
      if (member && config.multicast_group.valid() &&
          !member->stats.multicast) {
        member->stats.multicast = true;
        ++stats.multicast_members;
        for (const Member& m : members) {
          if (m.stats.id != member->stats.id) {
            send_tcp(m.conn, MulticastMemberMsg{member->stats.id}, out);
          }
        }
      }
      return true;
    }
    if (conn.state == ConnState::kMember && is_goodbye) {
      drop_member(conn.peer_id, RemoveReason::kUnknown, out);
      return false;
    }
    if (conn.state == ConnState::kAwaitRegister && is_goodbye) {
      close_conn(conn.id, out);
      return false;
    }
    reject_misbehaving(conn, out);
    return false;
  }

  void on_tcp_data(ConnId id, const uint8_t* data, size_t size, Outbox* out) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& conn = it->second;
    conn.reader.feed(data, size);
    TcpMessage msg;
    for (;;) {
      switch (conn.reader.next(&msg)) {
        case TcpReader::Status::kNeedMore:
          return;
        case TcpReader::Status::kError:
          reject_misbehaving(conn, out);
          return;
        case TcpReader::Status::kMessage:
          if (conn.channel && !unseal(conn, &msg)) {
            reject_misbehaving(conn, out);
            return;
          }
          // `conn` dangles once the message closed the connection.
          if (!handle_tcp_message(conn, msg, out)) return;
          break;
      }
    }
  }

  // A sealed connection takes only SEALED messages that open.
  static bool unseal(Conn& conn, TcpMessage* msg) {
    const auto* sealed = std::get_if<SealedMsg>(msg);
    std::optional<TcpMessage> inner;
    if (sealed) inner = conn.channel->open(*sealed);
    if (!inner) return false;
    *msg = std::move(*inner);
    return true;
  }

  void on_tcp_closed(ConnId id, Outbox* out) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    if (it->second.state == ConnState::kMember) {
      drop_member(it->second.peer_id, RemoveReason::kUnknown, out);
    } else {
      close_conn(id, out);
    }
  }

  // ------------------------------------------------------------ UDP ------

  void register_peer(Conn& conn, const Endpoint& from, Micros now,
                     Outbox* out) {
    const Endpoint endpoint = from.normalized();
    awaiting_register.erase(conn.peer_id);
    end_handshake(conn);
    conn.state = ConnState::kMember;
    const bool caps_repeated = repeat_caps_for_joiner(conn);
    const bool monitor = (conn.join_flags & kFlagMonitor) != 0 ||
                         monitors_in_team() < config.monitors;
    const bool echoes = checks_floods() && (conn.join_flags & kFlagEcho) != 0;
    if (monitor || echoes) {
      send_tcp(conn.id,
               RoleMsg{(monitor ? kFlagMonitor : 0u) |
                       (echoes ? kRoleFlagEcho | kRoleFlagEchoFloodEnd : 0u)},
               out);
    }
    std::optional<BurstPacer> burst = plan_burst(conn, now);
    if (burst) {
      send_tcp(conn.id,
               BurstMsg{burst->next(),
                        static_cast<uint32_t>(next_chunk - burst->next())},
               out);
    }

    TeamMsg team;
    team.public_endpoint = endpoint;
    team.next_chunk = next_chunk;
    for (const Member& m : members) {
      team.peers.push_back(PeerInfo{m.stats.id, m.stats.endpoint});
    }
    send_tcp(conn.id, team, out);
    const PeerInfo info{conn.peer_id, endpoint};
    for (const Member& m : members) {
      send_tcp(m.conn, PeerJoinedMsg{info}, out);
    }

    Member member;
    member.conn = conn.id;
    member.token = conn.token;
    member.retransmit_budget =
        TokenBucket(config.retransmit_rate, config.retransmit_burst, now);
    member.stats.id = conn.peer_id;
    member.stats.endpoint = endpoint;
    member.stats.tcp_endpoint = conn.remote;
    member.stats.local_endpoints =
        usable_local_endpoints(conn.local_endpoints, endpoint);
    member.stats.joined_us = now;
    member.stats.monitor = monitor;
    member.stats.last_heard_us = now;
    member.echoes = echoes;
    member.round_trip_us = conn.round_trip_us;
    member.burst = burst;
    member_index[member.stats.id] = members.size();
    member_by_endpoint[endpoint] = member.stats.id;
    member.stats.upload_limit_kbps = conn.upload_limit_kbps;
    members.push_back(member);
    if (burst) {
      ++stats.bursts;
      bursting.insert(conn.peer_id);
      send_bursts(now, out);
    }
    shares.add(member.stats.id, now, conn.upload_limit_kbps);
    if (config.peer_timeout_us != 0) {
      liveness_due_us = std::min(liveness_due_us,
                                 saturating_add(now, config.peer_timeout_us));
    }
    ++stats.peers_joined;
    introduce_lan(members.back(), out);
    for (const Member& m : members) {
      if (m.stats.multicast) {
        send_tcp(conn.id, MulticastMemberMsg{m.stats.id}, out);
      }
    }
    events.push_back(SplitterEvent{SplitterEvent::Kind::kPeerAdded,
                                   conn.peer_id, endpoint,
                                   RemoveReason::kUnknown});
    // Caps longer than a chunk go out now, not with the next buffer: the
    // feed may be paused, and a tick flushes one partial chunk at a time.
    if (caps_repeated) send_full_chunks(now, out);
  }

  // Peers behind one NAT (protocol.md 3.2): members whose public endpoints
  // share an address learn each other's LAN endpoints, after TEAM and
  // PEER_JOINED named them. Each probes them before use: the splitter
  // validated none of them.
  void introduce_lan(const Member& member, Outbox* out) {
    for (const Member& m : members) {
      if (m.stats.id == member.stats.id ||
          !behind_same_nat(m.stats.endpoint, member.stats.endpoint)) {
        continue;
      }
      tell_local(m, member, out);
      tell_local(member, m, out);
    }
  }

  void tell_local(const Member& to, const Member& about, Outbox* out) {
    for (const Endpoint& e : about.stats.local_endpoints) {
      send_tcp(to.conn, PeerLocalMsg{about.stats.id, e}, out);
      ++stats.lan_introductions;
    }
  }

  // Return routability: the REGISTER's source gets a PROBE, and becomes the
  // peer's endpoint only once a REGISTER from there echoes its cookie. A
  // joiner that spoofs another address never sees the cookie sent there.
  uint64_t probe(const Endpoint& to, uint32_t peer_id, Micros now,
                 Outbox* out) {
    const ProbeMsg probe{config.team_id, cookies.issue(to, peer_id, now),
                         peer_id};
    if (egress.send(to, encode_probe(probe), out)) ++stats.probes_sent;
    return probe.cookie;
  }

  // The joiner's round trip, from the PROBE whose cookie its REGISTER
  // echoes (REGISTERs are resent, so several PROBEs may be out; the
  // earliest with that cookie: a longer round trip only waits longer).
  static void note_probe(Conn& conn, uint64_t cookie, Micros now) {
    constexpr size_t kKept = 8;
    if (conn.probes.size() == kKept) conn.probes.erase(conn.probes.begin());
    conn.probes.emplace_back(cookie, now);
  }
  static void time_round_trip(Conn& conn, uint64_t cookie, Micros now) {
    for (const auto& [sent_cookie, at] : conn.probes) {
      if (sent_cookie != cookie || at > now) continue;
      conn.round_trip_us = now - at;
      break;
    }
    conn.probes.clear();
  }

  void handle_register(const RegisterMsg& reg, const Endpoint& raw_from,
                       Micros now, Outbox* out) {
    const Endpoint from = raw_from.normalized();
    const bool echoed = cookies.check(reg.cookie, from, reg.peer_id, now);
    auto waiting = awaiting_register.find(reg.peer_id);
    if (waiting != awaiting_register.end()) {
      Conn& conn = conns.at(waiting->second);
      if (conn.token == reg.token) {
        if (!echoed) {
          note_probe(conn, probe(from, reg.peer_id, now, out), now);
          return;
        }
        ++stats.addresses_validated;
        time_round_trip(conn, reg.cookie, now);
        register_peer(conn, from, now, out);
        return;
      }
    }
    // REGISTER is resent until TEAM arrives, so copies after the first are
    // expected from a member, as long as they carry its token; one from a
    // new address with a cookie for it is a NAT rebinding, proven.
    Member* member = find_member(reg.peer_id);
    if (member && member->token == reg.token) {
      if (member->stats.endpoint == from) {
        member->stats.last_heard_us = now;
      } else if (echoed) {
        move_member(*member, from, now, out);
      }
      return;
    }
    ++stats.rejected_datagrams;
  }

  // A member's datagrams now come from `to` (its NAT mapping changed), and
  // that address echoed a cookie: everyone sends there from now on.
  void move_member(Member& member, const Endpoint& to, Micros now,
                   Outbox* out) {
    if (is_member_endpoint(to)) return;  // another member's: keep both as is
    ++stats.addresses_validated;
    ++stats.endpoints_moved;
    member_by_endpoint.erase(member.stats.endpoint);
    member.stats.endpoint = to;
    member_by_endpoint[to] = member.stats.id;
    member.stats.last_heard_us = now;
    const PeerInfo info{member.stats.id, to};
    for (const Member& m : members) {
      if (m.stats.id != member.stats.id) {
        send_tcp(m.conn, PeerJoinedMsg{info}, out);
      }
    }
    member.stats.local_endpoints =
        usable_local_endpoints(member.stats.local_endpoints, to);
    introduce_lan(member, out);
  }

  // A member's HEARTBEAT (its token proves who it is) from an address that
  // is not its endpoint: probed, never believed.
  bool handle_moved_heartbeat(const HeartbeatMsg& beat, const Endpoint& from,
                              Micros now, Outbox* out) {
    Member* member = find_member(beat.peer_id);
    if (!member || member->token != beat.token) return false;
    probe(from.normalized(), beat.peer_id, now, out);
    return true;
  }

  // ------------------------------------------------------------ burst ----

  // The chunks from the latest start point to the live edge, if the joiner
  // asked and all of them are still held within burst_max_bytes.
  std::optional<BurstPacer> plan_burst(const Conn& conn, Micros now) {
    if ((conn.join_flags & kFlagBurst) == 0 || config.burst_max_bytes == 0) {
      return std::nullopt;
    }
    const std::optional<ChunkNumber> first = start_points.latest();
    if (!first || !seq_before(*first, next_chunk)) return std::nullopt;
    uint64_t bytes = 0;
    for (ChunkNumber n = *first; n != next_chunk; ++n) {
      const SharedBytes datagram = datagram_of(n);
      bytes += datagram ? datagram->size() + kChunkOriginSize : 0;
      if (!datagram || !origin_of(n) || bytes > config.burst_max_bytes) {
        ++stats.bursts_unavailable;
        return std::nullopt;
      }
    }
    const uint64_t rate =
        config.burst_rate != 0
            ? config.burst_rate
            : burst_rate(bytes, now - start_points.latest_cut_us(),
                         config.burst_min_rate);
    return BurstPacer(*first, next_chunk, rate, now);
  }

  // Caps that came between a joiner's WELCOME and its REGISTER went out
  // in-band before its first chunk: it would play the buffers after them
  // without ever learning them (docs/protocol.md 7.2). The frame goes in
  // again; members that have it ignore equal caps.
  bool repeat_caps_for_joiner(const Conn& conn) {
    if (conn.caps_frame_at_welcome == caps_frame_end) return false;
    if (framer.cut_end() < caps_frame_end) return false;  // not cut: in time
    framer.push_caps(framed_caps);
    ++stats.caps_repeated;
    return true;
  }

  void send_burst(Member& member, Micros now, Outbox* out) {
    BurstPacer& burst = *member.burst;
    while (!burst.done()) {
      const SharedBytes held = datagram_of(burst.next());
      const size_t size = held ? held->size() + kChunkOriginSize : 0;
      if (!burst.may_send(size, now)) return;
      const SharedBytes datagram = answer_to_nack(member, burst.next());
      burst.sent(size);
      if (!datagram) continue;  // overwritten since: the peer skips it
      ++stats.burst_chunks;
      stats.burst_bytes += datagram->size();
      ++member.stats.burst_chunks;
      egress.send(member.stats.endpoint, datagram, out);
    }
  }

  void send_bursts(Micros now, Outbox* out) {
    for (auto it = bursting.begin(); it != bursting.end();) {
      Member* member = find_member(*it);
      if (member && member->burst) send_burst(*member, now, out);
      if (!member || !member->burst || member->burst->done()) {
        if (member) member->burst.reset();
        it = bursting.erase(it);
      } else {
        ++it;
      }
    }
  }

  Micros burst_deadline() const {
    Micros due = UINT64_MAX;
    for (uint32_t id : bursting) {
      const Member* member = find_member(id);
      if (!member || !member->burst) return 0;  // send_bursts() tidies up
      const SharedBytes held = datagram_of(member->burst->next());
      due = std::min(due, member->burst->due_us(
                              held ? held->size() + kChunkOriginSize : 0));
    }
    return due;
  }

  // ------------------------------------------------------------ health ---

  void remember(ChunkNumber number, uint32_t origin,
                const SharedBytes& datagram) {
    origins[number % origins.size()] = Origin{};
    origins[number % origins.size()].valid = true;
    origins[number % origins.size()].number = number;
    origins[number % origins.size()].peer_id = origin;
    sent[number % sent.size()] = Sent{number, datagram};
  }

  const Origin* origin_of(ChunkNumber number) const {
    const Origin& o = origins[number % origins.size()];
    return o.valid && o.number == number ? &o : nullptr;
  }
  Origin* origin_of(ChunkNumber number) {
    Origin& o = origins[number % origins.size()];
    return o.valid && o.number == number ? &o : nullptr;
  }

  // Half the team asking for one chunk: its origin did not flood it.
  void note_nacker(Origin& origin, uint32_t member_id) {
    if (origin.undelivered) return;
    auto& ids = origin.nackers;
    if (std::find(ids.begin(), ids.end(), member_id) != ids.end()) return;
    ids.push_back(member_id);
    if (ids.size() < std::max<size_t>(members.size() / 2, 2)) return;
    origin.undelivered = true;
    ids = {};
    shares.note_undelivered(origin.peer_id);
  }

  SharedBytes datagram_of(ChunkNumber number) const {
    const Sent& s = sent[number % sent.size()];
    return s.datagram && s.number == number ? s.datagram : nullptr;
  }

  // The origin's own NACKs are outside the total cap: it floods what it
  // gets back to the whole team, so one retransmission serves every peer
  // (and it can ask only for its own share of the stream).
  bool is_origin(const Member& member, ChunkNumber number) const {
    const Origin* origin = origin_of(number);
    return origin && origin->peer_id == member.stats.id;
  }

  // A chunk goes to its origin without the origin in it; anyone else must
  // be told whose it is.
  SharedBytes answer_to_nack(const Member& member, ChunkNumber number) const {
    SharedBytes datagram = datagram_of(number);
    const Origin* origin = origin_of(number);
    if (!datagram || !origin) return nullptr;
    if (origin->peer_id == member.stats.id) return datagram;
    const std::optional<UdpMessage> msg =
        decode_udp(datagram->data(), datagram->size());
    if (!msg) return nullptr;
    return std::make_shared<const Bytes>(
        encode_chunk(std::get<ChunkMsg>(*msg), origin->peer_id));
  }

  void handle_nack(Member& member, const NackMsg& nack, Micros now,
                   Outbox* out) {
    for (ChunkNumber number : nack.numbers) {
      ++stats.nacks_received;
      Origin* origin = origin_of(number);
      if (origin && origin->peer_id != member.stats.id) {
        shares.note_nack(origin->peer_id, number);
        if (config.learn_shares) note_nacker(*origin, member.stats.id);
      }
      SharedBytes datagram = answer_to_nack(member, number);
      if (!datagram) {
        ++stats.retransmits_unavailable;
      } else if (!member.retransmit_budget.take(now) ||
                 !(is_origin(member, number) || retransmit_allowance.take())) {
        ++stats.retransmits_limited;
      } else {
        ++stats.retransmits;
        stats.retransmit_bytes += datagram->size();
        ++member.stats.retransmits;
        egress.send(member.stats.endpoint, datagram, out);
      }
    }
  }

  // Each reported chunk counts against its origin, never against the
  // monitor that reports it.
  void handle_lost(const Member& monitor, const LostMsg& lost, Micros now,
                   Outbox* out) {
    std::vector<uint32_t> over_limit;
    for (ChunkNumber number : lost.numbers) {
      ++stats.lost_reports;
      const Origin* origin = origin_of(number);
      if (!origin || origin->peer_id == monitor.stats.id) continue;
      Member* culprit = find_member(origin->peer_id);
      if (!culprit) continue;
      ++culprit->stats.loss_counter;
      if (decay_due_us == UINT64_MAX) {
        decay_due_us = saturating_add(now, config.loss_decay_us);
      }
      if (config.max_chunk_loss != 0 &&
          culprit->stats.loss_counter > config.max_chunk_loss &&
          std::find(over_limit.begin(), over_limit.end(), culprit->stats.id) ==
              over_limit.end()) {
        over_limit.push_back(culprit->stats.id);
      }
    }
    for (uint32_t peer_id : over_limit) {
      ++stats.peers_expelled;
      remove_member(peer_id, RemoveReason::kExpelled,
                    "expelled: too many chunks reported lost", out);
    }
  }

  // Pollution: one member's word is not enough (it could frame an honest
  // peer); config.pollution_reporters distinct members' is.
  void handle_polluted(uint32_t reporter, const PollutedMsg& report,
                       Outbox* out) {
    ++stats.pollution_reports;
    Member* accused = find_member(report.sender);
    if (!accused || report.sender == reporter) return;
    accused->accusers.insert(reporter);
    accused->stats.pollution_accusers =
        static_cast<uint32_t>(accused->accusers.size());
    if (config.pollution_reporters == 0 ||
        accused->accusers.size() < config.pollution_reporters) {
      return;
    }
    ++stats.peers_expelled;
    ++stats.polluters_expelled;
    remove_member(report.sender, RemoveReason::kExpelled,
                  "expelled: it sent altered chunks", out);
  }

  void decay_losses(Micros now) {
    bool any = false;
    for (Member& m : members) {
      m.stats.loss_counter /= 2;
      any |= m.stats.loss_counter != 0;
    }
    decay_due_us =
        any ? saturating_add(now, std::max<Micros>(config.loss_decay_us, 1))
            : UINT64_MAX;
  }

  void expire_silent(Micros now, Outbox* out) {
    if (config.peer_timeout_us == 0) {
      liveness_due_us = UINT64_MAX;
      return;
    }
    std::vector<uint32_t> silent;
    Micros next = UINT64_MAX;
    for (const Member& m : members) {
      const Micros expiry =
          saturating_add(m.stats.last_heard_us, config.peer_timeout_us);
      if (expiry <= now) {
        silent.push_back(m.stats.id);
      } else {
        next = std::min(next, expiry);
      }
    }
    // Members are only ever heard from later, so nobody expires before the
    // earliest expiry seen now: no need to look again until then.
    liveness_due_us = next;
    for (uint32_t peer_id : silent) {
      ++stats.peers_timed_out;
      remove_member(peer_id, RemoveReason::kTimeout,
                    "no datagram from this peer for too long", out);
    }
  }

  // REMOVED to the member, PEER_LEFT to the others.
  void remove_member(uint32_t peer_id, RemoveReason reason,
                     const std::string& text, Outbox* out) {
    const Member* member = find_member(peer_id);
    if (!member) return;
    send_tcp(member->conn, RemovedMsg{reason, text}, out);
    drop_member(peer_id, reason, out);
  }

  // ------------------------------------------------------ flood checks ---
  // (docs/protocol.md 10.7) With learn_shares, a member that can echoes
  // each chunk dealt to it after a quarter of its flood of it. A member's
  // first chunk is on trial: an echo that does not come in time means the
  // team is not getting that chunk (a free rider, a thin uplink), long
  // before the peers' NACKs would say so (they wait for the spread of the
  // floods, then for a neighbour). The chunk is re-dealt at once to a
  // proven member, which floods it with the origin stated (flag FLOOD),
  // and the member on trial is dealt nothing more.

  bool checks_floods() const {
    return config.learn_shares && config.echo_timeout_us != 0;
  }

  // The member's round trip comes on top of the time a quarter of its
  // flood may take: with 80 ms links every member missed a 300 ms check,
  // and the team lost 0.42 of the chunks (team simulator, mix (c)).
  void await_echo(ChunkNumber number, const Member& from, Micros now) {
    Origin* origin = origin_of(number);
    if (!origin) return;
    origin->echo_from = from.stats.id;
    const Micros wait = config.echo_timeout_us + from.round_trip_us;
    echo_due.emplace(saturating_add(now, wait), number);
  }

  Micros echo_deadline() const {
    const Micros echo = echo_due.empty() ? UINT64_MAX : echo_due.begin()->first;
    const Micros timing =
        timing_due.empty() ? UINT64_MAX : timing_due.begin()->first;
    return std::min(echo, timing);
  }

  // A chunk from a member is the echo of one it floods.
  bool handle_echo(const Endpoint& from, const ChunkMsg& chunk, Micros now,
                   Outbox* out) {
    auto it = member_by_endpoint.find(from.normalized());
    if (it == member_by_endpoint.end()) return false;
    Origin* origin = origin_of(chunk.number);
    if (origin && origin->quarter_echo_us != 0 &&
        origin->peer_id == it->second) {
      time_uplink(*origin, chunk.number, now);
      stop_echoes(origin->peer_id, out);
      return true;
    }
    if (!origin || origin->echo_from == 0 || origin->echo_from != it->second) {
      return true;  // not awaited (a proven member's): nothing to learn
    }
    origin->echo_from = 0;
    if (origin->echo_missed) {
      ++stats.echoes_late;
      return true;
    }
    ++stats.echoes;
    Member* member = find_member(it->second);
    const bool timing = member && !member->uplink_timed && origin->copies > 0;
    if (timing) {
      member->uplink_timed = true;  // one try: the peer's first flood only
      member->timing_since_us = now;
      member->timing_chunk = chunk.number;
      origin->quarter_echo_us = now;
      timing_due.emplace(saturating_add(now, end_echo_wait()), it->second);
    }
    shares.note_echo(it->second, timing, now, end_echo_wait());
    if (!timing) stop_echoes(it->second, out);
    return true;
  }

  // Proven, and timed: a proven member's echoes are not judged (10.7), and
  // each cost it 1/(N - 1) more upload, which put the 1.5x members of
  // uplink-c-learned at 95 % of their links; a member wrongly dealt out
  // there overloaded the rest (2 212 qdisc drops, peers at 93 - 97 %). A
  // ROLE without the echo bit stops them.
  void stop_echoes(uint32_t id, Outbox* out) {
    Member* member = find_member(id);
    if (!member || !member->echoes) return;
    member->echoes = false;
    send_tcp(member->conn, RoleMsg{member->stats.monitor ? kFlagMonitor : 0u},
             out);
  }

  // The flood-end echo of a 1.5x member in a team of 100 comes 0.44 s
  // after its quarter echo (team simulator).
  Micros end_echo_wait() const { return 2 * config.echo_timeout_us; }

  // Between a trial chunk's two echoes its origin's uplink sent the other
  // three quarters of the flood and the second echo, back to back (they
  // were queued together), so their bytes over the time between is what
  // the uplink carries, whatever burst a shaper let through first. A span
  // within two flush timers (protocol.md 8.3) was the peer's own pacing,
  // not its uplink's: nothing is learned from it.
  void time_uplink(Origin& origin, ChunkNumber number, Micros now) {
    const Micros span = now - origin.quarter_echo_us;
    origin.quarter_echo_us = 0;
    Member* member = find_member(origin.peer_id);
    if (member) member->timing_since_us = 0;
    shares.end_timing(origin.peer_id);
    const SharedBytes datagram = datagram_of(number);
    if (!datagram || span <= kMinUplinkSpanUs) return;
    const uint64_t datagrams = origin.copies - (origin.copies + 3) / 4 + 1;
    const bool ipv6 = member && member->stats.endpoint.normalized().family ==
                                    Endpoint::Family::kIPv6;
    const uint64_t header = ipv6 ? kIpv6UdpBytes : kIpv4UdpBytes;
    const uint64_t bits = datagrams * (datagram->size() + header) * 8;
    ++stats.uplinks_timed;
    shares.note_flood_rate(origin.peer_id,
                           static_cast<int64_t>(bits * 1000 / span));
  }

  // No end echo in time: the member is dealt as proven.
  void expire_timings(Micros now, Outbox* out) {
    while (!timing_due.empty() && timing_due.begin()->first <= now) {
      const uint32_t id = timing_due.begin()->second;
      timing_due.erase(timing_due.begin());
      Member* member = find_member(id);
      if (!member || member->timing_since_us == 0) continue;
      Origin* origin = origin_of(member->timing_chunk);
      if (origin && origin->peer_id == id &&
          origin->quarter_echo_us == member->timing_since_us)
        origin->quarter_echo_us = 0;
      member->timing_since_us = 0;
      shares.end_timing(id);
      stop_echoes(id, out);
    }
  }

  void expire_echoes(Micros now, Outbox* out) {
    expire_timings(now, out);
    while (!echo_due.empty() && echo_due.begin()->first <= now) {
      const ChunkNumber number = echo_due.begin()->second;
      echo_due.erase(echo_due.begin());
      Origin* origin = origin_of(number);
      if (!origin || origin->echo_from == 0 || origin->echo_missed) continue;
      ++stats.echoes_missed;
      origin->echo_missed = true;
      shares.note_missed_echo(origin->echo_from);
      redeal(*origin, now, out);
    }
  }

  // To a proven member other than the origin, as a flood for the origin.
  void redeal(const Origin& origin, Micros now, Outbox* out) {
    const SharedBytes datagram = datagram_of(origin.number);
    if (!datagram) return;
    const size_t index = shares.pick_carrier(
        members.size(), [this](size_t i) { return members[i].stats.id; },
        origin.peer_id, now);
    if (index >= members.size()) return;
    const std::optional<UdpMessage> msg =
        decode_udp(datagram->data(), datagram->size());
    if (!msg) return;
    auto flood = std::make_shared<const Bytes>(
        encode_flood_chunk(std::get<ChunkMsg>(*msg), origin.peer_id));
    ++stats.redeals;
    stats.redeal_bytes += flood->size();
    egress.send(members[index].stats.endpoint, flood, out);
  }

  // Peer-to-peer messages (REQUEST, PRUNE) never go to the splitter; a
  // CHUNK from a member is an echo (flood checks).
  // Returns false for anything it does not take.
  bool handle_member_datagram(const Endpoint& from, const UdpMessage& msg,
                              Micros now, Outbox* out) {
    if (const auto* chunk = std::get_if<ChunkMsg>(&msg)) {
      return checks_floods() && handle_echo(from, *chunk, now, out);
    }
    if (const auto* hello = std::get_if<HelloMsg>(&msg)) {
      return touch(member_at(hello->peer_id, from), now);
    }
    if (const auto* bye = std::get_if<GoodbyeMsg>(&msg)) {
      return touch(member_at(bye->peer_id, from), now);
    }
    if (const auto* beat = std::get_if<HeartbeatMsg>(&msg)) {
      Member* member = member_at(beat->peer_id, from);
      if (!member) return handle_moved_heartbeat(*beat, from, now, out);
      return member->token == beat->token && touch(member, now);
    }
    if (const auto* nack = std::get_if<NackMsg>(&msg)) {
      Member* member = member_at(nack->peer_id, from);
      if (!touch(member, now)) return false;
      handle_nack(*member, *nack, now, out);
      return true;
    }
    if (const auto* lost = std::get_if<LostMsg>(&msg)) {
      Member* member = member_at(lost->peer_id, from);
      if (!member || member->token != lost->token || !member->stats.monitor) {
        return false;
      }
      touch(member, now);
      handle_lost(*member, *lost, now, out);
      return true;
    }
    return false;
  }

  static bool touch(Member* member, Micros now) {
    if (member) member->stats.last_heard_us = now;
    return member != nullptr;
  }

  static uint32_t team_of(const UdpMessage& msg) {
    return std::visit([](const auto& m) { return m.team_id; }, msg);
  }

  // In a protected team, only sealed datagrams from key holders get through.
  bool open_sealed(const uint8_t** data, size_t* size) {
    if (!crypto) return true;
    return auth::open_or_count(crypto.get(), data, size, &opened, &stats);
  }
  Bytes opened;  // plaintext of the datagram being handled

  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) {
    egress.received(from, size);
    if (!open_sealed(&data, &size)) return;
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    if (!msg || team_of(*msg) != config.team_id) {
      ++stats.rejected_datagrams;
      return;
    }
    if (const auto* reg = std::get_if<RegisterMsg>(&*msg)) {
      handle_register(*reg, from, now, out);
      return;
    }
    if (!handle_member_datagram(from, *msg, now, out)) {
      ++stats.rejected_datagrams;
    }
  }

  // ------------------------------------------------------------ stream ---

  void send_chunk(const ChunkPayload& chunk, Micros now, Outbox* out) {
    const ChunkNumber number = next_chunk++;
    ++stats.chunks_cut;
    start_points.note_chunk(number, framer.cut_end(), now);
    retransmit_allowance.on_chunk_cut();
    if (members.empty()) {
      // Sent to nobody, but kept: the first joiner of an empty team is a
      // late joiner too, and its join burst needs these chunks (7.4).
      ++stats.chunks_dropped;
      remember(number, kNoMemberOrigin,
               encode(number, kNoMemberOrigin, now, chunk));
      return;
    }
    Member& dest = next_origin(chunk.bytes.size(), now);
    const uint16_t previous = previous_distance(dest, number);
    dest.last_dealt = number;
    SharedBytes datagram = encode(number, dest.stats.id, now, chunk, previous);
    ++stats.chunks_sent;
    ++dest.stats.chunks_sent;
    remember(number, dest.stats.id, datagram);
    if (dest.echoes && shares.on_trial(dest.stats.id)) {
      await_echo(number, dest, now);
      origins[number % origins.size()].copies =
          static_cast<uint32_t>(members.size() - 1);
    }
    const MulticastRoute route =
        multicast_route(config.multicast_group.valid(), dest.stats.multicast,
                        now - dest.stats.joined_us);
    // bytes_sent: what left, both copies while a newcomer is discovering.
    size_t bytes =
        route.group ? send_to_group(*datagram, dest.stats.id, out) : 0;
    if (route.unicast) {
      egress.send(dest.stats.endpoint, datagram, out);
      bytes += datagram->size();
    }
    stats.bytes_sent += bytes;
    dest.stats.bytes_sent += bytes;
  }

  // The same chunk, with its origin stated: everyone on the LAN gets it.
  // Returns the bytes sent.
  size_t send_to_group(const Bytes& datagram, uint32_t origin, Outbox* out) {
    const std::optional<UdpMessage> msg =
        decode_udp(datagram.data(), datagram.size());
    if (!msg) return 0;
    Bytes stated = encode_chunk(std::get<ChunkMsg>(*msg), origin);
    const size_t size = stated.size();
    if (!egress.send(config.multicast_group.normalized(), std::move(stated),
                     out)) {
      return 0;
    }
    ++stats.multicast_chunks;
    return size;
  }

  // Under unequal shares receivers cannot tell whose a missing chunk was
  // from the numbers alone; each chunk names its origin's previous one.
  static uint16_t previous_distance(const Member& origin, ChunkNumber number) {
    if (!origin.last_dealt) return kNoPrevious;
    const ChunkNumber distance = number - *origin.last_dealt;
    return distance <= UINT16_MAX ? static_cast<uint16_t>(distance)
                                  : kNoPrevious;
  }

  // Who is dealt the next chunk: plain round robin while every member
  // forwards what it gets, weighted by what each forwards otherwise.
  Member& next_origin(size_t chunk_bytes, Micros now) {
    shares.update(now, members.size(), next_chunk - 1);
    round_robin %= members.size();
    size_t index = round_robin++;
    if (!shares.uniform()) {
      const size_t picked = shares.pick(
          members.size(), [this](size_t i) { return members[i].stats.id; });
      if (picked < members.size()) index = picked;
    }
    shares.note_dealt(members[index].stats.id, chunk_bytes, now);
    return members[index];
  }

  // The signature covers every field the splitter decides (team, number,
  // origin, send time, frame offset, previous, payload). The datagram goes to
  // the origin itself, so the origin is left out (implicit); the signature
  // covers it all the same.
  SharedBytes encode(ChunkNumber number, uint32_t origin, Micros now,
                     const ChunkPayload& chunk,
                     uint16_t previous = kNoPrevious) {
    ChunkMsg msg;
    msg.previous = previous;
    msg.team_id = config.team_id;
    msg.number = number;
    msg.origin = origin;
    msg.send_time_ms = static_cast<uint16_t>(now / 1000);
    msg.first_frame_offset = chunk.first_frame_offset;
    msg.payload = chunk.bytes.data();
    msg.payload_size = chunk.bytes.size();
    ChunkSignature signature;
    if (signer) {
      signature = signer->sign(msg);
      msg.signature = signature.data();
      ++stats.chunks_signed;
    }
    std::shared_ptr<Bytes> datagram = datagrams.take();
    encode_chunk(msg, kImplicitOrigin, datagram.get());
    return datagram;
  }

  void send_full_chunks(Micros now, Outbox* out) {
    const bool had_pending = framer.pending_bytes() > 0;
    bool popped = false;
    while (framer.pop_full(&cut)) {
      send_chunk(cut, now, out);
      popped = true;
    }
    // What is left after a full chunk went out arrived just now; otherwise
    // the oldest pending byte keeps its age.
    if (popped || !had_pending) pending_since_us = now;
  }

  void send_partial(Micros now, Outbox* out) {
    if (framer.pop_partial(&cut)) send_chunk(cut, now, out);
  }

  Micros flush_deadline() const {
    if (framer.pending_bytes() == 0) return UINT64_MAX;
    return saturating_add(pending_since_us, config.flush_delay_us);
  }

  Micros handshake_deadline() const {
    if (handshakes.empty()) return UINT64_MAX;
    return saturating_add(handshakes.begin()->first,
                          config.handshake_timeout_us);
  }

  void expire_handshakes(Micros now, Outbox* out) {
    std::vector<ConnId> expired;
    for (const auto& [id, conn] : conns) {
      if (conn.state != ConnState::kMember &&
          saturating_add(conn.accepted_us, config.handshake_timeout_us) <=
              now) {
        expired.push_back(id);
      }
    }
    for (ConnId id : expired) {
      Conn& conn = conns.at(id);
      ++stats.rejected_connections;
      ++stats.handshake_timeouts;
      if (conn.welcomed) {
        send_tcp(id, RejectMsg{RemoveReason::kTimeout, "handshake timed out"},
                 out);
      }
      close_conn(id, out);
    }
  }
};

// Start points (docs/protocol.md 7.3): caps from upstream pick the
// analyser; joiners get them with the headers found in the stream.
void Splitter::Impl::take_caps(const std::string& new_caps) {
  if (config.find_start_points) start_filter.set_caps(new_caps);
  upstream_caps = new_caps;
  welcome_headers_version = start_filter.headers_version();
  caps = start_filter.welcome_caps(new_caps);
}

// A frame a decoder can start at is noted for join bursts (7.4).
void Splitter::Impl::frame_unit(const MediaBuffer& unit) {
  if ((unit.flags & (MediaBuffer::kDeltaUnit | MediaBuffer::kHeader)) == 0) {
    start_points.note_start(framer.framed_end());
  }
  framer.push_buffer(unit);
}

void Splitter::Impl::frame_buffer(const MediaBuffer& buffer) {
  if (!start_filter.analyser()) {
    frame_unit(buffer);
    return;
  }
  std::vector<MediaBuffer> units;
  start_filter.push(buffer, &units);
  for (const MediaBuffer& unit : units) frame_unit(unit);
  if (start_filter.headers_version() != welcome_headers_version) {
    welcome_headers_version = start_filter.headers_version();
    caps = start_filter.welcome_caps(upstream_caps);
  }
}

Splitter::Splitter(const SplitterConfig& config)
    : impl_(std::make_unique<Impl>(config)) {}

Splitter::~Splitter() = default;

void Splitter::set_caps(const std::string& caps, Micros now, Outbox* out) {
  impl_->take_caps(caps);
  if (impl_->has_framed_caps && impl_->framed_caps == caps) return;
  impl_->framed_caps = caps;
  impl_->has_framed_caps = true;
  impl_->framer.push_caps(caps);
  impl_->caps_frame_end = impl_->framer.framed_end();
  impl_->send_full_chunks(now, out);
}

void Splitter::announce_caps(const std::string& caps) { impl_->caps = caps; }

void Splitter::push_buffer(const MediaBuffer& buffer, Micros now, Outbox* out) {
  ++impl_->stats.buffers_in;
  impl_->stats.bytes_in += buffer.data.size();
  impl_->frame_buffer(buffer);
  impl_->send_full_chunks(now, out);
}

void Splitter::on_tcp_accepted(ConnId conn, const Endpoint& remote, Micros now,
                               Outbox* out) {
  auto old = impl_->conns.find(conn);
  if (old != impl_->conns.end()) impl_->end_handshake(old->second);
  if (const char* why = impl_->refusal_for(remote, now)) {
    impl_->refuse_connection(conn, why, out);
    return;
  }
  Impl::Conn c;
  c.id = conn;
  c.remote = remote.normalized();
  c.accepted_us = now;
  impl_->handshakes.insert({now, conn});
  impl_->conns[conn] = std::move(c);
}

void Splitter::on_tcp_data(ConnId conn, const uint8_t* data, size_t size,
                           Micros now, Outbox* out) {
  (void)now;
  impl_->on_tcp_data(conn, data, size, out);
}

void Splitter::on_tcp_closed(ConnId conn, Micros now, Outbox* out) {
  (void)now;
  impl_->on_tcp_closed(conn, out);
}

void Splitter::on_udp(const Endpoint& from, const uint8_t* data, size_t size,
                      Micros now, Outbox* out) {
  impl_->on_udp(from, data, size, now, out);
}

void Splitter::tick(Micros now, Outbox* out) {
  if (impl_->flush_deadline() <= now) impl_->send_partial(now, out);
  // Scans the connections, so only when one is due.
  if (impl_->handshake_deadline() <= now) impl_->expire_handshakes(now, out);
  if (impl_->liveness_due_us <= now) impl_->expire_silent(now, out);
  if (impl_->decay_due_us <= now) impl_->decay_losses(now);
  if (!impl_->bursting.empty() && impl_->burst_deadline() <= now) {
    impl_->send_bursts(now, out);
  }
  if (impl_->echo_deadline() <= now) impl_->expire_echoes(now, out);
}

Micros Splitter::next_deadline() const {
  return std::min(
      {impl_->flush_deadline(), impl_->handshake_deadline(),
       impl_->liveness_due_us, impl_->decay_due_us,
       impl_->bursting.empty() ? UINT64_MAX : impl_->burst_deadline(),
       impl_->echo_deadline()});
}

void Splitter::flush(Micros now, Outbox* out) { impl_->send_partial(now, out); }

void Splitter::remove_peer(uint32_t peer_id, RemoveReason reason, Outbox* out) {
  if (impl_->find_member(peer_id)) {
    impl_->remove_member(peer_id, reason, "removed by the splitter", out);
    return;
  }
  auto waiting = impl_->awaiting_register.find(peer_id);
  if (waiting != impl_->awaiting_register.end()) {
    const ConnId conn = waiting->second;
    impl_->send_tcp(conn, RejectMsg{reason, "removed by the splitter"}, out);
    impl_->close_conn(conn, out);
  }
}

void Splitter::shutdown(Micros now, Outbox* out) {
  impl_->send_partial(now, out);
  std::vector<ConnId> all;
  for (const auto& [id, conn] : impl_->conns) all.push_back(id);
  for (ConnId id : all) {
    impl_->send_tcp(
        id, RemovedMsg{RemoveReason::kShutdown, "splitter stopping"}, out);
  }
  // Everyone is told REMOVED, so no PEER_LEFT goes around.
  for (const Impl::Member& m : impl_->members) {
    ++impl_->stats.peers_left;
    impl_->events.push_back(SplitterEvent{SplitterEvent::Kind::kPeerRemoved,
                                          m.stats.id, m.stats.endpoint,
                                          RemoveReason::kShutdown});
  }
  impl_->members.clear();
  impl_->member_index.clear();
  impl_->member_by_endpoint.clear();
  for (ConnId id : all) impl_->close_conn(id, out);
}

std::vector<SplitterEvent> Splitter::take_events() {
  std::vector<SplitterEvent> events;
  events.swap(impl_->events);
  return events;
}

const SplitterStats& Splitter::stats() const {
  impl_->stats.amplification_limited = impl_->egress.stats().limited;
  return impl_->stats;
}

std::vector<SplitterPeerStats> Splitter::peer_stats() const {
  std::vector<SplitterPeerStats> result;
  for (const Impl::Member& m : impl_->members) {
    result.push_back(m.stats);
    result.back().share = impl_->shares.share(m.stats.id);
    result.back().forwarding = impl_->shares.forwarding(m.stats.id);
    result.back().proven = impl_->shares.proven(m.stats.id);
    result.back().learned_upload_kbps = impl_->shares.learned_kbps(m.stats.id);
  }
  return result;
}

size_t Splitter::num_peers() const { return impl_->members.size(); }

const SplitterConfig& Splitter::config() const { return impl_->config; }

std::optional<ChunkKey> Splitter::chunk_key() const {
  if (!impl_->signer) return std::nullopt;
  return impl_->signer->public_key();
}

}  // namespace p2psp
