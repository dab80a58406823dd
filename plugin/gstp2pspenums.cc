/* gst-p2psp: the registered enums of both elements, one table each. */
#include "gstp2pspenums.h"

namespace {

/* value_name is the description, value_nick what messages and stats say. */
const GEnumValue kRemoveReasons[] = {
    {GST_P2PSP_REMOVE_REASON_UNKNOWN, "no reason given", "unknown"},
    {GST_P2PSP_REMOVE_REASON_SHUTDOWN, "the splitter is shutting down",
     "shutdown"},
    {GST_P2PSP_REMOVE_REASON_PROTOCOL_ERROR, "protocol error",
     "protocol-error"},
    {GST_P2PSP_REMOVE_REASON_TIMEOUT, "timed out", "timeout"},
    {GST_P2PSP_REMOVE_REASON_TEAM_FULL, "the team is full", "team-full"},
    {GST_P2PSP_REMOVE_REASON_VERSION, "unsupported protocol version",
     "version"},
    {GST_P2PSP_REMOVE_REASON_EXPELLED, "expelled", "expelled"},
    {GST_P2PSP_REMOVE_REASON_AUTH, "passphrase refused", "auth"},
    {GST_P2PSP_REMOVE_REASON_LEFT,
     "the peer said goodbye or closed its connection", "left"},
    {GST_P2PSP_REMOVE_REASON_SLOW,
     "the peer's control channel backed up past max-control-backlog", "slow"},
    {0, nullptr, nullptr}};

const GEnumValue kPeerStates[] = {
    {GST_P2PSP_PEER_STATE_IDLE, "not in a team", "idle"},
    {GST_P2PSP_PEER_STATE_JOINING, "joining over TCP", "joining"},
    {GST_P2PSP_PEER_STATE_REGISTERING, "registering its UDP endpoint",
     "registering"},
    {GST_P2PSP_PEER_STATE_MEMBER, "a member of the team", "member"},
    {GST_P2PSP_PEER_STATE_REMOVED, "removed by the splitter", "removed"},
    {GST_P2PSP_PEER_STATE_LEFT, "left the team", "left"},
    {GST_P2PSP_PEER_STATE_RECONNECTING, "between losing the team and rejoining",
     "reconnecting"},
    {0, nullptr, nullptr}};

GType register_enum(const char *name, const GEnumValue *values, gsize *once) {
  if (g_once_init_enter(once)) {
    GType type = g_enum_register_static(name, values);
    g_once_init_leave(once, type);
  }
  return static_cast<GType>(*once);
}

const GEnumValue *enum_value(GType type, gint value) {
  GEnumClass *klass = static_cast<GEnumClass *>(g_type_class_ref(type));
  const GEnumValue *v = g_enum_get_value(klass, value);
  /* The tables are static: their strings outlive the class reference. */
  g_type_class_unref(klass);
  return v;
}

}  // namespace

GType gst_p2psp_remove_reason_get_type(void) {
  static gsize type = 0;
  return register_enum("GstP2pspRemoveReason", kRemoveReasons, &type);
}

GType gst_p2psp_peer_state_get_type(void) {
  static gsize type = 0;
  return register_enum("GstP2pspPeerState", kPeerStates, &type);
}

namespace p2psp_gst {

const char *enum_nick(GType type, gint value) {
  const GEnumValue *v = enum_value(type, value);
  return v ? v->value_nick : "unknown";
}

const char *enum_description(GType type, gint value) {
  const GEnumValue *v = enum_value(type, value);
  return v ? v->value_name : "no reason given";
}

GstP2pspRemoveReason remove_reason_of(p2psp::RemoveReason reason) {
  /* The wire's codes are the enum's first values. */
  return static_cast<GstP2pspRemoveReason>(reason);
}

const char *remove_reason_nick(p2psp::RemoveReason reason) {
  return enum_nick(GST_TYPE_P2PSP_REMOVE_REASON, remove_reason_of(reason));
}

const char *remove_reason_description(p2psp::RemoveReason reason) {
  return enum_description(GST_TYPE_P2PSP_REMOVE_REASON,
                          remove_reason_of(reason));
}

const char *peer_state_nick(p2psp::PeerState state) {
  GstP2pspPeerState s = GST_P2PSP_PEER_STATE_IDLE;
  switch (state) {
    case p2psp::PeerState::kIdle:
      s = GST_P2PSP_PEER_STATE_IDLE;
      break;
    case p2psp::PeerState::kJoining:
      s = GST_P2PSP_PEER_STATE_JOINING;
      break;
    case p2psp::PeerState::kRegistering:
      s = GST_P2PSP_PEER_STATE_REGISTERING;
      break;
    case p2psp::PeerState::kMember:
      s = GST_P2PSP_PEER_STATE_MEMBER;
      break;
    case p2psp::PeerState::kRemoved:
      s = GST_P2PSP_PEER_STATE_REMOVED;
      break;
    case p2psp::PeerState::kLeft:
      s = GST_P2PSP_PEER_STATE_LEFT;
      break;
  }
  return enum_nick(GST_TYPE_P2PSP_PEER_STATE, s);
}

void mark_enums_as_plugin_api() {
  gst_type_mark_as_plugin_api(GST_TYPE_P2PSP_REMOVE_REASON,
                              static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_P2PSP_PEER_STATE,
                              static_cast<GstPluginAPIFlags>(0));
}

}  // namespace p2psp_gst
