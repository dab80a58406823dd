// gst-p2psp: the team simulator (see simulator.h and docs/simulation.md).
#include "simulator.h"

#include <gst/p2psp/framing.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <unordered_map>

#include "sim_network.h"

namespace p2psp::sim {

namespace {

constexpr uint16_t kSplitterTcpPort = 4552;
constexpr uint16_t kSplitterUdpPort = 4553;
constexpr uint32_t kTeamId = 0x51a7e001;
const char kCaps[] = "application/x-p2psp-sim";
constexpr Micros kSecond = 1000000;
// Delay histogram: 0.1 ms bins, the last one open-ended.
constexpr double kBinMs = 0.1;
constexpr size_t kBins = 1000000;

Micros seconds(double s) { return static_cast<Micros>(std::llround(s * 1e6)); }

Endpoint splitter_endpoint(uint16_t port) {
  return Endpoint::ipv4(10, 0, 0, 1, port);
}

Endpoint peer_endpoint(uint32_t index) {
  return Endpoint::ipv4(10, static_cast<uint8_t>(1 + (index >> 16)),
                        static_cast<uint8_t>(index >> 8),
                        static_cast<uint8_t>(index), 5000);
}

uint64_t kbps_to_bps(double kbps) {
  return static_cast<uint64_t>(std::llround(kbps * 1000));
}

// Absolute rate wins; otherwise a multiple of the stream; 0 is unlimited.
uint64_t uplink_rate(double kbps, double multiple, double stream_kbps) {
  if (kbps > 0) return kbps_to_bps(kbps);
  return multiple > 0 ? kbps_to_bps(multiple * stream_kbps) : 0;
}

// A splitter whose events carry the time they happened.
class TimedSplitterNode : public SplitterNode {
 public:
  using SplitterNode::SplitterNode;
  std::function<void(const SplitterEvent&, Micros)> on_event;

  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    SplitterNode::on_udp(from, data, size, now, out);
    publish(now);
  }
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out) override {
    SplitterNode::on_tcp_data(conn, data, size, now, out);
    publish(now);
  }
  void on_tcp_closed(ConnId conn, Micros now, Outbox* out) override {
    SplitterNode::on_tcp_closed(conn, now, out);
    publish(now);
  }
  void tick(Micros now, Outbox* out) override {
    SplitterNode::tick(now, out);
    publish(now);
  }
  void settle(Micros now) override {
    SplitterNode::settle(now);
    publish(now);
  }

 private:
  void publish(Micros now) {
    for (const SplitterEvent& e : events) on_event(e, now);
    events.clear();
  }
};

// A peer whose events are handed over as they happen instead of piling up
// (a thousand peers see a million neighbour events).
class TimedPeerNode : public PeerNode {
 public:
  using PeerNode::PeerNode;
  std::function<void(const PeerEvent&, Micros)> on_event;
  bool free_rider = false;

  // A free rider's chunk datagrams never leave it (floods, relays and NACK
  // answers alike); its control messages do.
  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    const size_t before = out->udp.size();
    PeerNode::on_udp(from, data, size, now, out);
    drop_chunks(before, out);
  }
  void tick(Micros now, Outbox* out) override {
    const size_t before = out->udp.size();
    PeerNode::tick(now, out);
    drop_chunks(before, out);
  }

  void drop_chunks(size_t from_index, Outbox* out) const {
    if (!free_rider) return;
    auto& udp = out->udp;
    udp.erase(std::remove_if(
                  udp.begin() + static_cast<ptrdiff_t>(from_index), udp.end(),
                  [](const UdpSend& s) {
                    auto msg = decode_udp(s.data->data(), s.data->size());
                    return msg && std::holds_alternative<ChunkMsg>(*msg);
                  }),
              udp.end());
  }

  void settle(Micros now) override {
    PeerNode::settle(now);
    for (const PeerEvent& e : events) on_event(e, now);
    events.clear();
  }
};

