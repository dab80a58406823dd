/* gst-p2psp: the registered enums of both elements, one table each.
 *
 * The values of GstP2pspRemoveReason below 64 are the wire's reason codes
 * (docs/protocol.md, 5.2); the others are the splitter element's own and
 * never travel. Messages and stats carry the nicks, so these tables are the
 * only place a reason or a state gets its name. */
#pragma once

#include <gst/gst.h>
#include <gst/p2psp/peer.h>
#include <gst/p2psp/wire.h>

G_BEGIN_DECLS

typedef enum {
  GST_P2PSP_REMOVE_REASON_UNKNOWN = 0,
  GST_P2PSP_REMOVE_REASON_SHUTDOWN = 1,
  GST_P2PSP_REMOVE_REASON_PROTOCOL_ERROR = 2,
  GST_P2PSP_REMOVE_REASON_TIMEOUT = 3,
  GST_P2PSP_REMOVE_REASON_TEAM_FULL = 4,
  GST_P2PSP_REMOVE_REASON_VERSION = 5,
  GST_P2PSP_REMOVE_REASON_EXPELLED = 6,
  GST_P2PSP_REMOVE_REASON_AUTH = 7,
  /* Splitter only: the peer said goodbye or closed its connection. */
  GST_P2PSP_REMOVE_REASON_LEFT = 64,
  /* Splitter only: its control channel backed up past max-control-backlog. */
  GST_P2PSP_REMOVE_REASON_SLOW = 65,
} GstP2pspRemoveReason;

#define GST_TYPE_P2PSP_REMOVE_REASON (gst_p2psp_remove_reason_get_type())
GType gst_p2psp_remove_reason_get_type(void);

typedef enum {
  GST_P2PSP_PEER_STATE_IDLE = 0,
  GST_P2PSP_PEER_STATE_JOINING = 1,
  GST_P2PSP_PEER_STATE_REGISTERING = 2,
  GST_P2PSP_PEER_STATE_MEMBER = 3,
  GST_P2PSP_PEER_STATE_REMOVED = 4,
  GST_P2PSP_PEER_STATE_LEFT = 5,
  /* The element's own: between losing the team and rejoining it. */
  GST_P2PSP_PEER_STATE_RECONNECTING = 6,
} GstP2pspPeerState;

#define GST_TYPE_P2PSP_PEER_STATE (gst_p2psp_peer_state_get_type())
GType gst_p2psp_peer_state_get_type(void);

G_END_DECLS

namespace p2psp_gst {

/* The nick of a value of a registered enum ("unknown" for a value it does
 * not have), and its description (the table's value_name). */
const char *enum_nick(GType type, gint value);
const char *enum_description(GType type, gint value);

GstP2pspRemoveReason remove_reason_of(p2psp::RemoveReason reason);
const char *remove_reason_nick(p2psp::RemoveReason reason);
const char *remove_reason_description(p2psp::RemoveReason reason);
const char *peer_state_nick(p2psp::PeerState state);

/* Marks the enums as plugin API (gst-inspect and the docs list them). */
void mark_enums_as_plugin_api();

}  // namespace p2psp_gst
