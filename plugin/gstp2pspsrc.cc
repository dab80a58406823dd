/* gst-p2psp: p2pspsrc, a peer of a P2PSP team as a live GStreamer source.
 *
 * The protocol lives in p2psp::Peer (sans-I/O); this element owns the
 * sockets, a poll thread that feeds the peer, and the streaming thread that
 * takes the rebuilt stream out of it. */

/**
 * SECTION:element-p2pspsrc
 * @title: p2pspsrc
 * @see_also: p2pspsplittersink
 *
 * p2pspsrc joins the team of a P2PSP splitter (#p2pspsplittersink): it
 * connects to the splitter over TCP, receives chunks of the stream over UDP
 * from the splitter and from the other peers, floods the chunks it got from
 * the splitter to every other peer, and outputs the stream rebuilt in order,
 * with the caps, timestamps and buffer flags the splitter's pipeline had.
 *
 * The element is a live source. `latency` is the playout buffering that
 * absorbs the jitter of the round-robin and of the flooding; it is reported
 * in the LATENCY query. A late joiner starts at a keyframe, after the
 * stream headers (the caps' `streamheader`).
 *
 * When the team is lost without the splitter saying it stops (the splitter
 * was killed or restarted, or removed this peer: expelled, timed out), the
 * element posts a warning and rejoins by itself (#GstP2pspSrc:auto-reconnect)
 * for up to #GstP2pspSrc:timeout seconds: the first buffer after the rejoin
 * is DISCONT, the stream headers come again for a restarted stream, and
 * timestamps keep growing. Element messages tell the application about
 * removals, rejoin attempts and losses ("GstP2pspSrcRemoved",
 * "GstP2pspSrcReconnecting", "GstP2pspSrcRejoined", "GstP2pspSrcLoss"). With
 * #GstP2pspSrc:monitor the peer reports its lost chunks to the splitter.
 *
 * The element handles `p2psp://host:port` URIs (`p2psp://[::1]:4552` for
 * IPv6); query keys set properties, e.g. `p2psp://host:4552?latency=500`.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 p2pspsrc uri=p2psp://127.0.0.1:4552 ! oggdemux ! theoradec !
 * autovideosink
 * ]| Joins the team of a splitter on this host and plays an Ogg/Theora
 * stream.
 * |[
 * gst-play-1.0 p2psp://127.0.0.1:4552
 * ]| Same, letting playbin find the decoders.
 * |[
 * gst-launch-1.0 p2pspsrc host=splitter.example.org ! queue ! shout2send
 * ip=127.0.0.1 mount=/live.ogg
 * ]| Relays the team's stream to an Icecast server.
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux !
 * p2pspsplittersink port=4552
 * ]| The splitter end, for the examples above.
 * |[
 * gst-launch-1.0 p2pspsrc
 * uri="p2psp://127.0.0.1:4552?passphrase=correct%20horse%20battery" ! oggdemux
 * ! theoradec ! autovideosink
 * ]| Joins an authenticated team (#GstP2pspSrc:passphrase, also a URI query
 * key as with srtsrc). A wrong or missing passphrase, or a splitter without
 * one, is a RESOURCE/NOT_AUTHORIZED error: a peer given a passphrase never
 * joins an open team. See docs/security.md.
 * |[
 * gst-launch-1.0 p2pspsrc uri="p2psp://127.0.0.1:4552?io-interval=40" !
 * fakesink
 * ]| A peer that handles the network at most 25 times a second instead of on
 * every datagram (#GstP2pspSrc:io-interval): less CPU where datagrams come
 * faster than that, up to 40 ms more delay per hop. For hosts running many
 * peers at low rates; the default (-1) does the same by itself, once per
 * latency/10, from 1000 datagrams a second (a few Mb/s).
 */

#include <gst/p2psp/tracker.h>

#include "gstp2pspcommon.h"
#include "gstp2pspelements.h"
#include "gstp2pspsrcpriv.h"

GST_DEBUG_CATEGORY(gst_p2psp_src_debug);

