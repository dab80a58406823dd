/* gst-p2psp: p2pspsrc's streaming thread: waits for the peer's items,
 * rejoins after a loss, and turns items into buffers, caps and stream
 * headers with timestamps on the pipeline's clock. */
#include "gstp2pspsrcpriv.h"

namespace p2psp_src {

/* ----------------------------------------------------------- output ---- */

GstClockTime to_output_time(GstP2pspSrcPrivate* priv, uint64_t t) {
  if (t == p2psp::kNoTime || !priv->out.have_ts_offset)
    return GST_CLOCK_TIME_NONE;
  const GstClockTimeDiff shifted =
      static_cast<GstClockTimeDiff>(t) + priv->out.ts_offset;
  return shifted < 0 ? 0 : static_cast<GstClockTime>(shifted);
}

// The pipeline's running time now (0 without a clock).
GstClockTime current_running_time(GstP2pspSrc* self) {
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  if (clock == nullptr) return 0;
  const GstClockTime now = gst_clock_get_time(clock);
  const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  gst_object_unref(clock);
  return now > base ? now - base : 0;
}

// The splitter's running time is mapped so the first buffer leaves "now".
// After a rejoin (a new mapping: the new splitter's clock may have started
// again from zero) it also leaves no earlier than the end of what was
// already pushed, so timestamps stay monotonic.
void map_timestamps(GstP2pspSrc* self, const p2psp::MediaBuffer& in,
                    GstBuffer* out) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (!priv->out.have_ts_offset && in.pts != p2psp::kNoTime) {
    const GstClockTime running = current_running_time(self);
    priv->out.ts_offset = static_cast<GstClockTimeDiff>(running) -
                          static_cast<GstClockTimeDiff>(in.pts);
    const uint64_t earliest =
        in.dts != p2psp::kNoTime ? std::min(in.dts, in.pts) : in.pts;
    if (GST_CLOCK_TIME_IS_VALID(priv->out.out_end)) {
      const GstClockTimeDiff floor_offset =
          static_cast<GstClockTimeDiff>(priv->out.out_end) -
          static_cast<GstClockTimeDiff>(earliest);
      priv->out.ts_offset = std::max(priv->out.ts_offset, floor_offset);
    }
    priv->out.have_ts_offset = true;
    GST_DEBUG_OBJECT(self, "timestamp offset %" GST_STIME_FORMAT,
                     GST_STIME_ARGS(priv->out.ts_offset));
  }
  GST_BUFFER_PTS(out) = to_output_time(priv, in.pts);
  GST_BUFFER_DTS(out) = to_output_time(priv, in.dts);
  GST_BUFFER_DURATION(out) =
      in.duration == p2psp::kNoTime ? GST_CLOCK_TIME_NONE : in.duration;
}

GstBuffer* wrap_data(std::vector<uint8_t>&& data) {
  if (data.empty()) return gst_buffer_new();
  auto* holder = new std::vector<uint8_t>(std::move(data));
  return gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, holder->data(), holder->size(), 0,
      holder->size(), holder,
      [](gpointer p) { delete static_cast<std::vector<uint8_t>*>(p); });
}

void map_flags(uint32_t flags, GstBuffer* out) {
  if (flags & p2psp::MediaBuffer::kHeader)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_HEADER);
  if (flags & p2psp::MediaBuffer::kDeltaUnit)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DELTA_UNIT);
  if (flags & p2psp::MediaBuffer::kDiscont)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
  if (flags & p2psp::MediaBuffer::kGap)
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_GAP);
}

const GValue* streamheader_of(GstCaps* caps);

// Only byte-identical copies count: mpegtsmux, for one, also flags the
// packets of every keyframe HEADER, and those must reach the demuxer.
bool duplicates_streamheader(GstP2pspSrcPrivate* priv,
                             const std::vector<uint8_t>& data) {
  const GValue* streamheader = streamheader_of(priv->out.caps.get());
  if (streamheader == nullptr) return false;
  const guint n = gst_value_array_get_size(streamheader);
  for (guint i = 0; i < n; i++) {
    const GValue* v = gst_value_array_get_value(streamheader, i);
    if (!GST_VALUE_HOLDS_BUFFER(v)) continue;
    GstBuffer* header = gst_value_get_buffer(v);
    if (gst_buffer_get_size(header) == data.size() &&
        gst_buffer_memcmp(header, 0, data.data(), data.size()) == 0)
      return true;
  }
  return false;
}

