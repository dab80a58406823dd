// gst-p2psp: an in-memory network for the sans-I/O core (tests, simulator).
//
// A virtual clock and an event queue ordered by delivery time drive any
// number of nodes. Datagrams travel with a per-link delay, an optional
// jitter and an optional loss probability (seeded, so runs repeat); TCP
// bytes arrive in order and are never lost; a connection closed by one end
// is seen closed by the other one link delay later. Nodes can be added at
// any time, killed (their connections close without any goodbye, datagrams
// to them vanish), or frozen like a stopped process (nothing runs, its TCP
// connections stay open and their bytes wait for the thaw).
//
// A node may get a limited uplink: its datagrams leave one after the other
// at the uplink rate (FIFO), and a datagram that would wait longer than the
// queue bound is dropped (drop-tail), as a home router does.
//
// Header-only on purpose: tests and the team simulator include it directly.
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/splitter.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace p2psp::sim {

using NodeId = uint32_t;
// In link settings: matches every node.
constexpr NodeId kAnyNode = UINT32_MAX;
constexpr Micros kNever = UINT64_MAX;

// Anything that speaks through an Outbox: a core state machine in an adapter.
class Node {
 public:
  virtual ~Node() = default;
  virtual void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
                      Micros now, Outbox* out) = 0;
  virtual void on_tcp_accepted(ConnId conn, const Endpoint& remote, Micros now,
                               Outbox* out) {
    (void)conn, (void)remote, (void)now, (void)out;
  }
  virtual void on_tcp_data(ConnId conn, const uint8_t* data, size_t size,
                           Micros now, Outbox* out) = 0;
  virtual void on_tcp_closed(ConnId conn, Micros now, Outbox* out) = 0;
  virtual void tick(Micros now, Outbox* out) = 0;
  virtual Micros next_deadline() const = 0;
  // After the harness ran test code on the node (Network::with): a chance
  // to pick up events or output that code produced.
  virtual void settle(Micros now) { (void)now; }
};

struct LinkParams {
  Micros delay_us = 1000;
  double loss = 0.0;  // probability a datagram on this link vanishes
  // Datagrams take delay_us plus a uniform draw in [0, jitter_us], so they
  // may overtake each other. TCP bytes only see delay_us.
  Micros jitter_us = 0;
};

struct UplinkParams {
  uint64_t rate_bps = 0;  // 0: unlimited, datagrams leave at once
  // Drop-tail: a datagram that would wait longer than this is dropped.
  Micros max_queue_us = 1000000;
  // IPv4 + UDP headers also take uplink time.
  uint32_t overhead_bytes = 28;
};

struct NetworkStats {
  uint64_t udp_sent = 0;
  uint64_t udp_delivered = 0;
  uint64_t udp_lost = 0;         // dropped by link loss
  uint64_t udp_unroutable = 0;   // no live node at the destination
  uint64_t udp_queue_drops = 0;  // uplink queue full (drop-tail)
  uint64_t udp_to_frozen = 0;    // arrived at a frozen node
  uint64_t tcp_bytes = 0;
  uint64_t events = 0;  // deliveries, timers and scheduled calls run
};

// Per node, what its uplink carried.
struct NodeTraffic {
  uint64_t udp_datagrams = 0;
  uint64_t udp_bytes = 0;  // payload bytes that left (queue drops excluded)
  uint64_t queue_drops = 0;
  Micros max_queue_us = 0;  // longest wait a sent datagram had
};

class Network {
 public:
  // Called for every datagram a node sends (lost ones included).
  using UdpTap = std::function<void(Micros now, const Endpoint& from,
                                    const Endpoint& to, const Bytes& data)>;

  explicit Network(uint64_t seed = 1) : rng_(seed) {}

  // udp: the node's address and UDP port; TCP connections to it use the
  // same address.
  NodeId add_node(std::shared_ptr<Node> node, const Endpoint& udp) {
    const NodeId id = static_cast<NodeId>(nodes_.size());
    NodeSlot slot;
    slot.node = std::move(node);
    slot.udp = udp;
    nodes_.push_back(std::move(slot));
    deadlines_.push_back(kNever);
    by_endpoint_[udp] = id;
    refresh_deadline(id);
    return id;
  }

  template <typename T>
  T* node(NodeId id) const {
    return static_cast<T*>(nodes_.at(id).node.get());
  }
  bool alive(NodeId id) const { return nodes_.at(id).alive; }
  bool frozen(NodeId id) const { return nodes_.at(id).frozen; }
  size_t num_nodes() const { return nodes_.size(); }
  const Endpoint& endpoint(NodeId id) const { return nodes_.at(id).udp; }
  Micros now() const { return now_; }
  const NetworkStats& stats() const { return stats_; }
  const NodeTraffic& traffic(NodeId id) const { return nodes_.at(id).traffic; }
  // A digest of every event run so far (time, kind, node, size): two runs
  // with the same digest almost surely did exactly the same thing.
  uint64_t trace_digest() const { return trace_digest_; }