struct DelayHistogram {
  std::vector<uint64_t> bins = std::vector<uint64_t>(kBins, 0);
  uint64_t count = 0;
  double max_ms = 0;

  void add(double ms) {
    const size_t bin = std::min(kBins - 1, static_cast<size_t>(ms / kBinMs));
    ++bins[bin];
    ++count;
    max_ms = std::max(max_ms, ms);
  }
  double percentile(double p) const {
    if (count == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(p * count));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBins; ++i) {
      seen += bins[i];
      if (seen >= std::max<uint64_t>(rank, 1)) return (i + 1) * kBinMs;
    }
    return max_ms;
  }
};

class Simulation {
 public:
  explicit Simulation(const SimConfig& config)
      : config_(config),
        net_(static_cast<uint64_t>(config.seed)),
        churn_rng_(static_cast<uint64_t>(config.seed) ^ 0x5eed5eedull),
        chunk_us_(config.chunk_size * 8000.0 / config.bitrate_kbps),
        stream_start_(seconds(config.warmup_s)),
        total_chunks_(static_cast<uint64_t>(
            std::floor(config.duration_s * 1e6 / chunk_us_))) {}

  SimResult run() {
    const auto wall_start = std::chrono::steady_clock::now();
    set_up_network();
    add_splitter();
    join_first_team();
    schedule_stream();
    schedule_churn();
    schedule_actions();
    net_.run_until(end_of_run());
    SimResult result = collect();
    result.wall_s = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - wall_start)
                        .count();
    return result;
  }

 private:
  struct PeerSlot {
    NodeId node = 0;
    PeerResult result;
    std::vector<bool> played;  // by chunk index
    bool active = false;       // a member that churn may pick
  };

  SimConfig config_;
  Network net_;
  std::mt19937_64 churn_rng_;
  double chunk_us_;
  Micros stream_start_;
  uint64_t total_chunks_;
  NodeId splitter_ = 0;
  std::vector<PeerSlot> peers_;
  std::vector<uint32_t> churnable_;
  std::unordered_map<Endpoint, uint32_t, EndpointHash> departed_at_;
  std::unordered_map<uint32_t, uint32_t> index_of_id_;
  DelayHistogram delays_;
  MediaBuffer buffer_;
  uint64_t chunks_pushed_ = 0;
  SimResult counts_;  // removal counters, filled as events come

  Micros latency_us() const {
    return static_cast<Micros>(std::llround(config_.buffer * chunk_us_));
  }
  Micros push_time(uint64_t index) const {
    return stream_start_ + static_cast<Micros>(std::floor(
                               static_cast<double>(index) * chunk_us_));
  }
  uint64_t index_of_push(Micros at) const {
    return static_cast<uint64_t>(
        std::llround(static_cast<double>(at - stream_start_) / chunk_us_));
  }
  Micros stream_end() const { return push_time(total_chunks_); }
  // Long enough for the last chunk to be flooded and its gap declared.
  Micros end_of_run() const {
    return stream_end() + 2 * latency_us() + 2 * kSecond;
  }
  double stream_time_s(Micros at) const {
    return (static_cast<double>(at) - static_cast<double>(stream_start_)) / 1e6;
  }

  // ------------------------------------------------------------ setup ---

  void set_up_network() {
    LinkParams link;
    link.delay_us = seconds(config_.delay_ms / 1000);
    link.jitter_us = seconds(config_.jitter_ms / 1000);
    link.loss = config_.loss;
    net_.set_default_link(link);
    net_.set_udp_tap([this](Micros now, const Endpoint& from,
                            const Endpoint& to,
                            const Bytes&) { note_datagram(now, from, to); });
  }

  UplinkParams uplink(uint64_t rate_bps) const {
    UplinkParams up;
    up.rate_bps = rate_bps;
    up.max_queue_us = seconds(config_.queue_ms / 1000);
    return up;
  }

  void add_splitter() {
    SplitterConfig sc;
    sc.chunk_size = static_cast<uint32_t>(config_.chunk_size);
    sc.team_id = kTeamId;
    sc.udp_port = kSplitterUdpPort;
    // Tokens and cookies from the run's seed, so a run repeats exactly.
    sc.secret_seed = static_cast<uint64_t>(config_.seed);
    sc.monitors = static_cast<uint32_t>(config_.monitors);
    sc.learn_shares = config_.learn_shares != 0;
    if (config_.max_chunk_loss > 0) {
      sc.max_chunk_loss = static_cast<uint32_t>(config_.max_chunk_loss);
    }
    if (config_.peer_timeout_ms > 0) {
      sc.peer_timeout_us = seconds(config_.peer_timeout_ms / 1000);
    }
    auto node = std::make_shared<TimedSplitterNode>(sc);
    node->on_event = [this](const SplitterEvent& e, Micros now) {
      on_splitter_event(e, now);
    };
    splitter_ = net_.add_node(node, splitter_endpoint(kSplitterUdpPort));
    net_.set_uplink(splitter_, uplink(uplink_rate(config_.splitter_upload_kbps,
                                                  config_.splitter_upload_x,
                                                  config_.bitrate_kbps)));
    // One buffer per chunk: its frame header carries all three timestamps.
    buffer_.data.assign(
        static_cast<size_t>(config_.chunk_size) - kFrameHeaderMaxSize, 0);
  }

  PeerConfig peer_config(bool monitor) const {
    PeerConfig pc;
    pc.latency_us = latency_us();
    // The reorder window must span the whole playout buffer and then some.
    pc.buffer_chunks = std::max<size_t>(
        pc.buffer_chunks, static_cast<size_t>(4 * config_.buffer));
    pc.forward_flush_us = seconds(config_.forward_flush_ms / 1000);
    pc.max_chunk_debt = static_cast<uint32_t>(config_.max_chunk_debt);
    pc.monitor = monitor;
    pc.secret_seed = static_cast<uint64_t>(config_.seed) + 1;
    if (config_.nack == 0) pc.max_nack_attempts = 0;
    if (config_.nack_delay_ms > 0) {
      pc.nack_delay_us = seconds(config_.nack_delay_ms / 1000);
    }
    if (config_.nack_retry_ms > 0) {
      pc.nack_retry_us = seconds(config_.nack_retry_ms / 1000);
    }
    if (config_.route_discovery == 0) pc.relay_request_after_us = 0;
    return pc;
  }

  void block_pairs_of(uint32_t index) {
    LinkParams blocked;
    blocked.delay_us = seconds(config_.delay_ms / 1000);
    blocked.loss = 1.0;
    for (const auto& [a, b] : config_.blocked_pairs) {
      const uint32_t other = a == index ? b : b == index ? a : index;
      if (other == index || other >= peers_.size()) continue;
      net_.set_link(peers_[index].node, peers_[other].node, blocked);
      net_.set_link(peers_[other].node, peers_[index].node, blocked);
    }
  }

  void add_peer() {
    const uint32_t index = static_cast<uint32_t>(peers_.size());
    const bool monitor = index < config_.monitors;
    const bool weak = picked(index, config_.weak_fraction, 1);
    const bool free_rider = picked(index, config_.free_riders, 0);
    PeerConfig pc = peer_config(monitor);
    if (config_.state_limits != 0 && (weak || free_rider)) {
      pc.upload_limit_bps =
          free_rider ? 0
                     : static_cast<int64_t>(config_.weak_upload_x *
                                            config_.bitrate_kbps * 1000);
    }
    auto node = std::make_shared<TimedPeerNode>(
        pc, splitter_endpoint(kSplitterTcpPort));
    node->on_event = [this, index](const PeerEvent& e, Micros now) {
      on_peer_event(index, e, now);
    };
    node->on_item = [this, index](const StreamItem& item) {
      on_played(index, item);
    };
    PeerSlot slot;
    slot.node = net_.add_node(node, peer_endpoint(index));
    slot.result.index = index;
    slot.result.monitor = monitor;
    slot.played.assign(total_chunks_, false);
    peers_.push_back(std::move(slot));
    node->free_rider = free_rider;
    peers_[index].result.free_rider = node->free_rider;
    const uint64_t rate =
        weak ? uplink_rate(0, config_.weak_upload_x, config_.bitrate_kbps)
             : uplink_rate(config_.peer_upload_kbps, config_.peer_upload_x,
                           config_.bitrate_kbps);
    peers_[index].result.uplink_x = rate / 1000.0 / config_.bitrate_kbps;
    net_.set_uplink(peers_[index].node, uplink(rate));
    block_pairs_of(index);
    start_peer(net_, peers_[index].node, splitter_);
  }

  // Whether peer `index` is among `fraction` of the peers spread evenly over
  // the join order (offset apart, so two fractions pick different peers).
  static bool picked(uint32_t index, double fraction, uint32_t offset) {
    if (fraction <= 0) return false;
    const uint64_t i = index + offset;
    return std::floor((i + 1) * fraction) > std::floor(i * fraction);
  }

  // The first team joins one by one before the stream starts.
  void join_first_team() {
    const uint32_t count = static_cast<uint32_t>(config_.peers);
    const Micros spacing =
        count == 0 ? 0 : std::min<Micros>(1000, stream_start_ / 2 / count);
    for (uint32_t i = 0; i < count; ++i) {
      net_.schedule(i * spacing, [this] { add_peer(); });
    }
  }

  // ------------------------------------------------------------ stream --

  // One buffer per chunk, framed to fill it exactly, so that a buffer is
  // played if and only if its chunk was.
  void push_next() {
    if (chunks_pushed_ >= total_chunks_) {
      net_.with(splitter_,
                [&](Micros now, Outbox* out) { splitter().flush(now, out); });
      return;
    }
    net_.with(splitter_, [&](Micros now, Outbox* out) {
      buffer_.pts = now * 1000;
      buffer_.dts = buffer_.pts;
      buffer_.duration = static_cast<uint64_t>(chunk_us_ * 1000);
      splitter().push_buffer(buffer_, now, out);
    });
    ++chunks_pushed_;
    net_.schedule(push_time(chunks_pushed_), [this] { push_next(); });
  }

  void schedule_stream() {
    net_.schedule(stream_start_, [this] {
      net_.with(splitter_, [&](Micros now, Outbox* out) {
        splitter().set_caps(kCaps, now, out);
        // Caps alone in the first chunk: every later chunk then holds
        // exactly one buffer.
        splitter().flush(now, out);
      });
      push_next();
    });
  }

  Splitter& splitter() { return net_.node<SplitterNode>(splitter_)->splitter; }
  Peer& peer(uint32_t index) {
    return net_.node<PeerNode>(peers_[index].node)->peer;
  }

  // ------------------------------------------------------------ churn ---

  using ChurnFn = void (Simulation::*)();

  // A Poisson process of `rate` per second from the stream start to its end.
  void schedule_poisson(double rate, ChurnFn what, Micros after) {
    if (rate <= 0) return;
    std::exponential_distribution<double> gap(rate);
    const Micros at = after + seconds(gap(churn_rng_));
    if (at >= stream_end()) return;
    net_.schedule(at, [this, rate, what, at] {
      (this->*what)();
      schedule_poisson(rate, what, at);
    });
  }

  void schedule_churn() {
    schedule_poisson(config_.joins_per_s, &Simulation::add_peer, stream_start_);
    schedule_poisson(config_.leaves_per_s, &Simulation::leave_random,
                     stream_start_);
    schedule_poisson(config_.crashes_per_s, &Simulation::crash_random,
                     stream_start_);
    schedule_poisson(config_.freezes_per_s, &Simulation::freeze_random,
                     stream_start_);
  }

  bool pick_churnable(uint32_t* index) {
    if (churnable_.empty()) return false;
    std::uniform_int_distribution<size_t> pick(0, churnable_.size() - 1);
    const size_t at = pick(churn_rng_);
    *index = churnable_[at];
    churnable_[at] = churnable_.back();
    churnable_.pop_back();
    peers_[*index].active = false;
    return true;
  }

  void leave_random() {
    uint32_t index = 0;
    if (pick_churnable(&index)) leave(index);
  }
  void crash_random() {
    uint32_t index = 0;
    if (pick_churnable(&index)) crash(index);
  }
  void freeze_random() {
    uint32_t index = 0;
    if (pick_churnable(&index)) freeze(index);
  }

  void depart(uint32_t index) {
    PeerResult& r = peers_[index].result;
    if (!r.departed_s) {
      r.departed_s = stream_time_s(net_.now());
      departed_at_[peer_endpoint(index)] = index;
    }
    if (peers_[index].active) {
      peers_[index].active = false;
      churnable_.erase(std::find(churnable_.begin(), churnable_.end(), index));
    }
  }

  void leave(uint32_t index) {
    depart(index);
    ++counts_.left;
    net_.with(peers_[index].node,
              [&](Micros now, Outbox* out) { peer(index).leave(now, out); });
  }
  void crash(uint32_t index) {
    depart(index);
    ++counts_.crashed;
    net_.kill(peers_[index].node);
  }
  void freeze(uint32_t index) {
    depart(index);
    ++counts_.frozen;
    net_.freeze(peers_[index].node);
  }

  void schedule_actions() {
    for (const PeerAction& action : config_.actions) {
      net_.schedule(stream_start_ + seconds(action.at_s),
                    [this, action] { apply(action); });
    }
  }

  void apply(const PeerAction& action) {
    if (action.peer >= peers_.size()) return;
    switch (action.kind) {
      case PeerAction::Kind::kFreeze:
        freeze(action.peer);
        break;
      case PeerAction::Kind::kUnfreeze:
        net_.unfreeze(peers_[action.peer].node);
        break;
      case PeerAction::Kind::kCrash:
        crash(action.peer);
        break;
      case PeerAction::Kind::kLeave:
        leave(action.peer);
        break;
    }
  }

  // ------------------------------------------------------------ events --

  void on_peer_event(uint32_t index, const PeerEvent& e, Micros now) {
    PeerSlot& slot = peers_[index];
    if (e.kind == PeerEvent::Kind::kJoined) {
      slot.result.id = peer(index).id();
      slot.result.joined_s = stream_time_s(now);
      index_of_id_[slot.result.id] = index;
      if (!slot.result.monitor && !slot.result.departed_s) {
        slot.active = true;
        churnable_.push_back(index);
      }
    } else if (e.kind == PeerEvent::Kind::kRemoved ||
               e.kind == PeerEvent::Kind::kProtocolError) {
      depart(index);
    }
  }

  void on_splitter_event(const SplitterEvent& e, Micros now) {
    if (e.kind != SplitterEvent::Kind::kPeerRemoved) return;
    auto it = index_of_id_.find(e.peer_id);
    if (it == index_of_id_.end()) return;
    const bool forced = e.reason != RemoveReason::kUnknown;
    if (!forced) return;  // it left, or its connection closed
    PeerResult& r = peers_[it->second].result;
    r.removed_s = stream_time_s(now);
    r.removal = removal_name(e.reason);
    ++counts_.removed;
    if (e.reason == RemoveReason::kExpelled) ++counts_.expelled;
    if (e.reason == RemoveReason::kTimeout) ++counts_.timed_out;
    depart(it->second);
  }

  static const char* removal_name(RemoveReason reason) {
    switch (reason) {
      case RemoveReason::kTimeout:
        return "timeout";
      case RemoveReason::kExpelled:
        return "expelled";
      case RemoveReason::kProtocolError:
        return "protocol-error";
      case RemoveReason::kShutdown:
        return "shutdown";
      default:
        return "other";
    }
  }

  void on_played(uint32_t index, const StreamItem& item) {
    if (item.kind != StreamItem::Kind::kBuffer) return;
    const Micros pushed = item.buffer.pts / 1000;
    const uint64_t chunk = index_of_push(pushed);
    if (chunk < total_chunks_) peers_[index].played[chunk] = true;
    delays_.add(static_cast<double>(net_.now() - pushed) / 1000.0);
  }

  // Only departed peers are watched: after its removal nobody should send
  // to a peer, and looking every datagram up would cost a thousand-peer run
  // dearly.
  void note_datagram(Micros now, const Endpoint& from, const Endpoint& to) {
    if (departed_at_.empty()) return;
    auto dest = departed_at_.find(to);
    if (dest == departed_at_.end()) return;
    if (from == splitter_endpoint(kSplitterUdpPort)) return;
    peers_[dest->second].result.last_udp_from_peers_s = stream_time_s(now);
  }

  // ------------------------------------------------------------ results -

  // The chunks a peer answers for: cut after it joined (plus a grace), and
  // before it departed by enough to have played them.
  std::pair<uint64_t, uint64_t> window_of(const PeerResult& r) const {
    if (!r.joined_s) return {0, 0};
    const auto at = [this](double stream_s) {
      return static_cast<Micros>(
          std::max(0.0, static_cast<double>(stream_start_) + stream_s * 1e6));
    };
    uint64_t first = index_of_push(
        std::max(stream_start_, at(*r.joined_s + config_.join_grace_s)));
    uint64_t last = total_chunks_;
    if (r.departed_s) {
      const Micros cutoff = at(*r.departed_s);
      const Micros needed = latency_us() + kSecond;
      last = cutoff < stream_start_ + needed
                 ? 0
                 : std::min(total_chunks_, index_of_push(cutoff - needed));
    }
    first = std::min(first, total_chunks_);
    return {first, std::max(first, last)};
  }

  void account_peer(PeerSlot& slot, SimResult* result) {
    PeerResult& r = slot.result;
    const auto [first, last] = window_of(r);
    r.expected = last - first;
    r.played = static_cast<uint64_t>(std::count(
        slot.played.begin() + first, slot.played.begin() + last, true));
    r.clr =
        r.expected == 0 ? 0 : 1.0 - static_cast<double>(r.played) / r.expected;
    r.upload_bytes = net_.traffic(slot.node).udp_bytes;
    r.queue_drops = net_.traffic(slot.node).queue_drops;
    result->chunks_expected += r.expected;
    result->chunks_played += r.played;
    // A handful of chunks says nothing about a peer's loss rate.
    if (r.expected >= 100) {
      result->worst_peer_clr = std::max(result->worst_peer_clr, r.clr);
    }
    if (r.joined_s && net_.alive(slot.node)) {
      const PeerStats& s = peer(r.index).stats();
      result->nacks_sent += s.nacks_sent;
      result->recovered += s.recovered;
      result->retransmits += s.retransmits_sent;
      result->relayed += s.relayed;
    }
  }

  // Upload per stream byte, for peers that were members for a while.
  void account_upload(SimResult* result) const {
    const double chunk_s = chunk_us_ / 1e6;
    double sum = 0;
    size_t counted = 0;
    for (const PeerSlot& slot : peers_) {
      const PeerResult& r = slot.result;
      if (!r.joined_s) continue;
      const double until = r.departed_s.value_or(stream_time_s(stream_end()));
      const double from = std::max(0.0, *r.joined_s);
      if (until - from < 1.0) continue;
      const double stream_bytes = (until - from) / chunk_s * config_.chunk_size;
      const double ratio = r.upload_bytes / stream_bytes;
      sum += ratio;
      ++counted;
      result->peer_upload_max = std::max(result->peer_upload_max, ratio);
    }
    result->peer_upload_mean = counted ? sum / counted : 0;
  }

  SimResult collect() {
    SimResult result = counts_;
    result.chunks_cut = chunks_pushed_;
    for (PeerSlot& slot : peers_) {
      if (slot.result.joined_s) ++result.joined;
      account_peer(slot, &result);
    }
    result.retransmits += splitter().stats().retransmits;
    result.clr = result.chunks_expected == 0
                     ? 0
                     : 1.0 - static_cast<double>(result.chunks_played) /
                                 result.chunks_expected;
    result.delay_p50_ms = delays_.percentile(0.50);
    result.delay_p90_ms = delays_.percentile(0.90);
    result.delay_p99_ms = delays_.percentile(0.99);
    result.delay_max_ms = delays_.max_ms;
    const double stream_bytes =
        static_cast<double>(splitter().stats().chunks_sent) *
        config_.chunk_size;
    result.splitter_upload =
        stream_bytes > 0 ? net_.traffic(splitter_).udp_bytes / stream_bytes : 0;
    account_upload(&result);
    const NetworkStats& ns = net_.stats();
    result.udp_sent = ns.udp_sent;
    result.udp_lost = ns.udp_lost;
    result.udp_queue_drops = ns.udp_queue_drops;
    result.events = ns.events;
    result.trace_digest = net_.trace_digest();
    for (PeerSlot& slot : peers_) result.peers.push_back(slot.result);
    return result;
  }
};

}  // namespace