void queue_buffer(GstP2pspSrc* self, p2psp::MediaBuffer&& in) {
  GstP2pspSrcPrivate* priv = self->priv;
  const bool discont = (in.flags & p2psp::MediaBuffer::kDiscont) != 0;
  // Only the copies before the media: MPEG-TS repeats its PAT/PMT with a
  // running continuity counter, so a byte-identical one 16 repetitions
  // later is no duplicate (dropping it makes tsdemux see a gap).
  const bool header = (in.flags & p2psp::MediaBuffer::kHeader) != 0;
  if (!header) priv->out.media_started = true;
  if (header && !priv->out.media_started &&
      duplicates_streamheader(priv, in.data)) {
    // The caps' streamheader already carried it, first.
    GST_LOG_OBJECT(self, "dropping in-stream copy of a streamheader buffer");
    priv->out.carry_discont = priv->out.carry_discont || discont;
    return;
  }
  BufferPtr buffer(wrap_data(std::move(in.data)));
  map_timestamps(self, in, buffer.get());
  map_flags(in.flags, buffer.get());
  for (GstClockTime t :
       {GST_BUFFER_PTS(buffer.get()), GST_BUFFER_DTS(buffer.get())}) {
    if (!GST_CLOCK_TIME_IS_VALID(t)) continue;
    if (GST_BUFFER_DURATION_IS_VALID(buffer.get()))
      t += GST_BUFFER_DURATION(buffer.get());
    if (!GST_CLOCK_TIME_IS_VALID(priv->out.out_end) || t > priv->out.out_end)
      priv->out.out_end = t;
  }
  if (priv->out.carry_discont)
    GST_BUFFER_FLAG_SET(buffer.get(), GST_BUFFER_FLAG_DISCONT);
  priv->out.carry_discont = false;

  // The streamheader and the buffer after it are one run, DISCONT on the
  // first header only: tsdemux flushes on a DISCONT, which would throw away
  // the PAT/PMT it was just given along with the keyframe.
  if (!priv->out.pending_headers.empty())
    GST_BUFFER_FLAG_UNSET(buffer.get(), GST_BUFFER_FLAG_DISCONT);
  for (BufferPtr& header : priv->out.pending_headers) {
    GST_BUFFER_PTS(header.get()) = GST_BUFFER_PTS(buffer.get());
    priv->out.output.push_back(std::move(header));
  }
  priv->out.pending_headers.clear();
  priv->out.output.push_back(std::move(buffer));
}

const GValue* streamheader_of(GstCaps* caps) {
  if (caps == nullptr || gst_caps_get_size(caps) == 0) return nullptr;
  const GValue* value =
      gst_structure_get_value(gst_caps_get_structure(caps, 0), "streamheader");
  return value != nullptr && GST_VALUE_HOLDS_ARRAY(value) ? value : nullptr;
}

// Copies of the streamheader buffers, flagged for going out first.
void queue_streamheader(GstP2pspSrc* self, const GValue* streamheader) {
  GstP2pspSrcPrivate* priv = self->priv;
  priv->out.pending_headers.clear();
  priv->out.media_started = false;
  const guint n = gst_value_array_get_size(streamheader);
  for (guint i = 0; i < n; i++) {
    const GValue* v = gst_value_array_get_value(streamheader, i);
    if (!GST_VALUE_HOLDS_BUFFER(v)) continue;
    GstBuffer* copy = gst_buffer_copy(gst_value_get_buffer(v));
    GST_BUFFER_PTS(copy) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DTS(copy) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_FLAG_SET(copy, GST_BUFFER_FLAG_HEADER);
    if (priv->out.pending_headers.empty())
      GST_BUFFER_FLAG_SET(copy, GST_BUFFER_FLAG_DISCONT);
    priv->out.pending_headers.emplace_back(copy);
  }
}

