// gst-p2psp: datagram buffers that are used again (see bytes_pool.h).
#include <gst/p2psp/bytes_pool.h>

#include <mutex>
#include <vector>

namespace p2psp {

struct BytesPool::State {
  explicit State(size_t k) : keep(k) {}
  const size_t keep;
  mutable std::mutex lock;
  std::vector<std::unique_ptr<Bytes>> idle;
};

namespace {

// The deleter: back to the pool (shared, so a buffer may outlive it).
struct GiveBack {
  std::shared_ptr<void> keep_alive;
  void (*give)(void* state, Bytes* bytes);
  void operator()(Bytes* bytes) const { give(keep_alive.get(), bytes); }
};

}  // namespace

BytesPool::BytesPool(size_t keep) : state_(std::make_shared<State>(keep)) {}

std::shared_ptr<Bytes> BytesPool::take() {
  std::unique_ptr<Bytes> bytes;
  {
    std::lock_guard<std::mutex> guard(state_->lock);
    if (!state_->idle.empty()) {
      bytes = std::move(state_->idle.back());
      state_->idle.pop_back();
    }
  }
  if (!bytes) bytes = std::make_unique<Bytes>();
  bytes->clear();
  auto give = [](void* s, Bytes* b) {
    std::unique_ptr<Bytes> owned(b);
    auto* state = static_cast<State*>(s);
    std::lock_guard<std::mutex> guard(state->lock);
    if (state->idle.size() < state->keep)
      state->idle.push_back(std::move(owned));
  };
  return std::shared_ptr<Bytes>(bytes.release(), GiveBack{state_, give});
}

size_t BytesPool::idle() const {
  std::lock_guard<std::mutex> guard(state_->lock);
  return state_->idle.size();
}

}  // namespace p2psp