  void set_uplink(NodeId id, const UplinkParams& params) {
    nodes_.at(id).uplink = params;
  }

  void set_default_link(const LinkParams& params) { default_link_ = params; }
  // Directed; either side may be kAnyNode. Exact pairs win over wildcards.
  void set_link(NodeId from, NodeId to, const LinkParams& params) {
    links_[{from, to}] = params;
  }
  void set_udp_tap(UdpTap tap) { tap_ = std::move(tap); }
  // Decides, per datagram, whether the network carries it (false: lost).
  using UdpFilter = std::function<bool(const Endpoint& from, const Endpoint& to,
                                       const Bytes& data)>;
  void set_udp_filter(UdpFilter filter) { filter_ = std::move(filter); }

  // Opens a TCP connection; the client names it client_conn in its outbox,
  // the server is told a fresh ConnId through on_tcp_accepted. The client
  // may send at once: its bytes arrive after the accept.
  ConnId connect(NodeId client, ConnId client_conn, NodeId server) {
    const ConnId id = next_conn_++;
    TcpConn conn;
    conn.side[0] = {client, client_conn, true, 0};
    conn.side[1] = {server, id, true, 0};
    conns_[id] = conn;
    by_local_conn_[{client, client_conn}] = id;
    by_local_conn_[{server, id}] = id;
    const Endpoint remote = nodes_.at(client).udp.with_port(
        static_cast<uint16_t>(40000 + id % 20000));
    Event event =
        make_event(in_order_time(conns_[id], 0), Event::kTcpAccept, server, id);
    event.from = remote;
    push(std::move(event));
    return id;
  }

  // The node vanishes: its connections close without goodbye, traffic to
  // it is dropped.
  void kill(NodeId id) {
    NodeSlot& slot = nodes_.at(id);
    if (!slot.alive) return;
    slot.alive = false;
    by_endpoint_.erase(slot.udp);
    for (auto& [conn_id, conn] : conns_) {
      for (int s = 0; s < 2; ++s) {
        if (conn.side[s].node == id && conn.side[s].open) close_side(conn, s);
      }
    }
    slot.tcp_backlog.clear();
    timers_.erase({deadlines_[id], id});
    deadlines_[id] = kNever;
  }

  // The node stops like a SIGSTOPped process: no ticks, datagrams to it are
  // lost, TCP bytes to it wait (the kernel keeps the connection) and arrive
  // in order at the thaw.
  void freeze(NodeId id) {
    NodeSlot& slot = nodes_.at(id);
    if (!slot.alive || slot.frozen) return;
    slot.frozen = true;
    set_deadline(id, kNever);
  }

  void unfreeze(NodeId id) {
    NodeSlot& slot = nodes_.at(id);
    if (!slot.frozen) return;
    slot.frozen = false;
    std::vector<Event> backlog;
    backlog.swap(slot.tcp_backlog);
    for (Event& event : backlog) {
      event.at = now_;
      event.seq = next_seq_++;
      push(std::move(event));
    }
    refresh_deadline(id);
  }

  // Runs fn on a live node's state machine at the current time and sends
  // what it produced. Frozen nodes too: the caller is the test, not the
  // network.
  void with(NodeId id, const std::function<void(Micros, Outbox*)>& fn) {
    if (!alive(id)) return;
    Outbox out;
    fn(now_, &out);
    nodes_[id].node->settle(now_);
    dispatch(id, &out);
    refresh_deadline(id);
  }

  void schedule(Micros at, std::function<void()> fn) {
    Event event = make_event(std::max(at, now_), Event::kCall, kAnyNode, 0);
    event.call = std::move(fn);
    push(std::move(event));
  }

  // A datagram from anywhere (spoofing, garbage): no node sends it.
  void inject_udp(const Endpoint& from, const Endpoint& to, Bytes data,
                  Micros delay_us = 0) {
    auto dest = by_endpoint_.find(to);
    if (dest == by_endpoint_.end()) return;
    Event event = make_event(now_ + delay_us, Event::kUdp, dest->second, 0);
    event.from = from;
    event.data = std::make_shared<const Bytes>(std::move(data));
    push(std::move(event));
  }

