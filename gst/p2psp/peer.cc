// gst-p2psp: the peer state machine (sans-I/O).
#include <gst/p2psp/framing.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/reorder.h>

#include <algorithm>
#include <unordered_map>
#include <variant>

namespace p2psp {

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace

struct Peer::Impl {
  struct Neighbour {
    NeighbourInfo info;
    // Datagrams to forward, as received: DBS floods the very bytes the
    // splitter sent, so nothing is re-encoded.
    std::vector<SharedBytes> pending;
    Micros pending_since_us = 0;
  };

  Impl(const PeerConfig& c, const Endpoint& splitter)
      : config(c),
        splitter_tcp(splitter.normalized()),
        reorder(c.buffer_chunks, c.latency_us) {}

  PeerConfig config;
  Endpoint splitter_tcp;
  Endpoint splitter_udp;
  PeerState state = PeerState::kIdle;
  uint32_t team_id = 0;
  uint32_t id = 0;
  uint64_t token = 0;
  uint32_t chunk_size = 0;
  std::string caps;
  Endpoint public_endpoint;
  Micros last_register_us = 0;

  TcpReader tcp_reader;
  // Round-robin order of the DBS trigger.
  std::vector<Neighbour> neighbours;
  size_t next_neighbour = 0;
  std::unordered_map<Endpoint, size_t, EndpointHash> index_by_endpoint;
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

  bool delay_known = false;
  int32_t min_delay_ms = 0;

  PeerStats stats;
  std::vector<PeerEvent> events;

  // ------------------------------------------------------------ helpers --

  Neighbour* find_neighbour(uint32_t peer_id) {
    for (Neighbour& n : neighbours) {
      if (n.info.id == peer_id) return &n;
    }
    return nullptr;
  }

  // Every datagram needs this lookup, so it must not grow with the team.
  Neighbour* find_neighbour_at(const Endpoint& endpoint) {
    auto it = index_by_endpoint.find(endpoint);
    return it == index_by_endpoint.end() ? nullptr : &neighbours[it->second];
  }

