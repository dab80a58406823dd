// Fuzz target: the peer state machine, fed a random sequence of events: the
// splitter's TCP messages (WELCOME, TEAM, BURST, PEER_JOINED, PEER_LEFT, ROLE,
// REMOVED, REJECT, anything out of place, truncated or raw bytes, a close),
// chunk datagrams carrying a real framed stream (from the splitter for our
// origin, from neighbours for theirs, replays from anyone), control
// datagrams (HELLO, GOODBYE, NACK, REQUEST, PRUNE) from random endpoints,
// raw datagrams, ticks with an advancing clock, playout, latency changes and
// leaving.
//
// Invariants checked after every call:
//  - every datagram it sends is a well-formed one of its team, and every
//    chunk datagram it sends is byte for byte one it received (a peer relays,
//    it never makes chunks up);
//  - what it writes to the splitter decodes, and is JOIN or GOODBYE only;
//  - chunk datagrams sent, in total, stay within (chunk datagrams received)
//    x (neighbours it ever had + 1) + NACKed numbers: no amplification;
//  - every counter in stats() only grows; the playout buffer holds at most
//    buffer_chunks; stats().neighbours matches neighbours();
//  - items played out are at most kMaxFrameSize.
#include <gst/p2psp/egress.h>
#include <gst/p2psp/framing.h>
#include <gst/p2psp/lan.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/predict.h>

#include <deque>
#include <map>
#include <set>

#include "fuzz_util.h"

using namespace p2psp;
using namespace p2psp::fuzz;

namespace {

#define CHECK_GROWS(field) FUZZ_CHECK(now.field >= before.field)
void check_stats(const PeerStats& before, const PeerStats& now) {
  CHECK_GROWS(chunks_from_splitter);
  CHECK_GROWS(chunks_from_peers);
  CHECK_GROWS(nack_answers_from_splitter);
  CHECK_GROWS(chunks_forwarded);
  CHECK_GROWS(duplicates);
  CHECK_GROWS(late);
  CHECK_GROWS(lost);
  CHECK_GROWS(played);
  CHECK_GROWS(bytes_up);
  CHECK_GROWS(bytes_down);
  CHECK_GROWS(rejected_datagrams);
  CHECK_GROWS(chunk_delay_max_us);
  CHECK_GROWS(heartbeats_sent);
  CHECK_GROWS(control_bytes_up);
  CHECK_GROWS(nacks_sent);
  CHECK_GROWS(nacks_to_splitter);
  CHECK_GROWS(recovered);
  CHECK_GROWS(lost_reports_sent);
  CHECK_GROWS(retransmits_sent);
  CHECK_GROWS(retransmits_limited);
  CHECK_GROWS(relayed);
  CHECK_GROWS(requests_sent);
  CHECK_GROWS(prunes_sent);
}
#undef CHECK_GROWS

constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;

// Team members live at 10.0.0.<id>:(4550 + id), ids 2..8; id 1 is ours
// unless WELCOME says otherwise, and 10.0.0.1 is the splitter.
Endpoint member_endpoint(uint32_t id) {
  return Endpoint::ipv4(10, 0, 0, static_cast<uint8_t>(id),
                        static_cast<uint16_t>(4550 + id));
}

class Harness {
 public:
  Harness(const PeerConfig& config, FuzzedDataProvider& fdp)
      : config_(config),
        peer_(config, Endpoint::ipv4(10, 0, 0, 1, kSplitterTcpPort)),
        fdp_(fdp),
        framer_(fdp.ConsumeIntegralInRange<size_t>(1, 1400)) {}

  void run() {
    Outbox out;
    peer_.start(now_, &out);
    after(out);
    while (fdp_.remaining_bytes() > 0) step();
  }

