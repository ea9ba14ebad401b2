// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emmediatime
 *
 * Gives the frames of a recorded (non-live) source the movie's own time: its recording date-time
 * tag (GST_TAG_DATE_TIME, e.g. an MP4's creation time) when it has one, else `start-time` (the
 * run's start; by default when the element starts), plus the frame's running time. The time goes
 * on each buffer as a GstReferenceTimestampMeta with caps `timestamp/x-unix` (ns since the Unix
 * epoch), which the frame document's `timestamp` and `ntp_timestamp` (and so the tracker's track
 * times and emaimeta's events) use. Two runs of one movie so give the same times. Buffers of a live
 * source pass untouched: their documents keep the wall clock (or the RTP/NTP time they carry).
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! emmediatime ! videoconvert ! \
 *   video/x-raw,format=RGBA ! empycustom module=program.py ! emaimeta location=signals.jsonl ! fakesink
 * ]|
 */
#include "elements/gstemmediatime.h"

#include <gst/video/video.h>

#include <atomic>
#include <string>

GST_DEBUG_CATEGORY_STATIC(gst_em_media_time_debug);
#define GST_CAT_DEFAULT gst_em_media_time_debug

namespace {

// Where the frames' times come from, once the first frame decided it.
enum class Origin { kUndecided, kTag, kStartTime, kWallClock };

const char* origin_name(Origin origin) {
  switch (origin) {
    case Origin::kTag: return "tag";
    case Origin::kStartTime: return "start-time";
    case Origin::kWallClock: return "wall-clock";
    case Origin::kUndecided: break;
  }
  return "";
}

constexpr gint64 kStartWhenStarting = -1;

// Streaming state, from start() to stop().
struct Runtime {
  gint64 start_unix_ns = 0;      // start-time, or when the element started
  gint64 tag_unix_ns = -1;       // the stream's date-time tag, -1: none seen
  gint64 base_unix_ns = 0;       // the time of running time 0
  guint64 frames = 0;
};

// A tag's date-time in ns since the Unix epoch; a date without a time of day is its midnight UTC.
gint64 unix_ns_of(GstDateTime* date_time) {
  if (!gst_date_time_has_day(date_time)) return -1;
  GDateTime* utc = gst_date_time_has_time(date_time)
                       ? gst_date_time_to_g_date_time(date_time)
                       : g_date_time_new_utc(gst_date_time_get_year(date_time), gst_date_time_get_month(date_time),
                                             gst_date_time_get_day(date_time), 0, 0, 0);
  if (utc == nullptr) return -1;
  const gint64 unix_ns = g_date_time_to_unix(utc) * GST_SECOND + g_date_time_get_microsecond(utc) * GST_USECOND;
  g_date_time_unref(utc);
  return unix_ns;
}

GstCaps* unix_time_caps() {
  static GstCaps* const caps = gst_caps_new_empty_simple("timestamp/x-unix");
  return caps;
}

}  // namespace

struct _GstEmMediaTime {
  GstBaseTransform parent;

  gint64 start_time;  // property; guarded by the object lock
  Runtime runtime;
  std::atomic<Origin> origin;
};

enum {
  PROP_0,
  PROP_START_TIME,
  PROP_ORIGIN,
};

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

G_DEFINE_TYPE(GstEmMediaTime, gst_em_media_time, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(emmediatime, "emmediatime", GST_RANK_NONE, GST_TYPE_EM_MEDIA_TIME);

static void gst_em_media_time_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(object);
  switch (prop_id) {
    case PROP_START_TIME:
      GST_OBJECT_LOCK(self);
      self->start_time = g_value_get_int64(value);
      GST_OBJECT_UNLOCK(self);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_em_media_time_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(object);
  switch (prop_id) {
    case PROP_START_TIME:
      GST_OBJECT_LOCK(self);
      g_value_set_int64(value, self->start_time);
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_ORIGIN: g_value_set_string(value, origin_name(self->origin.load())); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static gboolean gst_em_media_time_start(GstBaseTransform* transform) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(transform);
  GST_OBJECT_LOCK(self);
  const gint64 start_time = self->start_time;
  GST_OBJECT_UNLOCK(self);
  self->runtime = Runtime{};
  self->runtime.start_unix_ns = start_time == kStartWhenStarting ? g_get_real_time() * GST_USECOND : start_time;
  self->origin = Origin::kUndecided;
  GST_DEBUG_OBJECT(self, "start: start-time %" G_GINT64_FORMAT " ns", self->runtime.start_unix_ns);
  return TRUE;
}

static gboolean gst_em_media_time_sink_event(GstBaseTransform* transform, GstEvent* event) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(transform);
  if (GST_EVENT_TYPE(event) == GST_EVENT_TAG) {
    GstTagList* tags = nullptr;
    gst_event_parse_tag(event, &tags);
    GstDateTime* date_time = nullptr;
    if (gst_tag_list_get_date_time(tags, GST_TAG_DATE_TIME, &date_time)) {
      const gint64 unix_ns = unix_ns_of(date_time);
      gst_date_time_unref(date_time);
      if (unix_ns >= 0) {
        self->runtime.tag_unix_ns = unix_ns;
        GST_DEBUG_OBJECT(self, "date-time tag: %" G_GINT64_FORMAT " ns since the epoch", unix_ns);
      }
    }
  }
  return GST_BASE_TRANSFORM_CLASS(gst_em_media_time_parent_class)->sink_event(transform, event);
}

// Live or not, asked upstream once, at the first frame.
static bool upstream_is_live(GstEmMediaTime* self) {
  GstQuery* query = gst_query_new_latency();
  gboolean live = FALSE;
  if (gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(self), query)) gst_query_parse_latency(query, &live, nullptr, nullptr);
  gst_query_unref(query);
  return live;
}