const std::vector<SimParam>& sim_params() {
  static const std::vector<SimParam> params = {
      {"peers", &SimConfig::peers, "peers in the first team"},
      {"monitors", &SimConfig::monitors,
       "the first M peers are monitors (never churned)"},
      {"chunk-size", &SimConfig::chunk_size, "chunk payload, bytes"},
      {"bitrate", &SimConfig::bitrate_kbps, "stream rate, kb/s"},
      {"duration", &SimConfig::duration_s, "stream length, seconds"},
      {"warmup", &SimConfig::warmup_s,
       "seconds the first team has to join before the stream starts"},
      {"loss", &SimConfig::loss, "probability that a datagram is lost"},
      {"delay", &SimConfig::delay_ms, "one-way link delay, ms"},
      {"jitter", &SimConfig::jitter_ms,
       "extra datagram delay, uniform in [0, jitter] ms"},
      {"peer-upload", &SimConfig::peer_upload_kbps,
       "peer uplink, kb/s (0: use --peer-upload-x)"},
      {"peer-upload-x", &SimConfig::peer_upload_x,
       "peer uplink as a multiple of the stream rate (0: unlimited)"},
      {"splitter-upload", &SimConfig::splitter_upload_kbps,
       "splitter uplink, kb/s (0: use --splitter-upload-x)"},
      {"splitter-upload-x", &SimConfig::splitter_upload_x,
       "splitter uplink as a multiple of the stream rate (0: unlimited)"},
      {"queue", &SimConfig::queue_ms,
       "uplink queue bound, ms of waiting (drop-tail)"},
      {"weak-fraction", &SimConfig::weak_fraction,
       "fraction of the peers with a weak uplink (--weak-upload-x)"},
      {"weak-upload-x", &SimConfig::weak_upload_x,
       "weak peers' uplink as a multiple of the stream rate"},
      {"free-riders", &SimConfig::free_riders,
       "fraction of the peers that forward no chunk (control only)"},
      {"state-limits", &SimConfig::state_limits,
       "1: weak peers and free riders tell the splitter their uplink"},
      {"learn-shares", &SimConfig::learn_shares,
       "1: the splitter learns shares from the NACKs it gets"},
      {"joins", &SimConfig::joins_per_s, "peers joining per second"},
      {"leaves", &SimConfig::leaves_per_s,
       "peers leaving (with goodbye) per second"},
      {"crashes", &SimConfig::crashes_per_s,
       "peers dying (connection closes, no goodbye) per second"},
      {"freezes", &SimConfig::freezes_per_s,
       "peers freezing (connection stays open) per second"},
      {"buffer", &SimConfig::buffer, "playout buffer, chunks"},
      {"forward-flush", &SimConfig::forward_flush_ms,
       "ms a pending forward waits for the DBS trigger"},
      {"max-chunk-debt", &SimConfig::max_chunk_debt,
       "chunks sent unanswered before a neighbour is dropped"},
      {"join-grace", &SimConfig::join_grace_s,
       "seconds after joining before a peer's losses count"},
      {"nack", &SimConfig::nack, "1: NACK loss recovery on, 0: off"},
      {"nack-delay", &SimConfig::nack_delay_ms,
       "ms a missing chunk waits before the first NACK (0: core default)"},
      {"nack-retry", &SimConfig::nack_retry_ms,
       "ms between NACKs to the splitter (0: core default)"},
      {"route-discovery", &SimConfig::route_discovery,
       "1: request/prune relaying on, 0: off"},
      {"peer-timeout", &SimConfig::peer_timeout_ms,
       "silence before the splitter removes a peer, ms (0: core default)"},
      {"max-chunk-loss", &SimConfig::max_chunk_loss,
       "monitor-reported losses before expulsion (0: core default)"},
      {"seed", &SimConfig::seed, "random seed"},
  };
  return params;
}

