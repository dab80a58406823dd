// gst-p2psp: how many TCP connections one source address may open at the
// splitter (docs/security.md, "Limits").
//
// Each address has a token bucket of `per_address` connections, refilled
// over `window_us`: an office behind one NAT can start that many peers at
// once, then one every window / per_address, while a flood from one address
// is turned away before the splitter keeps anything for it. IPv6 addresses
// count by /64, the block one subscriber usually gets. The table forgets an
// address once its bucket is full again, and never holds more than
// `max_tracked` addresses (the least recently seen goes first).
#pragma once

#include <gst/p2psp/endpoint.h>
#include <gst/p2psp/outbox.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <unordered_map>

namespace p2psp {

class JoinLimiter {
 public:
  JoinLimiter(uint32_t per_address, Micros window_us, size_t max_tracked)
      : per_address_(per_address),
        window_us_(std::max<Micros>(window_us, 1)),
        max_tracked_(std::max<size_t>(max_tracked, 1)) {}

  // True (and one token taken) when a connection from `remote` is allowed
  // now. per_address 0 allows everything.
  bool admit(const Endpoint& remote, Micros now) {
    if (per_address_ == 0) return true;
    const Key key = key_of(remote.normalized());
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      make_room(now);
      it = entries_.emplace(key, Entry{double(per_address_), now}).first;
    }
    Entry& e = it->second;
    refill(e, now);
    if (e.tokens < 1) return false;
    e.tokens -= 1;
    return true;
  }

  size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    double tokens = 0;
    Micros last_us = 0;
  };

  // IPv4: the address; IPv6: its /64.
  struct Key {
    Endpoint::Family family;
    uint64_t bits;
    bool operator==(const Key& o) const {
      return family == o.family && bits == o.bits;
    }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.bits) ^ static_cast<size_t>(k.family);
    }
  };
  static Key key_of(const Endpoint& e) {
    Key key{e.family, 0};
    const bool v6 = e.family == Endpoint::Family::kIPv6;
    std::memcpy(&key.bits, e.addr.data(), v6 ? 8 : 4);
    return key;
  }

  void refill(Entry& e, Micros now) const {
    if (now <= e.last_us) return;
    const double earned =
        static_cast<double>(now - e.last_us) * per_address_ / window_us_;
    e.tokens = std::min<double>(per_address_, e.tokens + earned);
    e.last_us = now;
  }

  // A full bucket is the same as no entry: forget those first.
  void make_room(Micros now) {
    if (entries_.size() < max_tracked_) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
      const bool refilled = now >= it->second.last_us + window_us_;
      it = refilled ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() < max_tracked_) return;
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const auto& a, const auto& b) {
                                     return a.second.last_us < b.second.last_us;
                                   });
    entries_.erase(oldest);
  }

  uint32_t per_address_;
  Micros window_us_;
  size_t max_tracked_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
};

}  // namespace p2psp
