// Fuzz target: the splitter state machine, fed a random sequence of events:
// TCP connections from random endpoints (valid JOINs, any control message,
// raw bytes, closes), UDP datagrams from random endpoints (REGISTER and
// HEARTBEAT with the right or a wrong token, LOST, NACK, every other type,
// raw bytes), media (caps, buffers of random size), ticks with an advancing
// clock, flushes, removals and a final shutdown. Valid messages are built
// from what the splitter said (the WELCOMEs it sent), so sessions get deep.
//
// Invariants checked after every call:
//  - every datagram it sends is a well-formed one of its team;
//  - every TCP byte stream it writes frames and decodes without error, and
//    it never writes to a connection after closing it (or after the wrapper
//    reported it closed);
//  - chunk datagrams sent == chunks_sent + retransmits counted;
//  - every counter in stats() only grows;
//  - events: a peer is added once, removed only once and only if added;
//    num_peers() matches, and never exceeds max_peers;
//  - chunks go only to members' (validated) endpoints, and any other address
//    gets at most 3x the bytes it sent (address validation);
//  - what one call asks to send is bounded by its input (no amplification
//    beyond one chunk per chunk_size bytes, one retransmission per NACKed
//    number, and control messages per member).
#include <gst/p2psp/egress.h>
#include <gst/p2psp/splitter.h>

#include <algorithm>
#include <map>
#include <set>

#include "fuzz_util.h"

using namespace p2psp;
using namespace p2psp::fuzz;

namespace {

#define CHECK_GROWS(field) FUZZ_CHECK(now.field >= before.field)
void check_stats(const SplitterStats& before, const SplitterStats& now) {
  CHECK_GROWS(buffers_in);
  CHECK_GROWS(bytes_in);
  CHECK_GROWS(chunks_cut);
  CHECK_GROWS(chunks_sent);
  CHECK_GROWS(bytes_sent);
  CHECK_GROWS(chunks_dropped);
  CHECK_GROWS(peers_joined);
  CHECK_GROWS(peers_left);
  CHECK_GROWS(rejected_datagrams);
  CHECK_GROWS(rejected_connections);
  CHECK_GROWS(peers_timed_out);
  CHECK_GROWS(peers_expelled);
  CHECK_GROWS(lost_reports);
  CHECK_GROWS(nacks_received);
  CHECK_GROWS(retransmits);
  CHECK_GROWS(retransmit_bytes);
  CHECK_GROWS(retransmits_unavailable);
  CHECK_GROWS(retransmits_limited);
  CHECK_GROWS(caps_repeated);
}
#undef CHECK_GROWS

struct Welcomed {
  uint32_t peer_id = 0;
  uint64_t token = 0;
};

class Harness {
 public:
  Harness(const SplitterConfig& config, FuzzedDataProvider& fdp)
      : sp_(config), fdp_(fdp), config_(config) {}

  void run() {
    while (fdp_.remaining_bytes() > 0) step();
    if (fdp_.ConsumeBool()) {
      Outbox out;
      sp_.shutdown(now_, &out);
      after(out, 0);
    }
  }

 private:
  Splitter sp_;
  FuzzedDataProvider& fdp_;
  SplitterConfig config_;
  Micros now_ = 1000000;
  ConnId next_conn_ = 1;
  std::map<ConnId, TcpReader> open_;  // accepted, not closed by either side
  std::set<ConnId> closed_;
  std::vector<Welcomed> welcomed_;
  std::set<uint32_t> members_;
  std::set<uint32_t> ever_added_;
  ChunkNumber next_chunk_hint_ = 0;  // a chunk number the splitter cut

  ConnId pick_conn() {
    // Mostly open connections; sometimes closed or never opened ones.
    if (!open_.empty() && fdp_.ConsumeIntegralInRange<int>(0, 7) != 0) {
      auto it = open_.begin();
      std::advance(it,
                   fdp_.ConsumeIntegralInRange<size_t>(0, open_.size() - 1));
      return it->first;
    }
    return fdp_.ConsumeIntegralInRange<ConnId>(0, next_conn_);
  }

  Welcomed pick_welcomed() {
    if (welcomed_.empty() || fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      return Welcomed{fdp_.ConsumeIntegralInRange<uint32_t>(0, 8),
                      fdp_.ConsumeIntegral<uint64_t>()};
    }
    Welcomed w =
        welcomed_[fdp_.ConsumeIntegralInRange<size_t>(0, welcomed_.size() - 1)];
    if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) w.token ^= 1;  // forged
    return w;
  }

  uint32_t team() {
    return fdp_.ConsumeIntegralInRange<int>(0, 15) == 0
               ? fdp_.ConsumeIntegral<uint32_t>()
               : config_.team_id;
  }

