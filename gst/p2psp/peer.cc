// gst-p2psp: the peer state machine (sans-I/O).
#include <gst/p2psp/auth.h>
#include <gst/p2psp/egress.h>
#include <gst/p2psp/framing.h>
#include <gst/p2psp/lan.h>
#include <gst/p2psp/nack.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/reorder.h>
#include <gst/p2psp/signing.h>
#include <gst/p2psp/token_bucket.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <variant>

namespace p2psp {

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint32_t team_of(const UdpMessage& msg) {
  return std::visit([](const auto& m) { return m.team_id; }, msg);
}

// NACK and LOST lists longer than one datagram holds are split.
template <typename Fn>
void in_batches(const std::vector<ChunkNumber>& numbers, Fn send_batch) {
  for (size_t at = 0; at < numbers.size(); at += kMaxNackNumbers) {
    const size_t end = std::min(numbers.size(), at + kMaxNackNumbers);
    send_batch(
        std::vector<ChunkNumber>(numbers.begin() + at, numbers.begin() + end));
  }
}

// The automatic NACK retry period, a fraction of the latency: it leaves
// several attempts before the deadline. The first NACK of a gap waits for
// evidence of loss (gst/p2psp/nack.h) unless nack_delay_us fixes a delay.
Micros auto_nack_retry(Micros configured, Micros latency) {
  return configured != 0 ? configured : latency / 6;
}

// Evidence from a later chunk of the same origin still waits this long:
// jitter can reorder two datagrams of a very small team's round.
constexpr Micros kEvidenceGraceUs = 20000;
// Added to the learned spread for the time-based first NACK (jitter).
constexpr Micros kSpreadMarginUs = 20000;
// Chunks measured before the spread is trusted for time-based NACKs; until
// then the time-based delay is half the latency (see nack_delay).
constexpr uint64_t kSpreadMinSamples = 64;

// NACK batches are addressed to a neighbour id or to the splitter.
constexpr uint32_t kToSplitter = 0;

// HELLOs from ids the splitter has not named yet, remembered so that the
// PEER_JOINED that follows can probe where they came from (a NAT that maps
// each destination apart). Honest ones are named within a round trip.
constexpr size_t kMaxUnannouncedHellos = 64;
constexpr Micros kUnannouncedHelloUs = 5000000;
// A neighbour moves to the address a probe validated only if its current
// one has been silent this long: a member cannot pull an active member's
// flood to itself by echoing cookies in its name.
constexpr Micros kMoveAfterSilenceUs = 2000000;
// Bounds the members remembered as receiving the multicast group.
constexpr size_t kMaxMulticastOrigins = 4096;

}  // namespace

struct Peer::Impl {
  // A datagram queued for a neighbour.
  struct Pending {
    SharedBytes datagram;
  };

  struct Neighbour {
    NeighbourInfo info;
    // Datagrams to forward, as received: DBS floods the very bytes the
    // splitter sent, so nothing is re-encoded.
    std::vector<Pending> pending;
    Micros pending_since_us = 0;
    TokenBucket retransmit_budget;
    std::unordered_map<uint32_t, Micros> last_prune_us;  // by origin
    Micros heard_us = 0;  // last valid datagram from its endpoint; 0: never
  };

  struct UnannouncedHello {
    uint32_t peer_id = 0;
    Endpoint from;
    Micros at_us = 0;
  };

  // A team member, whether or not we still serve it (debt drops it from
  // `neighbours`, not from the team): whose chunks we expect.
  struct Member {
    Micros last_heard_us = 0;     // last chunk of its origin, from anyone
    uint64_t heard_at_count = 0;  // accepted_count at that time
    bool relay_requested = false;
    size_t request_turn = 0;  // rotates REQUESTs over neighbours
    // The longest run of other chunks seen between two of its own: the
    // splitter may deal a member fewer chunks than others (adaptive
    // shares), and such a member is not silent until twice that passed.
    uint64_t longest_gap = 0;
    bool heard = false;
    NeighbourPath path = NeighbourPath::kUnknown;  // of its last own chunk
  };

  // A recently accepted chunk, kept to answer NACKs and to guess origins.
  struct Recent {
    ChunkNumber number = 0;
    uint32_t origin = 0;
    SharedBytes datagram;
  };

  struct NackState {
    uint32_t attempts = 0;
    Micros next_us = 0;      // next attempt (UINT64_MAX: recovered)
    Micros deadline_us = 0;  // playout gives up on it then
  };

  Impl(const PeerConfig& c, const Endpoint& splitter)
      : config(c),
        splitter_tcp(splitter.normalized()),
        secrets(c.secret_seed),
        cookies(&secrets),
        egress([this](const Endpoint& e) { return is_validated(e); }, &crypto),
        reorder(c.buffer_chunks, c.latency_us),
        recent(std::max<size_t>(c.history_chunks, 1)),
        monitor(c.monitor) {}

  PeerConfig config;
  Endpoint splitter_tcp;
  Endpoint splitter_udp;
  PeerState state = PeerState::kIdle;
  bool draining_after_shutdown = false;  // REMOVED{shutdown} while a member
  uint32_t team_id = 0;
  uint32_t id = 0;
  uint64_t token = 0;
  uint32_t chunk_size = 0;
  std::string caps;
  Endpoint public_endpoint;
  Micros last_register_us = 0;
  uint64_t register_cookie = 0;  // the splitter's latest PROBE, echoed

  TcpReader tcp_reader;
  // Authenticated join: keys once CHALLENGE came, crypto once WELCOME did.
  std::optional<auth::Keys> keys;
  uint32_t auth_flags = 0;  // CHALLENGE's; both proofs cover them
  auth::Salt salt{};
  auth::Nonce splitter_nonce{};
  auth::Nonce peer_nonce{};
  bool splitter_proved = false;
  std::unique_ptr<auth::DatagramCrypto> crypto;
  std::unique_ptr<auth::ChannelCrypto> channel;  // TCP, after PROOF
  Bytes opened;  // plaintext of the datagram being handled
  // Every datagram leaves through `egress`: sealed once `crypto` exists, and
  // only to the splitter, neighbours, or within 3x what an address sent.
  SecretSource secrets;
  CookieJar cookies;
  Egress egress;
  std::vector<UnannouncedHello> unannounced_hellos;
  LanCandidates lan;  // members' LAN endpoints, being probed
  // IP multicast (protocol.md 8.5).
  Endpoint multicast_group;     // named by the splitter; invalid: none
  bool multicast_rx = false;    // the datagram being handled came from it
  bool told_multicast = false;  // MULTICAST_RECEIVING sent
  // Members the splitter says receive the group (MULTICAST_MEMBER): our
  // own chunks from the group need not be flooded to them. Not learnt from
  // the origins seen in the group: a newcomer's chunks go there too.
  std::unordered_set<uint32_t> multicast_origins;
  // Pollution: the splitter's chunk key (CHUNK_KEY), and the members we
  // reported for sending chunks that failed verification.
  std::optional<ChunkKey> chunk_key;
  std::unordered_set<uint32_t> reported_polluters;
  // Round-robin order of the DBS trigger.
  std::vector<Neighbour> neighbours;
  size_t next_neighbour = 0;
  // Positions in `neighbours`: every datagram and every team change looks a
  // neighbour up, so lookups must not grow with the team.
  std::unordered_map<Endpoint, size_t, EndpointHash> index_by_endpoint;
  std::unordered_map<uint32_t, size_t> index_by_id;
  // Neighbours with pending forwards, earliest pending_since_us first, so
  // the flush deadline is not a scan of the team on every event. Entries
  // are not removed when a queue is sent; they go stale (see
  // current_forward) and are dropped when they reach the top.
  using ForwardDue = std::pair<Micros, uint32_t>;  // pending since, peer id
  std::priority_queue<ForwardDue, std::vector<ForwardDue>,
                      std::greater<ForwardDue>>
      forward_due;
  size_t pending_neighbours = 0;  // neighbours with a non-empty queue
  // Neighbours that said GOODBYE: no longer served, but the chunks the
  // splitter sent them just before it heard their TCP GOODBYE are still
  // taken from them (they relay those, see relay_after_leave) for one
  // playout hold, or the team would lose them. Later ones could not play.
  struct Departing {
    PeerInfo info;
    Micros until_us = 0;
  };
  std::vector<Departing> departing;
  // After leave(): where chunks the splitter still sends us are relayed.
  std::vector<Endpoint> farewell_targets;
  // Splitter chunks that arrived before TEAM named the neighbours; they are
  // queued for them once TEAM arrives, or the team would never get them.
  std::vector<SharedBytes> early_own_chunks;

  ReorderBuffer reorder;
  Deframer deframer;
  // Late joiners start at a keyframe; until then delta buffers are useless.
  bool seen_keyframe = false;
  bool carry_discont = false;
  PeerStartState start;

  bool delay_known = false;
  // Chunk delays are (our clock - the splitter's) mod 65536 ms; they are
  // compared as offsets from the first one, which is safe while the two
  // clocks stay within half of that (32 s) of their first offset.
  uint16_t first_delay_ms = 0;
  int32_t min_delay_ms = 0;

  PeerStats stats;
  std::vector<PeerEvent> events;

