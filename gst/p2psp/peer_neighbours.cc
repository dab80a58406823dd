// gst-p2psp: the peer's neighbour table (see peer_neighbours.h).
#include <gst/p2psp/peer_neighbours.h>

#include <algorithm>

namespace p2psp {

Neighbour* NeighbourTable::find(uint32_t peer_id) {
  auto it = index_by_id_.find(peer_id);
  return it == index_by_id_.end() ? nullptr : &neighbours_[it->second];
}

const Neighbour* NeighbourTable::find(uint32_t peer_id) const {
  auto it = index_by_id_.find(peer_id);
  return it == index_by_id_.end() ? nullptr : &neighbours_[it->second];
}

Neighbour* NeighbourTable::find_at(const Endpoint& endpoint) {
  auto it = index_by_endpoint_.find(endpoint);
  return it == index_by_endpoint_.end() ? nullptr : &neighbours_[it->second];
}

Neighbour* NeighbourTable::find_sender(uint32_t peer_id, const Endpoint& from) {
  Neighbour* n = find_at(from);
  return n && n->info.id == peer_id ? n : nullptr;
}

void NeighbourTable::append(Neighbour n) {
  index_by_endpoint_[n.info.endpoint] = neighbours_.size();
  index_by_id_[n.info.id] = neighbours_.size();
  neighbours_.push_back(std::move(n));
}

bool NeighbourTable::erase(uint32_t peer_id, size_t* index, Neighbour* erased) {
  auto found = index_by_id_.find(peer_id);
  if (found == index_by_id_.end()) return false;
  *index = found->second;
  *erased = std::move(neighbours_[*index]);
  neighbours_.erase(neighbours_.begin() + static_cast<ptrdiff_t>(*index));
  reindex();
  return true;
}

bool NeighbourTable::move(Neighbour& n, const Endpoint& to, Micros now) {
  if (n.info.endpoint == to || find_at(to)) return false;
  n.info.lan = false;
  index_by_endpoint_.erase(n.info.endpoint);
  n.info.endpoint = to;
  n.heard_us = now;
  index_by_endpoint_[to] = index_by_id_.at(n.info.id);
  return true;
}

uint64_t NeighbourTable::count_lan() const {
  return static_cast<uint64_t>(
      std::count_if(neighbours_.begin(), neighbours_.end(),
                    [](const Neighbour& n) { return n.info.lan; }));
}

void NeighbourTable::reindex() {
  index_by_endpoint_.clear();
  index_by_id_.clear();
  for (size_t i = 0; i < neighbours_.size(); ++i) {
    index_by_endpoint_[neighbours_[i].info.endpoint] = i;
    index_by_id_[neighbours_[i].info.id] = i;
  }
}

}  // namespace p2psp