  std::vector<ChunkNumber> numbers() {
    std::vector<ChunkNumber> n;
    const size_t count =
        fdp_.ConsumeIntegralInRange<size_t>(1, kMaxNackNumbers);
    for (size_t i = 0; i < count; ++i) {
      n.push_back(next_chunk_hint_ -
                  fdp_.ConsumeIntegralInRange<uint32_t>(0, 40));
    }
    return n;
  }

  TcpMessage any_tcp_message() {
    switch (fdp_.ConsumeIntegralInRange<int>(0, 8)) {
      case 0: {
        JoinMsg join{fdp_.ConsumeIntegral<uint8_t>(),
                     fdp_.ConsumeIntegral<uint32_t>()};
        if (join.flags & kFlagLocalEndpoints) {
          const size_t n =
              fdp_.ConsumeIntegralInRange<size_t>(0, kMaxLocalEndpoints + 1);
          for (size_t i = 0; i < n; ++i)
            join.local_endpoints.push_back(pick_endpoint(fdp_));
        }
        return join;
      }
      case 1: {
        WelcomeMsg w;
        w.caps = fdp_.ConsumeRandomLengthString(50);
        return w;
      }
      case 2:
        return TeamMsg{
            pick_endpoint(fdp_), fdp_.ConsumeIntegral<uint32_t>(), {}};
      case 3:
        return PeerJoinedMsg{
            PeerInfo{fdp_.ConsumeIntegral<uint32_t>(), pick_endpoint(fdp_)}};
      case 4:
        return PeerLeftMsg{fdp_.ConsumeIntegral<uint32_t>()};
      case 5:
        return RemovedMsg{RemoveReason::kShutdown, "x"};
      case 6:
        return TcpGoodbyeMsg{};
      case 7:
        return RejectMsg{RemoveReason::kTeamFull, ""};
      default:
        return RoleMsg{fdp_.ConsumeIntegral<uint32_t>()};
    }
  }

  Bytes any_datagram() {
    const uint32_t t = team();
    switch (fdp_.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {
        return encode_chunk(t, next_chunk_hint_,
                            fdp_.ConsumeIntegral<uint32_t>(), 0, 0,
                            reinterpret_cast<const uint8_t*>("p"), 1);
      }
      case 1:
        return encode_hello(HelloMsg{t, pick_welcomed().peer_id,
                                     fdp_.ConsumeIntegral<uint64_t>()});
      case 2:
        return encode_goodbye(GoodbyeMsg{t, pick_welcomed().peer_id});
      case 3:
        return encode_request(RequestMsg{t, pick_welcomed().peer_id, 1});
      case 4:
        return encode_prune(PruneMsg{t, pick_welcomed().peer_id, 1});
      case 5:
        return encode_probe(ProbeMsg{t, fdp_.ConsumeIntegral<uint64_t>() | 1,
                                     pick_welcomed().peer_id});
      default: {
        Bytes raw = fdp_.ConsumeBytes<uint8_t>(
            fdp_.ConsumeIntegralInRange<size_t>(0, 80));
        return raw;
      }
    }
  }

  // Every datagram is counted towards what the splitter may send back.
  void udp(const Endpoint& from, const Bytes& b, Outbox* out) {
    received_[from.normalized()] += b.size();
    sp_.on_udp(from, b.data(), b.size(), now_, out);
  }

  std::set<Endpoint> member_endpoints() const {
    std::set<Endpoint> endpoints;
    for (const SplitterPeerStats& p : sp_.peer_stats())
      endpoints.insert(p.endpoint);
    return endpoints;
  }

  // Chunks go to members only (validated by a PROBE echo); anyone else gets
  // at most kAmplificationFactor times the bytes it sent.
  void check_validation(const Outbox& out, const std::set<Endpoint>& before) {
    const std::set<Endpoint> after = member_endpoints();
    for (const UdpSend& s : out.udp) {
      if (before.count(s.to) || after.count(s.to)) continue;
      const auto m = decode_udp(s.data->data(), s.data->size());
      FUZZ_CHECK(m && !std::holds_alternative<ChunkMsg>(*m));
      sent_to_strangers_[s.to] += s.data->size();
      FUZZ_CHECK(sent_to_strangers_[s.to] <=
                 kAmplificationFactor * received_[s.to]);
    }
  }

