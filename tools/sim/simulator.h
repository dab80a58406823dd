// gst-p2psp: the team simulator. The real splitter and peer cores run on the
// in-memory network of tests/sim_network.h under a virtual clock, so a run
// of a thousand peers takes seconds and repeats exactly for a seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace p2psp::sim {

// Something done to one peer at a given time (tests, reproductions).
struct PeerAction {
  enum class Kind { kFreeze, kUnfreeze, kCrash, kLeave };
  double at_s = 0;  // seconds after the stream started
  Kind kind = Kind::kFreeze;
  uint32_t peer = 0;  // index in join order: 0 .. peers-1 are the first team
};

struct SimConfig {
  // Team. The first `monitors` peers are monitors (trusted, never churned).
  double peers = 100;
  double monitors = 0;

  // Stream: one media buffer per chunk, pushed at the stream's pace.
  double chunk_size = 1024;  // bytes of chunk payload
  double bitrate_kbps = 1000;
  double duration_s = 20;  // of stream
  double warmup_s = 1;     // the first team joins before the stream starts

  // Network, every datagram and every link alike.
  double loss = 0;  // probability a datagram vanishes
  double delay_ms = 20;
  double jitter_ms = 10;  // uniform in [0, jitter] on top of the delay
  // Uplinks: absolute (kb/s) when > 0, else a multiple of the stream rate;
  // 0 for both means unlimited.
  double peer_upload_kbps = 0;
  double peer_upload_x = 2;
  double splitter_upload_kbps = 0;
  double splitter_upload_x = 10;
  double queue_ms = 1000;  // drop-tail bound of every uplink queue
  // Uneven uplinks (docs/simulation.md, "Peers as they are"): a fraction
  // of the peers, spread evenly over the join order, has an uplink of
  // weak_upload_x times the stream instead; a fraction forwards no chunk
  // at all (free riders: they send control messages only, and neither
  // flood nor answer NACKs). A peer picked for both is a free rider.
  double weak_fraction = 0;
  double weak_upload_x = 0.3;
  double free_riders = 0;
  // 1: weak peers and free riders state their uplink to the splitter
  // (upload-limit: weak-upload-x times the stream, 0 for free riders);
  // 0: the splitter has to learn it from what the team misses.
  double state_limits = 0;
  // 1: the splitter also learns shares from the NACKs (learn_shares).
  double learn_shares = 0;

  // Churn, in events per second of stream, on peers that are not monitors.
  double joins_per_s = 0;
  double leaves_per_s = 0;   // with GOODBYE
  double crashes_per_s = 0;  // the process dies: TCP closes, no goodbye
  double freezes_per_s = 0;  // the process stops: TCP stays open

  // Peers. The playout buffer holds `buffer` chunks' worth of time.
  double buffer = 200;
  double forward_flush_ms = 10;
  double max_chunk_debt = 128;
  // Chunks cut within this time after a peer joined are not held against it
  // (its neighbours learn about it one control round trip later).
  double join_grace_s = 0.5;

  // Team health (0 keeps the core's default).
  double nack = 1;             // 0 disables loss recovery
  double nack_delay_ms = 0;    // wait before the first NACK
  double nack_retry_ms = 0;    // between NACKs to the splitter
  double route_discovery = 1;  // 0 disables request / prune
  double peer_timeout_ms = 0;
  double max_chunk_loss = 0;

  double seed = 1;

  // Not numeric: scripted actions and pairs of peers (join-order indices)
  // that cannot reach each other by UDP.
  std::vector<PeerAction> actions;
  std::vector<std::pair<uint32_t, uint32_t>> blocked_pairs;
};

// A numeric SimConfig field, by name: the CLI sets and sweeps any of them.
struct SimParam {
  const char* name;
  double SimConfig::*field;
  const char* help;
};
const std::vector<SimParam>& sim_params();
const SimParam* find_sim_param(const std::string& name);

struct PeerResult {
  uint32_t index = 0;  // join order
  uint32_t id = 0;     // splitter-assigned peer id (0: never joined)
  bool monitor = false;
  // Times in seconds of stream (negative: before the stream started).
  std::optional<double> joined_s;    // TEAM arrived
  std::optional<double> departed_s;  // left, crashed, froze or was removed
  std::optional<double> removed_s;   // the splitter dropped it
  std::string removal;               // why, when removed
  uint64_t expected = 0;             // chunks cut while it was a member
  uint64_t played = 0;               // of those, played in time
  double clr = 0;                    // 1 - played / expected
  uint64_t upload_bytes = 0;
  double uplink_x = 0;       // its uplink, times the stream (0: unlimited)
  uint64_t queue_drops = 0;  // datagrams its uplink queue dropped
  bool free_rider = false;
  // Last datagram another peer sent to it after it departed: once it has
  // been removed, the team must stop sending.
  std::optional<double> last_udp_from_peers_s;
};

struct SimResult {
  // Chunk loss ratio: chunks not played in time / chunks expected, summed
  // over peers (each peer only for the chunks cut while it was a member).
  double clr = 0;
  double worst_peer_clr = 0;
  uint64_t chunks_cut = 0;  // of media: the caps chunk is not counted
  uint64_t chunks_expected = 0;
  uint64_t chunks_played = 0;
  // From the splitter's push to the peer's pop, milliseconds.
  double delay_p50_ms = 0, delay_p90_ms = 0, delay_p99_ms = 0, delay_max_ms = 0;
  // Upload per byte of stream (chunk payload) cut while there was a team.
  double splitter_upload = 0;
  double peer_upload_mean = 0;
  double peer_upload_max = 0;

  uint32_t joined = 0;
  uint32_t left = 0;
  uint32_t crashed = 0;
  uint32_t frozen = 0;
  uint32_t removed = 0;    // dropped by the splitter, any reason
  uint32_t expelled = 0;   // for losing too many chunks (monitor reports)
  uint32_t timed_out = 0;  // silent (heartbeat)

  // Recovery counters, summed over peers (retransmits: the splitter's too).
  uint64_t nacks_sent = 0, recovered = 0, retransmits = 0, relayed = 0;

  uint64_t udp_sent = 0, udp_lost = 0, udp_queue_drops = 0;
  uint64_t events = 0;
  uint64_t trace_digest = 0;
  double wall_s = 0;  // the only thing that is not deterministic
  std::vector<PeerResult> peers;
};

SimResult run_simulation(const SimConfig& config);

// "name=value" lines, for humans and diffing.
std::string format_summary(const SimConfig& config, const SimResult& result);

}  // namespace p2psp::sim
