// gst-p2psp: where the peer reaches its neighbours (see peer_paths.h).
#include <gst/p2psp/peer_paths.h>

#include <algorithm>

namespace p2psp {

namespace {

// HELLOs from ids the splitter has not named yet, remembered so that the
// PEER_JOINED that follows can probe where they came from (a NAT that maps
// each destination apart). Honest ones are named within a round trip.
constexpr size_t kMaxUnannouncedHellos = 64;
constexpr Micros kUnannouncedHelloUs = 5000000;
// A neighbour moves to the address a probe validated only if its current
// one has been silent this long: a member cannot pull an active member's
// flood to itself by echoing cookies in its name.
constexpr Micros kMoveAfterSilenceUs = 2000000;

}  // namespace

bool PeerPaths::move(Neighbour& n, const Endpoint& to, Micros now) {
  if (!table_->move(n, to, now)) return false;
  if (n.info.predicted) {
    n.info.predicted = false;
    count_predicted_neighbours();
  }
  ++stats_->endpoints_moved;
  session_->push_event(PeerEvent::Kind::kNeighbourMoved, n.info.id, to);
  return true;
}

void PeerPaths::send_probe(const Endpoint& to, uint32_t peer_id, Micros now,
                           Outbox* out) {
  const ProbeMsg probe{session_->team_id, cookies_.issue(to, peer_id, now),
                       peer_id};
  if (tx_->datagram(to, encode_probe(probe), out)) ++stats_->probes_sent;
}

// A member's HELLO from another address than the splitter named (a NAT that
// maps each destination apart) gets a PROBE there, and the neighbour moves
// there once a HELLO from there echoes the cookie.
void PeerPaths::on_hello(const Endpoint& from, const HelloMsg& hello,
                         Micros now, Outbox* out) {
  if (!session_->joined() || hello.peer_id == session_->id) return;
  Neighbour* n = table_->find(hello.peer_id);
  if (!n) {
    note_unannounced_hello(hello.peer_id, from, now);
    return;
  }
  if (n->info.endpoint == from) return;
  if (!cookies_.check(hello.cookie, from, hello.peer_id, now)) {
    send_probe(from, hello.peer_id, now, out);
    return;
  }
  if (lan_.matches(hello.peer_id, from)) {
    move_to_lan(*n, from, now);
    return;
  }
  if (predict_.matches(hello.peer_id, from)) {
    move_predicted(*n, from, now);
    return;
  }
  const bool silent = n->heard_us == 0 ||
                      now >= saturating_add(n->heard_us, kMoveAfterSilenceUs);
  if (!silent || !move(*n, from, now)) {
    ++stats_->moves_refused;
    return;
  }
  // Its HELLO got through our NAT thanks to a round of PROBEs (3.3).
  if (predict_.probed_recently(from, now)) {
    n->info.predicted = true;
    count_predicted_neighbours();
  }
}

void PeerPaths::answer_probe(const Endpoint& from, const ProbeMsg& probe,
                             Outbox* out) {
  if (!session_->joined()) return;
  tx_->datagram(
      from,
      encode_hello(HelloMsg{session_->team_id, session_->id, probe.cookie}),
      out);
}

void PeerPaths::note_unannounced_hello(uint32_t peer_id, const Endpoint& from,
                                       Micros now) {
  auto& hellos = unannounced_hellos_;
  hellos.erase(std::remove_if(hellos.begin(), hellos.end(),
                              [&](const UnannouncedHello& h) {
                                return h.peer_id == peer_id ||
                                       now >= saturating_add(
                                                  h.at_us, kUnannouncedHelloUs);
                              }),
               hellos.end());
  if (hellos.size() >= kMaxUnannouncedHellos) hellos.erase(hellos.begin());
  hellos.push_back(UnannouncedHello{peer_id, from, now});
}

void PeerPaths::send_hello(const Endpoint& to, Outbox* out) {
  tx_->datagram(to, encode_hello(HelloMsg{session_->team_id, session_->id, 0}),
                out);
}

void PeerPaths::greet(const Neighbour& n, Micros now, Outbox* out) {
  send_hello(n.info.endpoint, out);
  greetings_.erase(
      std::remove_if(greetings_.begin(), greetings_.end(),
                     [&](const Greeting& g) { return g.peer_id == n.info.id; }),
      greetings_.end());
  greetings_.push_back(Greeting{n.info.id, now + kHelloRepeatUs, 0});
}

Micros PeerPaths::next_greeting_us() const {
  Micros due = UINT64_MAX;
  for (const Greeting& g : greetings_) due = std::min(due, g.due_us);
  return due;
}

// Anything heard from the member (at the endpoint we send to) shows the
// path works; a member whose HELLO reached us from another port moved
// there once our PROBE was echoed.
void PeerPaths::repeat_hellos(Micros now, Outbox* out) {
  for (size_t i = 0; i < greetings_.size();) {
    Greeting& g = greetings_[i];
    const Neighbour* n = table_->find(g.peer_id);
    if (!n || n->heard_us != 0 || g.repeats >= kHelloRepeats) {
      greetings_[i] = greetings_.back();
      greetings_.pop_back();
      continue;
    }
    if (g.due_us <= now) {
      send_hello(n->info.endpoint, out);
      ++stats_->hellos_repeated;
      ++g.repeats;
      g.due_us = now + (kHelloRepeatUs << g.repeats);
    }
    ++i;
  }
}

// Probes the address its NAT uses towards us, too.
void PeerPaths::probe_early_hello(const PeerInfo& peer, Micros now,
                                  Outbox* out) {
  for (const UnannouncedHello& h : unannounced_hellos_) {
    if (h.peer_id == peer.id && h.from != peer.endpoint.normalized() &&
        now < saturating_add(h.at_us, kUnannouncedHelloUs)) {
      send_probe(h.from, peer.id, now, out);
    }
  }
}

// Peers behind one NAT (protocol.md 3.2). The splitter names a member's LAN
// endpoint, which nobody validated: it is probed like any address, and the
// neighbour moves there once a HELLO from there echoes the cookie. No
// silence rule here (unlike on_hello's moves): the member itself reported
// this endpoint over its own TCP channel.
void PeerPaths::on_peer_local(const PeerLocalMsg& local, Micros now,
                              Outbox* out) {
  const Neighbour* n = table_->find(local.peer_id);
  const Endpoint e = local.endpoint.normalized();
  if (!n || n->info.lan || n->info.endpoint == e || !e.valid() ||
      e == session_->splitter_udp) {
    return;
  }
  lan_.add(local.peer_id, e, now);
  probe_lan_candidates(now, out);
}

// Raises the allowance of an address nobody validated by exactly the PROBE
// sent there (protocol.md 3.2, 3.3).
void PeerPaths::send_first_probe(const Endpoint& to, uint32_t peer_id,
                                 Micros now, Outbox* out) {
  const size_t probe_size =
      encode_probe(ProbeMsg{session_->team_id, 1, 0}).size() +
      (auth_->sealing() ? auth::kSealOverhead : 0);
  tx_->egress().credit(to, probe_size);
  send_probe(to, peer_id, now, out);
}

void PeerPaths::service(Micros now, Outbox* out) {
  if (next_greeting_us() <= now) repeat_hellos(now, out);
  if (lan_.next_due_us() <= now) probe_lan_candidates(now, out);
  if (predict_.next_due_us() <= now) probe_predicted(now, out);
}

void PeerPaths::probe_lan_candidates(Micros now, Outbox* out) {
  for (const LanCandidates::Due& due : lan_.take_due(now)) {
    send_first_probe(due.endpoint, due.peer_id, now, out);
  }
}

// Port prediction (protocol.md 3.3). Only for a newcomer: its NAT handed
// out the ports of its HELLOs to the members right after the one the
// splitter saw; an older member's NAT has moved on by an unknown count.
// Not behind our own public address: that is the LAN's business (3.2), and
// our NAT would not hairpin the PROBEs.
void PeerPaths::predict(const Neighbour& n, const Endpoint& our_public,
                        Micros now) {
  const Endpoint& at = n.info.endpoint;
  if (n.info.lan || !at.valid() || at.port == 0 ||
      at.same_address(our_public.normalized()) ||
      at.same_address(session_->splitter_udp)) {
    return;
  }
  const size_t mates = static_cast<size_t>(
      std::count_if(table_->begin(), table_->end(), [&](const Neighbour& m) {
        return m.info.id != n.info.id && m.info.endpoint.same_address(at);
      }));
  predict_.add(n.info.id, at,
               PortPredictions::window_for(table_->size() - 1, mates), now);
}

// Each round PROBEs the whole window, unless the member has been heard at
// the endpoint the splitter named (its NAT keeps one port per socket) or
// has moved since.
void PeerPaths::probe_predicted(Micros now, Outbox* out) {
  for (const PortPredictions::Due& due : predict_.take_due(now)) {
    const Neighbour* n = table_->find(due.peer_id);
    if (!n || n->heard_us != 0 || n->info.endpoint != due.base) {
      predict_.forget(due.peer_id);
      continue;
    }
    for (const Endpoint& e : predicted_endpoints(due.base, due.window)) {
      send_first_probe(e, due.peer_id, now, out);
      ++stats_->predict_probes_sent;
    }
    predict_.note_probed(due, now);
  }
}

// The member's HELLO echoed a PROBE sent to a predicted port: nothing was
// ever heard at the endpoint the splitter named, so the silence rule of
// on_hello holds by construction.
void PeerPaths::move_predicted(Neighbour& n, const Endpoint& to, Micros now) {
  predict_.forget(n.info.id);
  if (n.heard_us != 0 || !move(n, to, now)) {
    ++stats_->moves_refused;
    return;
  }
  n.info.predicted = true;
  count_predicted_neighbours();
}

void PeerPaths::count_predicted_neighbours() {
  stats_->predicted_neighbours = static_cast<uint64_t>(
      std::count_if(table_->begin(), table_->end(),
                    [](const Neighbour& n) { return n.info.predicted; }));
}

void PeerPaths::move_to_lan(Neighbour& n, const Endpoint& to, Micros now) {
  lan_.forget(n.info.id);
  if (!move(n, to, now)) {
    ++stats_->moves_refused;
    return;
  }
  n.info.lan = true;
  count_lan_neighbours();
}

void PeerPaths::forget(uint32_t peer_id) {
  lan_.forget(peer_id);
  predict_.forget(peer_id);
  count_lan_neighbours();
  count_predicted_neighbours();
}

}  // namespace p2psp
