// gst-p2psp: datagram buffers that are used again instead of freed.
//
// A peer keeps every chunk it receives as the datagram it forwards (to
// flood it, relay it, answer NACKs for it) and lets the oldest go as new
// ones come: at 25 Mb/s that is over two thousand allocations and frees of
// about 1.5 KB a second per peer, above the size glibc keeps in its
// per-thread cache, and they showed as a tenth of a peer's CPU in the
// profile of docs/benchmarks.md ("High rates"). The pool keeps the buffers
// it handed out, with their shared_ptr control blocks, and hands one out
// again once nobody else holds it: no allocation once the pool holds as
// many buffers as are in use at once. Chunks are let go about in the order
// they came, so the oldest buffer is the one to look at.
#pragma once

#include <gst/p2psp/wire.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace p2psp {

class BytesPool {
 public:
  // limit: how many buffers the pool keeps at most; past it, take() hands
  // out buffers it does not keep.
  explicit BytesPool(size_t limit = 8192) : limit_(limit) {}

  // An empty buffer (its capacity kept from its last use) that nobody
  // else holds. Not thread-safe: the owner's thread or lock; the buffers
  // themselves may be let go anywhere.
  std::shared_ptr<Bytes> take();
  // How many buffers the pool keeps (in use or not).
  size_t size() const { return buffers_.size(); }

 private:
  // Buffers looked at before a new one is made: a few, so that one held
  // long (a chunk kept for the next keyframe) does not block the rest.
  static constexpr size_t kLooks = 4;
  const size_t limit_;
  std::vector<std::shared_ptr<Bytes>> buffers_;
  size_t next_ = 0;
};

}  // namespace p2psp