guint p2psp_src::src_signals[LAST_SIGNAL];

static void gst_p2psp_src_uri_handler_init(gpointer iface, gpointer data);

#define gst_p2psp_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstP2pspSrc, gst_p2psp_src, GST_TYPE_PUSH_SRC,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER,
                                              gst_p2psp_src_uri_handler_init);
                        GST_DEBUG_CATEGORY_INIT(gst_p2psp_src_debug, "p2pspsrc",
                                                0, "P2PSP peer source"));

GST_ELEMENT_REGISTER_DEFINE(p2pspsrc, "p2pspsrc", GST_RANK_PRIMARY,
                            GST_TYPE_P2PSP_SRC);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstFlowReturn gst_p2psp_src_create(GstPushSrc* psrc, GstBuffer** out) {
  GstP2pspSrc* self = GST_P2PSP_SRC(psrc);
  GstP2pspSrcPrivate* priv = self->priv;
  if (priv->state == SrcState::kReady) {
    GstFlowReturn ret = connect_to_splitter(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  if (priv->state == SrcState::kRejoining) {
    // A flush interrupted the rejoin: start it again (a new `timeout`).
    GstFlowReturn ret = reconnect(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  while (priv->out.output.empty()) {
    if (priv->state == SrcState::kFailed) return GST_FLOW_ERROR;
    if (priv->state == SrcState::kEos) return GST_FLOW_EOS;
    GstFlowReturn ret = next_item(self);
    if (ret != GST_FLOW_OK) return ret;
  }
  *out = priv->out.output.front().release();
  priv->out.output.pop_front();
  GST_LOG_OBJECT(self, "pushing %" GST_PTR_FORMAT, *out);
  return GST_FLOW_OK;
}

/* --------------------------------------------------- start and stop ---- */

static gboolean gst_p2psp_src_start(GstBaseSrc* bsrc) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  GstP2pspSrcPrivate* priv = self->priv;
  GST_OBJECT_LOCK(self);
  priv->active = priv->settings;
  GST_OBJECT_UNLOCK(self);
  if (!p2psp_gst::check_passphrase(GST_ELEMENT(self), priv->active.passphrase))
    return FALSE;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = false;
    priv->link = Link();
    priv->run = Run();
  }
  g_cancellable_reset(priv->cancel.get());
  priv->out = Output();
  priv->state = SrcState::kReady;
  GST_DEBUG_OBJECT(self, "started; will join %s:%d", priv->active.host.c_str(),
                   priv->active.port);
  return TRUE;
}

static gboolean gst_p2psp_src_stop(GstBaseSrc* bsrc) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  GstP2pspSrcPrivate* priv = self->priv;
  priv->io.stop();
  leave_team(self);
  close_sockets(priv);
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->link = Link();
  }
  priv->out = Output();
  priv->state = SrcState::kStopped;
  GST_DEBUG_OBJECT(self, "stopped");
  return TRUE;
}

static gboolean gst_p2psp_src_unlock(GstBaseSrc* bsrc) {
  GstP2pspSrcPrivate* priv = GST_P2PSP_SRC(bsrc)->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = true;
    priv->core_cond.notify_all();
  }
  g_cancellable_cancel(priv->cancel.get());
  return TRUE;
}

static gboolean gst_p2psp_src_unlock_stop(GstBaseSrc* bsrc) {
  GstP2pspSrcPrivate* priv = GST_P2PSP_SRC(bsrc)->priv;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->flushing = false;
  }
  g_cancellable_reset(priv->cancel.get());
  return TRUE;
}

// The longest a round may wait: io-interval, or the automatic one's cap.
static guint io_interval_delay_ms(const Settings& s) {
  if (s.io_interval_ms >= 0) return static_cast<guint>(s.io_interval_ms);
  return std::min(kAutoIoIntervalMaxMs, s.latency_ms / 10);
}

static void apply_io_interval(GstP2pspSrc* self, const Settings& s) {
  const Micros delay = static_cast<Micros>(io_interval_delay_ms(s)) * 1000;
  if (s.io_interval_ms < 0)
    self->priv->io.set_interval(0, delay);
  else
    self->priv->io.set_interval(delay, 0);
}

