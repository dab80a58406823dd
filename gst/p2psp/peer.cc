// gst-p2psp: the peer state machine (sans-I/O). Peer::Impl composes the
// modules that own each concern and routes what arrives to them:
//   peer_session.h     state, ids, the splitter's addresses, events
//   peer_tx.h          the one drain point for everything sent
//   peer_auth.h        authenticated join, sealing
//   peer_neighbours.h  the neighbour table and its indexes
//   peer_flood.h       DBS: forwarding queues, trigger, flush, chunk debt
//   peer_paths.h       PROBE cookies, endpoint moves, LAN endpoints
//   peer_health.h      members heard, heartbeats, departures
//   peer_relay.h       route discovery (REQUEST / PRUNE)
//   peer_nack.h        loss recovery (NACK, LOST, retransmissions)
//   peer_playout.h     reorder buffer, join burst, deframer, start gate
// What stays here: chunk admission (origin, signature, who may send what),
// multicast, and the TCP and UDP dispatch.
#include <gst/p2psp/bytes_pool.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_auth.h>
#include <gst/p2psp/peer_flood.h>
#include <gst/p2psp/peer_health.h>
#include <gst/p2psp/peer_nack.h>
#include <gst/p2psp/peer_neighbours.h>
#include <gst/p2psp/peer_paths.h>
#include <gst/p2psp/peer_playout.h>
#include <gst/p2psp/peer_relay.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/peer_tx.h>
#include <gst/p2psp/seq.h>
#include <gst/p2psp/signing.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <optional>
#include <unordered_set>
#include <variant>

namespace p2psp {

namespace {

uint32_t team_of(const UdpMessage& msg) {
  return std::visit([](const auto& m) { return m.team_id; }, msg);
}

// Bounds the members remembered as receiving the multicast group.
constexpr size_t kMaxMulticastOrigins = 4096;

}  // namespace

struct Peer::Impl {
  Impl(const PeerConfig& c, const Endpoint& splitter)
      : config(c),
        auth(c.passphrase),
        tx([this](const Endpoint& e) { return is_validated(e); }, auth.crypto(),
           auth.channel(), &stats),
        flood(&config, &table, &tx, &stats,
              [this](uint32_t peer_id) { remove_neighbour(peer_id); }),
        health(&config, &session, &tx, &stats),
        playout(&config, &stats),
        nack(&config, &session, &table, &health, &playout, &tx, &stats),
        relay(&config, &session, &table, &health, &flood, &tx, &stats),
        paths(&config, &session, &table, &auth, &tx, &stats) {
    session.splitter_tcp = splitter.normalized();
  }

  PeerConfig config;
  PeerSession session;
  PeerStats stats;
  PeerAuth auth;
  PeerTx tx;
  NeighbourTable table;
  PeerFlood flood;
  PeerHealth health;
  PeerPlayout playout;
  PeerNack nack;
  PeerRelay relay;
  PeerPaths paths;
  // Where received chunks are kept, recycled (bytes_pool.h).
  BytesPool datagrams;
  std::deque<ChunkLoss> losses;  // not taken yet (take_losses)

  TcpReader tcp_reader;
  uint32_t chunk_size = 0;
  std::string caps;
  Endpoint public_endpoint;
  Micros last_register_us = 0;
  uint64_t register_cookie = 0;  // the splitter's latest PROBE, echoed
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
  // After leave(): where chunks the splitter still sends us are relayed.
  std::vector<Endpoint> farewell_targets;
  // Splitter chunks that arrived before TEAM named the neighbours; they are
  // queued for them once TEAM arrives, or the team would never get them.
  std::vector<SharedBytes> early_own_chunks;
  // ROLE asked us to echo each own chunk after a quarter of its flood.
  bool echo_chunks = false;
  // The team has flood checks: ROLE asked for echoes once (a later ROLE
  // stops the echoes of a proven member, not the re-dealt floods).
  bool flood_checks = false;
  // What the reorder buffer made of the latest chunk offered to it.
  ReorderBuffer::Insert last_insert = ReorderBuffer::Insert::kAccepted;

  // ------------------------------------------------------------ team -----

  // Addresses that asked for our datagrams: the splitter we connected to,
  // members the splitter validated (or we did, by PROBE), and, after
  // leave(), the neighbours we had.
  bool is_validated(const Endpoint& e) const {
    if (e == session.splitter_udp || table.has_endpoint(e)) return true;
    return std::find(farewell_targets.begin(), farewell_targets.end(), e) !=
           farewell_targets.end();
  }