GstFlowReturn apply_caps(GstP2pspSrc* self, const std::string& text) {
  GstP2pspSrcPrivate* priv = self->priv;
  CapsPtr caps(gst_caps_from_string(text.c_str()));
  if (!caps) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                      ("Received invalid caps from the P2PSP team"),
                      ("%s", text.c_str()));
    return GST_FLOW_ERROR;
  }
  // After a rejoin to a restarted stream the demuxer needs the headers
  // again, even with the same caps.
  const bool resend = priv->out.resend_headers;
  priv->out.resend_headers = false;
  if (priv->out.caps && gst_caps_is_equal(caps.get(), priv->out.caps.get())) {
    const GValue* header = streamheader_of(priv->out.caps.get());
    if (resend && header != nullptr) queue_streamheader(self, header);
    return GST_FLOW_OK;
  }

  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, caps.get());
  const GValue* old_header = streamheader_of(priv->out.caps.get());
  const GValue* new_header = streamheader_of(caps.get());
  if (new_header == nullptr) {
    priv->out.pending_headers.clear();
  } else if (resend || old_header == nullptr ||
             gst_value_compare(old_header, new_header) != GST_VALUE_EQUAL) {
    queue_streamheader(self, new_header);
  }
  if (!gst_base_src_set_caps(GST_BASE_SRC(self), caps.get())) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream refused the stream's caps"),
                      ("%s", text.c_str()));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  priv->out.caps = std::move(caps);
  return GST_FLOW_OK;
}

/* ------------------------------------------------------------ create ---- */

void post_element_message(GstP2pspSrc* self, GstStructure* s) {
  gst_element_post_message(GST_ELEMENT(self),
                           gst_message_new_element(GST_OBJECT(self), s));
}

GstFlowReturn post_failure(GstP2pspSrc* self, Failure failure,
                           const std::string& text) {
  const Settings& s = self->priv->active;
  if (failure == Failure::kRemoved) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, READ,
        ("Removed from the P2PSP team by the splitter: %s", text.c_str()),
        (nullptr));
  } else {
    GST_ELEMENT_ERROR(self, RESOURCE, READ,
                      ("Lost the connection to the P2PSP splitter at %s:%d",
                       s.host.c_str(), s.port),
                      ("%s", text.c_str()));
  }
  self->priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

GstFlowReturn post_timeout(GstP2pspSrc* self) {
  const Settings& s = self->priv->active;
  GST_ELEMENT_ERROR(self, RESOURCE, READ,
                    ("Timed out: no data from the P2PSP team of %s:%d for "
                     "%u seconds",
                     s.host.c_str(), s.port, s.timeout_s),
                    (nullptr));
  self->priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

// Waits on core_cond until `deadline` (core clock), at most a second.
// `lock` holds core_lock.
void wait_until(GstP2pspSrcPrivate* priv, std::unique_lock<std::mutex>& lock,
                Micros now, Micros deadline) {
  const Micros wait = deadline > now ? deadline - now : 0;
  priv->core_cond.wait_for(
      lock, std::chrono::microseconds(std::min<Micros>(wait, G_USEC_PER_SEC)));
}

// Posts GstP2pspSrcRemoved for a REMOVED/REJECT the poll thread recorded.
// `lock` holds core_lock; it is released while posting (a bus sync handler
// may read the stats) and held again on return.
void post_removed(GstP2pspSrc* self, std::unique_lock<std::mutex>& lock) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (!priv->run.removed_unposted) return;
  priv->run.removed_unposted = false;
  GstStructure* s = gst_structure_new(
      kRemovedMessage, "reason", G_TYPE_STRING,
      p2psp_gst::remove_reason_nick(priv->run.removed_reason), "text",
      G_TYPE_STRING, priv->run.removed_text.c_str(), nullptr);
  lock.unlock();
  post_element_message(self, s);
  lock.lock();
}

