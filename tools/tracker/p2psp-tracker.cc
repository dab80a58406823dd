// p2psp-tracker: where the teams of each channel are (docs/tracker.md).
//
// An HTTP server (libsoup) over the sans-I/O tracker core
// (gst/p2psp/tracker.h): splitters announce their team, peers ask which
// team of a channel to join, people and tools read the status.
#include <gst/p2psp/tracker.h>
#include <libsoup/soup.h>
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tracker_json.h"

namespace {

using p2psp::Micros;

// The status page: a table of the teams and, for each team, its picture
// as p2psp-teamviz draws it (the splitter on top, an arrow to each member
// as wide as its share of the chunks, the members' flooding mesh, monitors
// marked M, loss reports in orange), drawn in SVG from the members the
// splitters announce.
const char kStatusPage[] = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>P2PSP tracker</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:.3em .6em;text-align:right}
th{background:#eee}td.l{text-align:left}
#pictures{display:flex;flex-wrap:wrap;gap:1em;margin-top:1.5em}
figure{margin:0;border:1px solid #ccc}figcaption{text-align:center;padding:.2em}
</style></head>
<body><h1>P2PSP tracker</h1><p id="summary">loading...</p>
<table id="teams"><thead><tr><th>channel</th><th>team</th><th>endpoint</th>
<th>peers</th><th>max</th><th>kb/s</th><th>chunks</th><th>lost reports</th>
<th>uptime s</th></tr></thead><tbody></tbody></table>
<div id="pictures"></div>
<script>
const esc = (x) => String(x).replace(/[&<>"]/g,
  (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[c]);
function picture(c, t) {
  const W = 420, H = 330, sx = W / 2, sy = 62, ms = t.members || [];
  const n = ms.length, r = Math.max(8, Math.min(20, 260 / Math.max(1, n)));
  const pos = ms.map((m, i) => {
    const a = (n === 1 ? 90 : 165 - 150 * i / (n - 1)) * Math.PI / 180;
    return [W / 2 + 180 * Math.cos(a), 110 + 180 * Math.sin(a)];
  });
  const total = ms.reduce((s, m) => s + m['chunks-sent'], 0) || 1;
  let g = '';
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++)
    g += `<line class="mesh" x1="${pos[i][0]}" y1="${pos[i][1]}" x2="${pos[j][0]}"` +
      ` y2="${pos[j][1]}" stroke="#5d8fc7" stroke-opacity="0.5"/>`;
  ms.forEach((m, i) => {
    const w = Math.min(8, 1 + 5 * n * m['chunks-sent'] / total);
    g += `<line class="to-peer" x1="${sx}" y1="${sy + 22}" x2="${pos[i][0]}"` +
      ` y2="${pos[i][1] - r}" stroke="#c0392b" stroke-opacity="0.75" stroke-width="${w.toFixed(1)}"/>`;
  });
  ms.forEach((m, i) => {
    const [x, y] = pos[i], lost = m.loss > 0;
    g += `<g class="peer" data-id="${m.id}"><title>${esc(m.endpoint)}: ` +
      `${m['chunks-sent']} chunks, loss ${m.loss}</title>` +
      `<circle cx="${x}" cy="${y}" r="${r}" fill="${lost ? '#fdebd0' : '#d5f5e3'}"` +
      ` stroke="${lost ? '#d35400' : '#1e8449'}" stroke-width="${m.monitor ? 4 : 2}"/>` +
      `<text x="${x}" y="${y + 4}" font-size="11" text-anchor="middle">P${m.id}</text>` +
      (m.monitor ? `<text x="${x + r}" y="${y - r}" font-size="10" fill="#2e86c1">M</text>` : '') +
      '</g>';
  });
  const more = t.peers > n ? ` (${n} of ${t.peers} drawn)` : '';
  return `<figure><figcaption>${esc(c.name)} team ${t['team-id']}: ` +
    `${t.peers} peers${more}</figcaption><svg class="team-picture" ` +
    `data-channel="${esc(c.name)}" data-team="${t['team-id']}" width="${W}"` +
    ` height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">` +
    `<g class="splitter"><rect x="${sx - 90}" y="${sy - 30}" width="180" height="52"` +
    ` rx="8" fill="#fdebd0" stroke="#c0392b" stroke-width="2"/>` +
    `<text x="${sx}" y="${sy - 10}" font-size="13" text-anchor="middle" font-weight="bold">` +
    `Splitter</text><text x="${sx}" y="${sy + 8}" font-size="10" text-anchor="middle">` +
    `${esc(t.endpoint)} · cut ${t['chunks-cut']}</text></g>${g}</svg></figure>`;
}
async function refresh() {
  const s = await (await fetch('/status-json')).json();
  let rows = '', pics = '', peers = 0, teams = 0;
  for (const c of s.channels) {
    peers += c.peers;
    for (const t of c.teams) {
      teams++;
      rows += `<tr class="team"><td class="l">${esc(c.name)}</td><td>${t['team-id']}</td>` +
        `<td class="l">${esc(t.endpoint)}</td><td class="peers">${t.peers}</td>` +
        `<td>${t['max-peers'] || '-'}</td><td>${Math.round(t.bitrate / 1000)}</td>` +
        `<td>${t['chunks-cut']}</td><td>${t['lost-reports']}</td>` +
        `<td>${Math.round(t['uptime-ms'] / 1000)}</td></tr>`;
      pics += picture(c, t);
    }
  }
  document.querySelector('#teams tbody').innerHTML = rows;
  document.getElementById('pictures').innerHTML = pics;
  document.getElementById('summary').textContent =
    `${s.channels.length} channels, ${teams} teams, ${peers} peers`;
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
)";

struct Options {
  gchar* host = nullptr;
  gint port = 8000;
  gchar* config = nullptr;
  gchar* announce_key = nullptr;
  gint team_timeout_ms = 5000;
  gboolean no_rebalance = FALSE;
};

struct Server {
  p2psp::Tracker tracker;
  std::string announce_key;  // empty: anyone may announce
  Micros started_us = 0;
  explicit Server(const p2psp::TrackerConfig& c) : tracker(c) {}
};

Micros now_us() { return static_cast<Micros>(g_get_monotonic_time()); }

void reply(SoupServerMessage* msg, guint status, const std::string& json,
           const char* type = "application/json") {
  soup_server_message_set_status(msg, status, nullptr);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                               "Cache-Control", "no-store");
  soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, json.data(),
                                   json.size());
}

std::string body_of(SoupServerMessage* msg) {
  SoupMessageBody* body = soup_server_message_get_request_body(msg);
  if (body == nullptr || body->length == 0) return {};
  GBytes* bytes = soup_message_body_flatten(body);
  gsize size = 0;
  const char* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
  std::string out(data, size);
  g_bytes_unref(bytes);
  return out;
}

// Announcing and withdrawing need the announce key when one is set: else a
// stranger could put its own "team" into a channel.
bool authorized(const Server& s, SoupServerMessage* msg) {
  if (s.announce_key.empty()) return true;
  const char* header = soup_message_headers_get_one(
      soup_server_message_get_request_headers(msg), "Authorization");
  const std::string expected = "Bearer " + s.announce_key;
  return header != nullptr && std::strlen(header) == expected.size() &&
         sodium_memcmp(header, expected.data(), expected.size()) == 0;
}

bool check_post(Server* s, SoupServerMessage* msg) {
  if (std::strcmp(soup_server_message_get_method(msg), "POST") != 0) {
    reply(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
          p2psp_tracker::error_json("POST only"));
    return false;
  }
  if (!authorized(*s, msg)) {
    reply(msg, SOUP_STATUS_UNAUTHORIZED,
          p2psp_tracker::error_json("wrong or missing announce key"));
    return false;
  }
  return true;
}

guint status_of(p2psp::Tracker::AnnounceResult r) {
  switch (r) {
    case p2psp::Tracker::AnnounceResult::kAccepted:
      return SOUP_STATUS_OK;
    case p2psp::Tracker::AnnounceResult::kInvalid:
      return SOUP_STATUS_BAD_REQUEST;
    case p2psp::Tracker::AnnounceResult::kTooMany:
      return 429;  // Too Many Requests (not in libsoup 3.2)
    case p2psp::Tracker::AnnounceResult::kEndpointTaken:
      return SOUP_STATUS_CONFLICT;
  }
  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

void on_announce(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*,
                 gpointer data) {
  auto* s = static_cast<Server*>(data);
  if (!check_post(s, msg)) return;
  std::string error;
  const char* remote = soup_server_message_get_remote_host(msg);
  auto a = p2psp_tracker::parse_announcement(body_of(msg), remote ? remote : "",
                                             &error);
  if (!a) {
    reply(msg, SOUP_STATUS_BAD_REQUEST, p2psp_tracker::error_json(error));
    return;
  }
  const auto result = s->tracker.announce(*a, now_us());
  if (result != p2psp::Tracker::AnnounceResult::kAccepted) {
    reply(msg, status_of(result), p2psp_tracker::error_json("not accepted"));
    return;
  }
  // A team well above the lightest of its channel moves a member there.
  reply(msg, SOUP_STATUS_OK,
        p2psp_tracker::announce_reply_json(
            s->tracker.moves_for(a->channel, a->team_id, now_us())));
}

void on_withdraw(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*,
                 gpointer data) {
  auto* s = static_cast<Server*>(data);
  if (!check_post(s, msg)) return;
  std::string channel, error;
  uint32_t team_id = 0;
  if (!p2psp_tracker::parse_withdrawal(body_of(msg), &channel, &team_id,
                                       &error)) {
    reply(msg, SOUP_STATUS_BAD_REQUEST, p2psp_tracker::error_json(error));
    return;
  }
  s->tracker.withdraw(channel, team_id);
  reply(msg, SOUP_STATUS_OK, "{}");
}

// GET /v1/join/<channel>[?avoid=host:port]: the team to join.
void on_join(SoupServer*, SoupServerMessage* msg, const char* path,
             GHashTable* query, gpointer data) {
  auto* s = static_cast<Server*>(data);
  const std::string channel = path + std::strlen("/v1/join/");
  if (!p2psp::Tracker::valid_channel(channel)) {
    reply(msg, SOUP_STATUS_BAD_REQUEST,
          p2psp_tracker::error_json("invalid channel name"));
    return;
  }
  const char* avoid_text =
      query ? static_cast<const char*>(g_hash_table_lookup(query, "avoid"))
            : nullptr;
  p2psp::Endpoint avoid;
  if (avoid_text != nullptr) {
    avoid = p2psp::Endpoint::parse(avoid_text).value_or(p2psp::Endpoint());
  }
  const auto team = s->tracker.pick(channel, now_us(), avoid.normalized());
  if (!team && !s->tracker.has_channel(channel)) {
    reply(msg, SOUP_STATUS_NOT_FOUND,
          p2psp_tracker::error_json("no team serves this channel"));
    return;
  }
  if (!team) {
    // Full for now: a launcher may be adding a team (docs/tracker.md).
    soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                 "Retry-After", "1");
    reply(msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          p2psp_tracker::error_json("no team of this channel has room"));
    return;
  }
  reply(msg, SOUP_STATUS_OK, p2psp_tracker::join_json(*team));
}

void on_status(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*,
               gpointer data) {
  auto* s = static_cast<Server*>(data);
  const Micros now = now_us();
  reply(msg, SOUP_STATUS_OK,
        p2psp_tracker::status_json(s->tracker.status(now), now,
                                   now - s->started_us));
}

void on_page(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*,
             gpointer) {
  if (std::strcmp(path, "/") != 0) {
    reply(msg, SOUP_STATUS_NOT_FOUND, p2psp_tracker::error_json("not found"));
    return;
  }
  reply(msg, SOUP_STATUS_OK, kStatusPage, "text/html; charset=utf-8");
}

// A body longer than any valid request is refused before it is read, so a
// stranger cannot make the tracker buffer megabytes.
void on_got_headers(SoupServerMessage* msg, gpointer) {
  SoupMessageHeaders* h = soup_server_message_get_request_headers(msg);
  if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CHUNKED ||
      soup_message_headers_get_content_length(h) >
          static_cast<goffset>(p2psp_tracker::kMaxRequestBody)) {
    soup_server_message_set_status(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                   nullptr);
  }
}