  // Members come from the splitter only (TEAM, PEER_JOINED): it validated
  // their endpoints. A known id at a new endpoint is a NAT rebinding the
  // splitter proved.
  void add_neighbour(const PeerInfo& peer, Micros now) {
    if (Neighbour* known = table.find(peer.id)) {
      // Its NAT's mapping changed, not its address on our LAN.
      if (!known->info.lan) {
        paths.move(*known, peer.endpoint.normalized(), now);
      }
      return;
    }
    if (peer.id == session.id || health.find_departing(peer.id)) return;
    Neighbour n;
    n.info.id = peer.id;
    n.info.endpoint = peer.endpoint.normalized();
    n.retransmit_budget =
        TokenBucket(config.retransmit_rate, config.retransmit_burst, now);
    if (const Neighbour* holder = table.find_at(n.info.endpoint)) {
      // The splitter says a new peer holds this endpoint: the old holder
      // is gone even if its PEER_LEFT is still on the way.
      const uint32_t old_id = holder->info.id;
      remove_neighbour(old_id);
      forget_member(old_id);
    }
    health.add_member(peer.id, now);
    table.append(std::move(n));
    stats.neighbours = table.size();
    session.push_event(PeerEvent::Kind::kNeighbourAdded, peer.id,
                       peer.endpoint);
  }

  void remove_neighbour(uint32_t peer_id) {
    size_t index = 0;
    Neighbour gone;
    if (!table.erase(peer_id, &index, &gone)) return;
    flood.on_removed(index, !gone.pending.empty());
    paths.forget(peer_id);
    stats.neighbours = table.size();
    session.push_event(PeerEvent::Kind::kNeighbourRemoved, peer_id,
                       gone.info.endpoint);
  }

  // The peer left the team: no chunks of its origin are expected any more,
  // and nobody needs them relayed.
  void forget_member(uint32_t peer_id) {
    health.members.erase(peer_id);
    nack.forget_origin(peer_id);
    multicast_origins.erase(peer_id);
    relay.forget_member(peer_id);
  }

  void send_register(Micros now, Outbox* out) {
    tx.datagram(session.splitter_udp,
                encode_register(RegisterMsg{session.team_id, session.id,
                                            session.token, register_cookie}),
                out);
    last_register_us = now;
  }

  // ------------------------------------------------------------ chunks ---

  // The copy kept (and sent on) is the datagram as this peer sends it: the
  // origin left out for our own chunks (our neighbours take it from us),
  // stated for everyone else's (relays and NACK answers come from us).
  StoredChunk store(const ChunkMsg& msg, Micros now) {
    std::shared_ptr<Bytes> buffer = datagrams.take();
    encode_chunk(msg, msg.origin == session.id ? kImplicitOrigin : msg.origin,
                 buffer.get());
    SharedBytes copy = std::move(buffer);
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
    const PeerInfo* p = health.find_departing(origin);
    return p && p->endpoint == from;
  }

  // The origin a chunk without one has: us when the splitter sends it, its
  // sender otherwise; kImplicitOrigin if the sender is a stranger.
  uint32_t implicit_origin(const Endpoint& from,
                           const Neighbour* sender) const {
    if (from == session.splitter_udp) return session.id;
    if (sender) return sender->info.id;
    const PeerInfo* leaving = health.departing_at(from);
    return leaving ? leaving->id : kImplicitOrigin;
  }

  // Join burst (7.4): the splitter sends [burst_first, burst_end) with the
  // origins stated. Its first datagrams may overtake BURST (UDP against
  // TCP), so until BURST or TEAM arrives any such chunk from the splitter
  // counts as one (the splitter's endpoint is trusted as for our own).
  bool burst_chunk(ChunkNumber n) const {
    if (!config.join_burst) return false;
    if (session.state == PeerState::kRegistering && !playout.burst_known()) {
      return true;
    }
    return playout.in_burst(n);
  }

  // Who may send us a chunk of another origin: the splitter or any
  // neighbour when we NACKed that number, any neighbour when we asked for
  // that origin to be relayed, and in a team with flood checks (ROLE asked
  // for echoes) a neighbour flooding a chunk the splitter re-dealt to it:
  // only there can a neighbour name any origin (docs/security.md).
  bool acceptable(const Endpoint& from, const Neighbour* sender,
                  const ChunkMsg& msg) const {
    const bool nacked = nack.nacked(msg.number);
    if (from == session.splitter_udp) {
      return msg.origin == session.id || nacked || multicast_rx ||
             burst_chunk(msg.number) || msg.flood;
    }
    if (sender) {
      return msg.origin == sender->info.id || nacked ||
             health.relay_requested(msg.origin) || (msg.flood && flood_checks);
    }
    return from_departing(from, msg.origin);
  }