static gboolean gst_p2psp_src_query(GstBaseSrc* bsrc, GstQuery* query) {
  GstP2pspSrc* self = GST_P2PSP_SRC(bsrc);
  if (GST_QUERY_TYPE(query) != GST_QUERY_LATENCY)
    return GST_BASE_SRC_CLASS(parent_class)->query(bsrc, query);
  GST_OBJECT_LOCK(self);
  /* A buffer is taken out of the playout buffer in the network thread's
   * next round: up to io-interval after it is due. */
  const GstClockTime latency = (self->priv->settings.latency_ms +
                                io_interval_delay_ms(self->priv->settings)) *
                               GST_MSECOND;
  GST_OBJECT_UNLOCK(self);
  /* Chunks wait in the playout buffer, not on a fixed ring: downstream may
   * add any latency of its own without us losing data (max = NONE), which
   * keeps sinks with a processing deadline from calling the pipeline
   * invalid. */
  gst_query_set_latency(query, TRUE, latency, GST_CLOCK_TIME_NONE);
  return TRUE;
}

/* ------------------------------------------------------------- URI ---- */

static gchar* build_uri(const Settings& s) {
  GString* uri = g_string_new("p2psp://");
  const bool ipv6 = s.host.find(':') != std::string::npos;
  g_string_append_printf(uri, ipv6 ? "[%s]:%d" : "%s:%d", s.host.c_str(),
                         s.port);
  if (!s.channel.empty()) g_string_append_printf(uri, "/%s", s.channel.c_str());
  const char* separator = "?";
  if (s.latency_ms != kDefaultLatencyMs) {
    g_string_append_printf(uri, "%slatency=%u", separator, s.latency_ms);
    separator = "&";
  }
  if (s.timeout_s != kDefaultTimeoutS) {
    g_string_append_printf(uri, "%stimeout=%u", separator, s.timeout_s);
    separator = "&";
  }
  if (s.monitor != kDefaultMonitor) {
    g_string_append_printf(uri, "%smonitor=%s", separator,
                           s.monitor ? "true" : "false");
    separator = "&";
  }
  if (s.auto_reconnect != kDefaultAutoReconnect) {
    g_string_append_printf(uri, "%sauto-reconnect=%s", separator,
                           s.auto_reconnect ? "true" : "false");
    separator = "&";
  }
  if (s.io_interval_ms != kDefaultIoIntervalMs) {
    g_string_append_printf(uri, "%sio-interval=%d", separator,
                           s.io_interval_ms);
    separator = "&";
  }
  if (s.start_timeout_ms != kDefaultStartTimeoutMs) {
    g_string_append_printf(uri, "%sstart-timeout=%u", separator,
                           s.start_timeout_ms);
    separator = "&";
  }
  if (s.join_burst != kDefaultJoinBurst) {
    g_string_append_printf(uri, "%sjoin-burst=%s", separator,
                           s.join_burst ? "true" : "false");
    separator = "&";
  }
  if (s.upload_limit_bps >= 0)
    g_string_append_printf(uri, "%supload-limit=%" G_GINT64_FORMAT, separator,
                           s.upload_limit_bps);
  return g_string_free(uri, FALSE);
}

// Query keys may set the properties that are not part of the URI itself.
static gboolean check_query_key(GObject* object, const char* key,
                                const char* value, GError** error) {
  GParamSpec* pspec =
      g_object_class_find_property(G_OBJECT_GET_CLASS(object), key);
  const bool settable =
      pspec != nullptr && (pspec->flags & G_PARAM_WRITABLE) &&
      g_strcmp0(key, "uri") != 0 && g_strcmp0(key, "host") != 0 &&
      g_strcmp0(key, "port") != 0 && g_strcmp0(key, "channel") != 0;
  if (!settable) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Unknown query key '%s' in p2psp URI", key);
    return FALSE;
  }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, pspec->value_type);
  const bool ok = value != nullptr && gst_value_deserialize(&v, value) &&
                  !g_param_value_validate(pspec, &v);
  g_value_unset(&v);
  if (!ok) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Invalid value '%s' for '%s' in p2psp URI", value ? value : "",
                key);
    return FALSE;
  }
  return TRUE;
}

