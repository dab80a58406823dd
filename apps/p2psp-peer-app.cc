/* p2psp-peer-app: a P2PSP peer as a GStreamer application (C++).
 *
 *   p2psp-peer-app --uri p2psp://127.0.0.1:4552 [--seconds N] [--json]
 *                  [--display]
 *
 * Builds "p2pspsrc uri=URI ! decodebin ! fakesink" (or auto video/audio
 * sinks with --display), prints every neighbour that joins or leaves
 * (peer-added / peer-removed), the bus's errors, warnings and the
 * element's own messages, and the source's `stats` once a second. It links
 * GStreamer only: p2pspsrc comes from the registry like any element.
 *
 * Exit status: 0 after --seconds or at end of stream, 1 after an error,
 * 2 on bad options. */

#include <glib-unix.h>
#include <gst/gst.h>

#include <atomic>
#include <string>

#include "p2psp-app-common.h"

namespace {

using p2psp_app::emit;
using p2psp_app::json_string;

struct App {
  bool json = false;
  bool display = false;
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;
  GMainLoop *loop = nullptr;
  gboolean failed = FALSE;
  /* Decoded buffers that reached a sink (audio and video), counted by a
   * probe: the stream is not only received but decodable. */
  std::atomic<guint64> decoded{0};
};

guint64 get_u64(const GstStructure *s, const char *field) {
  guint64 v = 0;
  gst_structure_get_uint64(s, field, &v);
  return v;
}

/* Network thread: print and return; never block the element. */
void on_neighbour(GstElement *, guint id, const gchar *endpoint, App *app,
                  const char *event) {
  emit(
      app->json, event,
      "\"id\":" + std::to_string(id) + ",\"endpoint\":" + json_string(endpoint),
      "neighbour " + std::to_string(id) + " (" + endpoint + ")");
}

void on_peer_added(GstElement *src, guint id, const gchar *endpoint,
                   gpointer data) {
  on_neighbour(src, id, endpoint, static_cast<App *>(data), "peer-added");
}

void on_peer_removed(GstElement *src, guint id, const gchar *endpoint,
                     gpointer data) {
  on_neighbour(src, id, endpoint, static_cast<App *>(data), "peer-removed");
}

gboolean print_stats(gpointer data) {
  App *app = static_cast<App *>(data);
  GstStructure *s = nullptr;
  g_object_get(app->src, "stats", &s, nullptr);
  if (s == nullptr) return G_SOURCE_CONTINUE;
  const guint64 decoded = app->decoded.load();
  if (app->json) {
    emit(true, "stats",
         "\"decoded-buffers\":" + std::to_string(decoded) +
             ",\"stats\":" + p2psp_app::json_structure(s),
         "");
  } else {
    guint id = 0;
    gst_structure_get_uint(s, "peer-id", &id);
    const gchar *state = gst_structure_get_string(s, "state");
    gchar *line = g_strdup_printf(
        "peer %u %s: chunks %" G_GUINT64_FORMAT " (splitter %" G_GUINT64_FORMAT
        ", peers %" G_GUINT64_FORMAT "), forwarded %" G_GUINT64_FORMAT
        ", lost %" G_GUINT64_FORMAT ", played %" G_GUINT64_FORMAT
        ", neighbours %" G_GUINT64_FORMAT
        ", decoded buffers %" G_GUINT64_FORMAT,
        id, state ? state : "?",
        get_u64(s, "chunks-from-splitter") + get_u64(s, "chunks-from-peers"),
        get_u64(s, "chunks-from-splitter"), get_u64(s, "chunks-from-peers"),
        get_u64(s, "chunks-forwarded"), get_u64(s, "lost"),
        get_u64(s, "played"), get_u64(s, "neighbours"), decoded);
    emit(false, "stats", "", line);
    g_free(line);
  }
  gst_structure_free(s);
  return G_SOURCE_CONTINUE;
}

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer data) {
  static_cast<App *>(data)->decoded++;
  return GST_PAD_PROBE_OK;
}