  // The member a datagram came from (a neighbour, or one that just said
  // GOODBYE), 0 for anyone else.
  uint32_t member_at(const Endpoint& from, const Neighbour* sender) const {
    if (sender) return sender->info.id;
    const PeerInfo* leaving = health.departing_at(from);
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
    const uint32_t culprit =
        from == session.splitter_udp ? 0 : member_at(from, sender);
    if (culprit != 0 && reported_polluters.insert(culprit).second) {
      ++stats.pollution_reports_sent;
      tx.tcp(PollutedMsg{culprit, msg.number, msg.origin}, out);
    }
    return false;
  }

  // Whether a chunk may enter the playout buffer at all; its origin is
  // filled in when the datagram left it out.
  bool admit(const Endpoint& from, const Neighbour* sender, ChunkMsg* msg,
             Outbox* out) {
    const bool from_splitter = from == session.splitter_udp;
    // Verification costs CPU: strangers are turned away before it.
    if (!from_splitter && member_at(from, sender) == 0) {
      ++stats.rejected_datagrams;
      return false;
    }
    // From the group: the splitter's, with the origin stated.
    if (multicast_rx && (!from_splitter || msg->origin == kImplicitOrigin)) {
      ++stats.rejected_datagrams;
      return false;
    }
    if (msg->origin == kImplicitOrigin)
      msg->origin = implicit_origin(from, sender);
    if (msg->origin == kImplicitOrigin) {
      ++stats.rejected_datagrams;
      return false;
    }
    if (!verified(from, sender, *msg, out)) return false;
    if (!acceptable(from, sender, *msg)) {
      ++stats.rejected_datagrams;
      return false;
    }
    return true;
  }

  void on_chunk(const Endpoint& from, const ChunkMsg& received, size_t size,
                Micros now, Outbox* out) {
    const bool from_splitter = from == session.splitter_udp;
    Neighbour* sender = from_splitter ? nullptr : table.find_at(from);
    if (health.any_departing()) health.forget_departed(now);
    ChunkMsg msg = received;
    if (!admit(from, sender, &msg, out)) return;
    if (sender) {
      ++sender->info.chunks_received;
      if (sender->info.lan) ++stats.chunks_from_lan;
    }
    const ReorderBuffer& reorder = playout.reorder;
    const ChunkNumber newest_before = reorder.newest();
    const bool had_chunks = reorder.started() || reorder.fill() > 0;
    const StoredChunk chunk = store(msg, now);
    const bool accepted = insert(chunk, sender, now, out);
    note_delivery(msg, sender, from_splitter, accepted);
    if (from_splitter && msg.flood) flood_for_origin(chunk, now, out);
    if (!accepted) return;
    stats.bytes_down += size;
    stats.buffer_fill = reorder.fill();
    playout.note_delay(msg.send_time_ms, now);
    // A re-dealt chunk comes late and out of its origin's order: it says
    // nothing of how late chunks come nor of what is lost.
    if (!msg.flood) nack.note_loss_evidence(msg, now);
    note_accepted(chunk, now, path_of(msg.origin, from_splitter, sender),
                  sender ? sender->info.id : 0);
    if (had_chunks && seq_distance(newest_before, reorder.newest()) > 1) {
      nack.note_new_gaps(now);
    }
    pass_on(chunk, from_splitter, sender, now, out);
    flood.send_next_neighbour(out);
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
    if (!accepted || msg.origin == session.id ||
        (from_splitter && (multicast_rx || burst_chunk(msg.number)))) {
      return;
    }
    if (Neighbour* origin = table.find(msg.origin)) ++origin->info.debt;
  }

  // Where our floods are echoed (protocol.md 10.7): invalid when ROLE did
  // not ask, or before TEAM named the neighbours (the chunks that came
  // before it are echoed when they are queued for them).
  Endpoint echo_to() const {
    return echo_chunks && session.state == PeerState::kMember
               ? session.splitter_udp
               : Endpoint();
  }

  // A chunk the splitter re-dealt us (flag FLOOD, protocol.md 10.7): its
  // origin did not echo it in time, so we flood it to everyone but the
  // origin, stating the origin, even if a copy reached us already (the
  // others may still lack it), but not once it is too late to play.
  void flood_for_origin(const StoredChunk& chunk, Micros now, Outbox* out) {
    if (last_insert != ReorderBuffer::Insert::kAccepted &&
        last_insert != ReorderBuffer::Insert::kDuplicate) {
      return;
    }
    ++stats.floods_for_others;
    const uint32_t origin = chunk.msg.origin;
    // The stored copy is what we send as NACK answers and relays: FLOOD
    // marks only these copies, so that nobody floods them further.
    auto datagram =
        std::make_shared<const Bytes>(encode_flood_chunk(chunk.msg, origin));
    flood.queue_for_all(datagram, now, [origin](uint32_t peer_id) {
      return peer_id == origin;
    });
    flood.send_next_neighbour(out);
  }

