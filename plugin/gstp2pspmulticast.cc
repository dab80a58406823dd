#include "gstp2pspmulticast.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "gstp2psputil.h"

namespace p2psp_gst {
namespace {

bool is_multicast(const p2psp::Endpoint &e) {
  if (e.family == p2psp::Endpoint::Family::kIPv4) return (e.addr[0] >> 4) == 14;
  return e.family == p2psp::Endpoint::Family::kIPv6 && e.addr[0] == 0xff;
}

bool fail(std::string *error, const char *what) {
  *error = std::string(what) + ": " + std::strerror(errno);
  return false;
}

in_addr ipv4_of(const p2psp::Endpoint &e) {
  in_addr a{};
  std::memcpy(&a, e.addr.data(), 4);
  return a;
}

/* The interface index of the bound address (IPv6 needs an index). */
unsigned index_of(const std::string &iface) {
  return iface.empty() ? 0 : if_nametoindex(iface.c_str());
}

}  // namespace

p2psp::Endpoint multicast_group_endpoint(const std::string &group, guint port,
                                         guint16 udp_port, std::string *error) {
  if (group.empty()) return p2psp::Endpoint();
  const guint16 p = port != 0 ? static_cast<guint16>(port) : udp_port;
  const std::string text = group.find(':') != std::string::npos
                               ? "[" + group + "]:" + std::to_string(p)
                               : group + ":" + std::to_string(p);
  const std::optional<p2psp::Endpoint> e = p2psp::Endpoint::parse(text);
  if (!e || !is_multicast(*e)) {
    *error = "\"" + group + "\" is not a multicast address";
    return p2psp::Endpoint();
  }
  return *e;
}

bool multicast_sender_setup(GSocket *sock, const p2psp::Endpoint &group,
                            const std::string &iface, int ttl,
                            std::string *error) {
  const int fd = g_socket_get_fd(sock);
  const unsigned index = index_of(iface);
  if (!iface.empty() && index == 0) {
    *error = "no interface \"" + iface + "\"";
    return false;
  }
  const unsigned char loop = 1;
  if (group.family == p2psp::Endpoint::Family::kIPv4) {
    ip_mreqn req{};
    req.imr_ifindex = static_cast<int>(index);
    if (index == 0) {
      GSocketAddress *local = g_socket_get_local_address(sock, nullptr);
      if (local) {
        const p2psp::Endpoint bound = endpoint_from_address(local);
        g_object_unref(local);
        if (bound.family == p2psp::Endpoint::Family::kIPv4)
          req.imr_address = ipv4_of(bound);
      }
    }
    const unsigned char hops = static_cast<unsigned char>(ttl);
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &req, sizeof req) != 0)
      return fail(error, "IP_MULTICAST_IF");
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof hops) != 0)
      return fail(error, "IP_MULTICAST_TTL");
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0)
      return fail(error, "IP_MULTICAST_LOOP");
    return true;
  }
  const int hops = ttl, loop6 = 1;
  const int ifindex = static_cast<int>(index);
  if (index != 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex,
                               sizeof ifindex) != 0)
    return fail(error, "IPV6_MULTICAST_IF");
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) !=
      0)
    return fail(error, "IPV6_MULTICAST_HOPS");
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop6, sizeof loop6) !=
      0)
    return fail(error, "IPV6_MULTICAST_LOOP");
  return true;
}

namespace {

bool join(int fd, const p2psp::Endpoint &group, const p2psp::Endpoint &local,
          std::string *error) {
  if (group.family == p2psp::Endpoint::Family::kIPv4) {
    ip_mreqn req{};
    req.imr_multiaddr = ipv4_of(group);
    if (local.family == p2psp::Endpoint::Family::kIPv4)
      req.imr_address = ipv4_of(local);
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &req, sizeof req) != 0)
      return fail(error, "IP_ADD_MEMBERSHIP");
    return true;
  }
  ipv6_mreq req{};
  std::memcpy(&req.ipv6mr_multiaddr, group.addr.data(), 16);
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &req, sizeof req) != 0)
    return fail(error, "IPV6_JOIN_GROUP");
  return true;
}

}  // namespace

GSocket *multicast_receiver_open(const p2psp::Endpoint &group,
                                 const p2psp::Endpoint &local,
                                 std::string *error) {
  if (!is_multicast(group)) {
    *error = group.to_string() + " is not a multicast group";
    return nullptr;
  }
  const bool v4 = group.family == p2psp::Endpoint::Family::kIPv4;
  GError *gerror = nullptr;
  GSocket *sock =
      g_socket_new(v4 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6,
                   G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &gerror);
  if (!sock) {
    *error = gerror->message;
    g_error_free(gerror);
    return nullptr;
  }
  GSocketAddress *bind_to = address_from_endpoint(group);
  /* allow_reuse: every peer on this host binds the group's port. */
  const bool bound = bind_to && g_socket_bind(sock, bind_to, TRUE, &gerror);
  if (bind_to) g_object_unref(bind_to);
  if (!bound) {
    *error = gerror ? gerror->message : "bad group address";
    if (gerror) g_error_free(gerror);
    g_object_unref(sock);
    return nullptr;
  }
  if (!join(g_socket_get_fd(sock), group, local, error)) {
    g_object_unref(sock);
    return nullptr;
  }
  g_socket_set_blocking(sock, FALSE);
  return sock;
}

}  // namespace p2psp_gst
