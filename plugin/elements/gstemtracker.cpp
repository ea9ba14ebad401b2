// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emtracker
 *
 * Tracks the objects of each frame's document (from `empycustom mode=detect` or any element that
 * adds GstVideoRegionOfInterestMeta) with the IOU tracker of Bochinski et al. (AVSS 2017): it
 * gives them `object_id`s, `tracking_start_time`, `tracking_ended_time` and
 * `tracking_duration_in_seconds`, and writes counts (and crossings of an optional line) into
 * `frame["counts"]`. A track that ends appears once more, as an object of the frame where it
 * ended, with `tracking_ended_time` set. Tracks still alive at EOS (or at a flush) end then: they
 * go downstream, before the EOS, in a serialized custom event whose structure is named
 * `emi/ended-tracks` and has a `json` field holding a frame document with them as its objects;
 * the same structure is posted on the bus as an element message.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *   video/x-raw,format=RGBA,width=640,height=360 ! \
 *   empycustom mode=detect module=detector.py ! emtracker line=0,180,640,180 ! fakesink
 * ]|
 */
#include "elements/gstemtracker.h"

#include <gst/video/video.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "document/document_object.h"
#include "document/frame_document.h"
#include "document/vocabulary.h"
#include "tracking/iou_tracker.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_tracker_debug);
#define GST_CAT_DEFAULT gst_em_tracker_debug

namespace {

using nlohmann::json;
namespace tracking = emi::tracking;

using emi::kNotApplicable;

// What the properties say; guarded by the object lock. The line is parsed at start.
struct Settings {
  tracking::TrackerSettings tracker;
  std::string line;
};

// Streaming state, from start() to stop().
struct Runtime {
  std::optional<tracking::IouTracker> tracker;
  int width = 0;
  int height = 0;
  guint64 frames = 0;
  json last_frame = json::object();  // frame fields of the last frame, for tracks ended at EOS
  // This frame's detections and the index of each one's object in frame["object"]; kept to
  // reuse their memory.
  std::vector<tracking::Detection> detections;
  std::vector<std::size_t> detection_objects;
};

}  // namespace

struct _GstEmTracker {
  GstBaseTransform parent;

  Settings settings;
  Runtime runtime;
  std::atomic<guint64> tracks_total;
  std::atomic<guint> active_tracks;
};

enum {
  PROP_0,
  PROP_IOU_THRESHOLD,
  PROP_MIN_CONFIDENCE,
  PROP_HIGH_CONFIDENCE,
  PROP_MIN_HITS,
  PROP_MAX_AGE,
  PROP_PER_CLASS,
  PROP_PREDICT,
  PROP_CONFIDENT_FIRST,
  PROP_WEAK_MIN_HITS,
  PROP_LINE,
  PROP_TRACKS_TOTAL,
  PROP_ACTIVE_TRACKS,
};

// Only metadata is touched: any raw video, in any memory.
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