 private:
  PeerConfig config_;
  Peer peer_;
  FuzzedDataProvider& fdp_;
  Framer framer_;
  Micros now_ = 5000000;
  uint32_t team_id_ = 0x1234;  // what our WELCOMEs say
  uint32_t my_id_ = 1;
  ChunkNumber next_chunk_ = 0;         // next number for a framed chunk
  std::deque<ChunkPayload> payloads_;  // framed, not yet sent
  std::vector<Bytes> sent_to_peer_;    // chunk datagrams we delivered
  std::set<Bytes> delivered_chunks_;
  TcpReader to_splitter_;
  std::set<uint32_t> neighbour_ids_ever_;
  std::map<Endpoint, uint64_t> received_;
  std::map<Endpoint, uint64_t> sent_to_strangers_;
  // PROBE bytes a PEER_LOCAL naming the endpoint, or a PEER_JOINED naming
  // one a few ports below it (port prediction), may draw there.
  std::map<Endpoint, uint64_t> lan_credit_;
  bool told_multicast_ = false;  // MULTICAST_RECEIVING seen
  TcpReader from_splitter_;      // what tcp_in fed the peer, decoded
  static constexpr uint64_t kLanProbeCredit =
      LanCandidates::kAttempts * (24 + auth::kSealOverhead);  // PROBE: 24 B
  // Port prediction (protocol.md 3.3): a newcomer PEER_JOINED names may draw
  // a PROBE per round to each of the ports above its own, on its address.
  static constexpr uint64_t kPredictProbeCredit =
      PortPredictions::kRounds * (24 + auth::kSealOverhead);

  void credit_predicted_ports(const Endpoint& named) {
    const Endpoint base = named.normalized();
    for (const Endpoint& e :
         predicted_endpoints(base, PortPredictions::kMaxWindow)) {
      lan_credit_[e.normalized()] += kPredictProbeCredit;
    }
  }

  // Where the peer may send freely: the neighbours the splitter named
  // (before or after the call: leave() keeps them); the splitter's host is
  // let through in check_validation.
  std::set<Endpoint> validated() const {
    std::set<Endpoint> endpoints;
    for (const NeighbourInfo& n : peer_.neighbours())
      endpoints.insert(n.endpoint);
    return endpoints;
  }

  // Chunks go only to validated addresses; any other gets at most
  // kAmplificationFactor times what it sent (address validation).
  void check_validation(const Outbox& out, const std::set<Endpoint>& before) {
    std::set<Endpoint> after = validated();
    // Neighbours named (or moved) and dropped within the call were
    // validated meanwhile.
    events_ = peer_.take_events();
    for (const PeerEvent& e : events_) {
      if (e.kind == PeerEvent::Kind::kNeighbourAdded ||
          e.kind == PeerEvent::Kind::kNeighbourMoved)
        after.insert(e.endpoint.normalized());
    }
    for (const UdpSend& s : out.udp) {
      if (before.count(s.to) || after.count(s.to)) continue;
      if (farewell_.count(s.to)) continue;
      // The splitter's host (WELCOME names its UDP port, fuzzed too).
      if (s.to.same_address(splitter_udp())) continue;
      const auto m = decode_udp(s.data->data(), s.data->size());
      FUZZ_CHECK(m && !std::holds_alternative<ChunkMsg>(*m));
      sent_to_strangers_[s.to] += s.data->size();
      FUZZ_CHECK(sent_to_strangers_[s.to] <=
                 kAmplificationFactor * received_[s.to] + lan_credit_[s.to]);
    }
  }
  std::set<Endpoint> farewell_;    // neighbours when leave() was called
  std::vector<PeerEvent> events_;  // of the current call
  uint64_t chunks_delivered_ = 0;
  uint64_t datagrams_delivered_ = 0;
  uint64_t nack_numbers_delivered_ = 0;
  uint64_t chunks_sent_total_ = 0;
  PeerStats last_{};

  // What a peer must pass on unchanged when it forwards a chunk. The origin is
  // left out: wire v2 states it or leaves it implicit depending on the hop.
  static Bytes chunk_content(const ChunkMsg& c) {
    Bytes k;
    auto put32 = [&k](uint32_t v) {
      for (int i = 24; i >= 0; i -= 8) k.push_back(uint8_t(v >> i));
    };
    put32(c.team_id);
    put32(c.number);
    put32(c.send_time_ms);
    put32(c.first_frame_offset);
    k.insert(k.end(), c.payload, c.payload + c.payload_size);
    if (c.signature)
      k.insert(k.end(), c.signature, c.signature + kChunkSignatureSize);
    return k;
  }

