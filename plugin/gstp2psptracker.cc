/* gst-p2psp: the elements' side of the tracker (docs/tracker.md). */
#include "gstp2psptracker.h"

#include <libsoup/soup.h>
#include <tracker_json.h>

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

std::string text_of(GBytes *body) {
  if (body == nullptr) return {};
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(body, &size));
  return std::string(data, size);
}

/* The "uri" member of a join answer. */
bool team_from_json(GBytes *body, TeamAddress *team, std::string *error) {
  const std::string uri = p2psp_tracker::parse_join_uri(text_of(body));
  if (!parse_team_uri(uri.empty() ? nullptr : uri.c_str(), team)) {
    *error = "the tracker's answer names no team";
    return false;
  }
  return true;
}

std::string error_member(GBytes *body) {
  return p2psp_tracker::parse_error(text_of(body));
}

std::string announcement_json(const Announcement &a) {
  p2psp_tracker::AnnouncementBody body;
  body.team.channel = a.channel;
  body.team.team_id = a.team_id;
  body.host = a.host;
  body.port = static_cast<uint16_t>(a.port);
  body.team.peers = a.peers;
  body.team.max_peers = a.max_peers;
  body.team.bitrate_bps = a.bitrate;
  body.team.chunks_cut = a.chunks_cut;
  body.team.chunks_lost_reported = a.lost_reports;
  body.team.uptime_us = static_cast<p2psp::Micros>(a.uptime_ms) * 1000;
  body.team.members = a.members;
  return p2psp_tracker::announcement_json(body);
}

}  // namespace

std::vector<p2psp::TeamMember> team_members(const p2psp::Splitter &splitter) {
  std::vector<p2psp::TeamMember> out;
  for (const p2psp::SplitterPeerStats &p : splitter.peer_stats()) {
    if (out.size() == p2psp::TeamAnnouncement::kMaxMembers) break;
    p2psp::TeamMember m;
    m.id = p.id;
    m.endpoint = p.endpoint;
    m.monitor = p.monitor;
    m.chunks_sent = p.chunks_sent;
    m.loss_counter = p.loss_counter;
    out.push_back(m);
  }
  return out;
}

void move_members(p2psp::Splitter &splitter, guint count, p2psp::Outbox *out) {
  std::vector<p2psp::SplitterPeerStats> peers = splitter.peer_stats();
  std::stable_sort(
      peers.begin(), peers.end(),
      [](const auto &a, const auto &b) { return a.joined_us < b.joined_us; });
  for (const p2psp::SplitterPeerStats &p : peers) {
    if (count == 0) break;
    if (p.monitor) continue;
    /* "Team full": the team is over its share; the peer rejoins. */
    splitter.remove_peer(p.id, p2psp::RemoveReason::kTeamFull, out);
    --count;
  }
}

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
    std::function<void(guint, const std::string &)> on_result,
    std::function<void(guint)> on_move)
    : uri_(std::move(tracker_uri)),
      key_(std::move(announce_key)),
      snapshot_(std::move(snapshot)),
      on_result_(std::move(on_result)),
      on_move_(std::move(on_move)) {
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

bool TrackerAnnouncer::post(SoupSession *session, GCancellable *cancel,
                            const char *path, const std::string &json,
                            guint *status, std::string *body) {
  Owned<SoupMessage> msg(soup_message_new("POST", (uri_ + path).c_str()));
  if (!msg) {
    *body = "invalid tracker URI " + uri_;
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
  GBytes *answer =
      soup_session_send_and_read(session, msg.get(), cancel, &gerror);
  *status = answer ? soup_message_get_status(msg.get()) : 0;
  *body = answer ? text_of(answer) : (gerror ? gerror->message : "");
  g_clear_error(&gerror);
  if (answer) g_bytes_unref(answer);
  return *status == SOUP_STATUS_OK;
}

void TrackerAnnouncer::run() {
  /* One session for the announcer's life: its connection is kept alive
   * between announcements instead of a new one every second. */
  Owned<SoupSession> session(
      soup_session_new_with_options("timeout", 2u, nullptr));
  guint last_status = G_MAXUINT;
  std::string last_error;
  for (;;) {
    guint status = 0;
    std::string body;
    const bool ok = post(session.get(), cancel_, "/v1/announce",
                         announcement_json(snapshot_()), &status, &body);
    const std::string error =
        ok ? std::string() : (status ? p2psp_tracker::parse_error(body) : body);
    if (status != last_status || error != last_error) {
      on_result_(status, error);
      last_status = status;
      last_error = error;
    }
    const guint moves = ok ? p2psp_tracker::parse_announce_reply(body) : 0;
    if (moves > 0 && on_move_) on_move_(moves);
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    if (stopping_) break;
  }
  /* cancel_ is spent (and stop() still holds it): the withdrawal goes
   * without one, bounded by the session's timeout. */
  const Announcement a = snapshot_();
  guint status = 0;
  std::string body;
  post(session.get(), nullptr, "/v1/withdraw",
       p2psp_tracker::withdrawal_json(a.channel, a.team_id), &status, &body);
}

}  // namespace p2psp_gst
