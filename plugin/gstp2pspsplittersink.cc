/* gst-p2psp: p2pspsplittersink, the splitter end of a P2PSP team.
 *
 * The element is a thin wrapper: p2psp::Splitter decides everything (who is
 * in the team, which peer gets which chunk); this file moves bytes between it
 * and the sockets. render() cuts and sends without ever waiting for the
 * network; a poll thread accepts peers, reads their TCP control messages and
 * UDP registrations, flushes TCP output, and runs the core's timers. */

/**
 * SECTION:element-p2pspsplittersink
 * @title: p2pspsplittersink
 * @see_also: p2pspsrc
 *
 * Turns the stream it receives into a P2PSP team: the stream is cut into
 * numbered chunks and each chunk is sent by UDP to one peer of the team,
 * round-robin; the peers (p2pspsrc elements) flood the chunks to each other
 * and rebuild the stream. Peers join over TCP on #GstP2pspSplitterSink:port;
 * the caps (with their streamheader) are sent to every peer that joins, so
 * late joiners can start decoding at the next keyframe.
 *
 * The sink never waits for the network: with no peer in the team the chunks
 * are dropped (and counted in #GstP2pspSplitterSink:stats) and the pipeline
 * runs on, unless #GstP2pspSplitterSink:wait-for-peers asks it to hold the
 * stream until enough peers have joined.
 *
 * The team heals itself: peers heartbeat, and a member silent for
 * #GstP2pspSplitterSink:peer-timeout is removed; monitors (the first
 * #GstP2pspSplitterSink:monitors peers, or peers that ask) report lost
 * chunks, and a peer whose chunks are lost too often is expelled
 * (#GstP2pspSplitterSink:max-chunk-loss). Every removal posts a
 * "GstP2pspSplitterPeerRemoved" element message with its reason.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux ! \
 *     p2pspsplittersink port=4552
 * ]| Streams a live test video to every peer that joins on port 4552.
 * |[
 * gst-launch-1.0 souphttpsrc location=http://host:8000/stream.ogg ! \
 *     p2pspsplittersink
 * ]| Relays an Icecast stream to a team.
 * |[
 * gst-launch-1.0 p2pspsrc uri=p2psp://splitter-host:4552 ! decodebin ! \
 *     autovideosink
 * ]| A peer of either team.
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! theoraenc ! oggmux ! \
 *     p2pspsplittersink port=4552 passphrase="correct horse battery"
 * ]| An authenticated team: only peers given the same
 * #GstP2pspSplitterSink:passphrase join, and every datagram is
 * authenticated and encrypted (#GstP2pspSplitterSink:encrypt=false keeps
 * the authentication but sends the payload in clear). See docs/security.md.
 * |[
 * gst-launch-1.0 souphttpsrc location=http://host:8000/stream.ogg ! \
 *     p2pspsplittersink learn-shares=true
 * ]| A team of strangers' uplinks: peers that forward nothing (free riders)
 * are found by the echo of their first chunk or by the team's NACKs and
 * are dealt no chunk, though they still get the whole stream.
 */

#include <gst/base/gsttypefindhelper.h>

#include "gstp2pspcommon.h"
#include "gstp2pspelements.h"
#include "gstp2pspsplittersinkpriv.h"

GST_DEBUG_CATEGORY(gst_p2psp_splitter_sink_debug);

namespace p2psp_sink {
GParamSpec *properties[N_PROPERTIES];
guint signals[N_SIGNALS];
}  // namespace p2psp_sink

namespace {
GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
}  // namespace