// p2psp://host:port names a splitter; p2psp://tracker[:port]/channel a
// channel, through a tracker (docs/tracker.md).
static gboolean parse_uri_authority(GstUri* uri, Settings* s, GError** error) {
  const gchar* scheme = gst_uri_get_scheme(uri);
  const gchar* host = gst_uri_get_host(uri);
  gchar* path = gst_uri_get_path(uri); /* transfer full */
  std::string channel = path && path[0] == '/' ? path + 1 : (path ? path : "");
  g_free(path);
  if (!channel.empty() && channel.back() == '/') channel.pop_back();
  const guint port = gst_uri_get_port(uri);
  if (g_ascii_strcasecmp(scheme ? scheme : "", "p2psp") != 0 ||
      host == nullptr || host[0] == '\0' || port > 65535 ||
      gst_uri_get_userinfo(uri) != nullptr ||
      (!channel.empty() && !p2psp::Tracker::valid_channel(channel))) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Expected p2psp://host:port or p2psp://tracker:port/channel "
                "(channel: letters, digits, '.', '_', '-')");
    return FALSE;
  }
  s->host = host;
  s->channel = channel;
  const int default_port = channel.empty() ? kDefaultPort : kDefaultTrackerPort;
  s->port = port == GST_URI_NO_PORT ? default_port : static_cast<int>(port);
  return TRUE;
}

static gboolean gst_p2psp_src_set_uri(GstP2pspSrc* self, const gchar* text,
                                      GError** error) {
  GST_OBJECT_LOCK(self);
  const GstState state = GST_STATE(self);
  GST_OBJECT_UNLOCK(self);
  if (state > GST_STATE_READY) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
                "Changing the URI of p2pspsrc is only possible in the NULL "
                "or READY state");
    return FALSE;
  }

  GstUri* uri = text ? gst_uri_from_string(text) : nullptr;
  if (uri == nullptr) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "Invalid p2psp URI: %s", text ? text : "(null)");
    return FALSE;
  }
  Settings parsed;
  gboolean ok = parse_uri_authority(uri, &parsed, error);
  GHashTable* query = ok ? gst_uri_get_query_table(uri) : nullptr;
  if (query != nullptr) {
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, query);
    while (ok && g_hash_table_iter_next(&iter, &key, &value))
      ok = check_query_key(G_OBJECT(self), static_cast<const char*>(key),
                           static_cast<const char*>(value), error);
  }
  if (ok) {
    GST_OBJECT_LOCK(self);
    self->priv->settings.host = parsed.host;
    self->priv->settings.port = parsed.port;
    self->priv->settings.channel = parsed.channel;
    GST_OBJECT_UNLOCK(self);
    if (query != nullptr) {
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init(&iter, query);
      while (g_hash_table_iter_next(&iter, &key, &value))
        gst_util_set_object_arg(G_OBJECT(self), static_cast<gchar*>(key),
                                static_cast<gchar*>(value));
    }
    g_object_notify(G_OBJECT(self), "host");
    g_object_notify(G_OBJECT(self), "port");
    g_object_notify(G_OBJECT(self), "channel");
    g_object_notify(G_OBJECT(self), "uri");
  }
  if (query != nullptr) g_hash_table_unref(query);
  gst_uri_unref(uri);
  return ok;
}

static GstURIType gst_p2psp_src_uri_get_type(GType) { return GST_URI_SRC; }

static const gchar* const* gst_p2psp_src_uri_get_protocols(GType) {
  static const gchar* protocols[] = {"p2psp", nullptr};
  return protocols;
}