#define gst_em_tracker_parent_class parent_class
G_DEFINE_TYPE(GstEmTracker, gst_em_tracker, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(emtracker, "emtracker", GST_RANK_NONE, GST_TYPE_EM_TRACKER);

static double number_or(const json& object, const char* key, double fallback) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

// A document object as a detection; objects without a numeric rect_params are not tracked.
static std::optional<tracking::Detection> detection_from(const json& object) {
  if (!object.is_object()) return std::nullopt;
  const auto rect = object.find("rect_params");
  if (rect == object.end() || !rect->is_object()) return std::nullopt;
  // An ended track reported by a tracker upstream is a record, not something in this frame.
  const auto ended = object.find("tracking_ended_time");
  if (ended != object.end() && *ended != kNotApplicable) return std::nullopt;
  constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
  tracking::Detection detection;
  detection.box = {number_or(*rect, "left", kMissing), number_or(*rect, "top", kMissing),
                   number_or(*rect, "width", kMissing), number_or(*rect, "height", kMissing)};
  if (std::isnan(detection.box.left) || std::isnan(detection.box.top) ||
      std::isnan(detection.box.width) || std::isnan(detection.box.height))
    return std::nullopt;
  detection.confidence = number_or(object, "confidence", 1.0);
  const auto class_id = object.find("class_id");
  if (class_id != object.end() && class_id->is_number_integer()) detection.class_id = class_id->get<int>();
  const auto label = object.find("obj_label");
  if (label != object.end() && label->is_string()) detection.label = label->get<std::string>();
  return detection;
}

static void annotate(json& object, const std::optional<tracking::TrackedDetection>& tracked) {
  if (tracked) {
    object["object_id"] = tracked->object_id;
    object["tracking_start_time"] = std::string(tracked->start_timestamp);
    object["tracking_duration_in_seconds"] = tracked->duration_seconds;
  } else {  // ignored: below min-confidence
    object["object_id"] = -1;
    object["tracking_start_time"] = kNotApplicable;
    object["tracking_duration_in_seconds"] = 0.0;
  }
  object["tracking_ended_time"] = kNotApplicable;
}

static json ended_object(const tracking::EndedTrack& track) {
  json object = emi::make_object({track.class_id, track.object_id, track.confidence, track.label,
                                  {track.box.left, track.box.top, track.box.width, track.box.height}});
  object[emi::field::kTrackingStart] = track.start_timestamp;
  object[emi::field::kTrackingEnded] = track.ended_timestamp;
  object[emi::field::kTrackingDuration] = track.duration_seconds;
  return object;
}

static json counts_of(const tracking::IouTracker& tracker) {
  const tracking::Counts& counts = tracker.counts();
  json document{{"total", counts.total}, {"by_label", counts.by_label}, {"in_view", counts.in_view}};
  if (const std::optional<tracking::Segment>& line = tracker.settings().line) {
    document["line_crossings"] = {{"forward", counts.line_crossings.forward},
                                  {"backward", counts.line_crossings.backward}};
    // For emoverlay, which draws the line.
    document["line"] = {emi::pixel_value(line->from.x), emi::pixel_value(line->from.y),
                        emi::pixel_value(line->to.x), emi::pixel_value(line->to.y)};
  }
  return document;
}

// The frame fields (not its objects or results) that the EOS document repeats.
static json frame_fields(const json& frame) {
  json fields = json::object();
  for (const char* key : emi::kFrameFacts) {
    const auto it = frame.find(key);
    if (it != frame.end()) fields[key] = *it;
  }
  return fields;
}

// Durations come from the buffer's PTS; a buffer without one is timed by its wall-clock time.
static tracking::FrameTime frame_time(GstBuffer* buffer, const json& frame) {
  tracking::FrameTime time;
  if (GST_BUFFER_PTS_IS_VALID(buffer)) {
    time.time_ns = static_cast<std::int64_t>(GST_BUFFER_PTS(buffer));
  } else {
    const auto ntp = frame.find("ntp_timestamp");
    time.time_ns = ntp != frame.end() && ntp->is_number_integer() ? ntp->get<std::int64_t>()
                                                                  : g_get_real_time() * 1000;
  }
  const auto timestamp = frame.find("timestamp");
  if (timestamp != frame.end() && timestamp->is_string()) time.timestamp = timestamp->get<std::string>();
  return time;
}

// What happened to a frame, for GST_DEBUG=emi-emtracker:6.
static void log_frame(GstEmTracker* self, const json& frame, const tracking::FrameUpdate& update) {
  std::size_t ignored = 0, probation = 0, confirmed = 0;
  for (const std::optional<tracking::TrackedDetection>& tracked : update.detections) {
    if (!tracked) ++ignored;
    else if (tracked->object_id < 0) ++probation;
    else ++confirmed;
  }
  const auto frame_num = frame.find("frame_num");
  GST_LOG_OBJECT(self,
                 "frame %s: %zu detections in (%zu ignored), %zu tracked objects out: %zu with an id, "
                 "%zu on probation; %zu tracks ended; %zu tracks with an id alive",
                 frame_num != frame.end() ? frame_num->dump().c_str() : "?", update.detections.size(), ignored,
                 confirmed + probation, confirmed, probation, update.ended.size(),
                 self->runtime.tracker->active_tracks());
}

static void publish_counters(GstEmTracker* self) {
  const tracking::IouTracker& tracker = *self->runtime.tracker;
  self->tracks_total = tracker.counts().total;
  self->active_tracks = static_cast<guint>(tracker.active_tracks());
}

// Tracks still alive when no frame follows (EOS) or the stream jumps (flush) end here: they go
// downstream as a serialized custom event and to the application as an element message.
static void end_live_tracks(GstEmTracker* self) {
  Runtime& runtime = self->runtime;
  if (!runtime.tracker) return;
  const std::vector<tracking::EndedTrack> ended = runtime.tracker->finish();
  publish_counters(self);
  if (ended.empty()) return;
  json frame = runtime.last_frame;
  json& objects = frame["object"] = json::array();
  for (const tracking::EndedTrack& track : ended) objects.push_back(ended_object(track));
  frame["counts"] = counts_of(*runtime.tracker);
  const std::string text = json{{"frame", json::array({std::move(frame)})}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  GST_DEBUG_OBJECT(self, "%zu tracks ended with the stream", ended.size());
  GstStructure* structure =
      gst_structure_new(emi::kEndedTracksName, emi::kDocumentField, G_TYPE_STRING, text.c_str(), nullptr);
  gst_element_post_message(GST_ELEMENT(self),
                           gst_message_new_element(GST_OBJECT(self), gst_structure_copy(structure)));
  gst_pad_push_event(GST_BASE_TRANSFORM_SRC_PAD(self),
                     gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, structure));
}

static void gst_em_tracker_set_property(GObject* object, guint prop_id, const GValue* value,
                                        GParamSpec* pspec) {
  GstEmTracker* self = GST_EM_TRACKER(object);
  GST_OBJECT_LOCK(self);
  tracking::TrackerSettings& tracker = self->settings.tracker;
  switch (prop_id) {
    case PROP_IOU_THRESHOLD: tracker.iou_threshold = g_value_get_double(value); break;
    case PROP_MIN_CONFIDENCE: tracker.min_confidence = g_value_get_double(value); break;
    case PROP_HIGH_CONFIDENCE: tracker.high_confidence = g_value_get_double(value); break;
    case PROP_MIN_HITS: tracker.min_hits = g_value_get_uint(value); break;
    case PROP_MAX_AGE: tracker.max_age = g_value_get_uint(value); break;
    case PROP_PER_CLASS: tracker.per_class = g_value_get_boolean(value); break;
    case PROP_PREDICT: tracker.predict = g_value_get_boolean(value); break;
    case PROP_CONFIDENT_FIRST: tracker.confident_first = g_value_get_boolean(value); break;
    case PROP_WEAK_MIN_HITS: tracker.weak_min_hits = g_value_get_uint(value); break;
    case PROP_LINE: {
      const gchar* line = g_value_get_string(value);
      self->settings.line = line != nullptr ? line : "";
      break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
  GST_DEBUG_OBJECT(self, "%s set (used from the next start)", g_param_spec_get_name(pspec));
}

static void gst_em_tracker_get_property(GObject* object, guint prop_id, GValue* value,
                                        GParamSpec* pspec) {
  GstEmTracker* self = GST_EM_TRACKER(object);
  GST_OBJECT_LOCK(self);
  const tracking::TrackerSettings& tracker = self->settings.tracker;
  switch (prop_id) {
    case PROP_IOU_THRESHOLD: g_value_set_double(value, tracker.iou_threshold); break;
    case PROP_MIN_CONFIDENCE: g_value_set_double(value, tracker.min_confidence); break;
    case PROP_HIGH_CONFIDENCE: g_value_set_double(value, tracker.high_confidence); break;
    case PROP_MIN_HITS: g_value_set_uint(value, tracker.min_hits); break;
    case PROP_MAX_AGE: g_value_set_uint(value, tracker.max_age); break;
    case PROP_PER_CLASS: g_value_set_boolean(value, tracker.per_class); break;
    case PROP_PREDICT: g_value_set_boolean(value, tracker.predict); break;
    case PROP_CONFIDENT_FIRST: g_value_set_boolean(value, tracker.confident_first); break;
    case PROP_WEAK_MIN_HITS: g_value_set_uint(value, tracker.weak_min_hits); break;
    case PROP_LINE: g_value_set_string(value, self->settings.line.c_str()); break;
    case PROP_TRACKS_TOTAL: g_value_set_uint64(value, self->tracks_total.load()); break;
    case PROP_ACTIVE_TRACKS: g_value_set_uint(value, self->active_tracks.load()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static gboolean gst_em_tracker_start(GstBaseTransform* transform) {
  GstEmTracker* self = GST_EM_TRACKER(transform);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);

  self->runtime = Runtime{};
  tracking::TrackerSettings tracker_settings = settings.tracker;
  if (!settings.line.empty()) {
    try {
      tracker_settings.line = tracking::parse_segment(settings.line);
    } catch (const std::invalid_argument& error) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                        ("Invalid line property \"%s\": %s", settings.line.c_str(), error.what()),
                        ("line is x1,y1,x2,y2 in pixels, e.g. line=0,180,640,180"));
      return FALSE;
    }
  }
  self->runtime.tracker.emplace(tracker_settings);
  publish_counters(self);
  GST_DEBUG_OBJECT(self,
                   "start: iou-threshold %.3f, min-confidence %.3f, high-confidence %.3f, min-hits %u, "
                   "max-age %u, per-class %d, predict %d, confident-first %d, weak-min-hits %u, line \"%s\"",
                   tracker_settings.iou_threshold, tracker_settings.min_confidence,
                   tracker_settings.high_confidence, tracker_settings.min_hits, tracker_settings.max_age,
                   tracker_settings.per_class, tracker_settings.predict, tracker_settings.confident_first,
                   tracker_settings.weak_min_hits, settings.line.c_str());
  return TRUE;
}

static gboolean gst_em_tracker_stop(GstBaseTransform* transform) {
  GST_EM_TRACKER(transform)->runtime = Runtime{};
  return TRUE;
}

static gboolean gst_em_tracker_set_caps(GstBaseTransform* transform, GstCaps* incaps,
                                        GstCaps* /*outcaps*/) {
  GstEmTracker* self = GST_EM_TRACKER(transform);
  const GstStructure* structure = gst_caps_get_structure(incaps, 0);
  if (!gst_structure_get_int(structure, "width", &self->runtime.width) ||
      !gst_structure_get_int(structure, "height", &self->runtime.height)) {
    GST_ERROR_OBJECT(self, "caps without a frame size: %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "frames of %dx%d: %" GST_PTR_FORMAT, self->runtime.width, self->runtime.height, incaps);
  return TRUE;
}

static gboolean gst_em_tracker_sink_event(GstBaseTransform* transform, GstEvent* event) {
  GstEmTracker* self = GST_EM_TRACKER(transform);
  const GstEventType type = GST_EVENT_TYPE(event);
  if (type == GST_EVENT_EOS) end_live_tracks(self);  // before the EOS goes on
  const gboolean forwarded = GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(transform, event);
  // After a seek old positions match nothing: the live tracks end, announced after the flush.
  if (type == GST_EVENT_FLUSH_STOP) end_live_tracks(self);
  return forwarded;
}

static GstFlowReturn gst_em_tracker_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmTracker* self = GST_EM_TRACKER(transform);
  Runtime& runtime = self->runtime;
  const bool bare = !emi::has_document(buffer) &&
                    gst_buffer_get_n_meta(buffer, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE) == 0;
  json document = emi::build_document(buffer, {runtime.frames++, runtime.width, runtime.height});
  json& frame = emi::frame_record(document);
  json& objects = frame["object"];

  runtime.detections.clear();
  runtime.detection_objects.clear();
  for (std::size_t index = 0; index < objects.size(); ++index) {
    if (std::optional<tracking::Detection> detection = detection_from(objects[index])) {
      runtime.detections.push_back(std::move(*detection));
      runtime.detection_objects.push_back(index);
    }
  }
  const tracking::FrameUpdate& update = runtime.tracker->update(runtime.detections, frame_time(buffer, frame));
  publish_counters(self);
  if (gst_debug_category_get_threshold(GST_CAT_DEFAULT) >= GST_LEVEL_LOG) log_frame(self, frame, update);
  runtime.last_frame = frame_fields(frame);
  // A buffer that came with no metadata passes untouched, unless a track ends on it.
  if (bare && update.ended.empty()) return GST_FLOW_OK;

  for (std::size_t index = 0; index < runtime.detections.size(); ++index)
    annotate(objects[runtime.detection_objects[index]], update.detections[index]);
  for (const tracking::EndedTrack& track : update.ended) objects.push_back(ended_object(track));
  frame["counts"] = counts_of(*runtime.tracker);
  emi::write_document(buffer, std::move(document));
  return GST_FLOW_OK;
}

static void gst_em_tracker_finalize(GObject* object) {
  GstEmTracker* self = GST_EM_TRACKER(object);
  self->runtime.~Runtime();
  self->settings.~Settings();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_tracker_class_init(GstEmTrackerClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_em_tracker_set_property;
  gobject_class->get_property = gst_em_tracker_get_property;
  gobject_class->finalize = gst_em_tracker_finalize;

  // Read at start: changes take effect on the next READY→PAUSED.
  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  const auto counter_flags = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  const tracking::TrackerSettings defaults;

  g_object_class_install_property(gobject_class, PROP_IOU_THRESHOLD,
      g_param_spec_double("iou-threshold", "IoU threshold",
          "sigma_IoU: the least intersection over union between a track's box (its last one, or "
          "with predict the predicted one) and a detection for them to match (0: any overlap)", 0.0, 1.0, defaults.iou_threshold, flags));
  g_object_class_install_property(gobject_class, PROP_MIN_CONFIDENCE,
      g_param_spec_double("min-confidence", "Minimum confidence",
          "sigma_l: detections with a lower confidence are not tracked (object_id -1)", 0.0, 1.0,
          defaults.min_confidence, flags));
  g_object_class_install_property(gobject_class, PROP_HIGH_CONFIDENCE,
      g_param_spec_double("high-confidence", "High confidence",
          "sigma_h: a track gets an id only once one of its detections had at least this "
          "confidence, so weak false positives never do", 0.0, 1.0, defaults.high_confidence, flags));
  g_object_class_install_property(gobject_class, PROP_MIN_HITS,
      g_param_spec_uint("min-hits", "Minimum hits",
          "t_min: frames with a detection a track needs before it gets an id; until then its "
          "objects have object_id -1", 1, G_MAXUINT, defaults.min_hits, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_AGE,
      g_param_spec_uint("max-age", "Maximum age",
          "Frames a track with an id survives without a detection, so short gaps keep its id; "
          "unmatched one frame longer, it ends (a track still on probation ends at its first "
          "miss)", 0, G_MAXUINT, defaults.max_age, flags));
  g_object_class_install_property(gobject_class, PROP_PER_CLASS,
      g_param_spec_boolean("per-class", "Per class",
          "Match a track only with detections of its class (same class_id and obj_label)",
          defaults.per_class, flags));
  g_object_class_install_property(gobject_class, PROP_PREDICT,
      g_param_spec_boolean("predict", "Predict motion",
          "Predict each track's box by constant velocity (a Kalman filter, as in SORT) and match "
          "detections against the predicted box, also across gaps of up to max-age frames; off: "
          "against the track's last box, as the paper does", defaults.predict, flags));
  g_object_class_install_property(gobject_class, PROP_CONFIDENT_FIRST,
      g_param_spec_boolean("confident-first", "Confident detections first",
          "Match tracks with an id to the detections of at least high-confidence first, then the "
          "tracks left to the weaker detections (ByteTrack's two rounds), so a weak detection "
          "never takes a track from a confident one; off: one round, as the paper does",
          defaults.confident_first, flags));
  g_object_class_install_property(gobject_class, PROP_WEAK_MIN_HITS,
      g_param_spec_uint("weak-min-hits", "Minimum hits without a confident detection",
          "Frames with a detection after which a track gets an id even though none of its "
          "detections reached high-confidence (and at least min-hits); 0: never, as the paper "
          "does", 0, G_MAXUINT, defaults.weak_min_hits, flags));
  g_object_class_install_property(gobject_class, PROP_LINE,
      g_param_spec_string("line", "Counting line",
          "x1,y1,x2,y2 in pixels: count box centres crossing this segment, per direction "
          "(forward: from the left of (x1,y1)->(x2,y2) to its right, as seen on screen); "
          "empty: no line", "", flags));
  g_object_class_install_property(gobject_class, PROP_TRACKS_TOTAL,
      g_param_spec_uint64("tracks-total", "Tracks in total", "Tracks that got an id since start",
          0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_ACTIVE_TRACKS,
      g_param_spec_uint("active-tracks", "Active tracks", "Tracks with an id that have not ended",
          0, G_MAXUINT, 0, counter_flags));

  gst_element_class_set_static_metadata(element_class, "EM IOU tracker", "Filter/Video/Analyzer",
      "Tracks the frame document's objects by IoU (Bochinski et al. 2017): ids, track start, "
      "end and duration, counts and line crossings", "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_tracker_start);
  transform_class->stop = GST_DEBUG_FUNCPTR(gst_em_tracker_stop);
  transform_class->set_caps = GST_DEBUG_FUNCPTR(gst_em_tracker_set_caps);
  transform_class->sink_event = GST_DEBUG_FUNCPTR(gst_em_tracker_sink_event);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_tracker_transform_ip);

  GST_DEBUG_CATEGORY_INIT(gst_em_tracker_debug, "emi-emtracker", 0, "emi IOU tracker");
}

static void gst_em_tracker_init(GstEmTracker* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  new (&self->settings) Settings();
  new (&self->runtime) Runtime();
  new (&self->tracks_total) std::atomic<guint64>(0);
  new (&self->active_tracks) std::atomic<guint>(0);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  // Never passthrough: it adds metadata, so buffers must be made writable.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