// GstP2pspSrcStart (docs/elements.md): the late-joiner gate, once a second
// while it waits for a start point and once when it opens. `lock` holds
// core_lock; it is released while posting.
void post_start(GstP2pspSrc* self, std::unique_lock<std::mutex>& lock,
                Micros now) {
  GstP2pspSrcPrivate* priv = self->priv;
  if (!priv->link.peer) return;
  auto& posted = priv->link.start_posted;
  const p2psp::PeerStartState st = priv->link.peer->start_state();
  using Phase = p2psp::PeerStartState::Phase;
  if (st.phase == Phase::kNotYet) posted = {false, 0};
  const bool waiting = st.phase == Phase::kWaiting &&
                       (posted.waiting_posted_us == 0 ||
                        now >= posted.waiting_posted_us + G_USEC_PER_SEC);
  const bool started = st.phase == Phase::kStarted && !posted.started;
  if (!waiting && !started) return;
  if (waiting) posted.waiting_posted_us = now;
  if (started) posted.started = true;
  const Micros end = started ? st.started_us : now;
  const guint64 waited_ms =
      end > st.waiting_since_us ? (end - st.waiting_since_us) / 1000 : 0;
  GstStructure* s = gst_structure_new(
      "GstP2pspSrcStart", "status", G_TYPE_STRING,
      started ? "started" : "waiting", "waiting-for", G_TYPE_STRING, "keyframe",
      "started-at", G_TYPE_STRING,
      !started        ? ""
      : st.by_timeout ? "timeout"
                      : "keyframe",
      "waited-ms", G_TYPE_UINT64, waited_ms, "timeout-ms", G_TYPE_UINT64,
      static_cast<guint64>(st.timeout_us / 1000), "dropped-buffers",
      G_TYPE_UINT64, static_cast<guint64>(st.dropped_buffers), "dropped-bytes",
      G_TYPE_UINT64, static_cast<guint64>(st.dropped_bytes), nullptr);
  lock.unlock();
  post_element_message(self, s);
  lock.lock();
}

WaitEnd wait_for_item(GstP2pspSrc* self, p2psp::StreamItem* item,
                      Failure* failure, std::string* failure_text,
                      p2psp::RemoveReason* reason) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Micros timeout_us =
      static_cast<Micros>(priv->active.timeout_s) * G_USEC_PER_SEC;
  const Micros drain_us = static_cast<Micros>(priv->active.latency_ms) * 1000;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return WaitEnd::kFlushing;
    post_removed(self, lock);
    if (priv->flushing) return WaitEnd::kFlushing;
    const Micros now = p2psp_gst::monotonic_now_us();
    post_start(self, lock, now);
    if (priv->flushing) return WaitEnd::kFlushing;
    if (!priv->run.welcome_caps_taken &&
        !priv->link.peer->welcome_caps().empty()) {
      priv->run.welcome_caps_taken = true;
      item->kind = p2psp::StreamItem::Kind::kCaps;
      item->caps = priv->link.peer->welcome_caps();
      return WaitEnd::kItem;
    }
    if (!priv->link.ready.empty()) {
      *item = std::move(priv->link.ready.front());
      priv->link.ready.pop_front();
      return WaitEnd::kItem;
    }
    // The poll thread stops taking items when `ready` is full.
    if (priv->link.peer->pop_item(now, item)) return WaitEnd::kItem;
    if (priv->link.failure != Failure::kNone) {
      *failure = priv->link.failure;
      *failure_text = priv->link.failure_text;
      *reason = priv->link.failure_reason;
      return WaitEnd::kFailure;
    }
    // Items, events and failures come with a broadcast from the poll
    // thread; the only deadlines here are the stream's end and `timeout`.
    Micros deadline = kNever;
    if (priv->link.splitter_shutdown) {
      // Whatever was still in flight had `latency` to arrive.
      const Micros end = priv->link.shutdown_at_us + drain_us;
      if (now >= end) return WaitEnd::kEos;
      deadline = end;
    } else if (timeout_us > 0) {
      const Micros end = priv->run.last_activity_us + timeout_us;
      if (now >= end) return WaitEnd::kTimeout;
      deadline = end;
    }
    wait_until(priv, lock, now, deadline);
  }
}

