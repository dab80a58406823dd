// gst-p2psp tracker: JSON bodies (json-glib), docs/tracker.md.
#include "tracker_json.h"

#include <json-glib/json-glib.h>

#include <memory>

namespace p2psp_tracker {

namespace {

using p2psp::Endpoint;
using p2psp::Micros;

struct ParserDeleter {
  void operator()(JsonParser* p) const { g_object_unref(p); }
};
struct BuilderDeleter {
  void operator()(JsonBuilder* b) const { g_object_unref(b); }
};

// The body's top-level object, or null (with *error set).
JsonObject* parse_object(JsonParser* parser, const std::string& body,
                         std::string* error) {
  if (body.size() > kMaxRequestBody) {
    *error = "request body too long";
    return nullptr;
  }
  GError* gerror = nullptr;
  if (!json_parser_load_from_data(parser, body.data(),
                                  static_cast<gssize>(body.size()), &gerror)) {
    *error = std::string("not JSON: ") + (gerror ? gerror->message : "");
    g_clear_error(&gerror);
    return nullptr;
  }
  JsonNode* root = json_parser_get_root(parser);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root)) {
    *error = "not a JSON object";
    return nullptr;
  }
  return json_node_get_object(root);
}

// An integer member in [0, max]; absent: `fallback` unless required.
bool get_uint(JsonObject* o, const char* name, uint64_t max, bool required,
              uint64_t fallback, uint64_t* out, std::string* error) {
  JsonNode* node = json_object_get_member(o, name);
  if (node == nullptr) {
    if (required) *error = std::string("missing \"") + name + "\"";
    *out = fallback;
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) ||
      json_node_get_value_type(node) != G_TYPE_INT64 ||
      json_node_get_int(node) < 0 ||
      static_cast<uint64_t>(json_node_get_int(node)) > max) {
    *error = std::string("\"") + name + "\" must be an integer from 0 to " +
             std::to_string(max);
    return false;
  }
  *out = static_cast<uint64_t>(json_node_get_int(node));
  return true;
}

bool get_string(JsonObject* o, const char* name, bool required,
                std::string* out, std::string* error) {
  JsonNode* node = json_object_get_member(o, name);
  if (node == nullptr) {
    if (required) *error = std::string("missing \"") + name + "\"";
    return !required;
  }
  if (!JSON_NODE_HOLDS_VALUE(node) ||
      json_node_get_value_type(node) != G_TYPE_STRING) {
    *error = std::string("\"") + name + "\" must be a string";
    return false;
  }
  *out = json_node_get_string(node);
  return true;
}

bool get_channel(JsonObject* o, std::string* channel, uint32_t* team_id,
                 std::string* error) {
  uint64_t id = 0;
  if (!get_string(o, "channel", true, channel, error) ||
      !get_uint(o, "team-id", UINT32_MAX, true, 0, &id, error)) {
    return false;
  }
  if (!p2psp::Tracker::valid_channel(*channel)) {
    *error = "invalid channel name";
    return false;
  }
  *team_id = static_cast<uint32_t>(id);
  return true;
}

// "1.2.3.4" or "::1" and a port; IP literals only (the tracker never
// resolves names a stranger gives it).
std::optional<Endpoint> endpoint_of(const std::string& host, uint64_t port) {
  if (host.find(':') != std::string::npos) {
    return Endpoint::parse("[" + host + "]:" + std::to_string(port));
  }
  return Endpoint::parse(host + ":" + std::to_string(port));
}

bool get_bool(JsonObject* o, const char* name, bool* out, std::string* error) {
  JsonNode* node = json_object_get_member(o, name);
  if (node == nullptr) return true;
  if (!JSON_NODE_HOLDS_VALUE(node) ||
      json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
    *error = std::string("\"") + name + "\" must be true or false";
    return false;
  }
  *out = json_node_get_boolean(node);
  return true;
}