  void run_until(Micros until) {
    // Tests may have poked nodes directly (pop_item...) since the last run.
    for (NodeId id = 0; id < nodes_.size(); ++id) refresh_deadline(id);
    for (;;) {
      const Micros event_at = queue_.empty() ? kNever : queue_.top().at;
      const Micros timer_at = timers_.empty() ? kNever : timers_.begin()->first;
      const Micros next = std::min(event_at, timer_at);
      if (next == kNever || next > until) break;
      now_ = std::max(now_, next);
      ++stats_.events;
      if (event_at <= timer_at) {
        // Moving out of the top leaves its ordering keys intact; the copy
        // (closures, shared buffers) is the cost that matters at scale.
        Event event = std::move(const_cast<Event&>(queue_.top()));
        queue_.pop();
        deliver(event);
      } else {
        run_timer(timers_.begin()->second);
      }
    }
    now_ = std::max(now_, until);
  }
  void run_for(Micros duration) { run_until(now_ + duration); }

 private:
  struct Event {
    enum Kind { kUdp, kTcpAccept, kTcpData, kTcpClosed, kCall };
    Micros at = 0;
    uint64_t seq = 0;  // FIFO among events due at the same time
    Kind kind = kUdp;
    NodeId node = 0;
    ConnId conn = 0;  // the receiving node's name for the connection
    Endpoint from;
    SharedBytes data;
    std::function<void()> call;
  };
  struct NodeSlot {
    std::shared_ptr<Node> node;
    Endpoint udp;
    bool alive = true;
    bool frozen = false;
    UplinkParams uplink;
    Micros uplink_free_at = 0;  // when the last queued datagram has left
    NodeTraffic traffic;
    std::vector<Event> tcp_backlog;  // TCP events held while frozen
  };
  struct TcpSide {
    NodeId node = 0;
    ConnId local = 0;
    bool open = true;
    Micros last_arrival = 0;  // keeps this side's incoming bytes in order
  };
  struct TcpConn {
    TcpSide side[2];
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  Event make_event(Micros at, Event::Kind kind, NodeId node, ConnId conn) {
    Event event;
    event.at = at;
    event.seq = next_seq_++;
    event.kind = kind;
    event.node = node;
    event.conn = conn;
    return event;
  }
  void push(Event event) { queue_.push(std::move(event)); }

  const LinkParams& link(NodeId from, NodeId to) const {
    for (const auto& key :
         {std::make_pair(from, to), std::make_pair(from, kAnyNode),
          std::make_pair(kAnyNode, to)}) {
      auto it = links_.find(key);
      if (it != links_.end()) return it->second;
    }
    return default_link_;
  }

  // Arrival time at side `to` of conn: never before earlier bytes.
  Micros in_order_time(TcpConn& conn, int from_side) {
    const int to = 1 - from_side;
    const Micros at = std::max(
        now_ + link(conn.side[from_side].node, conn.side[to].node).delay_us,
        conn.side[to].last_arrival);
    conn.side[to].last_arrival = at;
    return at;
  }

  void close_side(TcpConn& conn, int s) {
    conn.side[s].open = false;
    const int other = 1 - s;
    if (!conn.side[other].open) return;
    push(make_event(in_order_time(conn, s), Event::kTcpClosed,
                    conn.side[other].node, conn.side[other].local));
  }

  // When a datagram of `size` bytes from `from` has left its uplink, or
  // kNever when the queue is too long for it.
  Micros depart(NodeId from, size_t size) {
    NodeSlot& slot = nodes_[from];
    const UplinkParams& up = slot.uplink;
    if (up.rate_bps == 0) return now_;
    const Micros start = std::max(now_, slot.uplink_free_at);
    if (start - now_ > up.max_queue_us) {
      ++slot.traffic.queue_drops;
      ++stats_.udp_queue_drops;
      return kNever;
    }
    const uint64_t bits = (size + up.overhead_bytes) * 8;
    slot.uplink_free_at =
        start + (bits * 1000000 + up.rate_bps - 1) / up.rate_bps;
    slot.traffic.max_queue_us =
        std::max(slot.traffic.max_queue_us, start - now_);
    return slot.uplink_free_at;
  }

  Micros link_delay(const LinkParams& params) {
    if (params.jitter_us == 0) return params.delay_us;
    return params.delay_us + rng_() % (params.jitter_us + 1);
  }