  void step() {
    Outbox out;
    const std::set<Endpoint> members_before = member_endpoints();
    size_t input = 0;  // media bytes this call brings
    switch (fdp_.ConsumeIntegralInRange<int>(0, 16)) {
      case 0: {
        const ConnId id = next_conn_++;
        open_.emplace(id, TcpReader());
        sp_.on_tcp_accepted(id, pick_endpoint(fdp_), now_, &out);
        break;
      }
      case 1: {  // a valid JOIN (monitor flag at random)
        const Bytes b = encode_tcp(
            JoinMsg{kProtocolVersion, fdp_.ConsumeBool() ? kFlagMonitor : 0u});
        sp_.on_tcp_data(pick_conn(), b.data(), b.size(), now_, &out);
        break;
      }
      case 2: {  // any control message, possibly cut short
        Bytes b = encode_tcp(any_tcp_message());
        if (fdp_.ConsumeBool())
          b.resize(fdp_.ConsumeIntegralInRange<size_t>(0, b.size()));
        sp_.on_tcp_data(pick_conn(), b.data(), b.size(), now_, &out);
        break;
      }
      case 3: {
        const std::vector<uint8_t> b = fdp_.ConsumeBytes<uint8_t>(
            fdp_.ConsumeIntegralInRange<size_t>(0, 64));
        sp_.on_tcp_data(pick_conn(), b.data(), b.size(), now_, &out);
        break;
      }
      case 4: {
        const ConnId id = pick_conn();
        if (open_.erase(id)) closed_.insert(id);
        sp_.on_tcp_closed(id, now_, &out);
        break;
      }
      case 5: {  // REGISTER, and at random the echo of the PROBE it drew
        const Welcomed w = pick_welcomed();
        const Endpoint from = pick_endpoint(fdp_);
        const size_t sent_before = out.udp.size();
        udp(from, encode_register(RegisterMsg{team(), w.peer_id, w.token, 0}),
            &out);
        uint64_t cookie = fdp_.ConsumeIntegral<uint64_t>();  // a guess
        for (size_t i = sent_before; i < out.udp.size(); ++i) {
          const auto m =
              decode_udp(out.udp[i].data->data(), out.udp[i].data->size());
          const auto* probe = m ? std::get_if<ProbeMsg>(&*m) : nullptr;
          if (probe && out.udp[i].to == from.normalized() &&
              fdp_.ConsumeIntegralInRange<int>(0, 7) != 0) {
            cookie = probe->cookie;
          }
        }
        udp(from,
            encode_register(RegisterMsg{team(), w.peer_id, w.token, cookie}),
            &out);
        break;
      }
      case 6: {  // HEARTBEAT
        const Welcomed w = pick_welcomed();
        const Bytes b =
            encode_heartbeat(HeartbeatMsg{team(), w.peer_id, w.token});
        udp(pick_endpoint(fdp_), b, &out);
        break;
      }
      case 7: {  // LOST
        const Welcomed w = pick_welcomed();
        const Bytes b =
            encode_lost(LostMsg{team(), w.peer_id, w.token, numbers()});
        udp(pick_endpoint(fdp_), b, &out);
        break;
      }
      case 8: {  // NACK
        const Welcomed w = pick_welcomed();
        const Bytes b = encode_nack(NackMsg{team(), w.peer_id, numbers()});
        udp(pick_endpoint(fdp_), b, &out);
        break;
      }
      case 9: {
        const Bytes b = any_datagram();
        udp(pick_endpoint(fdp_), b, &out);
        break;
      }
      case 10:
      case 11: {
        MediaBuffer buf;
        buf.data.resize(fdp_.ConsumeIntegralInRange<size_t>(0, 6000));
        buf.pts = fdp_.ConsumeIntegral<uint64_t>();
        buf.flags = fdp_.ConsumeIntegral<uint32_t>();
        input = buf.data.size();
        sp_.push_buffer(buf, now_, &out);
        break;
      }
      case 12: {
        const std::string caps = fdp_.ConsumeRandomLengthString(300);
        input = caps.size();
        largest_caps_ = std::max(largest_caps_, caps.size());
        sp_.set_caps(caps, now_, &out);
        break;
      }
      case 13:
      case 14:
        now_ += fdp_.ConsumeIntegralInRange<Micros>(0, 2000000);
        sp_.tick(now_, &out);
        break;
      case 15:
        sp_.flush(now_, &out);
        break;
      default:
        sp_.remove_peer(members_.empty() || fdp_.ConsumeBool()
                            ? fdp_.ConsumeIntegralInRange<uint32_t>(0, 8)
                            : *members_.begin(),
                        RemoveReason::kExpelled, &out);
        break;
    }
    check_validation(out, members_before);
    after(out, input);
  }