#define gst_p2psp_splitter_sink_parent_class parent_class
G_DEFINE_TYPE(GstP2pspSplitterSink, gst_p2psp_splitter_sink,
              GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(p2pspsplittersink, "p2pspsplittersink",
                            GST_RANK_NONE, GST_TYPE_P2PSP_SPLITTER_SINK);

namespace p2psp_sink {
SplitterSinkPrivate *priv_of(gpointer self) {
  return GST_P2PSP_SPLITTER_SINK(self)->priv;
}

/* ------------------------------------------------------------ events ---- */

void emit_event(GstP2pspSplitterSink *self, const PendingEvent &pending) {
  const p2psp::SplitterEvent &ev = pending.event;
  const std::string endpoint = ev.endpoint.to_string();
  const bool added = ev.kind == p2psp::SplitterEvent::Kind::kPeerAdded;
  const char *reason =
      p2psp_gst::enum_nick(GST_TYPE_P2PSP_REMOVE_REASON, pending.reason);
  GST_INFO_OBJECT(self, "peer %u (%s) %s", ev.peer_id, endpoint.c_str(),
                  added ? "joined" : reason);
  g_signal_emit(self, signals[added ? SIGNAL_PEER_ADDED : SIGNAL_PEER_REMOVED],
                0, ev.peer_id, endpoint.c_str());
  /* The signal keeps its two arguments (handlers written for them, Python
   * lambdas included, would break on a third); the reason goes on the bus. */
  if (!added) {
    GstStructure *s = gst_structure_new(
        kPeerRemovedMessage, "peer-id", G_TYPE_UINT, ev.peer_id, "endpoint",
        G_TYPE_STRING, endpoint.c_str(), "reason", G_TYPE_STRING, reason,
        nullptr);
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_element(GST_OBJECT(self), s));
  }
}

void publish_num_peers(GstP2pspSplitterSink *self, guint num_peers) {
  SplitterSinkPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    if (priv->num_peers == num_peers) return;
    priv->num_peers = num_peers;
  }
  priv->peers_cond.notify_all();
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_NUM_PEERS]);
}

/* Emits the events the core produced, outside core_mutex so that handlers
 * may read properties. Whichever thread gets here first emits everything
 * pending, in order. */
void emit_pending_events(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  std::lock_guard<std::mutex> emit_lock(priv->emit_mutex);
  for (;;) {
    PendingEvent ev;
    guint num_peers;
    {
      std::lock_guard<std::mutex> lock(priv->core_mutex);
      if (priv->run.pending_events.empty()) return;
      ev = priv->run.pending_events.front();
      priv->run.pending_events.pop_front();
      num_peers = priv->run.splitter ? priv->run.splitter->num_peers() : 0;
    }
    emit_event(self, ev);
    publish_num_peers(self, num_peers);
  }
}

void set_current_port(GstP2pspSplitterSink *self, gint port) {
  GST_OBJECT_LOCK(self);
  self->priv->current_port = port;
  GST_OBJECT_UNLOCK(self);
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_CURRENT_PORT]);
}

gboolean gst_p2psp_splitter_sink_start(GstBaseSink *sink) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  SplitterSinkPrivate *priv = self->priv;

  GST_OBJECT_LOCK(self);
  const Settings settings = priv->settings;
  GST_OBJECT_UNLOCK(self);

  priv->icy.reset();
  if (!p2psp_gst::check_passphrase(GST_ELEMENT(self), settings.passphrase) ||
      !check_tracker_settings(self, settings))
    return FALSE;
  GRef<GSocket> listener, udp;
  if (!open_sockets(self, settings, &listener, &udp)) return FALSE;
  const guint16 tcp_port = local_port(listener.get());
  const guint16 udp_port = local_port(udp.get());

  const p2psp::SplitterConfig config = splitter_config(settings, udp_port);
  /* Argon2id runs here, once per start (tens of ms), never per join. */
  std::unique_ptr<p2psp::Splitter> splitter;
  try {
    splitter = std::make_unique<p2psp::Splitter>(config);
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("Could not set up the team's passphrase"),
                      ("%s", e.what()));
    return FALSE;
  }
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run = Run();
    priv->run.splitter = std::move(splitter);
    priv->io.reset();
    priv->io.adopt_listener(listener.release(), settings.max_control_backlog);
    priv->io.adopt_udp(udp.release(), kReceiveBatch);
    priv->run.state = State::kRunning;
  }
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->num_peers = 0;
    priv->team_reached = false;
  }
  if (!start_poll_thread(self)) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                      ("Could not start the network thread"), (nullptr));
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run.state = State::kStopped;
    priv->io.close();
    return FALSE;
  }
  GST_INFO_OBJECT(self, "team %08x on %s: TCP port %u, UDP port %u",
                  config.team_id, settings.host.c_str(), tcp_port, udp_port);
  set_current_port(self, tcp_port);
  start_announcing(self, settings, tcp_port, config.team_id);
  return TRUE;
}

