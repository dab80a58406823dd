/* p2psp-splitter-app: a P2PSP splitter as a GStreamer application (C++).
 *
 *   p2psp-splitter-app [--pipeline "videotestsrc is-live=true ! theoraenc !
 *                      oggmux"] [--host 0.0.0.0] [--port 4552]
 *                      [--seconds N] [--json]
 *
 * Builds "PIPELINE ! p2pspsplittersink", prints the port it listens on
 * (`current-port`, useful with --port 0), every peer that joins or leaves
 * the team (peer-added / peer-removed), the bus's errors, warnings and
 * the element's own messages, and the sink's `stats` once a second. Links
 * GStreamer only.
 *
 * Exit status: 0 after --seconds or at end of stream, 1 after an error,
 * 2 on bad options. */

#include <glib-unix.h>
#include <gst/gst.h>

#include <string>

#include "p2psp-app-common.h"

namespace {

using p2psp_app::emit;
using p2psp_app::json_string;

constexpr const char *kDefaultSource =
    "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! "
    "theoraenc ! oggmux";

struct App {
  bool json = false;
  GstElement *pipeline = nullptr;
  GstElement *sink = nullptr;
  GMainLoop *loop = nullptr;
  gboolean failed = FALSE;
};

guint64 get_u64(const GstStructure *s, const char *field) {
  guint64 v = 0;
  gst_structure_get_uint64(s, field, &v);
  return v;
}

void on_peer(guint id, const gchar *endpoint, App *app, const char *event) {
  emit(
      app->json, event,
      "\"id\":" + std::to_string(id) + ",\"endpoint\":" + json_string(endpoint),
      "peer " + std::to_string(id) + " (" + endpoint + ")");
}

void on_peer_added(GstElement *, guint id, const gchar *endpoint,
                   gpointer data) {
  on_peer(id, endpoint, static_cast<App *>(data), "peer-added");
}

void on_peer_removed(GstElement *, guint id, const gchar *endpoint,
                     gpointer data) {
  on_peer(id, endpoint, static_cast<App *>(data), "peer-removed");
}

void on_current_port(GObject *sink, GParamSpec *, gpointer data) {
  gint port = -1;
  g_object_get(sink, "current-port", &port, nullptr);
  if (port <= 0) return;
  emit(static_cast<App *>(data)->json, "listening",
       "\"port\":" + std::to_string(port), "on port " + std::to_string(port));
}

gboolean print_stats(gpointer data) {
  App *app = static_cast<App *>(data);
  GstStructure *s = nullptr;
  g_object_get(app->sink, "stats", &s, nullptr);
  if (s == nullptr) return G_SOURCE_CONTINUE;
  if (app->json) {
    emit(true, "stats", "\"stats\":" + p2psp_app::json_structure(s), "");
  } else {
    guint n = 0;
    gst_structure_get_uint(s, "num-peers", &n);
    const guint64 in = get_u64(s, "bytes-in");
    const guint64 sent = get_u64(s, "bytes-sent");
    gchar *line = g_strdup_printf(
        "%u peers: chunks cut %" G_GUINT64_FORMAT ", sent %" G_GUINT64_FORMAT
        ", dropped %" G_GUINT64_FORMAT "; bytes sent / bytes in %.3f",
        n, get_u64(s, "chunks-cut"), get_u64(s, "chunks-sent"),
        get_u64(s, "chunks-dropped"), in ? double(sent) / double(in) : 0.0);
    std::string text = line;
    g_free(line);
    /* One short entry per peer: who gets how many of the round-robin. */
    const GValue *peers = gst_structure_get_value(s, "peers");
    if (peers && GST_VALUE_HOLDS_ARRAY(peers)) {
      for (guint i = 0; i < gst_value_array_get_size(peers); i++) {
        const GstStructure *p =
            gst_value_get_structure(gst_value_array_get_value(peers, i));
        guint id = 0;
        gst_structure_get_uint(p, "id", &id);
        const gchar *ep = gst_structure_get_string(p, "endpoint");
        text += "\n    peer " + std::to_string(id) + " " + (ep ? ep : "?") +
                ": " + std::to_string(get_u64(p, "chunks-sent")) + " chunks";
      }
    }
    emit(false, "stats", "", text);
  }
  gst_structure_free(s);
  return G_SOURCE_CONTINUE;
}

gboolean on_bus(GstBus *, GstMessage *msg, gpointer data) {
  App *app = static_cast<App *>(data);
  if (p2psp_app::report_bus_message(app->json, msg, &app->failed))
    g_main_loop_quit(app->loop);
  return G_SOURCE_CONTINUE;
}

gboolean on_timeout(gpointer data) {
  App *app = static_cast<App *>(data);
  print_stats(app);
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE;
}

gboolean on_sigint(gpointer data) {
  g_main_loop_quit(static_cast<App *>(data)->loop);
  return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char **argv) {
  gchar *source = nullptr, *host = nullptr;
  gint port = 4552, seconds = 0;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
      {"pipeline", 'p', 0, G_OPTION_ARG_STRING, &source,
       "What the splitter streams, a gst-launch description (default: a "
       "live Theora test video in Ogg)",
       "DESC"},
      {"host", 'H', 0, G_OPTION_ARG_STRING, &host,
       "Address to listen on (default 0.0.0.0)", "ADDR"},
      {"port", 'P', 0, G_OPTION_ARG_INT, &port,
       "Port peers join on (default 4552; 0 picks a free one)", "PORT"},
      {"seconds", 's', 0, G_OPTION_ARG_INT, &seconds,
       "Stop after this many seconds (default 0: until EOS or Ctrl-C)", "N"},
      {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
       "Print one JSON object per line", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new("- a P2PSP splitter");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  GError *error = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    g_printerr("%s\n", error->message);
    return 2;
  }
  g_option_context_free(ctx);

  App app;
  app.json = json;
  p2psp_app::elapsed_s();

  const std::string desc = std::string(source ? source : kDefaultSource) +
                           " ! p2pspsplittersink name=splitter";
  app.pipeline = gst_parse_launch(desc.c_str(), &error);
  if (app.pipeline == nullptr) {
    g_printerr("Bad pipeline: %s\n", error->message);
    return 2;
  }
  app.sink = gst_bin_get_by_name(GST_BIN(app.pipeline), "splitter");
  g_object_set(app.sink, "host", host ? host : "0.0.0.0", "port", port,
               nullptr);
  g_signal_connect(app.sink, "peer-added", G_CALLBACK(on_peer_added), &app);
  g_signal_connect(app.sink, "peer-removed", G_CALLBACK(on_peer_removed), &app);
  g_signal_connect(app.sink, "notify::current-port",
                   G_CALLBACK(on_current_port), &app);

  app.loop = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(app.pipeline));
  gst_bus_add_watch(bus, on_bus, &app);
  g_timeout_add_seconds(1, print_stats, &app);
  if (seconds > 0)
    g_timeout_add(static_cast<guint>(seconds) * 1000, on_timeout, &app);
  g_unix_signal_add(SIGINT, on_sigint, &app);
  g_unix_signal_add(SIGTERM, on_sigint, &app);

  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
      p2psp_app::report_bus_message(json, msg, &app.failed);
      gst_message_unref(msg);
    }
    app.failed = TRUE;
  } else {
    g_main_loop_run(app.loop);
  }

  /* Going to NULL tells every peer the splitter is shutting down. */
  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  const int rc = app.failed ? 1 : 0;
  emit(json, "exit", "\"code\":" + std::to_string(rc),
       "code " + std::to_string(rc));
  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  gst_object_unref(app.sink);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  g_free(source);
  g_free(host);
  return rc;
}