/* decodebin exposes one pad per decoded stream: give each its own sink. */
void on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  App *app = static_cast<App *>(data);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (caps == nullptr) caps = gst_pad_query_caps(pad, nullptr);
  const gchar *media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  const bool video = g_str_has_prefix(media, "video/");
  const bool audio = g_str_has_prefix(media, "audio/");
  emit(app->json, "stream", "\"caps\":" + json_string(media), media);
  gst_caps_unref(caps);

  GstElement *queue = gst_element_factory_make("queue", nullptr);
  GstElement *sink = nullptr;
  if (app->display && (video || audio)) {
    GstElement *convert = gst_element_factory_make(
        video ? "videoconvert" : "audioconvert", nullptr);
    GstElement *out = gst_element_factory_make(
        video ? "autovideosink" : "autoaudiosink", nullptr);
    GstElement *bin = gst_bin_new(nullptr);
    gst_bin_add_many(GST_BIN(bin), convert, out, nullptr);
    gst_element_link(convert, out);
    GstPad *target = gst_element_get_static_pad(convert, "sink");
    gst_element_add_pad(bin, gst_ghost_pad_new("sink", target));
    gst_object_unref(target);
    sink = bin;
  } else {
    sink = gst_element_factory_make("fakesink", nullptr);
    /* Live stream: render on the clock, like a player would. */
    g_object_set(sink, "sync", TRUE, nullptr);
  }
  gst_bin_add_many(GST_BIN(app->pipeline), queue, sink, nullptr);
  gst_element_link(queue, sink);
  gst_element_sync_state_with_parent(sink);
  gst_element_sync_state_with_parent(queue);

  GstPad *qsink = gst_element_get_static_pad(queue, "sink");
  gst_pad_add_probe(qsink, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, app,
                    nullptr);
  if (gst_pad_link(pad, qsink) != GST_PAD_LINK_OK)
    emit(app->json, "warning", "\"message\":\"could not link a decoded pad\"",
         "could not link a decoded pad");
  gst_object_unref(qsink);
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
  gchar *uri = nullptr;
  gint seconds = 0;
  gboolean json = FALSE, display = FALSE;
  const GOptionEntry entries[] = {
      {"uri", 'u', 0, G_OPTION_ARG_STRING, &uri,
       "Splitter to join (default p2psp://127.0.0.1:4552)", "URI"},
      {"seconds", 's', 0, G_OPTION_ARG_INT, &seconds,
       "Stop after this many seconds (default 0: until EOS or Ctrl-C)", "N"},
      {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
       "Print one JSON object per line", nullptr},
      {"display", 'd', 0, G_OPTION_ARG_NONE, &display,
       "Show the video / play the audio instead of discarding it", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new("- a P2PSP peer");
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
  app.display = display;
  p2psp_app::elapsed_s();

  app.pipeline = gst_pipeline_new("peer");
  app.src = gst_element_factory_make("p2pspsrc", "src");
  GstElement *decode = gst_element_factory_make("decodebin", "decode");
  if (app.src == nullptr || decode == nullptr) {
    g_printerr("p2pspsrc or decodebin not found (is GST_PLUGIN_PATH set?)\n");
    return 1;
  }
  g_object_set(app.src, "uri", uri ? uri : "p2psp://127.0.0.1:4552", nullptr);
  gst_bin_add_many(GST_BIN(app.pipeline), app.src, decode, nullptr);
  gst_element_link(app.src, decode);
  g_signal_connect(decode, "pad-added", G_CALLBACK(on_pad_added), &app);
  g_signal_connect(app.src, "peer-added", G_CALLBACK(on_peer_added), &app);
  g_signal_connect(app.src, "peer-removed", G_CALLBACK(on_peer_removed), &app);

  gchar *actual_uri = nullptr;
  g_object_get(app.src, "uri", &actual_uri, nullptr);
  emit(json, "started", "\"uri\":" + json_string(actual_uri),
       std::string("joining ") + actual_uri);
  g_free(actual_uri);

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
    /* The reason is on the bus. */
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
      p2psp_app::report_bus_message(json, msg, &app.failed);
      gst_message_unref(msg);
    }
    app.failed = TRUE;
  } else {
    g_main_loop_run(app.loop);
  }

  /* Going to NULL makes the peer leave the team politely (GOODBYE). */
  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  const int rc = app.failed ? 1 : 0;
  emit(json, "exit", "\"code\":" + std::to_string(rc),
       "code " + std::to_string(rc));
  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  g_free(uri);
  return rc;
}