  // Team health.
  std::vector<Recent> recent;  // indexed by chunk number modulo size
  bool monitor = false;
  Micros last_heartbeat_us = 0;
  std::unordered_map<uint32_t, Member> members;
  uint64_t accepted_count = 0;
  bool burst_known = false;  // BURST arrived: [burst_first, burst_end)
  ChunkNumber burst_first = 0;
  ChunkNumber burst_end = 0;
  // Lower bounds of the members' last_heard_us and heard_at_count (both only
  // grow), so route discovery skips its scan of the team while nobody can
  // be silent yet.
  Micros members_heard_since_us = UINT64_MAX;
  uint64_t members_heard_since_count = UINT64_MAX;
  // forward[origin] for origins other than ours: neighbours that asked us
  // (REQUEST) to relay that origin's chunks.
  std::unordered_map<uint32_t, std::vector<uint32_t>> relay_to;
  Micros relay_check_due_us = UINT64_MAX;
  // Missing numbers we NACKed, until they are played or declared lost.
  std::unordered_map<ChunkNumber, NackState> nacks;
  Micros nack_due_us = UINT64_MAX;
  size_t nack_turn = 0;
  // Loss evidence (gst/p2psp/nack.h).
  OriginNewest origin_newest;
  SpreadEstimator spread;

  // ------------------------------------------------------------ helpers --

  Neighbour* find_neighbour(uint32_t peer_id) {
    auto it = index_by_id.find(peer_id);
    return it == index_by_id.end() ? nullptr : &neighbours[it->second];
  }

  Neighbour* find_neighbour_at(const Endpoint& endpoint) {
    auto it = index_by_endpoint.find(endpoint);
    return it == index_by_endpoint.end() ? nullptr : &neighbours[it->second];
  }

  // Addresses that asked for our datagrams: the splitter we connected to,
  // members the splitter validated (or we did, by PROBE), and, after
  // leave(), the neighbours we had.
  bool is_validated(const Endpoint& e) const {
    if (e == splitter_udp || index_by_endpoint.count(e) != 0) return true;
    return std::find(farewell_targets.begin(), farewell_targets.end(), e) !=
           farewell_targets.end();
  }

  void reindex() {
    index_by_endpoint.clear();
    index_by_id.clear();
    for (size_t i = 0; i < neighbours.size(); ++i) {
      index_by_endpoint[neighbours[i].info.endpoint] = i;
      index_by_id[neighbours[i].info.id] = i;
    }
  }

  void push_event(PeerEvent::Kind kind, uint32_t peer_id,
                  const Endpoint& endpoint) {
    PeerEvent event;
    event.kind = kind;
    event.peer_id = peer_id;
    event.endpoint = endpoint;
    events.push_back(std::move(event));
  }

  const PeerInfo* find_departing(uint32_t peer_id) const {
    for (const Departing& d : departing) {
      if (d.info.id == peer_id) return &d.info;
    }
    return nullptr;
  }

  void forget_departed(Micros now) {
    departing.erase(
        std::remove_if(departing.begin(), departing.end(),
                       [&](const Departing& d) { return d.until_us <= now; }),
        departing.end());
  }

  // Members come from the splitter only (TEAM, PEER_JOINED): it validated
  // their endpoints. A known id at a new endpoint is a NAT rebinding the
  // splitter proved.
  void add_neighbour(const PeerInfo& peer, Micros now) {
    if (Neighbour* known = find_neighbour(peer.id)) {
      // Its NAT's mapping changed, not its address on our LAN.
      if (!known->info.lan) {
        move_neighbour(*known, peer.endpoint.normalized(), now);
      }
      return;
    }
    if (peer.id == id || find_departing(peer.id)) return;
    Neighbour n;
    n.info.id = peer.id;
    n.info.endpoint = peer.endpoint.normalized();
    n.retransmit_budget =
        TokenBucket(config.retransmit_rate, config.retransmit_burst, now);
    if (find_neighbour_at(n.info.endpoint)) {
      // The splitter says a new peer holds this endpoint: the old holder
      // is gone even if its PEER_LEFT is still on the way.
      const uint32_t old_id = find_neighbour_at(n.info.endpoint)->info.id;
      remove_neighbour(old_id);
      forget_member(old_id);
    }
    if (members.count(peer.id) == 0) {
      members[peer.id] = Member{now, accepted_count, false, 0};
      note_heard_bound(now, accepted_count);
    }
    index_by_endpoint[n.info.endpoint] = neighbours.size();
    index_by_id[n.info.id] = neighbours.size();
    neighbours.push_back(std::move(n));
    stats.neighbours = neighbours.size();
    push_event(PeerEvent::Kind::kNeighbourAdded, peer.id, peer.endpoint);
  }

  void remove_neighbour(uint32_t peer_id) {
    auto found = index_by_id.find(peer_id);
    if (found == index_by_id.end()) return;
    const size_t index = found->second;
    const Endpoint endpoint = neighbours[index].info.endpoint;
    if (!neighbours[index].pending.empty()) --pending_neighbours;
    neighbours.erase(neighbours.begin() + static_cast<ptrdiff_t>(index));
    reindex();
    lan.forget(peer_id);
    count_lan_neighbours();
    // Keep the trigger on the neighbour that followed the removed one.
    if (index < next_neighbour) --next_neighbour;
    stats.neighbours = neighbours.size();
    push_event(PeerEvent::Kind::kNeighbourRemoved, peer_id, endpoint);
  }

  // The peer left the team: no chunks of its origin are expected any more,
  // and nobody needs them relayed.
  void forget_member(uint32_t peer_id) {
    members.erase(peer_id);
    origin_newest.forget(peer_id);
    multicast_origins.erase(peer_id);
    relay_to.erase(peer_id);
    for (auto& [origin, targets] : relay_to) {
      targets.erase(std::remove(targets.begin(), targets.end(), peer_id),
                    targets.end());
    }
    count_relays();
  }

  void count_relays() {
    stats.relays_served = 0;
    for (const auto& [origin, targets] : relay_to) {
      stats.relays_served += targets.size();
    }
  }

  // Points a neighbour's traffic at a new endpoint, unless another
  // neighbour holds that one.
  bool move_neighbour(Neighbour& n, const Endpoint& to, Micros now) {
    if (n.info.endpoint == to || find_neighbour_at(to)) return false;
    n.info.lan = false;
    index_by_endpoint.erase(n.info.endpoint);
    n.info.endpoint = to;
    n.heard_us = now;
    index_by_endpoint[to] = index_by_id.at(n.info.id);
    ++stats.endpoints_moved;
    push_event(PeerEvent::Kind::kNeighbourMoved, n.info.id, to);
    return true;
  }

  void send_register(Micros now, Outbox* out) {
    egress.send(
        splitter_udp,
        encode_register(RegisterMsg{team_id, id, token, register_cookie}), out);
    last_register_us = now;
  }

  void send_probe(const Endpoint& to, uint32_t peer_id, Micros now,
                  Outbox* out) {
    const ProbeMsg probe{team_id, cookies.issue(to, peer_id, now), peer_id};
    if (egress.send(to, encode_probe(probe), out)) ++stats.probes_sent;
  }

  // ------------------------------------------------------------ LAN ------
  // Peers behind one NAT (protocol.md 3.2). The splitter names a member's
  // LAN endpoint, which nobody validated: it is probed like any address,
  // and the neighbour moves there once a HELLO from there echoes the
  // cookie. No silence rule here (unlike on_hello's moves): the member
  // itself reported this endpoint over its own TCP channel.
  void on_peer_local(const PeerLocalMsg& local, Micros now, Outbox* out) {
    const Neighbour* n = find_neighbour(local.peer_id);
    const Endpoint e = local.endpoint.normalized();
    if (!n || n->info.lan || n->info.endpoint == e || !e.valid() ||
        e == splitter_udp) {
      return;
    }
    lan.add(local.peer_id, e, now);
    probe_lan_candidates(now, out);
  }

  void probe_lan_candidates(Micros now, Outbox* out) {
    const bool sealing = static_cast<bool>(crypto);
    const size_t probe_size = encode_probe(ProbeMsg{team_id, 1, 0}).size() +
                              (sealing ? auth::kSealOverhead : 0);
    for (const LanCandidates::Due& due : lan.take_due(now)) {
      egress.credit(due.endpoint, probe_size);
      send_probe(due.endpoint, due.peer_id, now, out);
    }
  }

  void move_to_lan(Neighbour& n, const Endpoint& to, Micros now) {
    lan.forget(n.info.id);
    if (!move_neighbour(n, to, now)) {
      ++stats.moves_refused;
      return;
    }
    n.info.lan = true;
    count_lan_neighbours();
  }

  void count_lan_neighbours() {
    stats.lan_neighbours = static_cast<uint64_t>(
        std::count_if(neighbours.begin(), neighbours.end(),
                      [](const Neighbour& n) { return n.info.lan; }));
  }

  NeighbourPath path_of(uint32_t origin, bool from_splitter,
                        const Neighbour* sender) const {
    if (multicast_rx) return NeighbourPath::kMulticast;
    if (from_splitter) return NeighbourPath::kSplitter;
    if (!sender) return NeighbourPath::kRelayed;  // a departing member
    if (sender->info.id != origin) return NeighbourPath::kRelayed;
    return sender->info.lan ? NeighbourPath::kLan : NeighbourPath::kDirect;
  }