// One attempt: connect, start a core and wait until it is a member again.
JoinResult try_join(GstP2pspSrc* self, Micros give_up_us, std::string* why) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Micros now = p2psp_gst::monotonic_now_us();
  const Micros end = std::min(give_up_us, now + kJoinAttemptUs);
  const guint connect_timeout_s =
      static_cast<guint>(std::max<Micros>(1, (end - now) / G_USEC_PER_SEC));
  {
    std::lock_guard<std::mutex> lock(priv->core_lock);
    priv->run.avoid_team = priv->run.team;  // the tracker's, if any
  }
  const OpenError opened = open_connection(self, connect_timeout_s, why);
  if (opened == OpenError::kCancelled) return JoinResult::kFlushing;
  if (opened != OpenError::kNone) return JoinResult::kFailed;

  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return JoinResult::kFlushing;
    if (priv->link.joined) return JoinResult::kJoined;
    if (priv->link.failure != Failure::kNone || priv->link.splitter_shutdown) {
      *why = priv->link.failure_text.empty() ? "the splitter is shutting down"
                                             : priv->link.failure_text;
      return JoinResult::kFailed;
    }
    const Micros t = p2psp_gst::monotonic_now_us();
    if (t >= end) {
      *why = "no answer to the join";
      return JoinResult::kFailed;
    }
    wait_until(priv, lock, t, end);
  }
}

// Sleeps until `until`, or until unlock(). FALSE when flushing.
bool backoff_wait(GstP2pspSrcPrivate* priv, Micros until) {
  std::unique_lock<std::mutex> lock(priv->core_lock);
  for (;;) {
    if (priv->flushing) return false;
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= until) return true;
    wait_until(priv, lock, now, until);
  }
}

// The output side of a rejoin: DISCONT, a new timestamp mapping, the caps
// again (and the streamheader again if the stream restarted).
void prepare_output_after_rejoin(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  std::unique_lock<std::mutex> lock(priv->core_lock);
  const bool new_stream = priv->link.peer->team_id() != priv->run.last_team_id;
  priv->out.carry_discont = true;
  priv->out.have_ts_offset = false;
  priv->run.welcome_caps_taken = false;
  priv->out.resend_headers = new_stream;
  priv->run.reconnecting = false;
  priv->run.reconnects++;
  GST_INFO_OBJECT(self, "rejoined the team as peer %u (%s team)",
                  priv->link.peer->id(), new_stream ? "new" : "same");
}

// Rejoins after a lost connection or a removal, trying until `timeout`.
// A rejoin succeeded: streaming again, and the application is told.
void finish_rejoin(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  prepare_output_after_rejoin(self);
  priv->state = SrcState::kStreaming;
  guint id, reconnects;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    id = priv->link.peer->id();
    reconnects = priv->run.reconnects;
  }
  post_element_message(
      self, gst_structure_new(kRejoinedMessage, "peer-id", G_TYPE_UINT, id,
                              "reconnects", G_TYPE_UINT, reconnects, nullptr));
}

GstFlowReturn post_rejoin_failed(GstP2pspSrc* self, const std::string& why) {
  const Settings& s = self->priv->active;
  GST_ELEMENT_ERROR(self, RESOURCE, READ,
                    ("Could not rejoin the P2PSP team of %s:%d within %u "
                     "seconds",
                     s.host.c_str(), s.port, s.timeout_s),
                    ("last attempt: %s", why.c_str()));
  self->priv->state = SrcState::kFailed;
  return GST_FLOW_ERROR;
}

GstFlowReturn reconnect(GstP2pspSrc* self) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  priv->state = SrcState::kRejoining;
  const Micros lost_at = p2psp_gst::monotonic_now_us();
  const Micros give_up =
      s.timeout_s == 0
          ? kNever
          : lost_at + static_cast<Micros>(s.timeout_s) * G_USEC_PER_SEC;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    priv->run.reconnecting = true;
  }
  teardown_connection(self);
  Micros backoff = kReconnectBackoffFirstUs;
  std::string why = "no attempt";
  for (guint attempt = 1;; attempt++) {
    GST_INFO_OBJECT(self, "rejoining %s:%d, attempt %u", s.host.c_str(), s.port,
                    attempt);
    post_element_message(
        self, gst_structure_new(kReconnectingMessage, "attempt", G_TYPE_UINT,
                                attempt, nullptr));
    switch (try_join(self, give_up, &why)) {
      case JoinResult::kJoined:
        finish_rejoin(self);
        return GST_FLOW_OK;
      case JoinResult::kFlushing:
        return GST_FLOW_FLUSHING;
      case JoinResult::kFailed:
        break;
    }
    {
      // A REJECT of this attempt is on the bus like any removal.
      std::unique_lock<std::mutex> lock(priv->core_lock);
      post_removed(self, lock);
    }
    teardown_connection(self);
    GST_DEBUG_OBJECT(self, "attempt %u failed: %s", attempt, why.c_str());
    const Micros now = p2psp_gst::monotonic_now_us();
    if (now >= give_up) break;
    if (!backoff_wait(priv, std::min(give_up, now + backoff)))
      return GST_FLOW_FLUSHING;
    backoff = std::min(backoff * 2, kReconnectBackoffMaxUs);
  }
  return post_rejoin_failed(self, why);
}

