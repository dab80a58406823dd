/* gst-p2psp example applications: what both C++ apps share.
 *
 * Printing (one line per event, human text or JSON), GstStructure to JSON,
 * and the bus messages every P2PSP application should look at. The apps
 * depend on GStreamer only: the elements are found through the registry
 * like any other element (GST_PLUGIN_PATH must point at the plugin). */
#pragma once

#include <gst/gst.h>

#include <cstdio>
#include <mutex>
#include <string>

namespace p2psp_app {

/* Signals come from the elements' network threads, stats and bus messages
 * from the main loop: one lock keeps each printed line whole. */
inline std::mutex &print_mutex() {
  static std::mutex m;
  return m;
}

inline void print_line(const std::string &line) {
  std::lock_guard<std::mutex> lock(print_mutex());
  fputs(line.c_str(), stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

/* Seconds since the application started. */
inline double elapsed_s() {
  static const gint64 start = g_get_monotonic_time();
  return (g_get_monotonic_time() - start) / 1e6;
}

inline std::string json_string(const char *s) {
  std::string out = "\"";
  for (const char *p = s ? s : ""; *p; p++) {
    const unsigned char c = static_cast<unsigned char>(*p);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          g_snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

inline std::string json_structure(const GstStructure *s);

/* Numbers, booleans and strings as themselves, arrays of structures as
 * arrays of objects; anything else as its GStreamer serialisation. */
inline std::string json_value(const GValue *v) {
  const GType t = G_VALUE_TYPE(v);
  char buf[64];
  if (t == G_TYPE_UINT64) {
    g_snprintf(buf, sizeof buf, "%" G_GUINT64_FORMAT, g_value_get_uint64(v));
    return buf;
  }
  if (t == G_TYPE_INT64) {
    g_snprintf(buf, sizeof buf, "%" G_GINT64_FORMAT, g_value_get_int64(v));
    return buf;
  }
  if (t == G_TYPE_UINT) return std::to_string(g_value_get_uint(v));
  if (t == G_TYPE_INT) return std::to_string(g_value_get_int(v));
  if (t == G_TYPE_ULONG) return std::to_string(g_value_get_ulong(v));
  if (t == G_TYPE_LONG) return std::to_string(g_value_get_long(v));
  if (t == G_TYPE_DOUBLE || t == G_TYPE_FLOAT) {
    const double d =
        t == G_TYPE_DOUBLE ? g_value_get_double(v) : g_value_get_float(v);
    g_ascii_dtostr(buf, sizeof buf, d);
    return buf;
  }
  if (t == G_TYPE_BOOLEAN) return g_value_get_boolean(v) ? "true" : "false";
  if (t == G_TYPE_STRING) return json_string(g_value_get_string(v));
  if (t == GST_TYPE_STRUCTURE) {
    const GstStructure *s = gst_value_get_structure(v);
    return s ? json_structure(s) : "null";
  }
  if (t == GST_TYPE_ARRAY || t == GST_TYPE_LIST) {
    const bool array = t == GST_TYPE_ARRAY;
    const guint n =
        array ? gst_value_array_get_size(v) : gst_value_list_get_size(v);
    std::string out = "[";
    for (guint i = 0; i < n; i++) {
      if (i) out += ",";
      out += json_value(array ? gst_value_array_get_value(v, i)
                              : gst_value_list_get_value(v, i));
    }
    return out + "]";
  }
  gchar *text = gst_value_serialize(v);
  std::string out = json_string(text ? text : "");
  g_free(text);
  return out;
}

inline std::string json_structure(const GstStructure *s) {
  std::string out = "{";
  const gint n = gst_structure_n_fields(s);
  for (gint i = 0; i < n; i++) {
    const gchar *name = gst_structure_nth_field_name(s, i);
    if (i) out += ",";
    out +=
        json_string(name) + ":" + json_value(gst_structure_get_value(s, name));
  }
  return out + "}";
}

/* The structure as "name, field=value, ..." for humans, arrays of
 * structures included (long, but complete). */
inline std::string text_structure(const GstStructure *s) {
  gchar *text = gst_structure_to_string(s);
  std::string out(text);
  g_free(text);
  return out;
}

/* One event line: JSON {"t":..,"event":EVENT,...fields} or "[  t s] EVENT
 * text". json_fields is a comma-separated list of "key":value pairs. */
inline void emit(bool json, const char *event, const std::string &json_fields,
                 const std::string &text) {
  char t[32];
  if (json) {
    g_snprintf(t, sizeof t, "%.3f", elapsed_s());
    std::string line =
        std::string("{\"t\":") + t + ",\"event\":" + json_string(event);
    if (!json_fields.empty()) line += "," + json_fields;
    print_line(line + "}");
  } else {
    g_snprintf(t, sizeof t, "[%7.3fs] ", elapsed_s());
    print_line(std::string(t) + event + (text.empty() ? "" : " ") + text);
  }
}

/* Prints the bus messages an application of these elements cares about.
 * Returns TRUE when the message ends the run (ERROR or EOS); *failed is
 * set on ERROR. */
inline gboolean report_bus_message(bool json, GstMessage *msg,
                                   gboolean *failed) {
  const gchar *src = GST_MESSAGE_SRC_NAME(msg) ? GST_MESSAGE_SRC_NAME(msg) : "";
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
    case GST_MESSAGE_WARNING: {
      const bool error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      GError *err = nullptr;
      gchar *debug = nullptr;
      if (error)
        gst_message_parse_error(msg, &err, &debug);
      else
        gst_message_parse_warning(msg, &err, &debug);
      emit(json, error ? "error" : "warning",
           "\"src\":" + json_string(src) +
               ",\"domain\":" + json_string(g_quark_to_string(err->domain)) +
               ",\"code\":" + std::to_string(err->code) +
               ",\"message\":" + json_string(err->message) +
               ",\"debug\":" + json_string(debug ? debug : ""),
           std::string(src) + ": " + err->message +
               (debug ? std::string(" (") + debug + ")" : ""));
      g_clear_error(&err);
      g_free(debug);
      if (error) {
        *failed = TRUE;
        return TRUE;
      }
      return FALSE;
    }
    case GST_MESSAGE_EOS:
      emit(json, "eos", "", "end of stream");
      return TRUE;
    case GST_MESSAGE_ELEMENT: {
      /* The elements post their news (losses, removal, reconnection) as
       * element messages named after them (GstP2pspSrc..., ...). Other
       * elements' messages (e.g. a video sink's) are not ours. */
      const GstStructure *s = gst_message_get_structure(msg);
      if (s == nullptr ||
          !g_str_has_prefix(gst_structure_get_name(s), "GstP2psp"))
        return FALSE;
      emit(json, "message",
           "\"src\":" + json_string(src) +
               ",\"name\":" + json_string(gst_structure_get_name(s)) +
               ",\"fields\":" + json_structure(s),
           std::string(src) + ": " + text_structure(s));
      return FALSE;
    }
    default:
      return FALSE;
  }
}

}  // namespace p2psp_app