  uint32_t team() {
    return fdp_.ConsumeIntegralInRange<int>(0, 15) == 0
               ? fdp_.ConsumeIntegral<uint32_t>()
               : team_id_;
  }
  uint32_t pick_id() { return fdp_.ConsumeIntegralInRange<uint32_t>(1, 8); }
  // The member's own endpoint mostly, a random one (spoofed id) sometimes.
  Endpoint from_for(uint32_t id) {
    return fdp_.ConsumeIntegralInRange<int>(0, 7) == 0 ? pick_endpoint(fdp_)
                                                       : member_endpoint(id);
  }
  Endpoint splitter_udp() {
    return Endpoint::ipv4(10, 0, 0, 1, kSplitterUdpPort);
  }

  void tcp_in(const Bytes& b, Outbox* out) {
    note_peer_locals(b);
    peer_.on_tcp_data(b.data(), b.size(), now_, out);
  }

  // A PEER_LOCAL the peer reads, however it was made (random bytes too),
  // allows the PROBEs it draws (see lan_credit_).
  void note_peer_locals(const Bytes& b) {
    from_splitter_.feed(b.data(), b.size());
    TcpMessage msg;
    while (from_splitter_.next(&msg) == TcpReader::Status::kMessage) {
      if (const auto* local = std::get_if<PeerLocalMsg>(&msg)) {
        lan_credit_[local->endpoint.normalized()] += kLanProbeCredit;
      } else if (const auto* joined = std::get_if<PeerJoinedMsg>(&msg)) {
        credit_predicted_ports(joined->peer.endpoint);
      }
    }
  }

  // group: as if from the splitter's multicast group (protocol.md 8.5).
  void udp_in(const Endpoint& from, const Bytes& b, Outbox* out,
              bool group = false) {
    ++datagrams_delivered_;
    received_[from.normalized()] += b.size();
    if (auto m = decode_udp(b.data(), b.size())) {
      if (std::holds_alternative<ChunkMsg>(*m)) {
        ++chunks_delivered_;
        if (delivered_chunks_.size() < 4096)
          delivered_chunks_.insert(chunk_content(std::get<ChunkMsg>(*m)));
        if (sent_to_peer_.size() < 256) sent_to_peer_.push_back(b);
      }
      if (const auto* n = std::get_if<NackMsg>(&*m)) {
        nack_numbers_delivered_ += n->numbers.size();
      }
    }
    if (group) {
      peer_.on_multicast(from, b.data(), b.size(), now_, out);
    } else {
      peer_.on_udp(from, b.data(), b.size(), now_, out);
    }
  }

  // A chunk of the framed stream, or random bytes as a payload.
  Bytes next_chunk_datagram(uint32_t origin) {
    // Origins are mostly left out on the wire (the sender says whose it is).
    if (fdp_.ConsumeBool()) origin = kImplicitOrigin;
    if (payloads_.empty() || fdp_.ConsumeIntegralInRange<int>(0, 15) == 0) {
      std::vector<uint8_t> p = fdp_.ConsumeBytes<uint8_t>(
          fdp_.ConsumeIntegralInRange<size_t>(1, 200));
      if (p.empty()) p.push_back(0);
      const uint16_t offset =
          fdp_.ConsumeBool() ? kNoFrameStart
                             : fdp_.ConsumeIntegralInRange<uint16_t>(0, 250);
      return encode_chunk(team(), next_chunk_++, origin,
                          static_cast<uint32_t>(now_ / 1000), offset, p.data(),
                          p.size());
    }
    ChunkPayload c = std::move(payloads_.front());
    payloads_.pop_front();
    // Out of order, or a far jump, sometimes.
    ChunkNumber n = next_chunk_++;
    if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      n += fdp_.ConsumeIntegralInRange<int32_t>(-10, 10);
    }
    if (fdp_.ConsumeIntegralInRange<int>(0, 63) == 0)
      n += fdp_.ConsumeIntegral<uint32_t>();
    // The origin's previous chunk: mostly near, sometimes anything (a
    // previous that names a number already played, ahead, or itself).
    const uint16_t previous = fdp_.ConsumeBool()
                                  ? fdp_.ConsumeIntegralInRange<uint16_t>(0, 12)
                                  : fdp_.ConsumeIntegral<uint16_t>();
    Bytes chunk =
        encode_chunk(team(), n, origin,
                     static_cast<uint32_t>(now_ / 1000) -
                         fdp_.ConsumeIntegralInRange<uint32_t>(0, 300),
                     c.first_frame_offset, c.bytes.data(), c.bytes.size(),
                     nullptr, previous);
    return maybe_flood(std::move(chunk), origin);
  }