  void after(const Outbox& out, size_t input) {
    // The bound on TCP sends counts whoever was connected when the step
    // began: a tick may reject and close every pending handshake at once.
    const size_t connected_before = members_.size() + open_.size();
    const SplitterStats now = sp_.stats();
    // A joiner that missed the caps gets them framed again and cut at its
    // REGISTER (protocol.md 7.2), once per joiner: they count as that
    // call's input.
    input += (now.caps_repeated - last_.caps_repeated) *
             (largest_caps_ + kFrameHeaderSizeBound);
    check_udp_out(out, config_.team_id);
    size_t chunk_datagrams = 0;
    for (const UdpSend& s : out.udp) {
      const std::optional<UdpMessage> m =
          decode_udp(s.data->data(), s.data->size());
      if (const auto* c = std::get_if<ChunkMsg>(&*m)) {
        ++chunk_datagrams;
        next_chunk_hint_ = c->number;
      }
    }
    FUZZ_CHECK(chunk_datagrams == (now.chunks_sent - last_.chunks_sent) +
                                      (now.retransmits - last_.retransmits));
    for (const TcpSend& s : out.tcp) {
      auto it = open_.find(s.conn);
      FUZZ_CHECK(it != open_.end());  // written after a close, or never opened
      TcpReader& reader = it->second;
      reader.feed(s.data.data(), s.data.size());
      TcpMessage msg;
      TcpReader::Status st;
      while ((st = reader.next(&msg)) == TcpReader::Status::kMessage) {
        if (const auto* w = std::get_if<WelcomeMsg>(&msg)) {
          FUZZ_CHECK(w->team_id == config_.team_id);
          welcomed_.push_back(Welcomed{w->peer_id, w->token});
        }
      }
      FUZZ_CHECK(st == TcpReader::Status::kNeedMore);
    }
    for (ConnId id : out.tcp_close) {
      // The wrapper closes it after sending what is queued.
      if (open_.erase(id)) closed_.insert(id);
    }
    check_stats(last_, now);
    last_ = now;

    for (const SplitterEvent& e : sp_.take_events()) {
      if (e.kind == SplitterEvent::Kind::kPeerAdded) {
        FUZZ_CHECK(ever_added_.insert(e.peer_id).second);
        members_.insert(e.peer_id);
      } else {
        FUZZ_CHECK(members_.erase(e.peer_id) == 1);
      }
    }
    FUZZ_CHECK(sp_.num_peers() == members_.size());
    if (config_.max_peers != 0)
      FUZZ_CHECK(sp_.num_peers() <= config_.max_peers);
    FUZZ_CHECK(sp_.peer_stats().size() == members_.size());

    const size_t team =
        std::max(connected_before, members_.size() + open_.size()) + 2;
    FUZZ_CHECK(out.udp.size() <=
               (input + 2 * kFrameHeaderSizeBound) / config_.chunk_size + 2 +
                   kMaxNackNumbers);
    FUZZ_CHECK(out.tcp.size() <= team * team + 4);
    if (welcomed_.size() > 4096) welcomed_.erase(welcomed_.begin());
  }

  static constexpr size_t kFrameHeaderSizeBound = 64;
  SplitterStats last_{};
  size_t largest_caps_ = 0;
  std::map<Endpoint, uint64_t> received_;
  std::map<Endpoint, uint64_t> sent_to_strangers_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  SplitterConfig c;
  c.chunk_size = fdp.ConsumeIntegralInRange<uint32_t>(1, 1500);
  c.max_peers = fdp.ConsumeIntegralInRange<uint32_t>(0, 6);
  c.udp_port = 4553;
  c.team_id = fdp.ConsumeIntegral<uint32_t>();
  c.flush_delay_us = fdp.ConsumeIntegralInRange<Micros>(0, 50000);
  c.handshake_timeout_us = fdp.ConsumeIntegralInRange<Micros>(0, 5000000);
  c.first_chunk =
      fdp.ConsumeBool() ? UINT32_MAX - 20 : fdp.ConsumeIntegral<uint32_t>();
  c.monitors = fdp.ConsumeIntegralInRange<uint32_t>(0, 3);
  c.peer_timeout_us = fdp.ConsumeIntegralInRange<Micros>(0, 3000000);
  c.history_chunks = fdp.ConsumeIntegralInRange<size_t>(0, 64);
  // Flood checks: members' echoes, trials and re-deals (protocol.md 10.7).
  c.learn_shares = fdp.ConsumeBool();
  c.echo_timeout_us = fdp.ConsumeIntegralInRange<Micros>(0, 500000);
  c.history_max_bytes = fdp.ConsumeIntegralInRange<size_t>(0, 200000);
  c.max_chunk_loss = fdp.ConsumeIntegralInRange<uint32_t>(0, 8);
  c.loss_decay_us = fdp.ConsumeIntegralInRange<Micros>(0, 2000000);
  c.retransmit_rate = fdp.ConsumeIntegralInRange<uint32_t>(0, 100);
  c.retransmit_burst = fdp.ConsumeIntegralInRange<uint32_t>(0, 100);
  c.secret_seed = 1;  // a crash replays with the same tokens and cookies
  Harness(c, fdp).run();
  return 0;
}
