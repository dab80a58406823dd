// gst-p2psp: datagram buffers that are used again (see bytes_pool.h).
#include <gst/p2psp/bytes_pool.h>

#include <atomic>

namespace p2psp {

// buffers_ is a ring in the order the buffers were handed out: the oldest
// at next_, the newest just before it.
std::shared_ptr<Bytes> BytesPool::take() {
  const size_t n = buffers_.size();
  for (size_t look = 0; look < kLooks && look < n; ++look) {
    if (buffers_[(next_ + look) % n].use_count() != 1) continue;
    // The last other holder let go with a release decrement, possibly on
    // another thread: its reads of the bytes come before our writes.
    std::atomic_thread_fence(std::memory_order_acquire);
    // It becomes the newest; the older ones it passed keep their order.
    std::shared_ptr<Bytes> found = std::move(buffers_[(next_ + look) % n]);
    for (size_t k = look; k > 0; --k)
      buffers_[(next_ + k) % n] = std::move(buffers_[(next_ + k - 1) % n]);
    buffers_[next_] = found;
    next_ = (next_ + 1) % n;
    found->clear();
    return found;
  }
  auto fresh = std::make_shared<Bytes>();
  if (n < limit_) {
    buffers_.insert(buffers_.begin() + static_cast<std::ptrdiff_t>(next_),
                    fresh);
    next_ = (next_ + 1) % buffers_.size();
  }
  return fresh;
}

}  // namespace p2psp