  // Sometimes a re-dealt chunk (flag FLOOD, protocol.md 10.7), from the
  // splitter or a neighbour, for any origin stated.
  Bytes maybe_flood(Bytes chunk, uint32_t origin) {
    if (origin == kImplicitOrigin || fdp_.ConsumeIntegralInRange<int>(0, 7))
      return chunk;
    auto msg = decode_udp(chunk.data(), chunk.size());
    if (!msg) return chunk;
    return encode_flood_chunk(std::get<ChunkMsg>(*msg), origin);
  }

  void push_media() {
    if (fdp_.ConsumeIntegralInRange<int>(0, 15) == 0) {
      framer_.push_caps(fdp_.ConsumeRandomLengthString(100));
    } else {
      MediaBuffer b;
      b.data.resize(fdp_.ConsumeIntegralInRange<size_t>(0, 3000));
      b.pts = now_ * 1000;
      b.flags = fdp_.ConsumeIntegralInRange<uint32_t>(0, 15);
      framer_.push_buffer(b);
    }
    ChunkPayload c;
    while (framer_.pop_full(&c)) payloads_.push_back(std::move(c));
    if (fdp_.ConsumeBool() && framer_.pop_partial(&c)) {
      payloads_.push_back(std::move(c));
    }
    while (payloads_.size() > 64) payloads_.pop_front();
  }

  TcpMessage control_message() {
    switch (fdp_.ConsumeIntegralInRange<int>(0, 12)) {
      case 11:
        return MulticastMsg{pick_endpoint(fdp_)};
      case 12:
        return MulticastMemberMsg{pick_id()};
      case 10: {
        // A member's LAN endpoint (protocol.md 3.2): any address, probed
        // a few times at most before it answers.
        const PeerLocalMsg local{pick_id(), pick_endpoint(fdp_)};
        // Counted here too: sealed, note_peer_locals cannot read it.
        lan_credit_[local.endpoint.normalized()] += kLanProbeCredit;
        return local;
      }
      case 0:
      case 1: {
        const uint32_t id = pick_id();
        const PeerJoinedMsg joined{PeerInfo{id, from_for(id)}};
        // Counted here too: sealed, note_peer_locals cannot read it.
        credit_predicted_ports(joined.peer.endpoint);
        return joined;
      }
      case 2:
        return PeerLeftMsg{pick_id()};
      case 3:
        return RoleMsg{fdp_.ConsumeIntegral<uint32_t>()};
      case 4:
        return RemovedMsg{
            static_cast<RemoveReason>(fdp_.ConsumeIntegral<uint8_t>()),
            fdp_.ConsumeRandomLengthString(40)};
      case 5:
        return RejectMsg{RemoveReason::kTeamFull, "full"};
      case 6:
        return JoinMsg{};
      case 7:
        return TcpGoodbyeMsg{};
      case 8:  // a join burst around the chunks to come
        return BurstMsg{
            next_chunk_ - fdp_.ConsumeIntegralInRange<uint32_t>(0, 300),
            fdp_.ConsumeIntegral<uint32_t>()};
      default: {
        TeamMsg t;
        t.public_endpoint = pick_endpoint(fdp_);
        return t;
      }
    }
  }