static gchar* gst_p2psp_src_uri_get_uri(GstURIHandler* handler) {
  GstP2pspSrc* self = GST_P2PSP_SRC(handler);
  GST_OBJECT_LOCK(self);
  gchar* uri = build_uri(self->priv->settings);
  GST_OBJECT_UNLOCK(self);
  return uri;
}

static gboolean gst_p2psp_src_uri_set_uri(GstURIHandler* handler,
                                          const gchar* uri, GError** error) {
  return gst_p2psp_src_set_uri(GST_P2PSP_SRC(handler), uri, error);
}

static void gst_p2psp_src_uri_handler_init(gpointer g_iface, gpointer) {
  auto* iface = static_cast<GstURIHandlerInterface*>(g_iface);
  iface->get_type = gst_p2psp_src_uri_get_type;
  iface->get_protocols = gst_p2psp_src_uri_get_protocols;
  iface->get_uri = gst_p2psp_src_uri_get_uri;
  iface->set_uri = gst_p2psp_src_uri_set_uri;
}

/* ------------------------------------------------------ properties ---- */

// Stores a property in Settings. Called with the object lock.
static void set_setting(GstP2pspSrc* self, guint prop_id, const GValue* value,
                        GParamSpec* pspec) {
  Settings& s = self->priv->settings;
  switch (prop_id) {
    case PROP_HOST: {
      const gchar* host = g_value_get_string(value);
      s.host = host ? host : kDefaultHost;
      break;
    }
    case PROP_PORT:
      s.port = g_value_get_int(value);
      break;
    case PROP_LATENCY:
      s.latency_ms = g_value_get_uint(value);
      apply_io_interval(self, s);
      break;
    case PROP_TIMEOUT:
      s.timeout_s = g_value_get_uint(value);
      break;
    case PROP_JOIN_BURST:
      s.join_burst = g_value_get_boolean(value);
      break;
    case PROP_CHANNEL: {
      const gchar* channel = g_value_get_string(value);
      if (channel == nullptr || channel[0] == '\0' ||
          p2psp::Tracker::valid_channel(channel)) {
        s.channel = channel ? channel : "";
      } else {
        GST_WARNING_OBJECT(self, "ignoring invalid channel name \"%s\"",
                           channel);
      }
      break;
    }
    case PROP_MONITOR:
      s.monitor = g_value_get_boolean(value);
      break;
    case PROP_AUTO_RECONNECT:
      s.auto_reconnect = g_value_get_boolean(value);
      break;
    case PROP_PASSPHRASE: {
      const gchar* passphrase = g_value_get_string(value);
      s.passphrase = passphrase ? passphrase : "";
      break;
    }
    case PROP_IO_INTERVAL:
      s.io_interval_ms = g_value_get_int(value);
      apply_io_interval(self, s);
      break;
    case PROP_START_TIMEOUT:
      s.start_timeout_ms = g_value_get_uint(value);
      break;
    case PROP_UPLOAD_LIMIT:
      s.upload_limit_bps = g_value_get_int64(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(self, prop_id, pspec);
      break;
  }
}

static void gst_p2psp_src_set_property(GObject* object, guint prop_id,
                                       const GValue* value, GParamSpec* pspec) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  if (prop_id == PROP_URI) {
    GError* error = nullptr;
    if (!gst_p2psp_src_set_uri(self, g_value_get_string(value), &error)) {
      GST_WARNING_OBJECT(self, "%s", error->message);
      g_error_free(error);
    }
    return;
  }
  GST_OBJECT_LOCK(self);
  set_setting(self, prop_id, value, pspec);
  GST_OBJECT_UNLOCK(self);
  // It is part of the latency we report.
  if (prop_id == PROP_IO_INTERVAL)
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_latency(GST_OBJECT(self)));
}