  void count_paths() {
    stats.paths_direct = stats.paths_lan = 0;
    stats.paths_relayed = stats.paths_splitter = stats.paths_multicast = 0;
    for (const auto& [member_id, member] : members) {
      switch (member.path) {
        case NeighbourPath::kDirect:
          ++stats.paths_direct;
          break;
        case NeighbourPath::kLan:
          ++stats.paths_lan;
          break;
        case NeighbourPath::kRelayed:
          ++stats.paths_relayed;
          break;
        case NeighbourPath::kSplitter:
          ++stats.paths_splitter;
          break;
        case NeighbourPath::kMulticast:
          ++stats.paths_multicast;
          break;
        case NeighbourPath::kUnknown:
          break;
      }
    }
  }

  // ------------------------------------------------------------ DBS ------

  // Sends a neighbour everything pending for it. Returns false when the
  // neighbour was dropped for exceeding the chunk debt.
  bool send_pending(size_t index, Outbox* out) {
    Neighbour& n = neighbours[index];
    // Judged when we would give it more (see note_delivery).
    if (n.info.debt > static_cast<int64_t>(config.max_chunk_debt)) {
      remove_neighbour(n.info.id);
      return false;
    }
    std::vector<Pending> batch;
    batch.swap(n.pending);
    if (!batch.empty()) --pending_neighbours;
    for (const Pending& pending : batch) {
      egress.send(n.info.endpoint, pending.datagram, out);
      ++n.info.chunks_sent;
      ++stats.chunks_forwarded;
      stats.bytes_up += pending.datagram->size();
    }
    return true;
  }

  // Chunk debt (docs/protocol.md 8.3): a neighbour owes us a copy of each
  // chunk the splitter dealt it, whatever its share, so it is judged on its
  // own chunks only. One that first reached us another way (a NACK answer,
  // a relay) adds one, one from the neighbour itself (even late, even a
  // duplicate) pays one back, and the debt never goes below zero: a lossy
  // link or a late flood stays near zero, a member dealt nothing (a free
  // rider, a thin uplink) owes nothing, and one that keeps its chunks
  // climbs steadily. The join burst and the multicast group are not the
  // origin's to send.
  void note_delivery(const ChunkMsg& msg, Neighbour* sender, bool from_splitter,
                     bool accepted) {
    if (sender && msg.origin == sender->info.id) {
      sender->info.debt = std::max<int64_t>(sender->info.debt - 1, 0);
      return;
    }
    if (!accepted || msg.origin == id ||
        (from_splitter && (multicast_rx || burst_chunk(msg.number)))) {
      return;
    }
    if (Neighbour* origin = find_neighbour(msg.origin)) ++origin->info.debt;
  }

  void send_all_pending(Outbox* out) {
    for (size_t i = 0; i < neighbours.size();) {
      if (send_pending(i, out)) ++i;
    }
  }

  bool any_pending() const { return pending_neighbours != 0; }

  void queue_for(Neighbour& n, const SharedBytes& datagram, Micros now) {
    if (n.pending.empty()) {
      ++pending_neighbours;
      n.pending_since_us = now;
      forward_due.push(ForwardDue{now, n.info.id});
    }
    n.pending.push_back(Pending{datagram});
  }

  // Whether a forward_due entry still describes a neighbour's queue (not
  // sent since, neighbour not removed).
  bool current_forward(const ForwardDue& due) {
    const Neighbour* n = find_neighbour(due.second);
    return n && !n->pending.empty() && n->pending_since_us == due.first;
  }

  // Our own chunk from the group went to every member receiving it: the
  // flood is for the others only.
  void queue_for_all(const SharedBytes& datagram, Micros now) {
    for (Neighbour& n : neighbours) {
      if (multicast_rx && multicast_origins.count(n.info.id) != 0) continue;
      queue_for(n, datagram, now);
    }
  }

  // The DBS trigger: each received chunk releases one neighbour's queue, so
  // a peer's upload follows its download.
  void send_next_neighbour(Outbox* out) {
    // Most chunks find every queue empty (flushed) or the next one full:
    // the scan below stays short either way.
    if (pending_neighbours == 0) return;
    const size_t count = neighbours.size();
    for (size_t step = 0; step < count; ++step) {
      const size_t index = (next_neighbour + step) % count;
      if (neighbours[index].pending.empty()) continue;
      next_neighbour = index + 1;
      if (!send_pending(index, out)) next_neighbour = index;
      if (next_neighbour >= neighbours.size()) next_neighbour = 0;
      return;
    }
  }

  void send_overdue(Micros now, Outbox* out) {
    std::vector<size_t> overdue;
    while (!forward_due.empty() &&
           saturating_add(forward_due.top().first, config.forward_flush_us) <=
               now) {
      if (current_forward(forward_due.top())) {
        overdue.push_back(index_by_id.at(forward_due.top().second));
      }
      forward_due.pop();
    }
    if (overdue.empty()) return;
    // In team order (the order of the trigger). A neighbour dropped for its
    // debt shifts the later ones, so they are looked up again by id.
    std::sort(overdue.begin(), overdue.end());
    overdue.erase(std::unique(overdue.begin(), overdue.end()), overdue.end());
    std::vector<uint32_t> ids;
    for (size_t index : overdue) ids.push_back(neighbours[index].info.id);
    for (uint32_t peer_id : ids) {
      auto it = index_by_id.find(peer_id);
      if (it != index_by_id.end()) send_pending(it->second, out);
    }
  }

  Micros forward_deadline() {
    while (!forward_due.empty() && !current_forward(forward_due.top())) {
      forward_due.pop();
    }
    return forward_due.empty() ? UINT64_MAX
                               : saturating_add(forward_due.top().first,
                                                config.forward_flush_us);
  }

  // ------------------------------------------------------------ chunks ---

  void note_delay(uint16_t send_time_ms, Micros now) {
    const auto raw_ms =
        static_cast<uint16_t>(static_cast<uint16_t>(now / 1000) - send_time_ms);
    if (!delay_known) first_delay_ms = raw_ms;
    const int32_t delay_ms =
        static_cast<int16_t>(static_cast<uint16_t>(raw_ms - first_delay_ms));
    if (!delay_known || delay_ms < min_delay_ms) {
      min_delay_ms = delay_ms;
      delay_known = true;
    }
    stats.chunk_delay_us =
        static_cast<Micros>(static_cast<int64_t>(delay_ms) - min_delay_ms) *
        1000;
    stats.chunk_delay_max_us =
        std::max(stats.chunk_delay_max_us, stats.chunk_delay_us);
  }

  // The copy kept (and sent on) is the datagram as this peer sends it: the
  // origin left out for our own chunks (our neighbours take it from us),
  // stated for everyone else's (relays and NACK answers come from us).
  StoredChunk store(const ChunkMsg& msg, Micros now) {
    auto copy = std::make_shared<const Bytes>(
        encode_chunk(msg, msg.origin == id ? kImplicitOrigin : msg.origin));
    StoredChunk chunk;
    chunk.msg = msg;
    // The payload, then the signature if any, end the datagram.
    const size_t trailer = msg.signature ? kChunkSignatureSize : 0;
    chunk.msg.payload =
        copy->data() + (copy->size() - trailer - msg.payload_size);
    if (msg.signature) {
      chunk.msg.signature = copy->data() + (copy->size() - trailer);
    }
    chunk.datagram = std::move(copy);
    chunk.arrival_us = now;
    return chunk;
  }

  bool from_departing(const Endpoint& from, uint32_t origin) const {
    const PeerInfo* p = find_departing(origin);
    return p && p->endpoint == from;
  }

  const PeerInfo* departing_at(const Endpoint& from) const {
    for (const Departing& d : departing) {
      if (d.info.endpoint == from) return &d.info;
    }
    return nullptr;
  }

  // The origin a chunk without one has: us when the splitter sends it, its
  // sender otherwise; kImplicitOrigin if the sender is a stranger.
  uint32_t implicit_origin(const Endpoint& from,
                           const Neighbour* sender) const {
    if (from == splitter_udp) return id;
    if (sender) return sender->info.id;
    const PeerInfo* leaving = departing_at(from);
    return leaving ? leaving->id : kImplicitOrigin;
  }

  bool relay_requested(uint32_t origin) const {
    auto it = members.find(origin);
    return it != members.end() && it->second.relay_requested;
  }

  // Join burst (7.4): the splitter sends [burst_first, burst_end) with the
  // origins stated. Its first datagrams may overtake BURST (UDP against
  // TCP), so until BURST or TEAM arrives any such chunk from the splitter
  // counts as one (the splitter's endpoint is trusted as for our own).
  bool in_burst(ChunkNumber n) const {
    return burst_known && !seq_before(n, burst_first) &&
           seq_before(n, burst_end);
  }
  bool burst_chunk(ChunkNumber n) const {
    if (!config.join_burst) return false;
    if (state == PeerState::kRegistering && !burst_known) return true;
    return in_burst(n);
  }