const SimParam* find_sim_param(const std::string& name) {
  for (const SimParam& p : sim_params()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

SimResult run_simulation(const SimConfig& config) {
  return Simulation(config).run();
}

std::string format_summary(const SimConfig& config, const SimResult& r) {
  std::ostringstream out;
  out << "# config\n";
  for (const SimParam& p : sim_params()) {
    out << p.name << " = " << config.*p.field << "\n";
  }
  char line[256];
  const auto put = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out << line << "\n";
  };
  out << "# result\n";
  put("chunk_loss_ratio = %.6f", r.clr);
  put("worst_peer_clr = %.6f", r.worst_peer_clr);
  put("chunks_cut = %llu", static_cast<unsigned long long>(r.chunks_cut));
  put("chunks_expected = %llu",
      static_cast<unsigned long long>(r.chunks_expected));
  put("chunks_played = %llu", static_cast<unsigned long long>(r.chunks_played));
  put("delay_ms p50 = %.1f p90 = %.1f p99 = %.1f max = %.1f", r.delay_p50_ms,
      r.delay_p90_ms, r.delay_p99_ms, r.delay_max_ms);
  put("splitter_upload_per_stream_byte = %.3f", r.splitter_upload);
  put("peer_upload_per_stream_byte mean = %.3f max = %.3f", r.peer_upload_mean,
      r.peer_upload_max);
  put("peers joined = %u left = %u crashed = %u frozen = %u", r.joined, r.left,
      r.crashed, r.frozen);
  put("removed = %u expelled = %u timed_out = %u", r.removed, r.expelled,
      r.timed_out);
  put("nacks_sent = %llu recovered = %llu retransmits = %llu relayed = %llu",
      static_cast<unsigned long long>(r.nacks_sent),
      static_cast<unsigned long long>(r.recovered),
      static_cast<unsigned long long>(r.retransmits),
      static_cast<unsigned long long>(r.relayed));
  put("udp sent = %llu lost = %llu queue_drops = %llu",
      static_cast<unsigned long long>(r.udp_sent),
      static_cast<unsigned long long>(r.udp_lost),
      static_cast<unsigned long long>(r.udp_queue_drops));
  put("events = %llu", static_cast<unsigned long long>(r.events));
  put("trace_digest = %016llx",
      static_cast<unsigned long long>(r.trace_digest));
  put("wall_s = %.2f", r.wall_s);
  return out.str();
}

}  // namespace p2psp::sim