  void step() {
    Outbox out;
    const std::set<Endpoint> validated_before = validated();
    switch (fdp_.ConsumeIntegralInRange<int>(0, 17)) {
      case 0: {  // WELCOME
        WelcomeMsg w;
        w.version =
            fdp_.ConsumeIntegralInRange<int>(0, 15) == 0 ? 2 : kProtocolVersion;
        if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
          team_id_ = fdp_.ConsumeIntegral<uint32_t>();
        }
        w.team_id = team_id_;
        my_id_ = fdp_.ConsumeIntegralInRange<int>(0, 7) == 0 ? pick_id() : 1;
        w.peer_id = my_id_;
        w.token = fdp_.ConsumeIntegral<uint64_t>();
        w.chunk_size = fdp_.ConsumeIntegralInRange<uint32_t>(0, 2000);
        w.splitter_udp_port = kSplitterUdpPort;
        w.caps = fdp_.ConsumeRandomLengthString(100);
        tcp_in(encode_tcp(w), &out);
        break;
      }
      case 1: {  // TEAM
        TeamMsg t;
        t.public_endpoint = member_endpoint(my_id_);
        if (fdp_.ConsumeBool()) next_chunk_ = fdp_.ConsumeIntegral<uint32_t>();
        t.next_chunk = next_chunk_;
        const size_t n = fdp_.ConsumeIntegralInRange<size_t>(0, 7);
        for (size_t i = 0; i < n; ++i) {
          const uint32_t id = pick_id();
          t.peers.push_back(PeerInfo{id, from_for(id)});
        }
        tcp_in(encode_tcp(t), &out);
        break;
      }
      case 2:
      case 3:
        tcp_in(encode_tcp(control_message()), &out);
        break;
      case 4: {  // truncated message or raw bytes
        Bytes b = fdp_.ConsumeBool()
                      ? encode_tcp(control_message())
                      : fdp_.ConsumeBytes<uint8_t>(
                            fdp_.ConsumeIntegralInRange<size_t>(0, 40));
        b.resize(fdp_.ConsumeIntegralInRange<size_t>(0, b.size()));
        tcp_in(b, &out);
        break;
      }
      case 5:
        if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0)
          peer_.on_tcp_closed(now_, &out);
        break;
      case 6:
        push_media();
        break;
      case 7:
      case 8:  // from the splitter: our origin (or, rarely, another)
        udp_in(fdp_.ConsumeIntegralInRange<int>(0, 15) == 0
                   ? pick_endpoint(fdp_)
                   : splitter_udp(),
               next_chunk_datagram(fdp_.ConsumeIntegralInRange<int>(0, 7) == 0
                                       ? pick_id()
                                       : my_id_),
               &out, fdp_.ConsumeIntegralInRange<int>(0, 3) == 0);
        break;
      case 9: {  // from a neighbour: its origin
        const uint32_t id = pick_id();
        udp_in(from_for(id), next_chunk_datagram(id), &out);
        break;
      }
      case 10:  // a replay, from anyone
        if (!sent_to_peer_.empty()) {
          const Bytes b = sent_to_peer_[fdp_.ConsumeIntegralInRange<size_t>(
              0, sent_to_peer_.size() - 1)];
          udp_in(fdp_.ConsumeBool() ? splitter_udp() : from_for(pick_id()), b,
                 &out);
        }
        break;
      case 11: {  // control datagrams from (mostly) team members
        const uint32_t id = pick_id();
        Bytes b;
        switch (fdp_.ConsumeIntegralInRange<int>(0, 5)) {
          case 0:
            b = encode_hello(
                HelloMsg{team(), id, fdp_.ConsumeIntegral<uint64_t>()});
            break;
          case 5:
            b = encode_probe(
                ProbeMsg{team(), fdp_.ConsumeIntegral<uint64_t>() | 1, my_id_});
            break;
          case 1:
            b = encode_goodbye(GoodbyeMsg{team(), id});
            break;
          case 2: {
            NackMsg n{team(), id, {}};
            const size_t count =
                fdp_.ConsumeIntegralInRange<size_t>(1, kMaxNackNumbers);
            for (size_t i = 0; i < count; ++i) {
              n.numbers.push_back(next_chunk_ -
                                  fdp_.ConsumeIntegralInRange<uint32_t>(0, 64));
            }
            b = encode_nack(n);
            break;
          }
          case 3:
            b = encode_request(RequestMsg{team(), id, pick_id()});
            break;
          default:
            b = encode_prune(PruneMsg{team(), id, pick_id()});
        }
        udp_in(from_for(id), b, &out);
        break;
      }
      case 12: {
        const Bytes b = fdp_.ConsumeBytes<uint8_t>(
            fdp_.ConsumeIntegralInRange<size_t>(0, 100));
        udp_in(pick_endpoint(fdp_), b, &out);
        break;
      }
      case 13:
      case 14:
        now_ += fdp_.ConsumeIntegralInRange<Micros>(0, 400000);
        peer_.tick(now_, &out);
        break;
      case 15: {
        StreamItem item;
        while (peer_.pop_item(now_, &item)) {
          FUZZ_CHECK(item.buffer.data.size() <= kMaxFrameSize);
        }
        break;
      }
      case 16:
        if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
          for (const NeighbourInfo& n : peer_.neighbours())
            farewell_.insert(n.endpoint);
          peer_.leave(now_, &out);
        }
        break;
      default:
        peer_.set_latency_us(fdp_.ConsumeIntegralInRange<Micros>(0, 2000000));
        break;
    }
    // The element ticks whenever the deadline is due; so does the harness.
    if (peer_.next_deadline() <= now_) peer_.tick(now_, &out);
    check_validation(out, validated_before);
    after(out);
  }

  void after(const Outbox& out) {
    check_udp_out(out, peer_.team_id());
    for (const UdpSend& s : out.udp) {
      auto m = decode_udp(s.data->data(), s.data->size());
      if (const auto* c = std::get_if<ChunkMsg>(&*m)) {
        ++chunks_sent_total_;
        if (delivered_chunks_.size() < 4096) {
          FUZZ_CHECK(delivered_chunks_.count(chunk_content(*c)) ==
                     1);  // made up
        }
      }
    }
    for (const TcpSend& s : out.tcp) {
      FUZZ_CHECK(s.conn == 0);
      to_splitter_.feed(s.data.data(), s.data.size());
      TcpMessage msg;
      TcpReader::Status st;
      while ((st = to_splitter_.next(&msg)) == TcpReader::Status::kMessage) {
        // POLLUTED: a signed team's chunk failed verification.
        // MULTICAST_RECEIVING: once, a member, after a chunk from the group.
        if (std::holds_alternative<MulticastReceivingMsg>(msg)) {
          FUZZ_CHECK(!told_multicast_ && peer_.state() == PeerState::kMember);
          told_multicast_ = true;
          continue;
        }
        FUZZ_CHECK(std::holds_alternative<JoinMsg>(msg) ||
                   std::holds_alternative<TcpGoodbyeMsg>(msg) ||
                   std::holds_alternative<PollutedMsg>(msg));
      }
      FUZZ_CHECK(st == TcpReader::Status::kNeedMore);
    }
    const PeerStats now = peer_.stats();
    check_stats(last_, now);
    last_ = now;
    FUZZ_CHECK(now.buffer_fill <= config_.buffer_chunks);
    FUZZ_CHECK(now.neighbours == peer_.neighbours().size());
    for (const PeerEvent& e : events_) {
      if (e.kind == PeerEvent::Kind::kNeighbourAdded) {
        neighbour_ids_ever_.insert(e.peer_id);
      }
    }
    FUZZ_CHECK(chunks_sent_total_ <=
               datagrams_delivered_ * (neighbour_ids_ever_.size() + 1) +
                   nack_numbers_delivered_);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  PeerConfig c;
  c.latency_us = fdp.ConsumeIntegralInRange<Micros>(0, 1000000);
  c.max_chunk_debt = fdp.ConsumeIntegralInRange<uint32_t>(0, 64);
  c.buffer_chunks = fdp.ConsumeIntegralInRange<size_t>(1, 512);
  c.forward_flush_us = fdp.ConsumeIntegralInRange<Micros>(0, 50000);
  c.register_retry_us = fdp.ConsumeIntegralInRange<Micros>(0, 500000);
  c.monitor = fdp.ConsumeBool();
  c.heartbeat_interval_us = fdp.ConsumeIntegralInRange<Micros>(0, 500000);
  c.nack_delay_us = fdp.ConsumeIntegralInRange<Micros>(0, 100000);
  c.nack_retry_us = fdp.ConsumeIntegralInRange<Micros>(0, 100000);
  c.max_nack_attempts = fdp.ConsumeIntegralInRange<uint32_t>(0, 6);
  c.history_chunks = fdp.ConsumeIntegralInRange<size_t>(0, 256);
  c.retransmit_rate = fdp.ConsumeIntegralInRange<uint32_t>(0, 100);
  c.retransmit_burst = fdp.ConsumeIntegralInRange<uint32_t>(0, 100);
  c.relay_request_after_us = fdp.ConsumeIntegralInRange<Micros>(0, 2000000);
  c.secret_seed = 1;  // a crash replays with the same cookies
  Harness(c, fdp).run();
  return 0;
}
