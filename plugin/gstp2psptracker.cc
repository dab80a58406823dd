/* gst-p2psp: the elements' side of the tracker (docs/tracker.md). */
#include "gstp2psptracker.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace p2psp_gst {

namespace {

template <typename T>
struct Unref {
  void operator()(T *p) const { g_object_unref(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Unref<T>>;

std::string host_in_uri(const std::string &host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

/* "p2psp://1.2.3.4:5" or "p2psp://[::1]:5". */
bool parse_team_uri(const char *text, TeamAddress *team) {
  GUri *uri = text ? g_uri_parse(text, G_URI_FLAGS_NONE, nullptr) : nullptr;
  if (uri == nullptr) return false;
  const bool ok = g_strcmp0(g_uri_get_scheme(uri), "p2psp") == 0 &&
                  g_uri_get_host(uri) != nullptr && g_uri_get_port(uri) > 0;
  if (ok) {
    team->host = g_uri_get_host(uri);
    team->port = g_uri_get_port(uri);
  }
  g_uri_unref(uri);
  return ok;
}

/* The "uri" member of a join answer. */
bool team_from_json(GBytes *body, TeamAddress *team, std::string *error) {
  Owned<JsonParser> parser(json_parser_new());
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(body, &size));
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser.get(), data, static_cast<gssize>(size),
                                 nullptr)) {
    root = json_parser_get_root(parser.get());
  }
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root)) {
    *error = "the tracker's answer is not a JSON object";
    return false;
  }
  JsonObject *o = json_node_get_object(root);
  const char *uri = json_object_has_member(o, "uri")
                        ? json_object_get_string_member(o, "uri")
                        : nullptr;
  if (!parse_team_uri(uri, team)) {
    *error = "the tracker's answer names no team";
    return false;
  }
  return true;
}

std::string error_member(GBytes *body) {
  if (body == nullptr) return {};
  Owned<JsonParser> parser(json_parser_new());
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(body, &size));
  if (!json_parser_load_from_data(parser.get(), data, static_cast<gssize>(size),
                                  nullptr))
    return {};
  JsonNode *root = json_parser_get_root(parser.get());
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root)) return {};
  JsonObject *o = json_node_get_object(root);
  return json_object_has_member(o, "error")
             ? json_object_get_string_member(o, "error")
             : "";
}

std::string announcement_json(const Announcement &a) {
  Owned<JsonBuilder> b(json_builder_new());
  JsonBuilder *j = b.get();
  json_builder_begin_object(j);
  auto member = [j](const char *name, gint64 v) {
    json_builder_set_member_name(j, name);
    json_builder_add_int_value(j, v);
  };
  json_builder_set_member_name(j, "channel");
  json_builder_add_string_value(j, a.channel.c_str());
  if (!a.host.empty()) {
    json_builder_set_member_name(j, "host");
    json_builder_add_string_value(j, a.host.c_str());
  }
  member("team-id", a.team_id);
  member("port", a.port);
  member("peers", a.peers);
  member("max-peers", a.max_peers);
  member("bitrate", static_cast<gint64>(a.bitrate));
  member("chunks-cut", static_cast<gint64>(a.chunks_cut));
  member("lost-reports", static_cast<gint64>(a.lost_reports));
  member("uptime-ms", static_cast<gint64>(a.uptime_ms));
  json_builder_end_object(j);
  JsonNode *root = json_builder_get_root(j);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  return out;
}

}  // namespace

std::string host_port(const std::string &host, int port) {
  return host_in_uri(host) + ":" + std::to_string(port);
}