static void gst_p2psp_src_get_property(GObject* object, guint prop_id,
                                       GValue* value, GParamSpec* pspec) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  const Settings& s = self->priv->settings;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_URI:
      g_value_take_string(value, build_uri(s));
      break;
    case PROP_HOST:
      g_value_set_string(value, s.host.c_str());
      break;
    case PROP_PORT:
      g_value_set_int(value, s.port);
      break;
    case PROP_LATENCY:
      g_value_set_uint(value, s.latency_ms);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint(value, s.timeout_s);
      break;
    case PROP_JOIN_BURST:
      g_value_set_boolean(value, s.join_burst);
      break;
    case PROP_CHANNEL:
      g_value_set_string(value,
                         s.channel.empty() ? nullptr : s.channel.c_str());
      break;
    case PROP_MONITOR:
      g_value_set_boolean(value, s.monitor);
      break;
    case PROP_AUTO_RECONNECT:
      g_value_set_boolean(value, s.auto_reconnect);
      break;
    case PROP_IO_INTERVAL:
      g_value_set_int(value, s.io_interval_ms);
      break;
    case PROP_START_TIMEOUT:
      g_value_set_uint(value, s.start_timeout_ms);
      break;
    case PROP_UPLOAD_LIMIT:
      g_value_set_int64(value, s.upload_limit_bps);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

/* ------------------------------------------------------------ GType ---- */

static void gst_p2psp_src_finalize(GObject* object) {
  GstP2pspSrc* self = GST_P2PSP_SRC(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_p2psp_src_init(GstP2pspSrc* self) {
  self->priv = new GstP2pspSrcPrivate();
  apply_io_interval(self, self->priv->settings);
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  gst_base_src_set_do_timestamp(GST_BASE_SRC(self), FALSE);
}

// The connection: where, how long to wait, how much to buffer.
static void install_connection_properties(GObjectClass* gobject_class) {
  const auto rw = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_URI,
      g_param_spec_string("uri", "URI",
                          "Splitter to join, as p2psp://host:port (query "
                          "keys set other properties, e.g. ?latency=300)",
                          "p2psp://127.0.0.1:4552", rw));
  g_object_class_install_property(
      gobject_class, PROP_HOST,
      g_param_spec_string("host", "Host",
                          "Host name or address of the splitter", kDefaultHost,
                          rw));
  g_object_class_install_property(
      gobject_class, PROP_PORT,
      g_param_spec_int("port", "Port", "TCP port of the splitter", 1, 65535,
                       kDefaultPort, rw));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Playout buffering in milliseconds: how long a chunk "
                        "waits for earlier ones",
                        0, kMaxLatencyMs, kDefaultLatencyMs, rw));
  g_object_class_install_property(
      gobject_class, PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds to wait for the connection, for data, and "
                        "for a rejoin after losing the team, before giving "
                        "up (0 = forever)",
                        0, kMaxTimeoutS, kDefaultTimeoutS, rw));
}

// The team: monitor, rejoining, passphrase, pacing.
static void install_team_properties(GObjectClass* gobject_class) {
  const auto rw = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_MONITOR,
      g_param_spec_boolean("monitor", "Monitor",
                           "Ask to be a monitor: report lost chunks to the "
                           "splitter, which expels peers that lose too many",
                           kDefaultMonitor, rw));
  g_object_class_install_property(
      gobject_class, PROP_AUTO_RECONNECT,
      g_param_spec_boolean(
          "auto-reconnect", "Auto reconnect",
          "After losing the splitter or being removed from the team, post a "
          "warning and rejoin (for up to timeout seconds) instead of an "
          "error",
          kDefaultAutoReconnect, rw));
  g_object_class_install_property(
      gobject_class, PROP_PASSPHRASE,
      g_param_spec_string(
          "passphrase", "Passphrase",
          "Passphrase of an authenticated team (10 to 79 characters, "
          "write-only; also the URI query key 'passphrase'). Empty: join "
          "open teams only",
          nullptr,
          static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(
      gobject_class, PROP_IO_INTERVAL,
      g_param_spec_int(
          "io-interval", "I/O interval",
          "Handle the network at most once per this many milliseconds "
          "instead of on every datagram: fewer wake-ups (less CPU) for up to "
          "this much more delay per hop, and as much more reported latency "
          "(0 = on every datagram; -1 = automatic: on every datagram while "
          "the socket moves under 1000 datagrams a second, else once per "
          "latency/10, 20 ms at most)",
          -1, kMaxIoIntervalMs, kDefaultIoIntervalMs,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_PLAYING)));
}