  void send_udp(NodeId from, const UdpSend& send) {
    ++stats_.udp_sent;
    if (tap_) tap_(now_, nodes_[from].udp, send.to, *send.data);
    const Micros departure = depart(from, send.data->size());
    if (departure == kNever) return;
    ++nodes_[from].traffic.udp_datagrams;
    nodes_[from].traffic.udp_bytes += send.data->size();
    auto dest = by_endpoint_.find(send.to);
    if (dest == by_endpoint_.end()) {
      ++stats_.udp_unroutable;
      return;
    }
    if (filter_ && !filter_(nodes_[from].udp, send.to, *send.data)) {
      ++stats_.udp_lost;
      return;
    }
    const LinkParams& params = link(from, dest->second);
    if (params.loss > 0 && loss_dist_(rng_) < params.loss) {
      ++stats_.udp_lost;
      return;
    }
    Event event = make_event(departure + link_delay(params), Event::kUdp,
                             dest->second, 0);
    event.from = nodes_[from].udp;
    event.data = send.data;
    push(std::move(event));
  }

  // Returns the connection and which side `node` is, or nullptr.
  TcpConn* local_conn(NodeId node, ConnId local, int* side) {
    auto it = by_local_conn_.find({node, local});
    if (it == by_local_conn_.end()) return nullptr;
    TcpConn& conn = conns_.at(it->second);
    *side = conn.side[0].node == node && conn.side[0].local == local ? 0 : 1;
    return &conn;
  }

  void send_tcp(NodeId from, const TcpSend& send) {
    int s = 0;
    TcpConn* conn = local_conn(from, send.conn, &s);
    if (!conn || !conn->side[s].open || !conn->side[1 - s].open) return;
    stats_.tcp_bytes += send.data.size();
    Event event = make_event(in_order_time(*conn, s), Event::kTcpData,
                             conn->side[1 - s].node, conn->side[1 - s].local);
    event.data = std::make_shared<const Bytes>(send.data);
    push(std::move(event));
  }

  void dispatch(NodeId from, Outbox* out) {
    for (const UdpSend& send : out->udp) send_udp(from, send);
    for (const TcpSend& send : out->tcp) send_tcp(from, send);
    for (ConnId local : out->tcp_close) {
      int s = 0;
      TcpConn* conn = local_conn(from, local, &s);
      if (conn && conn->side[s].open) close_side(*conn, s);
    }
    out->clear();
  }

  bool side_open(NodeId node, ConnId local) {
    int s = 0;
    TcpConn* conn = local_conn(node, local, &s);
    return conn && conn->side[s].open;
  }

  void note_trace(const Event& event) {
    const uint64_t size = event.data ? event.data->size() : 0;
    for (uint64_t v : {event.at, static_cast<uint64_t>(event.kind),
                       static_cast<uint64_t>(event.node), size}) {
      trace_digest_ = (trace_digest_ ^ v) * 0x100000001b3ull;
    }
  }

  // A frozen node's kernel still holds its TCP bytes; datagrams are lost.
  bool held_by_freeze(Event& event) {
    NodeSlot& slot = nodes_[event.node];
    if (!slot.frozen) return false;
    if (event.kind == Event::kUdp) {
      ++stats_.udp_to_frozen;
    } else {
      slot.tcp_backlog.push_back(std::move(event));
    }
    return true;
  }

  void deliver(Event& event) {
    note_trace(event);
    if (event.kind == Event::kCall) {
      event.call();
      return;
    }
    if (!alive(event.node)) return;
    if (held_by_freeze(event)) return;
    Node& node = *nodes_[event.node].node;
    Outbox out;
    switch (event.kind) {
      case Event::kUdp:
        ++stats_.udp_delivered;
        node.on_udp(event.from, event.data->data(), event.data->size(), now_,
                    &out);
        break;
      case Event::kTcpAccept:
        if (!side_open(event.node, event.conn)) return;
        node.on_tcp_accepted(event.conn, event.from, now_, &out);
        break;
      case Event::kTcpData:
        if (!side_open(event.node, event.conn)) return;
        node.on_tcp_data(event.conn, event.data->data(), event.data->size(),
                         now_, &out);
        break;
      case Event::kTcpClosed: {
        int s = 0;
        TcpConn* conn = local_conn(event.node, event.conn, &s);
        if (!conn || !conn->side[s].open) return;
        conn->side[s].open = false;
        node.on_tcp_closed(event.conn, now_, &out);
        break;
      }
      case Event::kCall:
        break;
    }
    dispatch(event.node, &out);
    refresh_deadline(event.node);
  }

  void run_timer(NodeId id) {
    Outbox out;
    nodes_[id].node->tick(now_, &out);
    dispatch(id, &out);
    refresh_deadline(id);
    // A node that still claims to be due right after its tick would spin the
    // clock in place; give it the next microsecond instead.
    if (deadlines_[id] <= now_) set_deadline(id, now_ + 1);
  }

