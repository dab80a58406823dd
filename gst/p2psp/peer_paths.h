// gst-p2psp: where the peer reaches its neighbours (docs/security.md,
// "Address validation"; docs/protocol.md 3.2). Owns the PROBE cookies, the
// HELLOs from members the splitter has not named yet, and the members' LAN
// endpoints being probed and the ports predicted for newcomers behind a
// sequential NAT; moves a neighbour to an endpoint once a HELLO from there
// echoed our cookie (its NAT rebound, it is on our LAN, or a prediction hit).
#pragma once

#include <gst/p2psp/egress.h>
#include <gst/p2psp/lan.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/peer_auth.h>
#include <gst/p2psp/peer_neighbours.h>
#include <gst/p2psp/peer_session.h>
#include <gst/p2psp/peer_tx.h>
#include <gst/p2psp/predict.h>

#include <algorithm>
#include <vector>

namespace p2psp {

class PeerPaths {
 public:
  PeerPaths(const PeerConfig* config, PeerSession* session,
            NeighbourTable* table, const PeerAuth* auth, PeerTx* tx,
            PeerStats* stats)
      : secrets_(config->secret_seed),
        cookies_(&secrets_),
        session_(session),
        table_(table),
        auth_(auth),
        tx_(tx),
        stats_(stats) {}

  // Points a neighbour's traffic at a new endpoint (counted, and told to
  // the host), unless another neighbour holds that one.
  bool move(Neighbour& n, const Endpoint& to, Micros now);
  // A HELLO introduces nobody: only the splitter names members.
  void on_hello(const Endpoint& from, const HelloMsg& hello, Micros now,
                Outbox* out);
  // Someone checks that HELLOs from here are ours: echo its cookie.
  void answer_probe(const Endpoint& from, const ProbeMsg& probe, Outbox* out);
  // A member the splitter just named may have said HELLO first.
  void probe_early_hello(const PeerInfo& peer, Micros now, Outbox* out);
  // HELLO to a member the splitter named, repeated while nothing comes from
  // it (protocol.md 3, step 6): one lost HELLO, PROBE or echo left a pair
  // across a symmetric NAT on relays for good.
  void greet(const Neighbour& n, Micros now, Outbox* out);
  void on_peer_local(const PeerLocalMsg& local, Micros now, Outbox* out);
  // A member that joined after us, at a public address other than ours:
  // if nothing comes from it, its NAT may allocate in sequence (3.3).
  void predict(const Neighbour& n, const Endpoint& our_public, Micros now);
  // LAN candidates and predicted ports due for a PROBE.
  void service(Micros now, Outbox* out);
  Micros due() const {
    return std::min(
        {lan_.next_due_us(), predict_.next_due_us(), next_greeting_us()});
  }
  static constexpr Micros kHelloRepeatUs = 1000000;  // then 2, 4, 8 s
  static constexpr uint32_t kHelloRepeats = 4;
  // The neighbour was removed.
  void forget(uint32_t peer_id);

 private:
  struct UnannouncedHello {
    uint32_t peer_id = 0;
    Endpoint from;
    Micros at_us = 0;
  };

  struct Greeting {
    uint32_t peer_id = 0;
    Micros due_us = 0;
    uint32_t repeats = 0;  // HELLOs repeated so far
  };

  void send_probe(const Endpoint& to, uint32_t peer_id, Micros now,
                  Outbox* out);
  void send_hello(const Endpoint& to, Outbox* out);
  void repeat_hellos(Micros now, Outbox* out);
  Micros next_greeting_us() const;
  void probe_lan_candidates(Micros now, Outbox* out);
  void probe_predicted(Micros now, Outbox* out);
  // A PROBE to an address nobody validated, within the raised allowance.
  void send_first_probe(const Endpoint& to, uint32_t peer_id, Micros now,
                        Outbox* out);
  void move_to_lan(Neighbour& n, const Endpoint& to, Micros now);
  void move_predicted(Neighbour& n, const Endpoint& to, Micros now);
  void note_unannounced_hello(uint32_t peer_id, const Endpoint& from,
                              Micros now);
  void count_lan_neighbours() { stats_->lan_neighbours = table_->count_lan(); }
  void count_predicted_neighbours();

  // PROBE cookie keys (deterministic for a seed: tests, the simulator).
  SecretSource secrets_;
  CookieJar cookies_;
  PeerSession* session_;
  NeighbourTable* table_;
  const PeerAuth* auth_;
  PeerTx* tx_;
  PeerStats* stats_;
  std::vector<UnannouncedHello> unannounced_hellos_;
  std::vector<Greeting> greetings_;  // members not heard from yet
  LanCandidates lan_;                // members' LAN endpoints, being probed
  PortPredictions predict_;          // newcomers' predicted ports, being probed
};

}  // namespace p2psp