  void on_burst(const BurstMsg& burst, Micros now) {
    burst_known = true;
    burst_first = burst.first;
    // More than the playout window could never be played in order anyway.
    burst_end = burst.first + static_cast<ChunkNumber>(std::min<uint64_t>(
                                  burst.count, config.buffer_chunks));
    reorder.expect_from(burst_first);
    reorder.expect_run(burst_end, now);
  }

  // Who may send us a chunk of another origin: the splitter or any
  // neighbour when we NACKed that number, any neighbour when we asked for
  // that origin to be relayed.
  bool acceptable(const Endpoint& from, const Neighbour* sender,
                  const ChunkMsg& msg) const {
    const bool nacked = nacks.count(msg.number) != 0;
    if (from == splitter_udp) {
      return msg.origin == id || nacked || multicast_rx ||
             burst_chunk(msg.number);
    }
    if (sender) {
      return msg.origin == sender->info.id || nacked ||
             relay_requested(msg.origin);
    }
    return from_departing(from, msg.origin);
  }

  // The member a datagram came from (a neighbour, or one that just said
  // GOODBYE), 0 for anyone else.
  uint32_t member_at(const Endpoint& from, const Neighbour* sender) const {
    if (sender) return sender->info.id;
    const PeerInfo* leaving = departing_at(from);
    return leaving ? leaving->id : 0;
  }

  // In a signed team, a chunk counts only if the splitter's signature
  // holds. A failed one is reported once per sender: the member it came
  // from, which need not be its origin (a relay can alter too).
  bool verified(const Endpoint& from, const Neighbour* sender,
                const ChunkMsg& msg, Outbox* out) {
    if (!chunk_key) return true;
    const ChunkCheck check = verify_chunk(*chunk_key, msg);
    if (check == ChunkCheck::kValid) return true;
    ++(check == ChunkCheck::kUnsigned ? stats.unsigned_chunks
                                      : stats.bad_signatures);
    const uint32_t culprit = from == splitter_udp ? 0 : member_at(from, sender);
    if (culprit != 0 && reported_polluters.insert(culprit).second) {
      ++stats.pollution_reports_sent;
      send_tcp(PollutedMsg{culprit, msg.number, msg.origin}, out);
    }
    return false;
  }

  void on_chunk(const Endpoint& from, const ChunkMsg& received, size_t size,
                Micros now, Outbox* out) {
    const bool from_splitter = from == splitter_udp;
    Neighbour* sender = from_splitter ? nullptr : find_neighbour_at(from);
    if (!departing.empty()) forget_departed(now);
    // Verification costs CPU: strangers are turned away before it.
    if (!from_splitter && member_at(from, sender) == 0) {
      ++stats.rejected_datagrams;
      return;
    }
    // From the group: the splitter's, with the origin stated.
    if (multicast_rx &&
        (!from_splitter || received.origin == kImplicitOrigin)) {
      ++stats.rejected_datagrams;
      return;
    }
    ChunkMsg msg = received;
    if (msg.origin == kImplicitOrigin)
      msg.origin = implicit_origin(from, sender);
    if (msg.origin == kImplicitOrigin) {
      ++stats.rejected_datagrams;
      return;
    }
    if (!verified(from, sender, msg, out)) return;
    if (!acceptable(from, sender, msg)) {
      ++stats.rejected_datagrams;
      return;
    }
    if (sender) {
      ++sender->info.chunks_received;
      if (sender->info.lan) ++stats.chunks_from_lan;
    }
    const ChunkNumber newest_before = reorder.newest();
    const bool had_chunks = reorder.started() || reorder.fill() > 0;
    const StoredChunk chunk = store(msg, now);
    const ReorderBuffer::Insert inserted = reorder.insert(chunk, now);
    note_delivery(msg, sender, from_splitter,
                  inserted == ReorderBuffer::Insert::kAccepted);
    switch (inserted) {
      case ReorderBuffer::Insert::kDuplicate:
        ++stats.duplicates;
        if (sender) maybe_prune(*sender, msg.origin, now, out);
        return;
      case ReorderBuffer::Insert::kLate:
        ++stats.late;
        return;
      case ReorderBuffer::Insert::kTooFarAhead:
        ++stats.rejected_datagrams;
        return;
      case ReorderBuffer::Insert::kAccepted:
        break;
    }
    stats.bytes_down += size;
    stats.buffer_fill = reorder.fill();
    note_delay(msg.send_time_ms, now);
    note_loss_evidence(msg, now);
    note_accepted(chunk, now, path_of(msg.origin, from_splitter, sender));
    if (had_chunks && seq_distance(newest_before, reorder.newest()) > 1) {
      // New gaps: they become NACKable after the NACK delay, or on
      // evidence (one of our own chunks) after the grace.
      const Micros first = config.nack_delay_us != 0
                               ? nack_delay()
                               : std::min(nack_delay(), kEvidenceGraceUs);
      nack_due_us = std::min(nack_due_us, saturating_add(now, first));
    }
    const uint32_t sender_id = sender ? sender->info.id : kToSplitter;
    if (multicast_rx) note_multicast(out);
    if (from_splitter && msg.origin != id && !nacks.count(msg.number) &&
        !multicast_rx) {
      ++stats.burst_chunks;  // never flooded: the team has it already
      reorder.note_run_progress(now);
    } else if (from_splitter && msg.origin == id) {
      ++stats.chunks_from_splitter;
      // Burst mode: the previous round's queues must not pile up.
      if (any_pending()) send_all_pending(out);
      queue_for_all(chunk.datagram, now);
      if (state != PeerState::kMember)
        early_own_chunks.push_back(chunk.datagram);
    } else {
      ++(multicast_rx ? stats.chunks_from_multicast : stats.chunks_from_peers);
      relay(chunk, sender_id, now);
    }
    send_next_neighbour(out);
  }

  // A chunk came from the group: tell the splitter once.
  void note_multicast(Outbox* out) {
    stats.multicast = 1;
    // The splitter takes it from members only (before TEAM it would be a
    // message out of place): the next chunk from the group tells then.
    if (!told_multicast && state == PeerState::kMember) {
      told_multicast = true;
      send_tcp(MulticastReceivingMsg{}, out);
    }
  }

  // Bookkeeping for a chunk that entered the playout buffer.
  void note_accepted(const StoredChunk& chunk, Micros now, NeighbourPath via) {
    const ChunkMsg& msg = chunk.msg;
    recent[msg.number % recent.size()] =
        Recent{msg.number, msg.origin, chunk.datagram};
    ++accepted_count;
    auto nack = nacks.find(msg.number);
    if (nack != nacks.end()) {
      if (nack->second.next_us != UINT64_MAX) ++stats.recovered;
      nack->second.next_us = UINT64_MAX;  // kept: late answers are duplicates
      // An answer to a NACK says nothing about the origin's route to us,
      // unless nothing else ever came of it.
      auto member = members.find(msg.origin);
      if (member != members.end() &&
          member->second.path == NeighbourPath::kUnknown) {
        member->second.path = via;
      }
      return;
    }
    auto member = members.find(msg.origin);
    if (member != members.end()) {
      Member& m = member->second;
      if (m.heard) {
        m.longest_gap =
            std::max(m.longest_gap, accepted_count - m.heard_at_count);
      }
      m.heard = true;
      m.last_heard_us = now;
      m.heard_at_count = accepted_count;
      m.path = via;
    }
  }

  // ------------------------------------------------------------ relays ---

  // Route discovery: the first copy of another origin's chunk goes on to
  // the neighbours that asked for that origin.
  void relay(const StoredChunk& chunk, uint32_t sender_id, Micros now) {
    auto it = relay_to.find(chunk.msg.origin);
    if (it == relay_to.end()) return;
    for (uint32_t target : it->second) {
      Neighbour* n = find_neighbour(target);
      if (!n || target == sender_id) continue;
      queue_for(*n, chunk.datagram, now);
      ++stats.relayed;
    }
  }

  // A duplicate through a relay means the origin reaches us another way:
  // the relay is no longer needed.
  void maybe_prune(Neighbour& sender, uint32_t origin, Micros now,
                   Outbox* out) {
    if (origin == sender.info.id || origin == id || !relay_requested(origin)) {
      return;
    }
    auto [it, fresh] = sender.last_prune_us.try_emplace(origin, now);
    if (!fresh && now < saturating_add(it->second, nack_retry())) return;
    it->second = now;
    ++stats.prunes_sent;
    send_udp(sender.info.endpoint, encode_prune(PruneMsg{team_id, id, origin}),
             out);
  }

  void on_request(const Neighbour& from, uint32_t origin) {
    if (origin == id || origin == from.info.id || !members.count(origin)) {
      return;
    }
    std::vector<uint32_t>& targets = relay_to[origin];
    if (std::find(targets.begin(), targets.end(), from.info.id) ==
        targets.end()) {
      targets.push_back(from.info.id);
      count_relays();
    }
  }

  void on_prune(const Neighbour& from, uint32_t origin) {
    auto it = relay_to.find(origin);
    if (it == relay_to.end()) return;
    auto& targets = it->second;
    targets.erase(std::remove(targets.begin(), targets.end(), from.info.id),
                  targets.end());
    if (targets.empty()) relay_to.erase(it);
    count_relays();
  }