// Joining: the late-joiner gate, the join burst, channels, the upload limit,
// and the stats.
static void install_join_properties(GObjectClass* gobject_class) {
  const auto rw = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_START_TIMEOUT,
      g_param_spec_uint(
          "start-timeout", "Start timeout",
          "Milliseconds a late joiner waits for a start point (a keyframe) "
          "before it starts at a buffer boundary, marked DISCONT (0 = wait "
          "for a keyframe however long it takes)",
          0, kMaxStartTimeoutMs, kDefaultStartTimeoutMs,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(
      gobject_class, PROP_JOIN_BURST,
      g_param_spec_boolean(
          "join-burst", "Join burst",
          "Ask the splitter for the stream from its latest keyframe when "
          "joining (like tcpserversink's burst-keyframe), so playback starts "
          "at once instead of at the next keyframe",
          kDefaultJoinBurst, rw));
  g_object_class_install_property(
      gobject_class, PROP_CHANNEL,
      g_param_spec_string(
          "channel", "Channel",
          "Join this channel through the tracker that host and port name "
          "(its HTTP port, 8000 by default), as the URI "
          "p2psp://tracker:port/channel does; the tracker picks the team, "
          "and again on each rejoin (NULL: host and port name the splitter)",
          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_UPLOAD_LIMIT,
      g_param_spec_int64(
          "upload-limit", "Upload limit",
          "Bits per second this peer may upload, told to the splitter when "
          "joining so that it deals this peer no more chunks than that "
          "carries, and under twice the stream's rate it relays for no "
          "neighbour (0 = forward nothing: the peer still receives the whole "
          "stream; -1 = no limit)",
          -1, G_MAXINT64, -1,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Peer statistics (application/x-p2psp-peer-stats)",
          GST_TYPE_STRUCTURE,
          static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
}

static void install_properties(GObjectClass* gobject_class) {
  install_connection_properties(gobject_class);
  install_team_properties(gobject_class);
  install_join_properties(gobject_class);
}

static void install_signals(GObjectClass* gobject_class) {
  /**
   * GstP2pspSrc::peer-added:
   * @src: the p2pspsrc
   * @id: the neighbour's peer id
   * @endpoint: the neighbour's UDP endpoint, "address:port"
   *
   * A peer joined the team and became a neighbour. Emitted from the
   * element's network thread.
   */
  src_signals[SIGNAL_PEER_ADDED] = g_signal_new(
      "peer-added", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSrc::peer-removed:
   * @src: the p2pspsrc
   * @id: the neighbour's peer id
   * @endpoint: the neighbour's UDP endpoint, "address:port"
   *
   * A neighbour left the team or was dropped. Emitted from the element's
   * network thread.
   */
  src_signals[SIGNAL_PEER_REMOVED] = g_signal_new(
      "peer-removed", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
}

static void gst_p2psp_src_class_init(GstP2pspSrcClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass* basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass* pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  gobject_class->set_property = gst_p2psp_src_set_property;
  gobject_class->get_property = gst_p2psp_src_get_property;
  gobject_class->finalize = gst_p2psp_src_finalize;
  install_properties(gobject_class);
  install_signals(gobject_class);

  gst_element_class_add_static_pad_template(element_class, &src_template);
  p2psp_gst::mark_enums_as_plugin_api();
  gst_element_class_set_static_metadata(
      element_class, "P2PSP peer source", "Source/Network",
      "Joins a P2PSP team and outputs the live stream it carries",
      "gst-p2psp developers");

  basesrc_class->start = gst_p2psp_src_start;
  basesrc_class->stop = gst_p2psp_src_stop;
  basesrc_class->unlock = gst_p2psp_src_unlock;
  basesrc_class->unlock_stop = gst_p2psp_src_unlock_stop;
  basesrc_class->query = gst_p2psp_src_query;
  pushsrc_class->create = gst_p2psp_src_create;
}
