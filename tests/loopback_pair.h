/* gst-p2psp tests: a connected TCP pair on 127.0.0.1 (real sockets), for the
 * plugin's connection and I/O tests. The server side is non-blocking and
 * handed to the object under test (which adopts it); the client side is the
 * remote end, read or left unread as the test needs. */
#pragma once

#include <gio/gio.h>

#include "plugin/gstp2psputil.h"

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