  // An origin we stopped hearing, while the rest of the team is heard: ask
  // another neighbour to relay it. Two rounds of the team must pass first,
  // so a big team's long rounds are not mistaken for silence.
  void request_missing_origins(Micros now, Outbox* out) {
    const uint64_t two_rounds = 2 * (members.size() + 1);
    if (now < saturating_add(members_heard_since_us,
                             config.relay_request_after_us) ||
        accepted_count <
            saturating_add(members_heard_since_count, two_rounds)) {
      return;  // nobody has been silent long enough
    }
    members_heard_since_us = UINT64_MAX;
    members_heard_since_count = UINT64_MAX;
    for (auto& [origin, member] : members) {
      if (now >= saturating_add(member.last_heard_us,
                                config.relay_request_after_us) &&
          accepted_count - member.heard_at_count >=
              std::max(two_rounds, 2 * member.longest_gap)) {
        request_relay(origin, member, now, out);
      }
      note_heard_bound(member.last_heard_us, member.heard_at_count);
    }
  }

  void request_relay(uint32_t origin, Member& member, Micros now, Outbox* out) {
    const Neighbour* relay = pick_relay(origin, &member.request_turn);
    if (!relay) return;
    member.relay_requested = true;
    member.last_heard_us = now;  // give the relay a period to start
    ++stats.requests_sent;
    send_udp(relay->info.endpoint,
             encode_request(RequestMsg{team_id, id, origin}), out);
  }

  void note_heard_bound(Micros heard_us, uint64_t heard_at_count) {
    members_heard_since_us = std::min(members_heard_since_us, heard_us);
    members_heard_since_count =
        std::min(members_heard_since_count, heard_at_count);
  }

  const Neighbour* pick_relay(uint32_t origin, size_t* turn) {
    for (size_t step = 0; step < neighbours.size(); ++step) {
      const Neighbour& n = neighbours[(*turn)++ % neighbours.size()];
      if (n.info.id != origin) return &n;
    }
    return nullptr;
  }

  Micros relay_check_period() const {
    return std::max<Micros>(config.relay_request_after_us / 4, 1);
  }

  // ------------------------------------------------------------ NACK -----

  // The time-based first NACK: a fixed delay if configured, else the
  // learned spread. Until it is learned, half the latency: an origin that
  // never sends (a free rider, a frozen peer) leaves no other evidence, and
  // a short or small stream may never measure enough chunks.
  Micros nack_delay() const {
    if (config.nack_delay_us != 0) return config.nack_delay_us;
    const Micros learned =
        learned_nack_delay(spread, kSpreadMarginUs, kSpreadMinSamples);
    return learned != UINT64_MAX ? learned : config.latency_us / 2;
  }
  Micros nack_retry() const {
    return std::max<Micros>(
        auto_nack_retry(config.nack_retry_us, config.latency_us), 1);
  }
  // After a neighbour was asked: its answer may wait behind a whole burst
  // in its uplink queue, so the splitter is asked only after the spread.
  Micros retry_after_neighbour() const {
    if (config.nack_delay_us != 0) return nack_retry();
    return std::max(nack_retry(), spread.value());
  }

  // A chunk that arrived on its own (not as a NACK's answer) tells how late
  // chunks come (the spread) and that earlier chunks of its origin are no
  // longer on their way: the chunk a round before it, if still missing,
  // becomes NACKable now.
  void note_loss_evidence(const ChunkMsg& msg, Micros now) {
    if (nacks.count(msg.number) != 0) return;
    spread.add(stats.chunk_delay_us, now);
    origin_newest.note(msg.origin, msg.number);
    if (config.nack_delay_us != 0 || reorder.tracked_gaps() == 0) return;
    const ChunkNumber before = msg.number - team_round();
    if (reorder.started() && seq_before(before, reorder.head())) return;
    if (!seq_before(before, reorder.newest()) || reorder.find(before)) return;
    nack_due_us = std::min(nack_due_us, saturating_add(now, kEvidenceGraceUs));
  }

  ChunkNumber team_round() const {
    return static_cast<ChunkNumber>(members.size() + 1);
  }

  // A gap's first NACK is due: evidence that it is lost, or the delay.
  bool first_nack_due(const ReorderBuffer::Gap& gap, Micros now) const {
    if (now >= saturating_add(gap.since_us, nack_delay())) return true;
    if (config.nack_delay_us != 0 ||
        now < saturating_add(gap.since_us, kEvidenceGraceUs)) {
      return false;
    }
    // Our own chunks come straight from the splitter, sooner than any
    // later chunk through another peer: missing one after the grace, it
    // is lost (and the whole team needs our copy).
    const uint32_t origin = guess_origin(gap.number);
    if (origin == id && id != 0) return true;
    return origin != 0 && origin_newest.later_than(origin, gap.number);
  }

  // Health messages; their bytes are kept apart from the chunk upload.
  void send_udp(const Endpoint& to, Bytes bytes, Outbox* out) {
    stats.control_bytes_up += bytes.size();
    egress.send(to, std::move(bytes), out);
  }

  SharedBytes held_datagram(ChunkNumber number) const {
    const Recent& r = recent[number % recent.size()];
    if (r.datagram && r.number == number) return r.datagram;
    const StoredChunk* held = reorder.find(number);
    return held ? held->datagram : nullptr;
  }

  // The splitter deals chunks round-robin, so in a steady team the origin
  // of n is the origin of n - N (or n + N), N the team size: the neighbour
  // most likely to hold n. 0 if unknown.
  uint32_t guess_origin(ChunkNumber number) const {
    const ChunkNumber team = team_round();
    for (ChunkNumber probe : {number - team, number + team}) {
      const Recent& r = recent[probe % recent.size()];
      if (r.datagram && r.number == probe) return r.origin;
    }
    return 0;
  }

  // First attempt: the likely origin, or the next neighbour in turn. A
  // chunk of our own origin only the splitter can have.
  uint32_t first_nack_target(ChunkNumber number) {
    if (neighbours.empty()) return kToSplitter;
    const uint32_t origin = guess_origin(number);
    if (origin == id) return kToSplitter;
    if (origin != 0 && find_neighbour(origin)) return origin;
    return neighbours[nack_turn++ % neighbours.size()].info.id;
  }

  void service_nacks(Micros now, Outbox* out) {
    if (config.max_nack_attempts == 0 || state != PeerState::kMember) {
      nack_due_us = UINT64_MAX;
      return;
    }
    std::map<uint32_t, std::vector<ChunkNumber>> batches;
    std::vector<ChunkNumber> first_seen;
    for (const ReorderBuffer::Gap& gap : reorder.missing(now)) {
      if (in_burst(gap.number)) continue;  // only the burst brings those
      auto it = nacks.find(gap.number);
      if (it == nacks.end()) {
        const Micros deadline = saturating_add(gap.since_us, config.latency_us);
        if (now >= deadline || !first_nack_due(gap, now)) continue;
        it = nacks.try_emplace(gap.number).first;
        it->second.deadline_us = deadline;
      }
      NackState& nack = it->second;
      if (nack.next_us > now || nack.attempts >= config.max_nack_attempts ||
          now >= nack.deadline_us) {
        continue;
      }
      const uint32_t target =
          nack.attempts == 0 ? first_nack_target(gap.number) : kToSplitter;
      if (nack.attempts == 0) first_seen.push_back(gap.number);
      ++nack.attempts;
      nack.next_us = saturating_add(
          now, target == kToSplitter ? nack_retry() : retry_after_neighbour());
      batches[target].push_back(gap.number);
    }
    for (const auto& [target, numbers] : batches) {
      send_nacks(target, numbers, out);
    }
    if (monitor && !first_seen.empty()) report_lost(first_seen, out);
    nack_due_us = next_nack_time(now);
  }

  void send_nacks(uint32_t target, const std::vector<ChunkNumber>& numbers,
                  Outbox* out) {
    const Neighbour* n =
        target == kToSplitter ? nullptr : find_neighbour(target);
    const Endpoint to = n ? n->info.endpoint : splitter_udp;
    in_batches(numbers, [&](std::vector<ChunkNumber> batch) {
      stats.nacks_sent += batch.size();
      if (!n) stats.nacks_to_splitter += batch.size();
      send_udp(to, encode_nack(NackMsg{team_id, id, std::move(batch)}), out);
    });
  }

  void report_lost(const std::vector<ChunkNumber>& numbers, Outbox* out) {
    in_batches(numbers, [&](std::vector<ChunkNumber> batch) {
      stats.lost_reports_sent += batch.size();
      send_udp(splitter_udp,
               encode_lost(LostMsg{team_id, id, token, std::move(batch)}), out);
    });
  }