  // Into the playout buffer; false if it was not taken.
  bool insert(const StoredChunk& chunk, Neighbour* sender, Micros now,
              Outbox* out) {
    last_insert = playout.reorder.insert(chunk, now);
    switch (last_insert) {
      case ReorderBuffer::Insert::kDuplicate:
        ++stats.duplicates;
        if (sender) {
          relay.maybe_prune(*sender, chunk.msg.origin, nack.retry(), now, out);
        }
        return false;
      case ReorderBuffer::Insert::kLate:
        ++stats.late;
        return false;
      case ReorderBuffer::Insert::kTooFarAhead:
        ++stats.rejected_datagrams;
        return false;
      case ReorderBuffer::Insert::kAccepted:
        break;
    }
    return true;
  }

  // Bookkeeping for a chunk that entered the playout buffer.
  void note_accepted(const StoredChunk& chunk, Micros now, NeighbourPath via,
                     uint32_t sender) {
    const bool answered_nack =
        nack.on_accepted(chunk, via == NeighbourPath::kSplitter);
    ++health.accepted_count;
    // A re-dealt chunk, like a NACK's answer, shows no route to its origin:
    // route discovery would ask a neighbour to relay that origin's chunks,
    // and the splitter re-deals them to the whole team already.
    health.note_accepted(chunk.msg.origin, now, via, sender,
                         answered_nack || chunk.msg.flood);
  }

  NeighbourPath path_of(uint32_t origin, bool from_splitter,
                        const Neighbour* sender) const {
    if (multicast_rx) return NeighbourPath::kMulticast;
    if (from_splitter) return NeighbourPath::kSplitter;
    if (!sender) return NeighbourPath::kRelayed;  // a departing member
    if (sender->info.id != origin) return NeighbourPath::kRelayed;
    if (sender->info.lan) return NeighbourPath::kLan;
    return sender->info.predicted ? NeighbourPath::kPredicted
                                  : NeighbourPath::kDirect;
  }

  // What an accepted chunk goes on to: our own ones to every neighbour
  // (DBS), others' to the neighbours that asked for a relay; the burst and
  // NACK answers from the splitter nowhere (the team has them already).
  void pass_on(const StoredChunk& chunk, bool from_splitter,
               const Neighbour* sender, Micros now, Outbox* out) {
    const ChunkMsg& msg = chunk.msg;
    const uint32_t sender_id = sender ? sender->info.id : 0;
    if (multicast_rx) note_multicast(out);
    if (from_splitter && msg.flood) return;  // flooded already
    if (from_splitter && msg.origin != session.id && !nack.nacked(msg.number) &&
        !multicast_rx) {
      ++stats.burst_chunks;  // never flooded: the team has it already
      playout.reorder.note_run_progress(now);
    } else if (from_splitter && msg.origin == session.id) {
      ++stats.chunks_from_splitter;
      // Burst mode: the previous round's queues must not pile up.
      if (flood.any_pending()) flood.send_all_pending(out);
      // Our own chunk from the group went to every member receiving it:
      // the flood is for the others only.
      flood.queue_for_all(
          chunk.datagram, now,
          [this](uint32_t peer_id) {
            return multicast_rx && multicast_origins.count(peer_id) != 0;
          },
          echo_to(), out);
      if (session.state != PeerState::kMember)
        early_own_chunks.push_back(chunk.datagram);
    } else {
      if (multicast_rx) {
        ++stats.chunks_from_multicast;
      } else if (from_splitter) {
        ++stats.nack_answers_from_splitter;
      } else {
        ++stats.chunks_from_peers;
      }
      if (!msg.flood) relay.relay(chunk, sender_id, now);
    }
  }

  // A chunk came from the group: tell the splitter once.
  void note_multicast(Outbox* out) {
    stats.multicast = 1;
    // The splitter takes it from members only (before TEAM it would be a
    // message out of place): the next chunk from the group tells then.
    if (!told_multicast && session.state == PeerState::kMember) {
      told_multicast = true;
      tx.tcp(MulticastReceivingMsg{}, out);
    }
  }

  // ------------------------------------------------------------ UDP ------