gboolean gst_p2psp_splitter_sink_stop(GstBaseSink *sink) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  SplitterSinkPrivate *priv = self->priv;

  stop_announcing(self); /* withdraws the team: joiners go elsewhere */
  run_core(self, [](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
    s.shutdown(now, out);
  });
  drain_tcp_output(priv);
  priv->io.stop();
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    priv->run.state = State::kStopped;
    priv->io.close();
    /* The splitter (and the I/O counters) stay for the stats of the finished
     * run; start() makes a new one. */
  }
  emit_pending_events(self);
  publish_num_peers(self, 0);
  set_current_port(self, -1);
  return TRUE;
}

/* ------------------------------------------------------------ stream ---- */

/* TRUE while wait-for-peers holds (or is about to hold) the stream. */
bool team_short(GstP2pspSplitterSink *self) {
  GST_OBJECT_LOCK(self);
  const guint wanted = self->priv->wait_for_peers;
  GST_OBJECT_UNLOCK(self);
  std::lock_guard<std::mutex> lock(self->priv->peers_mutex);
  return !self->priv->team_reached && self->priv->num_peers < wanted;
}

/* Caps go to the core at once, so peers get them in WELCOME. While
 * wait-for-peers holds the stream the caps frame waits with it (the team
 * that was waited for gets it in-band instead of it being cut for nobody),
 * but WELCOME has them at once: a peer that joins as the team fills up may
 * get its TEAM after the first chunks went out. */
gboolean give_caps(GstP2pspSplitterSink *self, const std::string &caps_string) {
  GST_DEBUG_OBJECT(self, "caps %s", caps_string.c_str());
  if (team_short(self)) {
    std::lock_guard<std::mutex> lock(self->priv->core_mutex);
    self->priv->run.pending_caps = caps_string;
    self->priv->run.has_pending_caps = true;
    if (self->priv->run.splitter)
      self->priv->run.splitter->announce_caps(caps_string);
    return TRUE;
  }
  run_core(self,
           [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
             self->priv->run.has_pending_caps = false;
             s.set_caps(caps_string, now, out);
           });
  return TRUE;
}

/* application/x-icy (souphttpsrc's default iradio-mode on a radio mount):
 * the caps say nothing of the audio and joiners could not use them. The
 * metadata blocks are taken out in render() and what is left is typefound
 * like a stream that came without caps. */
bool take_icy_caps(GstP2pspSplitterSink *self, const std::string &caps) {
  SplitterSinkPrivate *priv = self->priv;
  if (!p2psp::caps_are_icy(caps)) {
    priv->icy.reset();
    return false;
  }
  const size_t interval = p2psp::icy_metadata_interval(caps);
  /* Caps repeated mid-stream must not restart the count of bytes. */
  if (!priv->icy || priv->icy->stats().bytes_in == 0) {
    priv->icy = std::make_unique<p2psp::IcyDeinterleaver>(interval);
  }
  GST_INFO_OBJECT(self, "ICY stream, metadata every %zu bytes: stripped",
                  interval);
  return true;
}

gboolean gst_p2psp_splitter_sink_set_caps(GstBaseSink *sink, GstCaps *caps) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  gchar *text = gst_caps_to_string(caps);
  const std::string caps_string(text);
  g_free(text);
  if (take_icy_caps(self, caps_string)) return TRUE;
  return give_caps(self, caps_string);
}

/* Called with core_mutex held. */
void apply_pending_caps(SplitterSinkPrivate *priv, p2psp::Micros now,
                        p2psp::Outbox *out) {
  if (!priv->run.has_pending_caps) return;
  priv->run.has_pending_caps = false;
  priv->run.splitter->set_caps(priv->run.pending_caps, now, out);
}

