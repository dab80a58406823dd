// gst-p2psp: datagram buffers that are used again instead of freed.
//
// A peer keeps every chunk it receives as the datagram it forwards (to
// flood it, relay it, answer NACKs for it) and lets the oldest go as new
// ones come: at 25 Mb/s that is over two thousand allocations and frees of
// about 1.5 KB a second per peer, above the size glibc keeps in its
// per-thread cache, and they showed as a tenth of a peer's CPU in the
// profile of docs/benchmarks.md ("High rates"). The pool hands out buffers
// that come back to it when their last reference goes.
#pragma once

#include <gst/p2psp/wire.h>

#include <cstddef>
#include <memory>

namespace p2psp {

class BytesPool {
 public:
  // keep: how many idle buffers the pool holds at most (the rest are freed).
  explicit BytesPool(size_t keep = 256);

  // An empty buffer, with the capacity it had when last used. It returns to
  // the pool when the last shared_ptr to it goes, from any thread, or is
  // freed if the pool is gone by then.
  std::shared_ptr<Bytes> take();
  size_t idle() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace p2psp