void on_request_started(SoupServer*, SoupServerMessage* msg, gpointer) {
  g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), nullptr);
}

gboolean expire_teams(gpointer data) {
  static_cast<Server*>(data)->tracker.expire(now_us());
  return G_SOURCE_CONTINUE;
}

bool load_config(Options* o, GError** error) {
  if (o->config == nullptr) return true;
  GKeyFile* file = g_key_file_new();
  bool ok = g_key_file_load_from_file(file, o->config, G_KEY_FILE_NONE, error);
  if (ok && g_key_file_has_key(file, "tracker", "port", nullptr))
    o->port = g_key_file_get_integer(file, "tracker", "port", nullptr);
  if (ok && g_key_file_has_key(file, "tracker", "host", nullptr) && !o->host)
    o->host = g_key_file_get_string(file, "tracker", "host", nullptr);
  if (ok && g_key_file_has_key(file, "tracker", "announce-key", nullptr) &&
      !o->announce_key)
    o->announce_key =
        g_key_file_get_string(file, "tracker", "announce-key", nullptr);
  if (ok && g_key_file_has_key(file, "tracker", "rebalance", nullptr) &&
      !g_key_file_get_boolean(file, "tracker", "rebalance", nullptr))
    o->no_rebalance = TRUE;
  if (ok && g_key_file_has_key(file, "tracker", "team-timeout-ms", nullptr))
    o->team_timeout_ms =
        g_key_file_get_integer(file, "tracker", "team-timeout-ms", nullptr);
  g_key_file_unref(file);
  return ok;
}