uint64_t running_time_of(const GstSegment *segment, GstClockTime ts) {
  if (!GST_CLOCK_TIME_IS_VALID(ts) || segment->format != GST_FORMAT_TIME)
    return p2psp::kNoTime;
  const guint64 rt = gst_segment_to_running_time(segment, GST_FORMAT_TIME, ts);
  return GST_CLOCK_TIME_IS_VALID(rt) ? rt : p2psp::kNoTime;
}

uint32_t media_flags_of(GstBuffer *buffer) {
  uint32_t flags = 0;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_HEADER))
    flags |= p2psp::MediaBuffer::kHeader;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT))
    flags |= p2psp::MediaBuffer::kDeltaUnit;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT))
    flags |= p2psp::MediaBuffer::kDiscont;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP))
    flags |= p2psp::MediaBuffer::kGap;
  return flags;
}

/* Timestamps travel as splitter running time: peers map them onto their own
 * clock, whatever segment the splitter's input had. */
gboolean media_buffer_from(GstBaseSink *sink, GstBuffer *buffer,
                           p2psp::MediaBuffer *mb) {
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return FALSE;
  mb->data.assign(map.data, map.data + map.size);
  gst_buffer_unmap(buffer, &map);
  mb->pts = running_time_of(&sink->segment, GST_BUFFER_PTS(buffer));
  mb->dts = running_time_of(&sink->segment, GST_BUFFER_DTS(buffer));
  mb->duration = GST_BUFFER_DURATION_IS_VALID(buffer)
                     ? GST_BUFFER_DURATION(buffer)
                     : p2psp::kNoTime;
  mb->flags = media_flags_of(buffer);
  return TRUE;
}

/* Holds the stream until wait-for-peers peers are in (or unlock()), once per
 * run. */
GstFlowReturn wait_for_peers(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  for (;;) {
    GST_OBJECT_LOCK(self);
    const guint wanted = priv->wait_for_peers;
    GST_OBJECT_UNLOCK(self);

    std::unique_lock<std::mutex> lock(priv->peers_mutex);
    if (priv->team_reached) return GST_FLOW_OK;
    if (priv->num_peers >= wanted) {
      priv->team_reached = true;
      return GST_FLOW_OK;
    }
    if (!priv->unlocked) {
      GST_DEBUG_OBJECT(self, "waiting for %u peers (have %u)", wanted,
                       priv->num_peers);
      priv->peers_cond.wait(lock);
      continue;
    }
    lock.unlock();
    /* Unlocked by a flush or a state change: basesink decides whether the
     * stream goes on (OK, wait again) or not. */
    GstFlowReturn ret = gst_base_sink_wait_preroll(GST_BASE_SINK(self));
    if (ret != GST_FLOW_OK) return ret;
  }
}

/* A stream with no caps (filesrc, souphttpsrc, udpsrc with no parser): its
 * first buffers are held (up to 64 KiB or 2 s) and typefound, so that the core
 * gets caps before any byte, finds the start points and headers of the
 * containers it knows (docs/protocol.md 7.3), and joiners get caps. Returns
 * TRUE when it took the buffer. With final (EOS), releases what it holds. */
