// gst-p2psp: a token bucket on the core's virtual clock.
//
// Bounds what one requester can make a node send: a NACK is small and its
// answer is up to 64 chunks, so unbounded answers would amplify traffic.
#pragma once

#include <gst/p2psp/outbox.h>

#include <algorithm>
#include <cstdint>

namespace p2psp {

class TokenBucket {
 public:
  TokenBucket() = default;
  // rate: tokens per second; burst: bucket size (it starts full).
  TokenBucket(uint32_t rate, uint32_t burst, Micros now)
      : rate_(rate), burst_(burst), tokens_(burst), last_us_(now) {}

  // Takes one token if there is one.
  bool take(Micros now) {
    if (now > last_us_) {
      const double earned = static_cast<double>(now - last_us_) * rate_ / 1e6;
      tokens_ = std::min<double>(burst_, tokens_ + earned);
      last_us_ = now;
    }
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  uint32_t rate_ = 0;
  uint32_t burst_ = 0;
  double tokens_ = 0;
  Micros last_us_ = 0;
};

}  // namespace p2psp