static void decide_origin(GstEmMediaTime* self) {
  Runtime& runtime = self->runtime;
  Origin origin;
  if (upstream_is_live(self)) {
    origin = Origin::kWallClock;
  } else if (runtime.tag_unix_ns >= 0) {
    origin = Origin::kTag;
    runtime.base_unix_ns = runtime.tag_unix_ns;
  } else {
    origin = Origin::kStartTime;
    runtime.base_unix_ns = runtime.start_unix_ns;
  }
  self->origin = origin;
  GST_INFO_OBJECT(self, "frame times: %s (running time 0 at %" G_GINT64_FORMAT " ns since the epoch)",
                  origin_name(origin), runtime.base_unix_ns);
}

static GstFlowReturn gst_em_media_time_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(transform);
  Runtime& runtime = self->runtime;
  if (self->origin.load() == Origin::kUndecided) decide_origin(self);
  const guint64 frame = runtime.frames++;
  if (self->origin.load() == Origin::kWallClock) return GST_FLOW_OK;
  const GstClockTime running_time =
      gst_segment_to_running_time(&transform->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
  if (!GST_CLOCK_TIME_IS_VALID(running_time)) {
    GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": no running time (PTS %" GST_TIME_FORMAT "): wall clock",
                   frame, GST_TIME_ARGS(GST_BUFFER_PTS(buffer)));
    return GST_FLOW_OK;
  }
  const gint64 unix_ns = runtime.base_unix_ns + static_cast<gint64>(running_time);
  if (unix_ns < 0) return GST_FLOW_OK;
  gst_buffer_add_reference_timestamp_meta(buffer, unix_time_caps(), static_cast<GstClockTime>(unix_ns),
                                          GST_BUFFER_DURATION(buffer));
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": running time %" GST_TIME_FORMAT " -> %" G_GINT64_FORMAT
                 " ns since the epoch", frame, GST_TIME_ARGS(running_time), unix_ns);
  return GST_FLOW_OK;
}

static void gst_em_media_time_finalize(GObject* object) {
  GstEmMediaTime* self = GST_EM_MEDIA_TIME(object);
  self->runtime.~Runtime();
  G_OBJECT_CLASS(gst_em_media_time_parent_class)->finalize(object);
}

static void gst_em_media_time_class_init(GstEmMediaTimeClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);
  gobject_class->set_property = gst_em_media_time_set_property;
  gobject_class->get_property = gst_em_media_time_get_property;
  gobject_class->finalize = gst_em_media_time_finalize;

  g_object_class_install_property(gobject_class, PROP_START_TIME,
      g_param_spec_int64("start-time", "Start time",
          "ns since the Unix epoch of running time 0 for a recorded source without a date-time "
          "tag (the run's start); -1: when the element starts", -1, G_MAXINT64, kStartWhenStarting,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(gobject_class, PROP_ORIGIN,
      g_param_spec_string("origin", "Origin",
          "Where the frames' times come from: tag (the movie's date-time tag), start-time, or "
          "wall-clock (a live source: left to the frame document); empty before the first frame", "",
          static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_set_static_metadata(element_class, "EM media time", "Filter/Video",
      "Times the frames of a recorded source by the movie's own clock: its date-time tag (or the "
      "run's start) plus running time", "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_media_time_start);
  transform_class->sink_event = GST_DEBUG_FUNCPTR(gst_em_media_time_sink_event);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_media_time_transform_ip);

  GST_DEBUG_CATEGORY_INIT(gst_em_media_time_debug, "emi-emmediatime", 0, "emi media time");
}

static void gst_em_media_time_init(GstEmMediaTime* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  self->start_time = kStartWhenStarting;
  new (&self->runtime) Runtime();
  new (&self->origin) std::atomic<Origin>(Origin::kUndecided);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  // Never passthrough: it adds metadata, so buffers must be writable.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