  // PROBE: from the splitter, the cookie our REGISTER must echo; from
  // anyone else, a peer checking that HELLOs from here are ours.
  void on_probe(const Endpoint& from, const ProbeMsg& probe, Micros now,
                Outbox* out) {
    if (from == session.splitter_udp) {
      register_cookie = probe.cookie;
      if (session.joined()) send_register(now, out);
      return;
    }
    paths.answer_probe(from, probe, out);
  }

  void on_goodbye(const Endpoint& from, const GoodbyeMsg& bye, Micros now) {
    Neighbour* n = table.find(bye.peer_id);
    if (!n || n->info.endpoint != from) return;
    health.note_departing(PeerInfo{bye.peer_id, from}, now);
    remove_neighbour(bye.peer_id);
    forget_member(bye.peer_id);
  }

  // After leave(): chunks the splitter sent before it heard our GOODBYE go
  // straight to everyone, so our departure costs the team nothing.
  void relay_after_leave(const Endpoint& from, const uint8_t* data, size_t size,
                         Outbox* out) {
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    const auto* chunk = msg ? std::get_if<ChunkMsg>(&*msg) : nullptr;
    if (!chunk || from != session.splitter_udp ||
        (chunk->origin != session.id && chunk->origin != kImplicitOrigin) ||
        chunk->team_id != session.team_id) {
      return;
    }
    auto datagram = std::make_shared<const Bytes>(data, data + size);
    for (const Endpoint& to : farewell_targets) {
      tx.datagram(to, datagram, out);
      ++stats.chunks_forwarded;
      stats.bytes_up += size;
    }
  }

  void on_udp(const Endpoint& raw_from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) {
    const Endpoint from = raw_from.normalized();
    tx.egress().received(from, size);
    if (!auth.open_datagram(&data, &size, &stats)) return;
    if (session.state == PeerState::kLeft && !farewell_targets.empty()) {
      relay_after_leave(from, data, size, out);
      return;
    }
    if (!session.receiving()) return;
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    if (!msg || team_of(*msg) != session.team_id) {
      ++stats.rejected_datagrams;
      return;
    }
    // A PROBE asks us to prove our address; it does not show that the
    // prober takes what we send. Counting it as heard ended our HELLO
    // repeats while the echo it started could still be lost, leaving a
    // pair across a symmetric NAT apart for good (protocol.md 3, step 6).
    if (!std::holds_alternative<ProbeMsg>(*msg)) {
      if (Neighbour* n = table.find_at(from)) n->heard_us = now;
    }
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
      paths.on_hello(from, *hello, now, out);
      return true;
    }
    if (const auto* probe = std::get_if<ProbeMsg>(&msg)) {
      on_probe(from, *probe, now, out);
      return true;
    }
    if (const auto* bye = std::get_if<GoodbyeMsg>(&msg)) {
      on_goodbye(from, *bye, now);
      return true;
    }
    return on_neighbour_request(from, msg, now, out);
  }

  // NACK, REQUEST, PRUNE: taken from a neighbour at its own endpoint only.
  bool on_neighbour_request(const Endpoint& from, const UdpMessage& msg,
                            Micros now, Outbox* out) {
    if (const auto* nack_msg = std::get_if<NackMsg>(&msg)) {
      Neighbour* n = table.find_sender(nack_msg->peer_id, from);
      if (n) nack.on_nack(*n, *nack_msg, now, out);
      return n != nullptr;
    }
    if (const auto* request = std::get_if<RequestMsg>(&msg)) {
      const Neighbour* n = table.find_sender(request->peer_id, from);
      if (n) relay.on_request(*n, request->origin, now);
      return n != nullptr;
    }
    if (const auto* prune = std::get_if<PruneMsg>(&msg)) {
      const Neighbour* n = table.find_sender(prune->peer_id, from);
      if (n) relay.on_prune(*n, prune->origin);
      return n != nullptr;
    }
    return false;
  }

  // ------------------------------------------------------------ timers ---

  void on_timers(Micros now, Outbox* out) {
    if (paths.due() <= now) paths.service(now, out);
    if (health.heartbeat_due() <= now) health.send_heartbeat(now, out);
    if (nack.due() <= now) nack.service(now, out);
    relay.check(now, out);
  }

  Micros health_deadline() const {
    if (session.state != PeerState::kMember) return UINT64_MAX;
    return std::min(
        {health.heartbeat_due(), nack.due(), relay.check_due(), paths.due()});
  }

  // ------------------------------------------------------------ TCP ------