  // When a missing number next needs a NACK: its first one is due a NACK
  // delay after it was seen missing, the others at their retry time.
  Micros next_nack_time(Micros now) {
    Micros next = UINT64_MAX;
    for (const ReorderBuffer::Gap& gap : reorder.missing(UINT64_MAX)) {
      if (in_burst(gap.number)) continue;
      auto it = nacks.find(gap.number);
      if (it == nacks.end()) {
        // Due by time, or evidence may be there, waiting out the grace;
        // never once the deadline passed (the gap is released as lost).
        const Micros deadline = saturating_add(gap.since_us, config.latency_us);
        const Micros due = saturating_add(gap.since_us, nack_delay());
        const Micros graced = saturating_add(gap.since_us, kEvidenceGraceUs);
        if (now >= deadline) continue;
        if (due < deadline) next = std::min(next, std::max(due, now + 1));
        if (config.nack_delay_us == 0 && graced > now && graced < deadline)
          next = std::min(next, graced);
        continue;
      }
      const NackState& nack = it->second;
      // Past its deadline a gap is only waiting to be released as lost.
      if (nack.attempts < config.max_nack_attempts &&
          nack.next_us < nack.deadline_us && now < nack.deadline_us) {
        next = std::min(next, nack.next_us);
      }
    }
    return next;
  }

  void on_nack(Neighbour& from, const NackMsg& nack, Micros now, Outbox* out) {
    for (ChunkNumber number : nack.numbers) {
      SharedBytes datagram = held_datagram(number);
      if (!datagram) continue;
      if (!from.retransmit_budget.take(now)) {
        ++stats.retransmits_limited;
        continue;
      }
      ++stats.retransmits_sent;
      stats.bytes_up += datagram->size();
      ++from.info.chunks_sent;
      egress.send(from.info.endpoint, datagram, out);
    }
  }

  void send_heartbeat(Micros now, Outbox* out) {
    last_heartbeat_us = now;
    ++stats.heartbeats_sent;
    send_udp(splitter_udp, encode_heartbeat(HeartbeatMsg{team_id, id, token}),
             out);
  }

  Micros heartbeat_due() const {
    if (state != PeerState::kMember || config.heartbeat_interval_us == 0) {
      return UINT64_MAX;
    }
    return saturating_add(last_heartbeat_us, config.heartbeat_interval_us);
  }

  void on_timers(Micros now, Outbox* out) {
    if (lan.next_due_us() <= now) probe_lan_candidates(now, out);
    if (heartbeat_due() <= now) send_heartbeat(now, out);
    if (nack_due_us <= now) service_nacks(now, out);
    if (relay_check_due_us <= now) {
      relay_check_due_us = saturating_add(now, relay_check_period());
      request_missing_origins(now, out);
    }
  }

  Micros health_deadline() const {
    if (state != PeerState::kMember) return UINT64_MAX;
    return std::min(
        {heartbeat_due(), nack_due_us, relay_check_due_us, lan.next_due_us()});
  }

  // A HELLO introduces nobody: only the splitter names members. A member's
  // HELLO from another address than the splitter named (a NAT that maps
  // each destination apart) gets a PROBE there, and the neighbour moves
  // there once a HELLO from there echoes the cookie.
  bool on_hello(const Endpoint& from, const HelloMsg& hello, Micros now,
                Outbox* out) {
    if (state != PeerState::kRegistering && state != PeerState::kMember) {
      return true;
    }
    if (hello.peer_id == id) return true;
    Neighbour* n = find_neighbour(hello.peer_id);
    if (!n) {
      note_unannounced_hello(hello.peer_id, from, now);
      return true;
    }
    if (n->info.endpoint == from) return true;
    if (!cookies.check(hello.cookie, from, hello.peer_id, now)) {
      send_probe(from, hello.peer_id, now, out);
      return true;
    }
    if (lan.matches(hello.peer_id, from)) {
      move_to_lan(*n, from, now);
      return true;
    }
    const bool silent = n->heard_us == 0 ||
                        now >= saturating_add(n->heard_us, kMoveAfterSilenceUs);
    if (!silent || !move_neighbour(*n, from, now)) ++stats.moves_refused;
    return true;
  }

  void note_unannounced_hello(uint32_t peer_id, const Endpoint& from,
                              Micros now) {
    auto& hellos = unannounced_hellos;
    hellos.erase(std::remove_if(hellos.begin(), hellos.end(),
                                [&](const UnannouncedHello& h) {
                                  return h.peer_id == peer_id ||
                                         now >=
                                             saturating_add(
                                                 h.at_us, kUnannouncedHelloUs);
                                }),
                 hellos.end());
    if (hellos.size() >= kMaxUnannouncedHellos) hellos.erase(hellos.begin());
    hellos.push_back(UnannouncedHello{peer_id, from, now});
  }

  // A member the splitter just named may have said HELLO first, from the
  // address its NAT uses towards us: probe that one too.
  void probe_early_hello(const PeerInfo& peer, Micros now, Outbox* out) {
    for (const UnannouncedHello& h : unannounced_hellos) {
      if (h.peer_id == peer.id && h.from != peer.endpoint.normalized() &&
          now < saturating_add(h.at_us, kUnannouncedHelloUs)) {
        send_probe(h.from, peer.id, now, out);
      }
    }
  }

  // PROBE: from the splitter, the cookie our REGISTER must echo; from
  // anyone else, a peer checking that HELLOs from here are ours.
  void on_probe(const Endpoint& from, const ProbeMsg& probe, Micros now,
                Outbox* out) {
    if (from == splitter_udp) {
      register_cookie = probe.cookie;
      if (state == PeerState::kRegistering || state == PeerState::kMember) {
        send_register(now, out);
      }
      return;
    }
    if (state != PeerState::kRegistering && state != PeerState::kMember) {
      return;
    }
    egress.send(from, encode_hello(HelloMsg{team_id, id, probe.cookie}), out);
  }

  void on_goodbye(const Endpoint& from, const GoodbyeMsg& bye, Micros now) {
    Neighbour* n = find_neighbour(bye.peer_id);
    if (!n || n->info.endpoint != from) return;
    forget_departed(now);
    departing.push_back(Departing{PeerInfo{bye.peer_id, from},
                                  saturating_add(now, config.latency_us)});
    remove_neighbour(bye.peer_id);
    forget_member(bye.peer_id);
  }

  bool receiving() const {
    // After a splitter shutdown the last chunks are still on their way (the
    // EOS flush and the team's forwards of it): take and forward them.
    return state == PeerState::kRegistering || state == PeerState::kMember ||
           (state == PeerState::kRemoved && draining_after_shutdown);
  }

  // After leave(): chunks the splitter sent before it heard our GOODBYE go
  // straight to everyone, so our departure costs the team nothing.
  void relay_after_leave(const Endpoint& from, const uint8_t* data, size_t size,
                         Outbox* out) {
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    const auto* chunk = msg ? std::get_if<ChunkMsg>(&*msg) : nullptr;
    if (!chunk || from != splitter_udp ||
        (chunk->origin != id && chunk->origin != kImplicitOrigin) ||
        chunk->team_id != team_id) {
      return;
    }
    auto datagram = std::make_shared<const Bytes>(data, data + size);
    for (const Endpoint& to : farewell_targets) {
      egress.send(to, datagram, out);
      ++stats.chunks_forwarded;
      stats.bytes_up += size;
    }
  }

  // With a passphrase, only sealed datagrams from key holders get through
  // (and nothing before WELCOME gave us the team's crypto).
  bool open_sealed(const uint8_t** data, size_t* size) {
    if (config.passphrase.empty()) return true;
    return auth::open_or_count(crypto.get(), data, size, &opened, &stats);
  }

  void on_udp(const Endpoint& raw_from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) {
    const Endpoint from = raw_from.normalized();
    egress.received(from, size);
    if (!open_sealed(&data, &size)) return;
    if (state == PeerState::kLeft && !farewell_targets.empty()) {
      relay_after_leave(from, data, size, out);
      return;
    }
    if (!receiving()) return;
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    if (!msg) {
      ++stats.rejected_datagrams;
      return;
    }
    if (team_of(*msg) != team_id) {
      ++stats.rejected_datagrams;
      return;
    }
    if (Neighbour* n = find_neighbour_at(from)) n->heard_us = now;
    if (!on_datagram(from, *msg, size, now, out)) {
      // Foreign team, or what only the splitter takes (REGISTER, LOST,
      // HEARTBEAT), or a peer message from a stranger.
      ++stats.rejected_datagrams;
    }
  }

  bool on_datagram(const Endpoint& from, const UdpMessage& msg, size_t size,
                   Micros now, Outbox* out) {
    if (const auto* chunk = std::get_if<ChunkMsg>(&msg)) {
      on_chunk(from, *chunk, size, now, out);
      return true;
    }
    if (multicast_rx) return false;  // only chunks come that way
    if (const auto* hello = std::get_if<HelloMsg>(&msg)) {
      return on_hello(from, *hello, now, out);
    }
    if (const auto* probe = std::get_if<ProbeMsg>(&msg)) {
      on_probe(from, *probe, now, out);
      return true;
    }
    if (const auto* bye = std::get_if<GoodbyeMsg>(&msg)) {
      on_goodbye(from, *bye, now);
      return true;
    }
    if (const auto* nack = std::get_if<NackMsg>(&msg)) {
      Neighbour* n = neighbour_at(nack->peer_id, from);
      if (n) on_nack(*n, *nack, now, out);
      return n != nullptr;
    }
    if (const auto* request = std::get_if<RequestMsg>(&msg)) {
      const Neighbour* n = neighbour_at(request->peer_id, from);
      if (n) on_request(*n, request->origin);
      return n != nullptr;
    }
    if (const auto* prune = std::get_if<PruneMsg>(&msg)) {
      const Neighbour* n = neighbour_at(prune->peer_id, from);
      if (n) on_prune(*n, prune->origin);
      return n != nullptr;
    }
    return false;
  }