bool parse_options(int* argc, char*** argv, Options* o) {
  GOptionEntry entries[] = {
      {"host", 'H', 0, G_OPTION_ARG_STRING, &o->host,
       "Address to listen on (default: every interface)", "ADDR"},
      {"port", 'p', 0, G_OPTION_ARG_INT, &o->port,
       "HTTP port (default 8000; 0: any free port, printed on stdout)", "PORT"},
      {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config,
       "Key file with a [tracker] group: host, port, announce-key, "
       "team-timeout-ms, rebalance (options given on the command line win)",
       "FILE"},
      {"announce-key", 'k', 0, G_OPTION_ARG_STRING, &o->announce_key,
       "Secret splitters must send (Authorization: Bearer KEY) to announce "
       "or withdraw a team (default: none, anyone may)",
       "KEY"},
      {"team-timeout-ms", 0, 0, G_OPTION_ARG_INT, &o->team_timeout_ms,
       "Forget a team not announced for this long (default 5000)", "MS"},
      {"no-rebalance", 0, 0, G_OPTION_ARG_NONE, &o->no_rebalance,
       "Never ask a team to move a member to a lighter team of its channel "
       "(joiners are still balanced; a team added to a full channel then "
       "stays emptier until new joiners come)",
       nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext* ctx = g_option_context_new(
      "- where the teams of each P2PSP channel are (docs/tracker.md)");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_set_description(
      ctx,
      "HTTP API:\n"
      "  POST /v1/announce   a splitter's team (JSON; every second)\n"
      "  POST /v1/withdraw   a splitter stopping\n"
      "  GET  /v1/join/NAME  the team of channel NAME a peer should join\n"
      "                      (?avoid=HOST:PORT: not that team)\n"
      "  GET  /status-json   channels, teams, peers (JSON)\n"
      "  GET  /              the same as a page\n");
  GError* error = nullptr;
  bool ok =
      g_option_context_parse(ctx, argc, argv, &error) && load_config(o, &error);
  if (!ok) std::fprintf(stderr, "p2psp-tracker: %s\n", error->message);
  g_clear_error(&error);
  g_option_context_free(ctx);
  return ok;
}

bool listen_on(SoupServer* server, const Options& o) {
  GError* error = nullptr;
  bool ok;
  if (o.host != nullptr) {
    GInetAddress* inet = g_inet_address_new_from_string(o.host);
    if (inet == nullptr) {
      std::fprintf(stderr, "p2psp-tracker: %s is not an IP address\n", o.host);
      return false;
    }
    GSocketAddress* addr = g_inet_socket_address_new(inet, o.port);
    ok = soup_server_listen(server, addr,
                            static_cast<SoupServerListenOptions>(0), &error);
    g_object_unref(addr);
    g_object_unref(inet);
  } else {
    ok = soup_server_listen_all(
        server, o.port, static_cast<SoupServerListenOptions>(0), &error);
  }
  if (!ok) {
    std::fprintf(stderr, "p2psp-tracker: cannot listen on port %d: %s\n",
                 o.port, error->message);
    g_clear_error(&error);
    return false;
  }
  GSList* uris = soup_server_get_uris(server);
  const int port = uris ? g_uri_get_port(static_cast<GUri*>(uris->data)) : -1;
  g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  std::printf("p2psp-tracker listening on port %d\n", port);
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(&argc, &argv, &o)) return 2;
  if (sodium_init() < 0 || o.port < 0 || o.port > 65535 ||
      o.team_timeout_ms <= 0) {
    std::fprintf(stderr, "p2psp-tracker: bad settings\n");
    return 2;
  }
  p2psp::TrackerConfig config;
  config.team_timeout_us = static_cast<Micros>(o.team_timeout_ms) * 1000;
  if (o.no_rebalance) config.rebalance_gap = 0;
  Server s(config);
  s.announce_key = o.announce_key ? o.announce_key : "";
  s.started_us = now_us();
  SoupServer* server =
      soup_server_new("server-header", "p2psp-tracker", nullptr);
  g_signal_connect(server, "request-started", G_CALLBACK(on_request_started),
                   nullptr);
  soup_server_add_handler(server, "/v1/announce", on_announce, &s, nullptr);
  soup_server_add_handler(server, "/v1/withdraw", on_withdraw, &s, nullptr);
  soup_server_add_handler(server, "/v1/join/", on_join, &s, nullptr);
  soup_server_add_handler(server, "/status-json", on_status, &s, nullptr);
  soup_server_add_handler(server, "/", on_page, &s, nullptr);
  if (!listen_on(server, o)) return 1;
  g_timeout_add(1000, expire_teams, &s);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  g_main_loop_run(loop);
  return 0;
}