  void on_welcome(const WelcomeMsg& welcome, Micros now, Outbox* out) {
    session.team_id = welcome.team_id;
    session.id = welcome.peer_id;
    auth.on_welcome(session.id);
    session.token = welcome.token;
    chunk_size = welcome.chunk_size;
    caps = welcome.caps;
    session.splitter_udp =
        session.splitter_tcp.with_port(welcome.splitter_udp_port);
    session.state = PeerState::kRegistering;
    send_register(now, out);
  }

  void on_team(const TeamMsg& team, Micros now, Outbox* out) {
    public_endpoint = team.public_endpoint;
    playout.reorder.expect_from(playout.burst_known() ? playout.burst_first()
                                                      : team.next_chunk);
    // Chunks may have come for a while (TEAM is a TCP segment, which a loss
    // delays by a retransmission timeout, 200 ms or more), but only a
    // member asks for what is missing: their hold starts now.
    playout.reorder.hold_from(now);
    session.state = PeerState::kMember;
    health.on_joined(now);
    relay.on_joined(now);
    if (playout.reorder.tracked_gaps() > 0) nack.note_new_gaps(now);
    session.push_event(PeerEvent::Kind::kJoined, session.id, public_endpoint);
    // Neighbours named before TEAM already have the early chunks queued.
    const size_t known_before = table.size();
    for (const PeerInfo& peer : team.peers) welcome_member(peer, now, out);
    for (const SharedBytes& datagram : early_own_chunks) {
      const auto echo = flood.echo_after(table.size() - known_before, echo_to(),
                                         datagram, out);
      for (size_t i = known_before; i < table.size(); ++i) {
        flood.queue_for(table[i], datagram, now, echo);
      }
    }
    early_own_chunks.clear();
  }

  // A member the splitter named: a neighbour, greeted (the HELLO opens our
  // NAT towards it, and tells it where we are if our NAT maps each
  // destination apart).
  void welcome_member(const PeerInfo& peer, Micros now, Outbox* out) {
    add_neighbour(peer, now);
    const Neighbour* n = table.find(peer.id);
    if (!n) return;
    paths.greet(*n, now, out);
    paths.probe_early_hello(peer, now, out);
  }

  void fail_auth(const std::string& text) {
    session.state = PeerState::kRemoved;
    session.end_with(PeerEvent::Kind::kRemoved, RemoveReason::kAuth, text);
  }

  // Handshake steps of an authenticated join; false if msg is not one.
  bool on_auth_message(const TcpMessage& msg, Outbox* out) {
    if (!auth.enabled() || session.state != PeerState::kJoining) return false;
    std::string failure;
    const bool handled = auth.on_message(msg, &tx, out, &failure);
    if (!failure.empty()) fail_auth(failure);
    return handled;
  }

  void on_tcp_message(const TcpMessage& msg, Micros now, Outbox* out) {
    if (on_auth_message(msg, out) || on_join_message(msg, now, out)) return;
    if (session.receiving() && on_member_message(msg, now, out)) return;
    if (const auto* removed = std::get_if<RemovedMsg>(&msg)) {
      session.draining_after_shutdown =
          session.state == PeerState::kMember &&
          removed->reason == RemoveReason::kShutdown;
      session.state = PeerState::kRemoved;
      session.end_with(PeerEvent::Kind::kRemoved, removed->reason,
                       removed->text);
    } else if (const auto* reject = std::get_if<RejectMsg>(&msg)) {
      session.state = PeerState::kRemoved;
      session.end_with(PeerEvent::Kind::kRemoved, reject->reason, reject->text);
    } else {
      session.end_with(PeerEvent::Kind::kProtocolError,
                       RemoveReason::kProtocolError,
                       "unexpected message from the splitter");
    }
  }

  // CHUNK_KEY, WELCOME, BURST, TEAM, each in the join step it belongs to.
  bool on_join_message(const TcpMessage& msg, Micros now, Outbox* out) {
    const PeerState state = session.state;
    if (const auto* key = std::get_if<ChunkKeyMsg>(&msg);
        key && state == PeerState::kJoining && !chunk_key &&
        (!auth.enabled() || auth.splitter_proved())) {
      // Comes before WELCOME (after PROOF in an authenticated team): no
      // chunk can arrive unchecked.
      chunk_key = key->key;
      stats.signed_team = 1;
    } else if (const auto* welcome = std::get_if<WelcomeMsg>(&msg);
               welcome && state == PeerState::kJoining) {
      // A splitter speaking another version would frame chunks we can't read.
      if (welcome->version != kProtocolVersion) {
        session.state = PeerState::kRemoved;
        session.end_with(
            PeerEvent::Kind::kProtocolError, RemoveReason::kVersion,
            "the splitter speaks protocol version " +
                std::to_string(welcome->version) + ", this peer speaks " +
                std::to_string(kProtocolVersion));
        return true;
      }
      on_welcome(*welcome, now, out);
    } else if (const auto* burst = std::get_if<BurstMsg>(&msg);
               burst && state == PeerState::kRegistering && config.join_burst) {
      playout.on_burst(*burst, now);
    } else if (const auto* team = std::get_if<TeamMsg>(&msg);
               team && state == PeerState::kRegistering) {
      on_team(*team, now, out);
    } else {
      return false;
    }
    return true;
  }