  // The neighbour with this id, if the datagram comes from its endpoint.
  Neighbour* neighbour_at(uint32_t peer_id, const Endpoint& from) {
    Neighbour* n = find_neighbour_at(from);
    return n && n->info.id == peer_id ? n : nullptr;
  }

  // ------------------------------------------------------------ TCP ------

  void on_welcome(const WelcomeMsg& welcome, Micros now, Outbox* out) {
    team_id = welcome.team_id;
    id = welcome.peer_id;
    if (keys) {
      crypto = std::make_unique<auth::DatagramCrypto>(
          keys->datagram, id, (auth_flags & auth::kFlagEncrypt) != 0);
    }
    token = welcome.token;
    chunk_size = welcome.chunk_size;
    caps = welcome.caps;
    splitter_udp = splitter_tcp.with_port(welcome.splitter_udp_port);
    state = PeerState::kRegistering;
    send_register(now, out);
  }

  void on_team(const TeamMsg& team, Micros now, Outbox* out) {
    public_endpoint = team.public_endpoint;
    reorder.expect_from(burst_known ? burst_first : team.next_chunk);
    state = PeerState::kMember;
    last_heartbeat_us = now;
    relay_check_due_us = config.relay_request_after_us == 0
                             ? UINT64_MAX
                             : saturating_add(now, relay_check_period());
    push_event(PeerEvent::Kind::kJoined, id, public_endpoint);
    // Neighbours named before TEAM already have the early chunks queued.
    const size_t known_before = neighbours.size();
    for (const PeerInfo& peer : team.peers) welcome_member(peer, now, out);
    for (size_t i = known_before; i < neighbours.size(); ++i) {
      for (const SharedBytes& datagram : early_own_chunks) {
        queue_for(neighbours[i], datagram, now);
      }
    }
    early_own_chunks.clear();
  }

  // A member the splitter named: a neighbour, greeted (the HELLO opens our
  // NAT towards it, and tells it where we are if our NAT maps each
  // destination apart).
  void welcome_member(const PeerInfo& peer, Micros now, Outbox* out) {
    add_neighbour(peer, now);
    const Neighbour* n = find_neighbour(peer.id);
    if (!n) return;
    egress.send(n->info.endpoint, encode_hello(HelloMsg{team_id, id, 0}), out);
    probe_early_hello(peer, now, out);
  }

  void end_with(PeerEvent::Kind kind, RemoveReason reason,
                const std::string& text) {
    PeerEvent event;
    event.kind = kind;
    event.reason = reason;
    event.text = text;
    events.push_back(std::move(event));
  }

  void fail_auth(const std::string& text) {
    state = PeerState::kRemoved;
    end_with(PeerEvent::Kind::kRemoved, RemoveReason::kAuth, text);
  }

  // Derives the keys with the splitter's salt and proves we know them.
  void on_challenge(const ChallengeMsg& challenge, Outbox* out) {
    keys.emplace();
    if (!auth::derive_keys(config.passphrase, challenge.salt, &*keys)) {
      keys.reset();
      fail_auth("passphrase key derivation failed (out of memory?)");
      return;
    }
    auth_flags = challenge.flags;
    splitter_nonce = challenge.nonce;
    salt = challenge.salt;
    peer_nonce = auth::random_array<sizeof(auth::Nonce)>();
    const AuthMsg reply{peer_nonce, mac_of(auth::Role::kPeer)};
    out->tcp.push_back(TcpSend{0, encode_tcp(reply)});
  }
  auth::Mac mac_of(auth::Role role) const {
    return auth::handshake_mac(keys->handshake, role, salt, splitter_nonce,
                               peer_nonce, auth_flags);
  }

  void on_proof(const ProofMsg& proof) {
    if (!auth::verify_mac(mac_of(auth::Role::kSplitter), proof.mac)) {
      fail_auth("the splitter could not prove it knows the passphrase");
      return;
    }
    splitter_proved = true;
    channel = std::make_unique<auth::ChannelCrypto>(
        keys->handshake, splitter_nonce, peer_nonce, auth::Role::kPeer);
  }

  // Handshake steps of an authenticated join; false if msg is not one.
  bool on_auth_message(const TcpMessage& msg, Outbox* out) {
    if (config.passphrase.empty() || state != PeerState::kJoining) return false;
    if (const auto* c = std::get_if<ChallengeMsg>(&msg); c && !keys) {
      on_challenge(*c, out);
      return true;
    }
    if (const auto* p = std::get_if<ProofMsg>(&msg);
        p && keys && !splitter_proved) {
      on_proof(*p);
      return true;
    }
    if (std::holds_alternative<WelcomeMsg>(msg) && !splitter_proved) {
      // No challenge: an open team. Joining it would leak the stream's
      // protection the user asked for.
      fail_auth("splitter has no passphrase but one was set");
      return true;
    }
    return false;
  }

  void on_tcp_message(const TcpMessage& msg, Micros now, Outbox* out) {
    if (on_auth_message(msg, out)) return;
    if (const auto* key = std::get_if<ChunkKeyMsg>(&msg);
        key && state == PeerState::kJoining && !chunk_key &&
        (config.passphrase.empty() || splitter_proved)) {
      // Comes before WELCOME (after PROOF in an authenticated team): no
      // chunk can arrive unchecked.
      chunk_key = key->key;
      stats.signed_team = 1;
    } else if (const auto* welcome = std::get_if<WelcomeMsg>(&msg);
               welcome && state == PeerState::kJoining) {
      // A splitter speaking another version would frame chunks we can't read.
      if (welcome->version != kProtocolVersion) {
        state = PeerState::kRemoved;
        end_with(PeerEvent::Kind::kProtocolError, RemoveReason::kVersion,
                 "the splitter speaks protocol version " +
                     std::to_string(welcome->version) + ", this peer speaks " +
                     std::to_string(kProtocolVersion));
        return;
      }
      on_welcome(*welcome, now, out);
    } else if (const auto* burst = std::get_if<BurstMsg>(&msg);
               burst && state == PeerState::kRegistering && config.join_burst) {
      on_burst(*burst, now);
    } else if (const auto* team = std::get_if<TeamMsg>(&msg);
               team && state == PeerState::kRegistering) {
      on_team(*team, now, out);
    } else if (const auto* joined = std::get_if<PeerJoinedMsg>(&msg);
               joined && receiving()) {
      welcome_member(joined->peer, now, out);
    } else if (const auto* group = std::get_if<MulticastMsg>(&msg);
               group && receiving()) {
      multicast_group = group->group.normalized();
      push_event(PeerEvent::Kind::kMulticastGroup, 0, multicast_group);
    } else if (const auto* member = std::get_if<MulticastMemberMsg>(&msg);
               member && receiving()) {
      if (member->peer_id != id &&
          multicast_origins.size() < kMaxMulticastOrigins) {
        multicast_origins.insert(member->peer_id);
      }
    } else if (const auto* local = std::get_if<PeerLocalMsg>(&msg);
               local && receiving()) {
      on_peer_local(*local, now, out);
    } else if (const auto* left = std::get_if<PeerLeftMsg>(&msg);
               left && receiving()) {
      remove_neighbour(left->peer_id);
      forget_member(left->peer_id);
    } else if (const auto* role = std::get_if<RoleMsg>(&msg);
               role && receiving()) {
      monitor = (role->flags & kFlagMonitor) != 0;
      stats.monitor = monitor ? 1 : 0;
    } else if (const auto* removed = std::get_if<RemovedMsg>(&msg)) {
      draining_after_shutdown = state == PeerState::kMember &&
                                removed->reason == RemoveReason::kShutdown;
      state = PeerState::kRemoved;
      end_with(PeerEvent::Kind::kRemoved, removed->reason, removed->text);
    } else if (const auto* reject = std::get_if<RejectMsg>(&msg)) {
      state = PeerState::kRemoved;
      end_with(PeerEvent::Kind::kRemoved, reject->reason, reject->text);
    } else {
      end_with(PeerEvent::Kind::kProtocolError, RemoveReason::kProtocolError,
               "unexpected message from the splitter");
    }
  }

  bool unseal(TcpMessage* msg) {
    const auto* sealed = std::get_if<SealedMsg>(msg);
    std::optional<TcpMessage> inner;
    if (sealed) inner = channel->open(*sealed);
    if (!inner) return false;
    *msg = std::move(*inner);
    return true;
  }

  // Everything to the splitter after PROOF is sealed.
  void send_tcp(const TcpMessage& msg, Outbox* out) {
    Bytes framed = encode_tcp(msg);
    if (channel) framed = channel->seal(framed);
    out->tcp.push_back(TcpSend{0, std::move(framed)});
  }

