/* gst-p2psp: the elements' side of the tracker (docs/tracker.md): a peer
 * asks which team of a channel to join; a splitter announces its team every
 * second and withdraws it when it stops. HTTP with libsoup, JSON with
 * json-glib. */
#pragma once

#include <gio/gio.h>
#include <gst/p2psp/splitter.h>
#include <gst/p2psp/tracker.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

typedef struct _SoupSession SoupSession;

namespace p2psp_gst {

/* "host:port", "[v6]:port". */
std::string host_port(const std::string &host, int port);

struct TeamAddress {
  std::string host;  // an IP literal, as the tracker gives it
  int port = 0;
};

enum class JoinAnswer { kTeam, kFull, kFailed, kCancelled };

/* GET http://tracker_host:tracker_port/v1/join/CHANNEL (?avoid=the team that
 * just failed), at each address tracker_host resolves to in turn (several
 * trackers behind one name) until one names a team. kFull: the channel's
 * teams are all full for now (503); kFailed, with *error, when no tracker
 * answered or none knows the channel. */
JoinAnswer tracker_join(const std::string &tracker_host, int tracker_port,
                        const std::string &channel, const std::string &avoid,
                        guint timeout_s, GCancellable *cancel,
                        TeamAddress *team, std::string *error);

/* What the splitter tells the tracker about its team. */
struct Announcement {
  std::string channel;
  guint32 team_id = 0;
  std::string host; /* empty: the tracker takes the request's source */
  int port = 0;
  guint peers = 0;
  guint max_peers = 0;
  guint64 bitrate = 0;
  guint64 chunks_cut = 0;
  guint64 lost_reports = 0;
  guint64 uptime_ms = 0;
  /* A summary of the first members, for the status page's picture. */
  std::vector<p2psp::TeamMember> members;
};

/* The members to announce (the first TeamAnnouncement::kMaxMembers). */
std::vector<p2psp::TeamMember> team_members(const p2psp::Splitter &splitter);

/* The tracker asked the team to move `count` members to a lighter team of
 * its channel (docs/tracker.md, "Rebalancing"): removes the longest-serving
 * members that are not monitors; their p2pspsrc rejoins through the
 * tracker, which sends it elsewhere. The oldest, because the newest member
 * of a team is often the feed of a cascade the launcher just added, which
 * would only come back. */
void move_members(p2psp::Splitter &splitter, guint count, p2psp::Outbox *out);

/* Announces every second on its own thread until stop(), which withdraws
 * the team. `snapshot` is called on that thread for the current figures;
 * `on_result` with the HTTP status and error text when it changes (0: the
 * tracker could not be reached); `on_move` when the tracker asks the team
 * to move members. One HTTP session (kept-alive connection) per announcer,
 * used only on its thread. */
class TrackerAnnouncer {
 public:
  TrackerAnnouncer(std::string tracker_uri, std::string announce_key,
                   std::function<Announcement()> snapshot,
                   std::function<void(guint, const std::string &)> on_result,
                   std::function<void(guint)> on_move = nullptr);
  ~TrackerAnnouncer();
  void start();
  void stop();

 private:
  void run();
  bool post(SoupSession *session, GCancellable *cancel, const char *path,
            const std::string &json, guint *status, std::string *body);
  std::string uri_;
  std::string key_;
  std::function<Announcement()> snapshot_;
  std::function<void(guint, const std::string &)> on_result_;
  std::function<void(guint)> on_move_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  GCancellable *cancel_ = nullptr;
};

}  // namespace p2psp_gst