  // Team changes, taken while receiving.
  bool on_member_message(const TcpMessage& msg, Micros now, Outbox* out) {
    if (const auto* joined = std::get_if<PeerJoinedMsg>(&msg)) {
      const bool known = table.contains(joined->peer.id);
      welcome_member(joined->peer, now, out);
      const Neighbour* n = table.find(joined->peer.id);
      if (!known && n) paths.predict(*n, public_endpoint, now);
    } else if (const auto* group = std::get_if<MulticastMsg>(&msg)) {
      multicast_group = group->group.normalized();
      session.push_event(PeerEvent::Kind::kMulticastGroup, 0, multicast_group);
    } else if (const auto* member = std::get_if<MulticastMemberMsg>(&msg)) {
      if (member->peer_id != session.id &&
          multicast_origins.size() < kMaxMulticastOrigins) {
        multicast_origins.insert(member->peer_id);
      }
    } else if (const auto* local = std::get_if<PeerLocalMsg>(&msg)) {
      paths.on_peer_local(*local, now, out);
    } else if (const auto* left = std::get_if<PeerLeftMsg>(&msg)) {
      remove_neighbour(left->peer_id);
      forget_member(left->peer_id);
    } else if (const auto* role = std::get_if<RoleMsg>(&msg)) {
      health.monitor = (role->flags & kFlagMonitor) != 0;
      echo_chunks = (role->flags & kRoleFlagEcho) != 0;
      flood_checks = flood_checks || echo_chunks;
      if (echo_chunks && (role->flags & kRoleFlagEchoFloodEnd) != 0 &&
          !stats.echoes_sent) {
        flood.ask_flood_end_echo();
      }
      stats.monitor = health.monitor ? 1 : 0;
    } else {
      return false;
    }
    return true;
  }