bool parse_member(JsonNode* node, p2psp::TeamMember* m, std::string* error) {
  if (!JSON_NODE_HOLDS_OBJECT(node)) {
    *error = "\"members\" must hold objects";
    return false;
  }
  JsonObject* o = json_node_get_object(node);
  uint64_t id = 0, chunks = 0, loss = 0;
  std::string endpoint;
  if (!get_uint(o, "id", UINT32_MAX, true, 0, &id, error) ||
      !get_string(o, "endpoint", true, &endpoint, error) ||
      !get_uint(o, "chunks-sent", INT64_MAX, false, 0, &chunks, error) ||
      !get_uint(o, "loss", UINT32_MAX, false, 0, &loss, error) ||
      !get_bool(o, "monitor", &m->monitor, error)) {
    return false;
  }
  const std::optional<Endpoint> e = Endpoint::parse(endpoint);
  if (!e) {
    *error = "a member's \"endpoint\" must be IP:port";
    return false;
  }
  m->id = static_cast<uint32_t>(id);
  m->endpoint = *e;
  m->chunks_sent = chunks;
  m->loss_counter = static_cast<uint32_t>(loss);
  return true;
}

// "members": at most TeamAnnouncement::kMaxMembers, each well formed.
bool get_members(JsonObject* o, std::vector<p2psp::TeamMember>* out,
                 std::string* error) {
  JsonNode* node = json_object_get_member(o, "members");
  if (node == nullptr) return true;
  if (!JSON_NODE_HOLDS_ARRAY(node) ||
      json_array_get_length(json_node_get_array(node)) >
          p2psp::TeamAnnouncement::kMaxMembers) {
    *error = "\"members\" must be an array of at most " +
             std::to_string(p2psp::TeamAnnouncement::kMaxMembers);
    return false;
  }
  JsonArray* array = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(array); ++i) {
    p2psp::TeamMember m;
    if (!parse_member(json_array_get_element(array, i), &m, error))
      return false;
    out->push_back(m);
  }
  return true;
}

void add_int(JsonBuilder* b, const char* name, gint64 value) {
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, value);
}

void add_string(JsonBuilder* b, const char* name, const std::string& value) {
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value.c_str());
}

void add_members(JsonBuilder* b, const std::vector<p2psp::TeamMember>& ms) {
  json_builder_set_member_name(b, "members");
  json_builder_begin_array(b);
  for (const p2psp::TeamMember& m : ms) {
    json_builder_begin_object(b);
    add_int(b, "id", m.id);
    add_string(b, "endpoint", m.endpoint.to_string());
    json_builder_set_member_name(b, "monitor");
    json_builder_add_boolean_value(b, m.monitor);
    add_int(b, "chunks-sent", static_cast<gint64>(m.chunks_sent));
    add_int(b, "loss", m.loss_counter);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
}

// The top-level object of a body we were answered with, or null.
JsonObject* answer_object(JsonParser* parser, const std::string& body) {
  std::string ignored;
  return parse_object(parser, body, &ignored);
}

std::string to_json(JsonBuilder* builder) {
  JsonNode* root = json_builder_get_root(builder);
  gchar* text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  return out;
}

void add_team(JsonBuilder* b, uint32_t id, const p2psp::TrackedTeam& t,
              Micros now_us) {
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "team-id");
  json_builder_add_int_value(b, id);
  json_builder_set_member_name(b, "endpoint");
  json_builder_add_string_value(b, t.last.endpoint.to_string().c_str());
  json_builder_set_member_name(b, "peers");
  json_builder_add_int_value(b, t.last.peers);
  json_builder_set_member_name(b, "max-peers");
  json_builder_add_int_value(b, t.last.max_peers);
  json_builder_set_member_name(b, "joiners-pending");
  json_builder_add_int_value(b, static_cast<gint64>(t.pending.size()));
  json_builder_set_member_name(b, "joiners-sent");
  json_builder_add_int_value(b, static_cast<gint64>(t.joiners_sent));
  json_builder_set_member_name(b, "bitrate");
  json_builder_add_int_value(b, static_cast<gint64>(t.last.bitrate_bps));
  json_builder_set_member_name(b, "chunks-cut");
  json_builder_add_int_value(b, static_cast<gint64>(t.last.chunks_cut));
  json_builder_set_member_name(b, "lost-reports");
  json_builder_add_int_value(b,
                             static_cast<gint64>(t.last.chunks_lost_reported));
  json_builder_set_member_name(b, "uptime-ms");
  json_builder_add_int_value(b, static_cast<gint64>(t.last.uptime_us / 1000));
  json_builder_set_member_name(b, "announced-ms-ago");
  json_builder_add_int_value(
      b, static_cast<gint64>((now_us - t.announced_us) / 1000));
  add_int(b, "moves-asked", static_cast<gint64>(t.moves_asked));
  add_members(b, t.last.members);
  json_builder_end_object(b);
}

}  // namespace