gboolean typefind_uncapped(GstP2pspSplitterSink *self, p2psp::MediaBuffer *mb,
                           gboolean final) {
  SplitterSinkPrivate *priv = self->priv;
  auto &tf = priv->typefind;
  {
    std::lock_guard<std::mutex> lock(priv->core_mutex);
    if (tf.core != priv->run.splitter.get()) {
      tf.core = priv->run.splitter.get();
      tf.done = false;
      tf.bytes.clear();
      tf.held.clear();
    }
  }
  if (tf.done) return FALSE;
  constexpr size_t kTypefindBytes = 64 * 1024;
  const bool upstream_caps =
      gst_pad_has_current_caps(GST_BASE_SINK_PAD(self)) && !priv->icy;
  if (!final && upstream_caps) {
    tf.done = tf.held.empty();
    if (tf.done) return FALSE;
  }
  if (mb != nullptr) {
    if (tf.held.empty()) tf.since_us = g_get_monotonic_time();
    tf.bytes.insert(tf.bytes.end(), mb->data.begin(), mb->data.end());
    tf.held.push_back(std::move(*mb));
  }
  GstTypeFindProbability probability = GST_TYPE_FIND_NONE;
  GstCaps *caps =
      tf.bytes.empty() || tf.done
          ? nullptr
          : gst_type_find_helper_for_data(GST_OBJECT(self), tf.bytes.data(),
                                          tf.bytes.size(), &probability);
  const bool found = caps != nullptr && probability >= GST_TYPE_FIND_LIKELY;
  if (found) {
    GST_INFO_OBJECT(self, "no caps from upstream, typefound %" GST_PTR_FORMAT,
                    caps);
    gchar *text = gst_caps_to_string(caps);
    give_caps(self, text);
    g_free(text);
  }
  if (caps != nullptr) gst_caps_unref(caps);
  /* A slow stream is not held back for more than 2 s. */
  const bool too_long =
      g_get_monotonic_time() - tf.since_us > 2 * G_USEC_PER_SEC;
  if (found || final || too_long || tf.bytes.size() >= kTypefindBytes) {
    tf.done = true;
    for (p2psp::MediaBuffer &held : tf.held) {
      run_core(self,
               [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
                 apply_pending_caps(self->priv, now, out);
                 s.push_buffer(held, now, out);
               });
    }
    tf.held.clear();
    tf.bytes.clear();
  }
  return TRUE;
}

/* With sync=TRUE, a backlog of late buffers leaves at most
 * CatchUpPacer::kSpeedPercent % of real-time speed (see there why). The wait
 * ends early on unlock() (flush, state change). */
void pace_catch_up(GstP2pspSplitterSink *self, GstClockTime running_time) {
  GstBaseSink *sink = GST_BASE_SINK(self);
  SplitterSinkPrivate *priv = self->priv;
  if (!gst_base_sink_get_sync(sink) || !GST_CLOCK_TIME_IS_VALID(running_time))
    return;
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  if (clock == nullptr) return;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  const GstClockTime due =
      running_time + gst_base_sink_get_latency(sink) + base;
  const p2psp::Micros wait =
      priv->pacer.delay(now > due + kCatchUpSlack, running_time / GST_USECOND,
                        p2psp_gst::monotonic_now_us());
  if (wait == 0) return;
  std::unique_lock<std::mutex> lock(priv->peers_mutex);
  priv->paced_buffers++;
  priv->peers_cond.wait_for(lock, std::chrono::microseconds(wait),
                            [priv] { return priv->unlocked; });
}

/* Takes the ICY metadata out of mb; a new StreamTitle becomes a tag on the
 * bus (joiners do not get it: the protocol carries no tags). FALSE when
 * nothing of the stream is left in mb. */
bool strip_icy(GstP2pspSplitterSink *self, p2psp::MediaBuffer *mb) {
  p2psp::IcyDeinterleaver *icy = self->priv->icy.get();
  if (icy == nullptr) return true;
  const uint64_t bad = icy->stats().bad_blocks;
  std::vector<uint8_t> stream;
  stream.reserve(mb->data.size());
  icy->push(mb->data.data(), mb->data.size(), &stream);
  mb->data = std::move(stream);
  if (icy->stats().bad_blocks != bad) {
    GST_WARNING_OBJECT(self,
                       "ICY metadata block that is not text (%" G_GUINT64_FORMAT
                       " so far): is metadata-interval right?",
                       icy->stats().bad_blocks);
  }
  std::string title;
  if (icy->take_title(&title)) {
    GST_INFO_OBJECT(self, "ICY StreamTitle '%s'", title.c_str());
    gst_element_post_message(
        GST_ELEMENT(self),
        gst_message_new_tag(
            GST_OBJECT(self),
            gst_tag_list_new(GST_TAG_TITLE, title.c_str(), nullptr)));
  }
  return !mb->data.empty();
}

