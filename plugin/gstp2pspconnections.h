/* gst-p2psp: the splitter's TCP connections, one table.
 *
 * Found by id (the core's ConnId) or by socket (what the poll thread
 * reports), both hashed. Each connection's output queue is bounded: a queue
 * past the bound makes queue() say so, and the caller drops the connection
 * (docs/elements.md, max-control-backlog). The poll list is kept between
 * rounds and rebuilt only when a connection came, went, or started or
 * stopped wanting to write. Not thread-safe: the caller's lock guards it. */
#pragma once

#include <gio/gio.h>

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gstp2psputil.h"

namespace p2psp_gst {

class ConnectionTable {
 public:
  struct Connection {
    std::unique_ptr<TcpConnection> tcp;
    p2psp::Endpoint remote;
    /* The core asked for it to be closed once its output is written... */
    bool close_when_flushed = false;
    /* ...or by then, whatever is left: a peer that stopped reading must not
     * keep its socket forever. */
    p2psp::Micros close_by_us = 0;
  };

  /* Adopts a connected socket; returns its new id. */
  p2psp::ConnId add(GSocket *adopt, const p2psp::Endpoint &remote);
  Connection *find(p2psp::ConnId conn);
  /* 0 when the socket is not a connection of the table. */
  p2psp::ConnId find(GSocket *sock) const;
  /* Closes and forgets it. */
  void erase(p2psp::ConnId conn);
  void close_all();

  /* Queues bytes. FALSE when the connection's unsent output now exceeds
   * `max_backlog` bytes and was not empty before (a single message, however
   * large, always gets through an idle connection): drop it. */
  bool queue(p2psp::ConnId conn, const std::vector<uint8_t> &bytes,
             size_t max_backlog);
  /* Writes what the kernel takes; FALSE on a fatal error. */
  bool flush(p2psp::ConnId conn);
  void close_when_flushed(p2psp::ConnId conn, p2psp::Micros close_by_us);
  /* Drops its output and has it closed at the next reap(): sockets are only
   * closed on the poll thread, never under a poll() that watches them. */
  void abandon(p2psp::ConnId conn);
  /* Closes the connections asked to be closed that are flushed or due. */
  void reap(p2psp::Micros now);

  /* The poll list: the two fixed sockets, then every connection. FALSE (and
   * `list` untouched) when nothing changed since the last call. */
  bool watches(GSocket *listener, GSocket *udp, PollThread::WatchList &list);

  size_t size() const { return by_id_.size(); }
  size_t queued_bytes() const;
  bool wants_write() const;

 private:
  std::unordered_map<p2psp::ConnId, Connection> by_id_;
  std::unordered_map<GSocket *, p2psp::ConnId> by_socket_;
  std::unordered_set<p2psp::ConnId> closing_;
  p2psp::ConnId next_ = 1;
  bool dirty_ = true;
};

}  // namespace p2psp_gst
