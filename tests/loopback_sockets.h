/* gst-p2psp tests: real sockets on 127.0.0.1 for the plugin's socket,
 * connection and I/O tests: a blocking UDP socket on a free port, its endpoint,
 * and a connected TCP pair whose server side is non-blocking and handed to the
 * object under test (which adopts it); the client side is the remote end,
 * read or left unread as the test needs. */
#pragma once

#include <gio/gio.h>

#include "plugin/gstp2psputil.h"

inline GSocket *LoopbackUdp() {
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                            G_SOCKET_PROTOCOL_UDP, nullptr);
  GSocketAddress *any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  g_socket_bind(s, any, FALSE, nullptr);
  g_object_unref(any);
  return s;
}

inline p2psp::Endpoint LocalEndpoint(GSocket *s) {
  GSocketAddress *a = g_socket_get_local_address(s, nullptr);
  p2psp::Endpoint ep = p2psp_gst::endpoint_from_address(a);
  g_object_unref(a);
  return ep;
}

struct LoopbackPair {
  p2psp_gst::GRef<GSocket> listener, client;
  GSocket *server = nullptr;

  LoopbackPair() {
    listener.reset(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, nullptr));
    GSocketAddress *any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    g_socket_bind(listener.get(), any, TRUE, nullptr);
    g_object_unref(any);
    g_socket_listen(listener.get(), nullptr);
    GSocketAddress *addr = g_socket_get_local_address(listener.get(), nullptr);
    client.reset(g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_DEFAULT, nullptr));
    g_socket_connect(client.get(), addr, nullptr, nullptr);
    g_object_unref(addr);
    server = g_socket_accept(listener.get(), nullptr, nullptr);
    g_socket_set_blocking(server, FALSE);
  }
};