GstFlowReturn gst_p2psp_splitter_sink_render(GstBaseSink *sink,
                                             GstBuffer *buffer) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  GstFlowReturn ret = wait_for_peers(self);
  if (ret != GST_FLOW_OK) return ret;

  p2psp::MediaBuffer mb;
  if (!media_buffer_from(sink, buffer, &mb)) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Could not read a buffer"),
                      (nullptr));
    return GST_FLOW_ERROR;
  }
  GST_TRACE_OBJECT(self, "buffer of %zu bytes", mb.data.size());
  pace_catch_up(self, mb.pts);
  if (!strip_icy(self, &mb)) return GST_FLOW_OK;
  if (typefind_uncapped(self, &mb, FALSE)) return GST_FLOW_OK;
  run_core(self,
           [&](p2psp::Splitter &s, p2psp::Micros now, p2psp::Outbox *out) {
             apply_pending_caps(self->priv, now, out);
             s.push_buffer(mb, now, out);
           });
  return GST_FLOW_OK;
}

/* After EOS, before the EOS message makes the application stop us: the
 * network thread keeps answering NACKs meanwhile. Ends early on unlock()
 * (flushing, or a state change down). */
void linger(GstP2pspSplitterSink *self) {
  SplitterSinkPrivate *priv = self->priv;
  GST_OBJECT_LOCK(self);
  const guint linger_ms = priv->settings.linger_ms;
  GST_OBJECT_UNLOCK(self);
  std::unique_lock<std::mutex> lock(priv->peers_mutex);
  if (linger_ms == 0 || priv->num_peers == 0) return;
  GST_DEBUG_OBJECT(self, "end of stream: lingering %u ms for the team's NACKs",
                   linger_ms);
  priv->peers_cond.wait_for(lock, std::chrono::milliseconds(linger_ms),
                            [priv] { return priv->unlocked; });
}

gboolean gst_p2psp_splitter_sink_event(GstBaseSink *sink, GstEvent *event) {
  auto *self = GST_P2PSP_SPLITTER_SINK(sink);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    /* The tail of the stream must not wait for the flush timer. */
    typefind_uncapped(self, nullptr, TRUE);
    run_core(self, [](p2psp::Splitter &s, p2psp::Micros now,
                      p2psp::Outbox *out) { s.flush(now, out); });
    linger(self);
  }
  return GST_BASE_SINK_CLASS(parent_class)->event(sink, event);
}

gboolean gst_p2psp_splitter_sink_unlock(GstBaseSink *sink) {
  SplitterSinkPrivate *priv = priv_of(sink);
  {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->unlocked = true;
  }
  priv->peers_cond.notify_all();
  return TRUE;
}

gboolean gst_p2psp_splitter_sink_unlock_stop(GstBaseSink *sink) {
  SplitterSinkPrivate *priv = priv_of(sink);
  std::lock_guard<std::mutex> lock(priv->peers_mutex);
  priv->unlocked = false;
  return TRUE;
}

/* -------------------------------------------------------- properties ---- */

/* The guint properties, one place for set and get. Under the object lock. */
guint *uint_setting(SplitterSinkPrivate *priv, guint prop_id) {
  Settings &s = priv->settings;
  switch (prop_id) {
    case PROP_CHUNK_SIZE:
      return &s.chunk_size;
    case PROP_MAX_PEERS:
      return &s.max_peers;
    case PROP_WAIT_FOR_PEERS:
      return &priv->wait_for_peers;
    case PROP_MONITORS:
      return &s.monitors;
    case PROP_MAX_CHUNK_LOSS:
      return &s.max_chunk_loss;
    case PROP_PEER_TIMEOUT:
      return &s.peer_timeout_ms;
    case PROP_LINGER:
      return &s.linger_ms;
    case PROP_MAX_JOINS_PER_ADDRESS:
      return &s.max_joins_per_address;
    case PROP_MAX_HANDSHAKES:
      return &s.max_handshakes;
    case PROP_HANDSHAKE_TIMEOUT:
      return &s.handshake_timeout_ms;
    case PROP_MAX_CONTROL_BACKLOG:
      return &s.max_control_backlog;
    case PROP_BURST_MAX_BYTES:
      return &s.burst_max_bytes;
    case PROP_BURST_RATE:
      return &s.burst_rate;
    case PROP_MULTICAST_PORT:
      return &s.multicast_port;
    default:
      return nullptr;
  }
}