namespace {

/* One tracker address (an IP literal or a name libsoup resolves). */
JoinAnswer join_at(const std::string &tracker_host, int tracker_port,
                   const std::string &channel, const std::string &avoid,
                   guint timeout_s, GCancellable *cancel, TeamAddress *team,
                   std::string *error) {
  std::string url = "http://" + host_in_uri(tracker_host) + ":" +
                    std::to_string(tracker_port) + "/v1/join/" + channel;
  if (!avoid.empty()) {
    gchar *escaped = g_uri_escape_string(avoid.c_str(), nullptr, FALSE);
    url += std::string("?avoid=") + escaped;
    g_free(escaped);
  }
  Owned<SoupSession> session(
      soup_session_new_with_options("timeout", timeout_s, nullptr));
  Owned<SoupMessage> msg(soup_message_new("GET", url.c_str()));
  if (!msg) {
    *error = "invalid tracker address " + url;
    return JoinAnswer::kFailed;
  }
  GError *gerror = nullptr;
  GBytes *body =
      soup_session_send_and_read(session.get(), msg.get(), cancel, &gerror);
  const guint status = soup_message_get_status(msg.get());
  JoinAnswer answer = JoinAnswer::kFailed;
  if (body == nullptr) {
    if (g_error_matches(gerror, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      answer = JoinAnswer::kCancelled;
    *error = std::string("tracker at ") + url + ": " +
             (gerror ? gerror->message : "no answer");
  } else if (status != SOUP_STATUS_OK) {
    *error =
        "tracker: HTTP " + std::to_string(status) + " " + error_member(body);
    if (status == SOUP_STATUS_SERVICE_UNAVAILABLE) answer = JoinAnswer::kFull;
  } else if (team_from_json(body, team, error)) {
    answer = JoinAnswer::kTeam;
  }
  g_clear_error(&gerror);
  if (body) g_bytes_unref(body);
  return answer;
}

/* Every address the tracker's name has (several trackers behind one name),
 * or the name itself when it does not resolve here (libsoup reports). */
std::vector<std::string> tracker_addresses(const std::string &host,
                                           GCancellable *cancel) {
  std::vector<std::string> out;
  GResolver *resolver = g_resolver_get_default();
  GList *list =
      g_resolver_lookup_by_name(resolver, host.c_str(), cancel, nullptr);
  for (GList *l = list; l != nullptr; l = l->next) {
    gchar *text = g_inet_address_to_string(G_INET_ADDRESS(l->data));
    if (std::find(out.begin(), out.end(), text) == out.end())
      out.push_back(text);
    g_free(text);
  }
  g_resolver_free_addresses(list);
  g_object_unref(resolver);
  if (out.empty()) out.push_back(host);
  return out;
}

}  // namespace

JoinAnswer tracker_join(const std::string &tracker_host, int tracker_port,
                        const std::string &channel, const std::string &avoid,
                        guint timeout_s, GCancellable *cancel,
                        TeamAddress *team, std::string *error) {
  const std::vector<std::string> addresses =
      tracker_addresses(tracker_host, cancel);
  const guint each_s = std::max<guint>(1, timeout_s / addresses.size());
  bool full = false;
  for (const std::string &address : addresses) {
    const JoinAnswer answer = join_at(address, tracker_port, channel, avoid,
                                      each_s, cancel, team, error);
    if (answer == JoinAnswer::kTeam || answer == JoinAnswer::kCancelled)
      return answer;
    full |= answer == JoinAnswer::kFull;
  }
  return full ? JoinAnswer::kFull : JoinAnswer::kFailed;
}

TrackerAnnouncer::TrackerAnnouncer(
    std::string tracker_uri, std::string announce_key,
    std::function<Announcement()> snapshot,
    std::function<void(guint, const std::string &)> on_result)
    : uri_(std::move(tracker_uri)),
      key_(std::move(announce_key)),
      snapshot_(std::move(snapshot)),
      on_result_(std::move(on_result)) {
  while (!uri_.empty() && uri_.back() == '/') uri_.pop_back();
}

TrackerAnnouncer::~TrackerAnnouncer() { stop(); }

void TrackerAnnouncer::start() {
  cancel_ = g_cancellable_new();
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void TrackerAnnouncer::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  g_cancellable_cancel(cancel_);
  wake_.notify_all();
  thread_.join();
  g_clear_object(&cancel_);
}

bool TrackerAnnouncer::post(const char *path, const std::string &json,
                            guint *status, std::string *error) {
  Owned<SoupSession> session(
      soup_session_new_with_options("timeout", 2u, nullptr));
  Owned<SoupMessage> msg(soup_message_new("POST", (uri_ + path).c_str()));
  if (!msg) {
    *error = "invalid tracker URI " + uri_;
    *status = 0;
    return false;
  }
  if (!key_.empty()) {
    soup_message_headers_replace(soup_message_get_request_headers(msg.get()),
                                 "Authorization", ("Bearer " + key_).c_str());
  }
  GBytes *request = g_bytes_new(json.data(), json.size());
  soup_message_set_request_body_from_bytes(msg.get(), "application/json",
                                           request);
  g_bytes_unref(request);
  GError *gerror = nullptr;
  GBytes *body =
      soup_session_send_and_read(session.get(), msg.get(), cancel_, &gerror);
  *status = body ? soup_message_get_status(msg.get()) : 0;
  *error = body ? error_member(body) : (gerror ? gerror->message : "");
  g_clear_error(&gerror);
  if (body) g_bytes_unref(body);
  return *status == SOUP_STATUS_OK;
}

void TrackerAnnouncer::run() {
  guint last_status = G_MAXUINT;
  std::string last_error;
  for (;;) {
    guint status = 0;
    std::string error;
    post("/v1/announce", announcement_json(snapshot_()), &status, &error);
    if (status != last_status || error != last_error) {
      on_result_(status, error);
      last_status = status;
      last_error = error;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    if (stopping_) break;
  }
  /* The cancellable is spent: the withdrawal gets a fresh one. */
  g_clear_object(&cancel_);
  cancel_ = g_cancellable_new();
  const Announcement a = snapshot_();
  std::string json = "{\"channel\":\"" + a.channel +
                     "\",\"team-id\":" + std::to_string(a.team_id) + "}";
  guint status = 0;
  std::string error;
  post("/v1/withdraw", json, &status, &error);
}

}  // namespace p2psp_gst
