/* gst-p2psp: IP multicast sockets (P2PSP's IMS, docs/protocol.md 8.5): the
 * splitter's sending options and a peer's receiving socket. Plain socket
 * options, as udpsink and udpsrc set them; GIO has no setter for the
 * outgoing interface. */
#pragma once

#include <gio/gio.h>
#include <gst/p2psp/endpoint.h>

#include <string>

namespace p2psp_gst {

/* The group the splitter's multicast-group and multicast-port properties
 * name (port 0: udp_port). Invalid when the group is empty; *error set
 * (and invalid) when it is not a multicast address. */
p2psp::Endpoint multicast_group_endpoint(const std::string &group, guint port,
                                         guint16 udp_port, std::string *error);

/* Sending to the group from `sock`: out of `iface` (a name; empty: the
 * interface of the address the socket is bound to, or the routing table's
 * choice), with this TTL (hop limit), looped back to this host. */
bool multicast_sender_setup(GSocket *sock, const p2psp::Endpoint &group,
                            const std::string &iface, int ttl,
                            std::string *error);

/* A socket bound to the group's address and port (shared with other
 * sockets on this host: several peers may run here), joined to it on
 * `local` (the address the peer reaches the splitter from; it picks the
 * interface). Non-blocking. nullptr and *error on failure. */
GSocket *multicast_receiver_open(const p2psp::Endpoint &group,
                                 const p2psp::Endpoint &local,
                                 std::string *error);

}  // namespace p2psp_gst