  void on_tcp_data(const uint8_t* data, size_t size, Micros now, Outbox* out) {
    tcp_reader.feed(data, size);
    TcpMessage msg;
    for (;;) {
      switch (tcp_reader.next(&msg)) {
        case TcpReader::Status::kNeedMore:
          return;
        case TcpReader::Status::kError:
          session.end_with(PeerEvent::Kind::kProtocolError,
                           RemoveReason::kProtocolError,
                           "malformed data from the splitter");
          return;
        case TcpReader::Status::kMessage:
          if (auth.channel_open() && !auth.unseal(&msg)) {
            session.end_with(PeerEvent::Kind::kProtocolError,
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

  void note_loss(ChunkNumber number) {
    if (losses.size() == Peer::kMaxLossRecords) losses.pop_front();
    losses.push_back(nack.describe_loss(number));
  }

  bool pop_item(Micros now, StreamItem* out) {
    // Until TEAM names the first number and lets us recover gaps, nothing
    // is played and nothing is given up on.
    if (session.state == PeerState::kRegistering) return false;
    for (;;) {
      if (playout.pop_framed(now, out)) {
        stats.buffer_fill = playout.reorder.fill();
        return true;
      }
      ChunkNumber released = 0;
      const uint64_t lost_before = stats.lost;
      if (!playout.feed_deframer(now, &released)) break;
      if (stats.lost != lost_before) note_loss(released);
      nack.forget(released);
    }
    stats.buffer_fill = playout.reorder.fill();
    return false;
  }
};

Peer::Peer(const PeerConfig& config, const Endpoint& splitter)
    : impl_(std::make_unique<Impl>(config, splitter)) {}

Peer::~Peer() = default;

void Peer::start(Micros now, Outbox* out) {
  (void)now;
  const PeerConfig& config = impl_->config;
  JoinMsg join;
  join.flags = config.monitor ? kFlagMonitor : 0;
  if (!config.passphrase.empty()) join.flags |= kFlagAuth;
  if (config.join_burst) join.flags |= kFlagBurst;
  join.flags |= kFlagEcho;  // we echo and flood when the splitter asks
  if (config.upload_limit_bps >= 0) {
    // In kb/s on the wire, rounded up: a limit is never stated as 0 unless
    // it is 0.
    const uint64_t kbps = (config.upload_limit_bps + 999) / 1000;
    join.flags |= kFlagUploadLimit;
    join.upload_limit_kbps = static_cast<uint32_t>(
        std::min<uint64_t>(kbps, std::numeric_limits<uint32_t>::max()));
  }
  for (const Endpoint& e : config.local_endpoints) {
    if (join.local_endpoints.size() == kMaxLocalEndpoints) break;
    if (e.valid()) join.local_endpoints.push_back(e.normalized());
  }
  if (!join.local_endpoints.empty()) join.flags |= kFlagLocalEndpoints;
  impl_->stats.monitor = impl_->health.monitor ? 1 : 0;
  impl_->tx.tcp(join, out);
  impl_->session.state = PeerState::kJoining;
}

void Peer::on_tcp_data(const uint8_t* data, size_t size, Micros now,
                       Outbox* out) {
  impl_->on_tcp_data(data, size, now, out);
}

void Peer::on_tcp_closed(Micros now, Outbox* out) {
  (void)now;
  (void)out;
  PeerSession& session = impl_->session;
  if (session.state != PeerState::kRemoved) session.state = PeerState::kLeft;
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
  const PeerSession& session = impl_->session;
  if (session.state == PeerState::kRegistering &&
      saturating_add(impl_->last_register_us,
                     impl_->config.register_retry_us) <= now) {
    impl_->send_register(now, out);
  }
  if (session.receiving()) impl_->flood.send_overdue(now, out);
  if (session.state == PeerState::kMember) impl_->on_timers(now, out);
}

Micros Peer::next_deadline() const {
  Micros deadline = impl_->playout.reorder.next_deadline_us();
  if (impl_->session.state == PeerState::kRegistering) {
    deadline = saturating_add(impl_->last_register_us,
                              impl_->config.register_retry_us);
  }
  if (impl_->session.receiving())
    deadline = std::min(deadline, impl_->flood.forward_deadline());
  return std::min(deadline, impl_->health_deadline());
}

void Peer::leave(Micros now, Outbox* out) {
  (void)now;
  PeerSession& session = impl_->session;
  // Before WELCOME the splitter has nothing to forget: closing is enough.
  if (session.receiving()) {
    impl_->flood.send_all_pending(out);
    const auto bye = std::make_shared<const Bytes>(
        encode_goodbye(GoodbyeMsg{session.team_id, session.id}));
    for (const Neighbour& n : impl_->table) {
      impl_->tx.datagram(n.info.endpoint, bye, out);
      impl_->farewell_targets.push_back(n.info.endpoint);
    }
    impl_->tx.tcp(TcpGoodbyeMsg{}, out);
  }
  if (session.state != PeerState::kRemoved) session.state = PeerState::kLeft;
}

bool Peer::pop_item(Micros now, StreamItem* out) {
  return impl_->pop_item(now, out);
}

PeerState Peer::state() const { return impl_->session.state; }
bool Peer::monitor() const { return impl_->health.monitor; }
uint32_t Peer::id() const { return impl_->session.id; }
uint32_t Peer::team_id() const { return impl_->session.team_id; }
const std::string& Peer::welcome_caps() const { return impl_->caps; }
uint32_t Peer::chunk_size() const { return impl_->chunk_size; }
Endpoint Peer::public_endpoint() const { return impl_->public_endpoint; }

std::vector<PeerEvent> Peer::take_events() {
  std::vector<PeerEvent> events;
  events.swap(impl_->session.events);
  return events;
}

std::vector<ChunkLoss> Peer::take_losses() {
  std::vector<ChunkLoss> losses(impl_->losses.begin(), impl_->losses.end());
  impl_->losses.clear();
  return losses;
}

const PeerStartState& Peer::start_state() const {
  return impl_->playout.start_state();
}

const PeerStats& Peer::stats() const {
  impl_->stats.amplification_limited = impl_->tx.egress().stats().limited;
  impl_->health.count_paths();
  return impl_->stats;
}

std::vector<NeighbourInfo> Peer::neighbours() const {
  std::vector<NeighbourInfo> result;
  for (const Neighbour& n : impl_->table) {
    NeighbourInfo info = n.info;
    info.path = impl_->health.path_of(info.id);
    info.relayed_origins = impl_->relay.origins_relayed_to(info.id);
    result.push_back(std::move(info));
  }
  return result;
}

void Peer::set_latency_us(Micros latency_us) {
  impl_->config.latency_us = latency_us;
  impl_->playout.reorder.set_hold_us(latency_us);
}

}  // namespace p2psp