std::optional<p2psp::TeamAnnouncement> parse_announcement(
    const std::string& body, const std::string& peer_host, std::string* error) {
  std::unique_ptr<JsonParser, ParserDeleter> parser(json_parser_new());
  JsonObject* o = parse_object(parser.get(), body, error);
  if (o == nullptr) return std::nullopt;
  p2psp::TeamAnnouncement a;
  std::string host;
  uint64_t port = 0, peers = 0, max_peers = 0, bitrate = 0, cut = 0, lost = 0,
           uptime_ms = 0;
  if (!get_channel(o, &a.channel, &a.team_id, error) ||
      !get_string(o, "host", false, &host, error) ||
      !get_uint(o, "port", 65535, true, 0, &port, error) ||
      !get_uint(o, "peers", UINT32_MAX, false, 0, &peers, error) ||
      !get_uint(o, "max-peers", UINT32_MAX, false, 0, &max_peers, error) ||
      !get_uint(o, "bitrate", INT64_MAX, false, 0, &bitrate, error) ||
      !get_uint(o, "chunks-cut", INT64_MAX, false, 0, &cut, error) ||
      !get_uint(o, "lost-reports", INT64_MAX, false, 0, &lost, error) ||
      !get_uint(o, "uptime-ms", INT64_MAX / 1000, false, 0, &uptime_ms,
                error) ||
      !get_members(o, &a.members, error)) {
    return std::nullopt;
  }
  const std::optional<Endpoint> endpoint =
      endpoint_of(host.empty() ? peer_host : host, port);
  if (!endpoint || port == 0) {
    *error = "\"host\" must be an IP address and \"port\" 1 to 65535";
    return std::nullopt;
  }
  a.endpoint = endpoint->normalized();
  a.peers = static_cast<uint32_t>(peers);
  a.max_peers = static_cast<uint32_t>(max_peers);
  a.bitrate_bps = bitrate;
  a.chunks_cut = cut;
  a.chunks_lost_reported = lost;
  a.uptime_us = uptime_ms * 1000;
  return a;
}

bool parse_withdrawal(const std::string& body, std::string* channel,
                      uint32_t* team_id, std::string* error) {
  std::unique_ptr<JsonParser, ParserDeleter> parser(json_parser_new());
  JsonObject* o = parse_object(parser.get(), body, error);
  return o != nullptr && get_channel(o, channel, team_id, error);
}

std::string join_json(const p2psp::TrackedTeam& team) {
  std::unique_ptr<JsonBuilder, BuilderDeleter> b(json_builder_new());
  json_builder_begin_object(b.get());
  json_builder_set_member_name(b.get(), "channel");
  json_builder_add_string_value(b.get(), team.last.channel.c_str());
  json_builder_set_member_name(b.get(), "team-id");
  json_builder_add_int_value(b.get(), team.last.team_id);
  json_builder_set_member_name(b.get(), "uri");
  json_builder_add_string_value(
      b.get(), ("p2psp://" + team.last.endpoint.to_string()).c_str());
  json_builder_end_object(b.get());
  return to_json(b.get());
}

std::string status_json(const std::vector<p2psp::ChannelStatus>& channels,
                        Micros now_us, Micros uptime_us) {
  std::unique_ptr<JsonBuilder, BuilderDeleter> b(json_builder_new());
  json_builder_begin_object(b.get());
  json_builder_set_member_name(b.get(), "uptime-ms");
  json_builder_add_int_value(b.get(), static_cast<gint64>(uptime_us / 1000));
  json_builder_set_member_name(b.get(), "channels");
  json_builder_begin_array(b.get());
  for (const p2psp::ChannelStatus& c : channels) {
    json_builder_begin_object(b.get());
    json_builder_set_member_name(b.get(), "name");
    json_builder_add_string_value(b.get(), c.name.c_str());
    json_builder_set_member_name(b.get(), "peers");
    json_builder_add_int_value(b.get(), c.peers);
    json_builder_set_member_name(b.get(), "teams");
    json_builder_begin_array(b.get());
    for (const p2psp::TrackedTeam& t : c.teams) {
      add_team(b.get(), t.last.team_id, t, now_us);
    }
    json_builder_end_array(b.get());
    json_builder_end_object(b.get());
  }
  json_builder_end_array(b.get());
  json_builder_end_object(b.get());
  return to_json(b.get());
}