  void reindex() {
    index_by_endpoint.clear();
    for (size_t i = 0; i < neighbours.size(); ++i) {
      index_by_endpoint[neighbours[i].info.endpoint] = i;
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

  void add_neighbour(const PeerInfo& peer) {
    if (peer.id == id || find_neighbour(peer.id) || find_departing(peer.id)) {
      return;
    }
    Neighbour n;
    n.info.id = peer.id;
    n.info.endpoint = peer.endpoint.normalized();
    if (find_neighbour_at(n.info.endpoint)) {
      // The splitter says a new peer holds this endpoint: the old holder
      // is gone even if its PEER_LEFT is still on the way.
      remove_neighbour(find_neighbour_at(n.info.endpoint)->info.id);
    }
    index_by_endpoint[n.info.endpoint] = neighbours.size();
    neighbours.push_back(std::move(n));
    stats.neighbours = neighbours.size();
    push_event(PeerEvent::Kind::kNeighbourAdded, peer.id, peer.endpoint);
  }

  void remove_neighbour(uint32_t peer_id) {
    auto it =
        std::find_if(neighbours.begin(), neighbours.end(),
                     [&](const Neighbour& n) { return n.info.id == peer_id; });
    if (it == neighbours.end()) return;
    const Endpoint endpoint = it->info.endpoint;
    const size_t index = static_cast<size_t>(it - neighbours.begin());
    neighbours.erase(it);
    reindex();
    // Keep the trigger on the neighbour that followed the removed one.
    if (index < next_neighbour) --next_neighbour;
    stats.neighbours = neighbours.size();
    push_event(PeerEvent::Kind::kNeighbourRemoved, peer_id, endpoint);
  }

  void send_register(Micros now, Outbox* out) {
    out->udp.push_back(UdpSend{
        splitter_udp, std::make_shared<const Bytes>(
                          encode_register(RegisterMsg{team_id, id, token}))});
    last_register_us = now;
  }

  // ------------------------------------------------------------ DBS ------

  // Sends a neighbour everything pending for it. Returns false when the
  // neighbour was dropped for exceeding the chunk debt.
  bool send_pending(size_t index, Outbox* out) {
    Neighbour& n = neighbours[index];
    std::vector<SharedBytes> batch;
    batch.swap(n.pending);
    for (const SharedBytes& datagram : batch) {
      out->udp.push_back(UdpSend{n.info.endpoint, datagram});
      ++n.info.debt;
      ++n.info.chunks_sent;
      ++stats.chunks_forwarded;
      stats.bytes_up += datagram->size();
      // A neighbour that takes but never gives is unreachable or a freeloader.
      if (n.info.debt > static_cast<int64_t>(config.max_chunk_debt)) {
        remove_neighbour(n.info.id);
        return false;
      }
    }
    return true;
  }

  void send_all_pending(Outbox* out) {
    for (size_t i = 0; i < neighbours.size();) {
      if (send_pending(i, out)) ++i;
    }
  }

  bool any_pending() const {
    return std::any_of(neighbours.begin(), neighbours.end(),
                       [](const Neighbour& n) { return !n.pending.empty(); });
  }

  static void queue_for(Neighbour& n, const SharedBytes& datagram, Micros now) {
    if (n.pending.empty()) n.pending_since_us = now;
    n.pending.push_back(datagram);
  }

  void queue_for_all(const SharedBytes& datagram, Micros now) {
    for (Neighbour& n : neighbours) queue_for(n, datagram, now);
  }

  // The DBS trigger: each received chunk releases one neighbour's queue, so
  // a peer's upload follows its download.
  void send_next_neighbour(Outbox* out) {
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
    for (size_t i = 0; i < neighbours.size();) {
      const Neighbour& n = neighbours[i];
      const bool overdue =
          !n.pending.empty() &&
          saturating_add(n.pending_since_us, config.forward_flush_us) <= now;
      if (!overdue || send_pending(i, out)) ++i;
    }
  }

  Micros forward_deadline() const {
    Micros earliest = UINT64_MAX;
    for (const Neighbour& n : neighbours) {
      if (n.pending.empty()) continue;
      earliest = std::min(earliest, saturating_add(n.pending_since_us,
                                                   config.forward_flush_us));
    }
    return earliest;
  }

  // ------------------------------------------------------------ chunks ---

  void note_delay(uint32_t send_time_ms, Micros now) {
    const int32_t delay_ms =
        static_cast<int32_t>(static_cast<uint32_t>(now / 1000) - send_time_ms);
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

  StoredChunk store(const ChunkMsg& msg, const uint8_t* data, size_t size,
                    Micros now) {
    auto copy = std::make_shared<const Bytes>(data, data + size);
    StoredChunk chunk;
    chunk.msg = msg;
    chunk.msg.payload = copy->data() + (msg.payload - data);
    chunk.datagram = std::move(copy);
    chunk.arrival_us = now;
    return chunk;
  }

  bool from_departing(const Endpoint& from, uint32_t origin) const {
    const PeerInfo* p = find_departing(origin);
    return p && p->endpoint == from;
  }

  void on_chunk(const Endpoint& from, const ChunkMsg& msg, const uint8_t* data,
                size_t size, Micros now, Outbox* out) {
    const bool from_splitter = from == splitter_udp && msg.origin == id;
    Neighbour* sender = from_splitter ? nullptr : find_neighbour_at(from);
    const bool from_neighbour = sender && sender->info.id == msg.origin;
    if (!departing.empty()) forget_departed(now);
    if (!from_splitter && !from_neighbour &&
        !from_departing(from, msg.origin)) {
      ++stats.rejected_datagrams;
      return;
    }
    if (!from_neighbour) sender = nullptr;
    if (sender) {
      --sender->info.debt;
      ++sender->info.chunks_received;
    }
    const StoredChunk chunk = store(msg, data, size, now);
    switch (reorder.insert(chunk, now)) {
      case ReorderBuffer::Insert::kDuplicate:
        ++stats.duplicates;
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
    if (from_splitter) {
      ++stats.chunks_from_splitter;
      // Burst mode: the previous round's queues must not pile up.
      if (any_pending()) send_all_pending(out);
      queue_for_all(chunk.datagram, now);
      if (state != PeerState::kMember)
        early_own_chunks.push_back(chunk.datagram);
    } else {
      ++stats.chunks_from_peers;
    }
    send_next_neighbour(out);
  }

  void on_hello(const Endpoint& from, const HelloMsg& hello) {
    if (state != PeerState::kRegistering && state != PeerState::kMember) return;
    if (hello.peer_id == id) return;
    // An endpoint already bound to another peer id is not taken over on
    // an unauthenticated datagram; the splitter's PEER_LEFT frees it.
    if (find_neighbour(hello.peer_id) || find_neighbour_at(from)) return;
    add_neighbour(PeerInfo{hello.peer_id, from});
  }

  void on_goodbye(const Endpoint& from, const GoodbyeMsg& bye, Micros now) {
    Neighbour* n = find_neighbour(bye.peer_id);
    if (!n || n->info.endpoint != from) return;
    forget_departed(now);
    departing.push_back(Departing{PeerInfo{bye.peer_id, from},
                                  saturating_add(now, config.latency_us)});
    remove_neighbour(bye.peer_id);
  }

  bool receiving() const {
    return state == PeerState::kRegistering || state == PeerState::kMember;
  }

  // After leave(): chunks the splitter sent before it heard our GOODBYE go
  // straight to everyone, so our departure costs the team nothing.
  void relay_after_leave(const Endpoint& from, const uint8_t* data, size_t size,
                         Outbox* out) {
    const std::optional<UdpMessage> msg = decode_udp(data, size);
    const auto* chunk = msg ? std::get_if<ChunkMsg>(&*msg) : nullptr;
    if (!chunk || from != splitter_udp || chunk->origin != id ||
        chunk->team_id != team_id) {
      return;
    }
    auto datagram = std::make_shared<const Bytes>(data, data + size);
    for (const Endpoint& to : farewell_targets) {
      out->udp.push_back(UdpSend{to, datagram});
      ++stats.chunks_forwarded;
      stats.bytes_up += size;
    }
  }

  void on_udp(const Endpoint& raw_from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) {
    const Endpoint from = raw_from.normalized();
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
    if (const auto* chunk = std::get_if<ChunkMsg>(&*msg)) {
      if (chunk->team_id == team_id) {
        on_chunk(from, *chunk, data, size, now, out);
        return;
      }
    } else if (const auto* hello = std::get_if<HelloMsg>(&*msg)) {
      if (hello->team_id == team_id) {
        on_hello(from, *hello);
        return;
      }
    } else if (const auto* bye = std::get_if<GoodbyeMsg>(&*msg)) {
      if (bye->team_id == team_id) {
        on_goodbye(from, *bye, now);
        return;
      }
    }
    // Foreign team, or a REGISTER, which only the splitter takes.
    ++stats.rejected_datagrams;
  }

  // ------------------------------------------------------------ TCP ------

  void on_welcome(const WelcomeMsg& welcome, Micros now, Outbox* out) {
    team_id = welcome.team_id;
    id = welcome.peer_id;
    token = welcome.token;
    chunk_size = welcome.chunk_size;
    caps = welcome.caps;
    splitter_udp = splitter_tcp.with_port(welcome.splitter_udp_port);
    state = PeerState::kRegistering;
    send_register(now, out);
  }

  void on_team(const TeamMsg& team, Micros now, Outbox* out) {
    public_endpoint = team.public_endpoint;
    state = PeerState::kMember;
    push_event(PeerEvent::Kind::kJoined, id, public_endpoint);
    const HelloMsg hello{team_id, id};
    const auto hello_bytes = std::make_shared<const Bytes>(encode_hello(hello));
    // Neighbours that said HELLO first already have the early chunks queued.
    const size_t known_before = neighbours.size();
    for (const PeerInfo& peer : team.peers) {
      add_neighbour(peer);
      out->udp.push_back(UdpSend{peer.endpoint.normalized(), hello_bytes});
    }
    for (size_t i = known_before; i < neighbours.size(); ++i) {
      for (const SharedBytes& datagram : early_own_chunks) {
        queue_for(neighbours[i], datagram, now);
      }
    }
    early_own_chunks.clear();
  }

  void end_with(PeerEvent::Kind kind, RemoveReason reason,
                const std::string& text) {
    PeerEvent event;
    event.kind = kind;
    event.reason = reason;
    event.text = text;
    events.push_back(std::move(event));
  }

  void on_tcp_message(const TcpMessage& msg, Micros now, Outbox* out) {
    if (const auto* welcome = std::get_if<WelcomeMsg>(&msg);
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
    } else if (const auto* team = std::get_if<TeamMsg>(&msg);
               team && state == PeerState::kRegistering) {
      on_team(*team, now, out);
    } else if (const auto* joined = std::get_if<PeerJoinedMsg>(&msg);
               joined && receiving()) {
      add_neighbour(joined->peer);
    } else if (const auto* left = std::get_if<PeerLeftMsg>(&msg);
               left && receiving()) {
      remove_neighbour(left->peer_id);
    } else if (const auto* removed = std::get_if<RemovedMsg>(&msg)) {
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
          on_tcp_message(msg, now, out);
          break;
      }
    }
  }

  // ------------------------------------------------------------ playout --

  // Applies the late joiner keyframe gate; false drops the item.
  bool pass_gate(StreamItem* item) {
    if (item->kind == StreamItem::Kind::kCaps) return true;
    MediaBuffer& buffer = item->buffer;
    const bool is_header = buffer.flags & MediaBuffer::kHeader;
    if (!seen_keyframe && !is_header) {
      if (!buffer.is_keyframe()) {
        carry_discont |= (buffer.flags & MediaBuffer::kDiscont) != 0;
        return false;
      }
      seen_keyframe = true;
    }
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
        if (pass_gate(out)) {
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
  out->tcp.push_back(TcpSend{0, encode_tcp(JoinMsg{})});
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

void Peer::tick(Micros now, Outbox* out) {
  if (impl_->state == PeerState::kRegistering &&
      saturating_add(impl_->last_register_us,
                     impl_->config.register_retry_us) <= now) {
    impl_->send_register(now, out);
  }
  if (impl_->receiving()) impl_->send_overdue(now, out);
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
  return deadline;
}

void Peer::leave(Micros now, Outbox* out) {
  (void)now;
  // Before WELCOME the splitter has nothing to forget: closing is enough.
  if (impl_->receiving()) {
    impl_->send_all_pending(out);
    const auto bye = std::make_shared<const Bytes>(
        encode_goodbye(GoodbyeMsg{impl_->team_id, impl_->id}));
    for (const Impl::Neighbour& n : impl_->neighbours) {
      out->udp.push_back(UdpSend{n.info.endpoint, bye});
      impl_->farewell_targets.push_back(n.info.endpoint);
    }
    out->tcp.push_back(TcpSend{0, encode_tcp(TcpGoodbyeMsg{})});
  }
  if (impl_->state != PeerState::kRemoved) impl_->state = PeerState::kLeft;
}

bool Peer::pop_item(Micros now, StreamItem* out) {
  return impl_->pop_item(now, out);
}

PeerState Peer::state() const { return impl_->state; }
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

const PeerStats& Peer::stats() const { return impl_->stats; }

std::vector<NeighbourInfo> Peer::neighbours() const {
  std::vector<NeighbourInfo> result;
  for (const Impl::Neighbour& n : impl_->neighbours) result.push_back(n.info);
  return result;
}

void Peer::set_latency_us(Micros latency_us) {
  impl_->config.latency_us = latency_us;
  impl_->reorder.set_hold_us(latency_us);
}

}  // namespace p2psp