// A lost splitter or a removal: a warning and a rejoin, or an error.
GstFlowReturn handle_failure(GstP2pspSrc* self, Failure failure,
                             const std::string& text,
                             p2psp::RemoveReason reason) {
  GstP2pspSrcPrivate* priv = self->priv;
  const Settings& s = priv->active;
  bool ever_joined;
  {
    std::unique_lock<std::mutex> lock(priv->core_lock);
    ever_joined = priv->run.ever_joined;
  }
  // Retrying cannot fix a version mismatch, and a splitter that refuses or
  // drops us before we ever were in the team is an answer, not an accident
  // (like a failed first connection).
  if (reason == p2psp::RemoveReason::kAuth) {
    // Retrying with the same passphrase cannot help either.
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_AUTHORIZED,
                      ("Not admitted to the P2PSP team of %s:%d: %s",
                       s.host.c_str(), s.port, text.c_str()),
                      (nullptr));
    priv->state = SrcState::kFailed;
    return GST_FLOW_ERROR;
  }
  // A channel's tracker counts a team's members from announcements a few
  // seconds old: the team it named may have filled meanwhile. That is the
  // tracker's stale answer, not the splitter's: ask it again (the rejoin
  // asks it to avoid this team).
  if (reason == p2psp::RemoveReason::kTeamFull && !ever_joined &&
      !s.channel.empty()) {
    GST_INFO_OBJECT(self, "the tracker's team is full (%s); asking again",
                    text.c_str());
    return reconnect(self);
  }
  const bool fatal = reason == p2psp::RemoveReason::kVersion || !ever_joined;
  if (!s.auto_reconnect || fatal) return post_failure(self, failure, text);
  if (failure == Failure::kRemoved) {
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("Removed from the P2PSP team by the splitter (%s); "
                         "rejoining",
                         text.c_str()),
                        ("reason: %s", p2psp_gst::remove_reason_nick(reason)));
  } else {
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("Lost the connection to the P2PSP splitter at "
                         "%s:%d; rejoining",
                         s.host.c_str(), s.port),
                        ("%s", text.c_str()));
  }
  return reconnect(self);
}

GstFlowReturn next_item(GstP2pspSrc* self) {
  p2psp::StreamItem item;
  Failure failure = Failure::kNone;
  std::string failure_text;
  p2psp::RemoveReason reason = p2psp::RemoveReason::kUnknown;
  switch (wait_for_item(self, &item, &failure, &failure_text, &reason)) {
    case WaitEnd::kItem:
      break;
    case WaitEnd::kFlushing:
      return GST_FLOW_FLUSHING;
    case WaitEnd::kFailure:
      return handle_failure(self, failure, failure_text, reason);
    case WaitEnd::kTimeout:
      return post_timeout(self);
    case WaitEnd::kEos:
      GST_INFO_OBJECT(self, "the splitter ended the stream");
      self->priv->state = SrcState::kEos;
      return GST_FLOW_EOS;
  }
  if (item.kind == p2psp::StreamItem::Kind::kCaps)
    return apply_caps(self, item.caps);
  if (!self->priv->out.caps) {
    // Downstream cannot take a buffer of unknown format; the caps frame the
    // splitter repeats for joiners (protocol.md 7.2) is on its way.
    GST_DEBUG_OBJECT(self, "dropping a buffer that came before any caps");
    self->priv->out.carry_discont = true;
    return GST_FLOW_OK;
  }
  queue_buffer(self, std::move(item.buffer));
  return GST_FLOW_OK;
}

}  // namespace p2psp_src