/* The string properties that hold what was set (passphrase and announce
 * key: write-only). */
std::string *string_setting(SplitterSinkPrivate *priv, guint prop_id) {
  switch (prop_id) {
    case PROP_PASSPHRASE:
      return &priv->settings.passphrase;
    case PROP_TRACKER:
      return &priv->settings.tracker;
    case PROP_CHANNEL:
      return &priv->settings.channel;
    case PROP_ANNOUNCE_KEY:
      return &priv->settings.announce_key;
    case PROP_MULTICAST_GROUP:
      return &priv->settings.multicast_group;
    case PROP_MULTICAST_IFACE:
      return &priv->settings.multicast_iface;
    default:
      return nullptr;
  }
}

/* The gboolean properties, likewise. */
gboolean *boolean_setting(SplitterSinkPrivate *priv, guint prop_id) {
  switch (prop_id) {
    case PROP_ENCRYPT:
      return &priv->settings.encrypt;
    case PROP_SIGN_CHUNKS:
      return &priv->settings.sign_chunks;
    case PROP_LEARN_SHARES:
      return &priv->settings.learn_shares;
    default:
      return nullptr;
  }
}

void gst_p2psp_splitter_sink_set_property(GObject *object, guint prop_id,
                                          const GValue *value,
                                          GParamSpec *pspec) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  SplitterSinkPrivate *priv = self->priv;
  GST_OBJECT_LOCK(self);
  if (guint *field = uint_setting(priv, prop_id)) {
    *field = g_value_get_uint(value);
    if (prop_id == PROP_CHUNK_SIZE) priv->settings.chunk_size_set = true;
  } else if (gboolean *flag = boolean_setting(priv, prop_id)) {
    *flag = g_value_get_boolean(value);
  } else if (prop_id == PROP_HOST) {
    const gchar *host = g_value_get_string(value);
    priv->settings.host = host ? host : DEFAULT_HOST;
  } else if (prop_id == PROP_PORT) {
    priv->settings.port = g_value_get_int(value);
  } else if (std::string *text = string_setting(priv, prop_id)) {
    const gchar *v = g_value_get_string(value);
    *text = v ? v : "";
  } else if (prop_id == PROP_TTL_MC) {
    priv->settings.ttl_mc = g_value_get_int(value);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
  /* A lowered wait-for-peers releases a waiting render() at once. */
  if (prop_id == PROP_WAIT_FOR_PEERS) {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    priv->peers_cond.notify_all();
  }
}

void gst_p2psp_splitter_sink_get_property(GObject *object, guint prop_id,
                                          GValue *value, GParamSpec *pspec) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  SplitterSinkPrivate *priv = self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  if (prop_id == PROP_NUM_PEERS) {
    std::lock_guard<std::mutex> lock(priv->peers_mutex);
    g_value_set_uint(value, priv->num_peers);
    return;
  }
  GST_OBJECT_LOCK(self);
  if (guint *field = uint_setting(priv, prop_id)) {
    g_value_set_uint(value, *field);
  } else if (gboolean *flag = boolean_setting(priv, prop_id)) {
    g_value_set_boolean(value, *flag);
  } else if (prop_id == PROP_HOST) {
    g_value_set_string(value, priv->settings.host.c_str());
  } else if (prop_id == PROP_PORT) {
    g_value_set_int(value, priv->settings.port);
  } else if (prop_id == PROP_CURRENT_PORT) {
    g_value_set_int(value, priv->current_port);
  } else if (prop_id == PROP_TRACKER || prop_id == PROP_CHANNEL) {
    const std::string &v = *string_setting(priv, prop_id);
    g_value_set_string(value, v.empty() ? nullptr : v.c_str());
  } else if (prop_id == PROP_MULTICAST_GROUP ||
             prop_id == PROP_MULTICAST_IFACE) {
    g_value_set_string(value, string_setting(priv, prop_id)->c_str());
  } else if (prop_id == PROP_TTL_MC) {
    g_value_set_int(value, priv->settings.ttl_mc);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
}