std::string error_json(const std::string& message) {
  std::unique_ptr<JsonBuilder, BuilderDeleter> b(json_builder_new());
  json_builder_begin_object(b.get());
  json_builder_set_member_name(b.get(), "error");
  json_builder_add_string_value(b.get(), message.c_str());
  json_builder_end_object(b.get());
  return to_json(b.get());
}

std::string announcement_json(const AnnouncementBody& body) {
  const p2psp::TeamAnnouncement& a = body.team;
  std::unique_ptr<JsonBuilder, BuilderDeleter> owner(json_builder_new());
  JsonBuilder* b = owner.get();
  json_builder_begin_object(b);
  add_string(b, "channel", a.channel);
  if (!body.host.empty()) add_string(b, "host", body.host);
  add_int(b, "team-id", a.team_id);
  add_int(b, "port", body.port);
  add_int(b, "peers", a.peers);
  add_int(b, "max-peers", a.max_peers);
  add_int(b, "bitrate", static_cast<gint64>(a.bitrate_bps));
  add_int(b, "chunks-cut", static_cast<gint64>(a.chunks_cut));
  add_int(b, "lost-reports", static_cast<gint64>(a.chunks_lost_reported));
  add_int(b, "uptime-ms", static_cast<gint64>(a.uptime_us / 1000));
  std::vector<p2psp::TeamMember> members = a.members;
  if (members.size() > p2psp::TeamAnnouncement::kMaxMembers)
    members.resize(p2psp::TeamAnnouncement::kMaxMembers);
  add_members(b, members);
  json_builder_end_object(b);
  return to_json(b);
}

std::string withdrawal_json(const std::string& channel, uint32_t team_id) {
  std::unique_ptr<JsonBuilder, BuilderDeleter> owner(json_builder_new());
  json_builder_begin_object(owner.get());
  add_string(owner.get(), "channel", channel);
  add_int(owner.get(), "team-id", team_id);
  json_builder_end_object(owner.get());
  return to_json(owner.get());
}

std::string announce_reply_json(uint32_t moves) {
  std::unique_ptr<JsonBuilder, BuilderDeleter> owner(json_builder_new());
  json_builder_begin_object(owner.get());
  add_int(owner.get(), "interval-ms", 1000);
  add_int(owner.get(), "move", moves);
  json_builder_end_object(owner.get());
  return to_json(owner.get());
}

uint32_t parse_announce_reply(const std::string& body) {
  std::unique_ptr<JsonParser, ParserDeleter> parser(json_parser_new());
  JsonObject* o = answer_object(parser.get(), body);
  uint64_t moves = 0;
  std::string ignored;
  // A tracker never asks more than a few moves at once; more is nonsense.
  if (o == nullptr || !get_uint(o, "move", 16, false, 0, &moves, &ignored))
    return 0;
  return static_cast<uint32_t>(moves);
}

std::string parse_join_uri(const std::string& body) {
  std::unique_ptr<JsonParser, ParserDeleter> parser(json_parser_new());
  JsonObject* o = answer_object(parser.get(), body);
  std::string uri, ignored;
  if (o == nullptr || !get_string(o, "uri", true, &uri, &ignored)) return {};
  return uri;
}

std::string parse_error(const std::string& body) {
  std::unique_ptr<JsonParser, ParserDeleter> parser(json_parser_new());
  JsonObject* o = answer_object(parser.get(), body);
  std::string text, ignored;
  if (o == nullptr || !get_string(o, "error", true, &text, &ignored)) return {};
  return text;
}

}  // namespace p2psp_tracker
