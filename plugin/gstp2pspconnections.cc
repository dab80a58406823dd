/* gst-p2psp: the splitter's TCP connections, one table. */
#include "gstp2pspconnections.h"

namespace p2psp_gst {

p2psp::ConnId ConnectionTable::add(GSocket *adopt,
                                   const p2psp::Endpoint &remote) {
  const p2psp::ConnId id = next_++;
  Connection c;
  c.tcp = std::make_unique<TcpConnection>(adopt);
  c.remote = remote;
  by_socket_[adopt] = id;
  by_id_.emplace(id, std::move(c));
  dirty_ = true;
  return id;
}

ConnectionTable::Connection *ConnectionTable::find(p2psp::ConnId conn) {
  auto it = by_id_.find(conn);
  return it == by_id_.end() ? nullptr : &it->second;
}

p2psp::ConnId ConnectionTable::find(GSocket *sock) const {
  auto it = by_socket_.find(sock);
  return it == by_socket_.end() ? 0 : it->second;
}

void ConnectionTable::erase(p2psp::ConnId conn) {
  auto it = by_id_.find(conn);
  if (it == by_id_.end()) return;
  GSocket *sock = it->second.tcp->socket();
  g_socket_close(sock, nullptr);
  by_socket_.erase(sock);
  closing_.erase(conn);
  by_id_.erase(it);
  dirty_ = true;
}

void ConnectionTable::close_all() {
  for (auto &entry : by_id_)
    g_socket_close(entry.second.tcp->socket(), nullptr);
  by_id_.clear();
  by_socket_.clear();
  closing_.clear();
  dirty_ = true;
}

bool ConnectionTable::queue(p2psp::ConnId conn,
                            const std::vector<uint8_t> &bytes,
                            size_t max_backlog) {
  Connection *c = find(conn);
  if (c == nullptr) return true;
  const size_t before = c->tcp->queued();
  c->tcp->queue(bytes);
  if (before == 0) dirty_ = true; /* now wants G_IO_OUT */
  return before == 0 || c->tcp->queued() <= max_backlog;
}

bool ConnectionTable::flush(p2psp::ConnId conn) {
  Connection *c = find(conn);
  if (c == nullptr) return true;
  const bool ok = c->tcp->flush();
  if (!c->tcp->wants_write()) dirty_ = true; /* G_IO_OUT no more */
  return ok;
}

void ConnectionTable::close_when_flushed(p2psp::ConnId conn,
                                         p2psp::Micros close_by_us) {
  Connection *c = find(conn);
  if (c == nullptr || c->close_when_flushed) return;
  c->close_when_flushed = true;
  c->close_by_us = close_by_us;
  closing_.insert(conn);
  dirty_ = true; /* no G_IO_IN any more */
}

void ConnectionTable::abandon(p2psp::ConnId conn) {
  Connection *c = find(conn);
  if (c == nullptr) return;
  c->tcp->discard();
  c->close_when_flushed = true;
  c->close_by_us = 0;
  closing_.insert(conn);
  dirty_ = true;
}

void ConnectionTable::reap(p2psp::Micros now) {
  std::vector<p2psp::ConnId> done;
  for (p2psp::ConnId conn : closing_) {
    const Connection &c = by_id_.at(conn);
    if (!c.tcp->wants_write() || now >= c.close_by_us) done.push_back(conn);
  }
  for (p2psp::ConnId conn : done) erase(conn);
}

bool ConnectionTable::watches(GSocket *listener, GSocket *udp,
                              PollThread::WatchList &list) {
  if (!dirty_) return false;
  dirty_ = false;
  list.clear();
  if (listener) list.emplace_back(listener, G_IO_IN);
  if (udp) list.emplace_back(udp, G_IO_IN);
  for (const auto &entry : by_id_) {
    const Connection &c = entry.second;
    int cond = c.close_when_flushed ? 0 : G_IO_IN;
    if (c.tcp->wants_write()) cond |= G_IO_OUT;
    list.emplace_back(c.tcp->socket(), static_cast<GIOCondition>(cond));
  }
  return true;
}

size_t ConnectionTable::queued_bytes() const {
  size_t total = 0;
  for (const auto &entry : by_id_) total += entry.second.tcp->queued();
  return total;
}

bool ConnectionTable::wants_write() const {
  for (const auto &entry : by_id_)
    if (entry.second.tcp->wants_write()) return true;
  return false;
}

}  // namespace p2psp_gst