  void on_tcp_data(const uint8_t* data, size_t size, Micros now, Outbox* out) {
    tcp_reader.feed(data, size);
    TcpMessage msg;
    for (;;) {
      switch (tcp_reader.next(&msg)) {
        case TcpReader::Status::kNeedMore:
          return;
        case TcpReader::Status::kError:
          end_with(PeerEvent::Kind::kProtocolError,
                   RemoveReason::kProtocolError,
                   "malformed data from the splitter");
          return;
        case TcpReader::Status::kMessage:
          if (channel && !unseal(&msg)) {
            end_with(PeerEvent::Kind::kProtocolError,
                     RemoveReason::kProtocolError,
                     "a control message from the splitter failed "
                     "authentication");
            return;
          }
          on_tcp_message(msg, now, out);
          break;
      }
    }
  }

  // ------------------------------------------------------------ playout --

  // Before the first start point (docs/protocol.md 7.2, 7.3): headers pass,
  // the rest waits for a keyframe, or for start_timeout_us after the first
  // buffer, when it starts at the next buffer boundary marked DISCONT.
  bool pass_closed_gate(MediaBuffer* buffer, Micros now) {
    if (start.phase == PeerStartState::Phase::kNotYet) {
      start.phase = PeerStartState::Phase::kWaiting;
      start.waiting_since_us = now;
      start.timeout_us = config.start_timeout_us;
    }
    const bool is_header = buffer->flags & MediaBuffer::kHeader;
    const bool timed_out =
        config.start_timeout_us > 0 &&
        now >= saturating_add(start.waiting_since_us, config.start_timeout_us);
    if (!buffer->is_keyframe() && !is_header && !timed_out) {
      carry_discont |= (buffer->flags & MediaBuffer::kDiscont) != 0;
      ++start.dropped_buffers;
      start.dropped_bytes += buffer->data.size();
      return false;
    }
    if (is_header && !buffer->is_keyframe()) return true;
    seen_keyframe = true;
    start.phase = PeerStartState::Phase::kStarted;
    start.started_us = now;
    start.by_timeout = !buffer->is_keyframe();
    if (start.by_timeout) buffer->flags |= MediaBuffer::kDiscont;
    return true;
  }

  // Applies the late joiner keyframe gate; false drops the item.
  bool pass_gate(StreamItem* item, Micros now) {
    if (item->kind == StreamItem::Kind::kCaps) return true;
    MediaBuffer& buffer = item->buffer;
    // Header buffers always pass (the element decides whether they repeat
    // the caps' streamheader); delta units wait for the first keyframe.
    if (!seen_keyframe && !pass_closed_gate(&buffer, now)) return false;
    if (carry_discont) {
      buffer.flags |= MediaBuffer::kDiscont;
      carry_discont = false;
    }
    return true;
  }

  // Moves the next released chunk (or gap) into the deframer.
  bool feed_deframer(Micros now) {
    ReorderBuffer::Slot slot;
    if (!reorder.pop(now, &slot)) return false;
    nacks.erase(slot.number);
    if (slot.lost) {
      ++stats.lost;
      deframer.push_gap();
    } else {
      ++stats.played;
      const ChunkMsg& msg = slot.chunk.msg;
      deframer.push_chunk(msg.payload, msg.payload_size,
                          msg.first_frame_offset);
    }
    return true;
  }

  bool pop_item(Micros now, StreamItem* out) {
    for (;;) {
      while (deframer.pop(out)) {
        if (pass_gate(out, now)) {
          stats.buffer_fill = reorder.fill();
          return true;
        }
      }
      if (!feed_deframer(now)) break;
    }
    stats.buffer_fill = reorder.fill();
    return false;
  }
};

Peer::Peer(const PeerConfig& config, const Endpoint& splitter)
    : impl_(std::make_unique<Impl>(config, splitter)) {}

Peer::~Peer() = default;

void Peer::start(Micros now, Outbox* out) {
  (void)now;
  JoinMsg join;
  join.flags = impl_->config.monitor ? kFlagMonitor : 0;
  if (!impl_->config.passphrase.empty()) join.flags |= kFlagAuth;
  if (impl_->config.join_burst) join.flags |= kFlagBurst;
  if (impl_->config.upload_limit_bps >= 0) {
    // In kb/s on the wire, rounded up: a limit is never stated as 0 unless
    // it is 0.
    const uint64_t kbps = (impl_->config.upload_limit_bps + 999) / 1000;
    join.flags |= kFlagUploadLimit;
    join.upload_limit_kbps = static_cast<uint32_t>(
        std::min<uint64_t>(kbps, std::numeric_limits<uint32_t>::max()));
  }
  for (const Endpoint& e : impl_->config.local_endpoints) {
    if (join.local_endpoints.size() == kMaxLocalEndpoints) break;
    if (e.valid()) join.local_endpoints.push_back(e.normalized());
  }
  if (!join.local_endpoints.empty()) join.flags |= kFlagLocalEndpoints;
  impl_->stats.monitor = impl_->monitor ? 1 : 0;
  out->tcp.push_back(TcpSend{0, encode_tcp(join)});
  impl_->state = PeerState::kJoining;
}

void Peer::on_tcp_data(const uint8_t* data, size_t size, Micros now,
                       Outbox* out) {
  impl_->on_tcp_data(data, size, now, out);
}

void Peer::on_tcp_closed(Micros now, Outbox* out) {
  (void)now;
  (void)out;
  if (impl_->state != PeerState::kRemoved) impl_->state = PeerState::kLeft;
}

void Peer::on_udp(const Endpoint& from, const uint8_t* data, size_t size,
                  Micros now, Outbox* out) {
  impl_->on_udp(from, data, size, now, out);
}

void Peer::on_multicast(const Endpoint& from, const uint8_t* data, size_t size,
                        Micros now, Outbox* out) {
  if (!impl_->multicast_group.valid()) return;
  impl_->multicast_rx = true;
  impl_->on_udp(from, data, size, now, out);
  impl_->multicast_rx = false;
}

void Peer::tick(Micros now, Outbox* out) {
  if (impl_->state == PeerState::kRegistering &&
      saturating_add(impl_->last_register_us,
                     impl_->config.register_retry_us) <= now) {
    impl_->send_register(now, out);
  }
  if (impl_->receiving()) impl_->send_overdue(now, out);
  if (impl_->state == PeerState::kMember) impl_->on_timers(now, out);
}

Micros Peer::next_deadline() const {
  Micros deadline = impl_->reorder.next_deadline_us();
  if (impl_->state == PeerState::kRegistering) {
    deadline =
        std::min(deadline, saturating_add(impl_->last_register_us,
                                          impl_->config.register_retry_us));
  }
  if (impl_->receiving())
    deadline = std::min(deadline, impl_->forward_deadline());
  return std::min(deadline, impl_->health_deadline());
}

void Peer::leave(Micros now, Outbox* out) {
  (void)now;
  // Before WELCOME the splitter has nothing to forget: closing is enough.
  if (impl_->receiving()) {
    impl_->send_all_pending(out);
    const auto bye = std::make_shared<const Bytes>(
        encode_goodbye(GoodbyeMsg{impl_->team_id, impl_->id}));
    for (const Impl::Neighbour& n : impl_->neighbours) {
      impl_->egress.send(n.info.endpoint, bye, out);
      impl_->farewell_targets.push_back(n.info.endpoint);
    }
    impl_->send_tcp(TcpGoodbyeMsg{}, out);
  }
  if (impl_->state != PeerState::kRemoved) impl_->state = PeerState::kLeft;
}

bool Peer::pop_item(Micros now, StreamItem* out) {
  return impl_->pop_item(now, out);
}

PeerState Peer::state() const { return impl_->state; }
bool Peer::monitor() const { return impl_->monitor; }
uint32_t Peer::id() const { return impl_->id; }
uint32_t Peer::team_id() const { return impl_->team_id; }
const std::string& Peer::welcome_caps() const { return impl_->caps; }
uint32_t Peer::chunk_size() const { return impl_->chunk_size; }
Endpoint Peer::public_endpoint() const { return impl_->public_endpoint; }

std::vector<PeerEvent> Peer::take_events() {
  std::vector<PeerEvent> events;
  events.swap(impl_->events);
  return events;
}

const PeerStartState& Peer::start_state() const { return impl_->start; }

const PeerStats& Peer::stats() const {
  impl_->stats.amplification_limited = impl_->egress.stats().limited;
  impl_->count_paths();
  return impl_->stats;
}

std::vector<NeighbourInfo> Peer::neighbours() const {
  std::vector<NeighbourInfo> result;
  for (const Impl::Neighbour& n : impl_->neighbours) {
    NeighbourInfo info = n.info;
    auto member = impl_->members.find(info.id);
    if (member != impl_->members.end()) info.path = member->second.path;
    for (const auto& [origin, targets] : impl_->relay_to) {
      if (std::find(targets.begin(), targets.end(), info.id) != targets.end()) {
        info.relayed_origins.push_back(origin);
      }
    }
    std::sort(info.relayed_origins.begin(), info.relayed_origins.end());
    result.push_back(std::move(info));
  }
  return result;
}

void Peer::set_latency_us(Micros latency_us) {
  impl_->config.latency_us = latency_us;
  impl_->reorder.set_hold_us(latency_us);
}

}  // namespace p2psp