void gst_p2psp_splitter_sink_finalize(GObject *object) {
  auto *self = GST_P2PSP_SPLITTER_SINK(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

void install_signals(GObjectClass *gobject_class) {
  /**
   * GstP2pspSplitterSink::peer-added:
   * @sink: the element
   * @peer_id: the team-unique id of the peer
   * @endpoint: its public UDP endpoint, "host:port"
   *
   * A peer completed its join and gets chunks from now on. Emitted from the
   * streaming thread or the element's network thread.
   */
  signals[SIGNAL_PEER_ADDED] = g_signal_new(
      "peer-added", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSplitterSink::peer-removed:
   * @sink: the element
   * @peer_id: the id the peer had
   * @endpoint: its public UDP endpoint, "host:port"
   *
   * A peer left, was removed, or the splitter stopped. The reason is in
   * the "GstP2pspSplitterPeerRemoved" element message posted with it.
   */
  signals[SIGNAL_PEER_REMOVED] = g_signal_new(
      "peer-removed", G_TYPE_FROM_CLASS(gobject_class), G_SIGNAL_RUN_LAST, 0,
      nullptr, nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  /**
   * GstP2pspSplitterSink::remove-peer:
   * @sink: the element
   * @peer_id: the id of a member of the team
   *
   * Action signal: removes the member, which is told REMOVED with reason
   * expelled (the others get PEER_LEFT); peer-removed and the
   * "GstP2pspSplitterPeerRemoved" message (reason "expelled") follow.
   *
   * Returns: %TRUE if @peer_id was a member and was removed.
   */
  signals[SIGNAL_REMOVE_PEER] = g_signal_new_class_handler(
      "remove-peer", G_TYPE_FROM_CLASS(gobject_class),
      static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK(remove_peer), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1,
      G_TYPE_UINT);
}

}  // namespace p2psp_sink

static void gst_p2psp_splitter_sink_class_init(
    GstP2pspSplitterSinkClass *klass) {
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  auto *basesink_class = GST_BASE_SINK_CLASS(klass);

  gobject_class->set_property = gst_p2psp_splitter_sink_set_property;
  gobject_class->get_property = gst_p2psp_splitter_sink_get_property;
  gobject_class->finalize = gst_p2psp_splitter_sink_finalize;
  install_properties(gobject_class);
  install_signals(gobject_class);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  p2psp_gst::mark_enums_as_plugin_api();
  gst_element_class_set_static_metadata(
      element_class, "P2PSP splitter sink", "Sink/Network",
      "Splits a stream into chunks and sends them to a P2PSP team of peers",
      "gst-p2psp developers");

  basesink_class->start = gst_p2psp_splitter_sink_start;
  basesink_class->stop = gst_p2psp_splitter_sink_stop;
  basesink_class->set_caps = gst_p2psp_splitter_sink_set_caps;
  basesink_class->render = gst_p2psp_splitter_sink_render;
  basesink_class->event = gst_p2psp_splitter_sink_event;
  basesink_class->unlock = gst_p2psp_splitter_sink_unlock;
  basesink_class->unlock_stop = gst_p2psp_splitter_sink_unlock_stop;

  GST_DEBUG_CATEGORY_INIT(gst_p2psp_splitter_sink_debug, "p2pspsplittersink", 0,
                          "P2PSP splitter sink");
}

static void gst_p2psp_splitter_sink_init(GstP2pspSplitterSink *self) {
  self->priv = new SplitterSinkPrivate;
}