  void refresh_deadline(NodeId id) {
    if (!alive(id) || nodes_[id].frozen) return;
    set_deadline(id, nodes_[id].node->next_deadline());
  }

  void set_deadline(NodeId id, Micros at) {
    if (deadlines_[id] == at) return;
    timers_.erase({deadlines_[id], id});
    deadlines_[id] = at;
    if (at != kNever) timers_.insert({at, id});
  }

  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> loss_dist_{0.0, 1.0};
  Micros now_ = 0;
  uint64_t trace_digest_ = 0xcbf29ce484222325ull;
  uint64_t next_seq_ = 0;
  ConnId next_conn_ = 1;
  std::vector<NodeSlot> nodes_;
  std::vector<Micros> deadlines_;
  std::set<std::pair<Micros, NodeId>> timers_;
  std::unordered_map<Endpoint, NodeId, EndpointHash> by_endpoint_;
  std::map<ConnId, TcpConn> conns_;
  std::map<std::pair<NodeId, ConnId>, ConnId> by_local_conn_;
  std::map<std::pair<NodeId, NodeId>, LinkParams> links_;
  LinkParams default_link_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  UdpTap tap_;
  UdpFilter filter_;
  NetworkStats stats_;
};

// ------------------------------------------------------------ adapters ----

class SplitterNode : public Node {
 public:
  explicit SplitterNode(const SplitterConfig& config)
      : splitter(seeded(config)) {}

  // Runs repeat: tokens and cookies come from a seed, unless the test gave
  // one (never from the CSPRNG, never from the team id).
  static SplitterConfig seeded(SplitterConfig config) {
    if (!config.secret_seed) config.secret_seed = 0x5117;
    return config;
  }

  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    splitter.on_udp(from, data, size, now, out);
    collect_events();
  }
  void on_tcp_accepted(ConnId conn, const Endpoint& remote, Micros now,
                       Outbox* out) override {
    splitter.on_tcp_accepted(conn, remote, now, out);
  }
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out) override {
    splitter.on_tcp_data(conn, data, size, now, out);
    collect_events();
  }
  void on_tcp_closed(ConnId conn, Micros now, Outbox* out) override {
    splitter.on_tcp_closed(conn, now, out);
    collect_events();
  }
  void tick(Micros now, Outbox* out) override {
    splitter.tick(now, out);
    collect_events();
  }
  Micros next_deadline() const override { return splitter.next_deadline(); }
  void settle(Micros now) override {
    (void)now;
    collect_events();
  }

  void collect_events() {
    for (SplitterEvent& e : splitter.take_events()) events.push_back(e);
  }

  Splitter splitter;
  std::vector<SplitterEvent> events;
};

// A peer whose playout is drained as soon as something is due; items go to
// on_item (default: kept in `items`).
class PeerNode : public Node {
 public:
  PeerNode(const PeerConfig& config, const Endpoint& splitter)
      : peer(seeded(config), splitter) {}

  static PeerConfig seeded(PeerConfig config) {
    if (!config.secret_seed) config.secret_seed = 0x9ee5;
    return config;
  }

  void on_udp(const Endpoint& from, const uint8_t* data, size_t size,
              Micros now, Outbox* out) override {
    peer.on_udp(from, data, size, now, out);
    settle(now);
  }
  void on_tcp_data(ConnId conn, const uint8_t* data, size_t size, Micros now,
                   Outbox* out) override {
    (void)conn;
    peer.on_tcp_data(data, size, now, out);
    settle(now);
  }
  void on_tcp_closed(ConnId conn, Micros now, Outbox* out) override {
    (void)conn;
    peer.on_tcp_closed(now, out);
    settle(now);
  }
  void tick(Micros now, Outbox* out) override {
    peer.tick(now, out);
    settle(now);
  }
  Micros next_deadline() const override { return peer.next_deadline(); }

  void settle(Micros now) override {
    for (PeerEvent& e : peer.take_events()) events.push_back(std::move(e));
    StreamItem item;
    while (peer.pop_item(now, &item)) {
      if (on_item) {
        on_item(item);
      } else {
        items.push_back(std::move(item));
      }
    }
  }

  Peer peer;
  std::vector<PeerEvent> events;
  std::vector<StreamItem> items;
  std::function<void(const StreamItem&)> on_item;
};

// The peer's control connection uses ConnId 0 on its side, as Peer does.
inline void start_peer(Network& net, NodeId peer, NodeId splitter) {
  net.connect(peer, 0, splitter);
  net.with(peer, [&](Micros now, Outbox* out) {
    net.node<PeerNode>(peer)->peer.start(now, out);
  });
}

}  // namespace p2psp::sim
