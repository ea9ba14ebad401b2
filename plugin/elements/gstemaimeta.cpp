// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emaimeta
 *
 * EDGEMATRIX's `aimeta` stage. Every `signal-interval` frames the frame document goes out as a
 * *signal*: one JSON line to `location` and an element message named `emi-signal` (field `json`)
 * on the bus. The app's signal callback (`callback-module`, `callback-function`) turns each signal
 * into *events*, off the streaming thread; without one, the events are the signal's records. The
 * stream config's `action_rules` are evaluated on every event, and the rules that fire run their
 * action: `record` (a clip around the event in `record-dir`) or `upload` (the event to AWS Kinesis
 * Firehose). Each firing is a JSON line `{"firing": {...}}` in the output and an element message
 * named `emi-action-fired` (an access key shows its last 4 characters only; a secret key or session
 * token never shows); each clip, once written, an element message named `emi-clip-recorded` (its
 * path, sidecar, pts range, frames and events). Frames pass unchanged.
 *
 * `location` is never truncated twice by one element: a restart (PLAYING→NULL→PLAYING, as an app
 * does when a camera reconnects) appends, and with `append=true` so does the first start (a torn
 * last line a crash left is dropped first). Lines that could not be written (a full disk) are
 * counted in `lost-signals`, clips that could not be written in `lost-clips`, each with a warning.
 *
 * When a frame waits (`pace`): with `always`, each frame that carries a signal waits until the
 * callback and the rules have handled it, and, when a rule records, a frame waits for the clip
 * encoder when 8 frames are already queued for it. With `never`, no frame ever waits: signals
 * queue for the callback (up to `max-pending-signals`) and frames the encoder can't take are
 * dropped. `auto` (the default) is `always` when a rule records and upstream is not live (the
 * latency query says so: a file, whose pre-roll must still be in the ring when its event is
 * known), and `never` otherwise. Frames held back are counted in `paced-frames`: each signal's
 * frame held until its signal was handled, and each frame that waited for the encoder.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *   video/x-raw,format=RGBA,width=640,height=360 ! empycustom module=app.py ! \
 *   emaimeta location=signals.jsonl callback-module=emi_signal_callback.py \
 *     callback-function=signal_callback stream-config=streams/stream.json record-dir=clips ! fakesink
 * ]|
 */
#include "elements/gstemaimeta.h"

#include <gst/video/video.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <map>
#include <set>

#include "actions/action_engine.h"
#include "actions/rule_actions.h"
#include "actions/upload/firehose_uploader.h"
#include "common/gst_ptr.h"
#include "document/frame_document.h"
#include "embed/python_host.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_ai_meta_debug);
#define GST_CAT_DEFAULT gst_em_ai_meta_debug

namespace {

using nlohmann::json;

constexpr char kSignalMessageName[] = "emi-signal";
constexpr char kFiredMessageName[] = "emi-action-fired";
constexpr char kClipMessageName[] = "emi-clip-recorded";
constexpr guint kDefaultMaxPending = 1000;
constexpr guint kDefaultUploadTimeoutMs = 10000;
constexpr char kDefaultCallbackFunction[] = "signal_callback";

// When frames wait for the signal callback and the clip encoder (see the element's description).
enum class Pace { kAuto, kNever, kAlways };

// What the properties say; guarded by the object lock, read at start.
struct Settings {
  std::string location;
  guint signal_interval = 1;
  bool post_messages = true;
  std::string callback_module;
  std::string callback_function = kDefaultCallbackFunction;
  std::string stream_config;
  std::string stream_id;
  std::string record_dir = ".";
  std::string spool_dir;
  guint max_pending = kDefaultMaxPending;
  guint upload_timeout_ms = kDefaultUploadTimeoutMs;
  bool append = false;
  Pace pace = Pace::kAuto;
};

// Streaming state, from start() to stop(). The engine goes first: its worker runs actions.
struct Runtime {
  std::unique_ptr<emi::RuleActions> actions;
  std::unique_ptr<emi::ActionEngine> engine;
  guint interval = 1;
  bool post_messages = true;
  guint upload_timeout_ms = kDefaultUploadTimeoutMs;
  Pace pace_setting = Pace::kAuto;
  std::optional<bool> paced;  // decided on the first frame (auto asks upstream whether it is live)
  int width = 0;
  int height = 0;
  guint64 frames = 0;
  GstClockTime last_pts = GST_CLOCK_TIME_NONE;
};


// The actions layer's voice on the bus.
class BusReporter final : public emi::ActionReporter {
 public:
  explicit BusReporter(GstEmAiMeta* element) : element_(element) {}
  void fired(const json& firing) override;
  void clip_recorded(const json& clip) override;
  void clip_lost(const std::string& message) override;
  void warning(const std::string& message, const std::string& detail) override;
  void fatal(const std::string& message, const std::string& detail) override;

 private:
  GstEmAiMeta* element_;
};

}  // namespace

struct _GstEmAiMeta {
  GstBaseTransform parent;

  Settings settings;
  Runtime runtime;
  emi::EngineCounters counters;
  std::atomic<guint64> paced_frames;
  std::atomic<guint64> lost_clips;  // of the runs before this one's RuleActions
  // Set by the worker when the app's callback asks to stop (a {ValueError: ...} event).
  std::atomic<bool> app_failed;
  BusReporter reporter;
  // Every location this element wrote: never truncated again (a restart appends).
  std::set<std::string> written_locations;
  // The process's upload totals of the upload rules' delivery streams at the last start (under the
  // object lock): `dropped` and `rejected` are what they grew by since. An uploader's own counts
  // die with it, and it drops what it held only in memory as it is destroyed, after stop.
  std::map<std::string, emi::aws::UploadTotals> upload_baseline;
};

// `dropped` (or `rejected`) of the uploads since the last start; the object lock is held.
static guint64 uploads_since_start(GstEmAiMeta* self, bool rejected) {
  guint64 count = 0;
  for (const auto& [stream, baseline] : self->upload_baseline) {
    const emi::aws::UploadTotals now = emi::aws::process_upload_totals(stream);
    count += rejected ? now.rejected - baseline.rejected : now.dropped - baseline.dropped;
  }
  return count;
}

// Ends the run: the engine first (its worker runs the actions), then the actions, under the
// object lock (get_property reads their counts).
static void reset(GstEmAiMeta* self) {
  self->runtime.engine.reset();
  std::unique_ptr<emi::RuleActions> actions;
  GST_OBJECT_LOCK(self);
  actions = std::move(self->runtime.actions);
  GST_OBJECT_UNLOCK(self);
  actions.reset();  // outside the lock: it may post warnings
  self->runtime = Runtime{};
}

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_SIGNAL_INTERVAL,
  PROP_POST_MESSAGES,
  PROP_CALLBACK_MODULE,
  PROP_CALLBACK_FUNCTION,
  PROP_STREAM_CONFIG,
  PROP_STREAM_ID,
  PROP_RECORD_DIR,
  PROP_SPOOL_DIR,
  PROP_MAX_PENDING_SIGNALS,
  PROP_UPLOAD_TIMEOUT,
  PROP_SIGNALS,
  PROP_EVENTS,
  PROP_FIRINGS,
  PROP_CALLBACK_ERRORS,
  PROP_DROPPED_SIGNALS,
  PROP_APPEND,
  PROP_PACE,
  PROP_LOST_SIGNALS,
  PROP_LOST_CLIPS,
  PROP_PACED_FRAMES,
  PROP_DROPPED_FRAMES,
  PROP_DROPPED,
  PROP_REJECTED,
};

#define EMI_TYPE_AIMETA_PACE (emi_aimeta_pace_get_type())
static GType emi_aimeta_pace_get_type() {
  static gsize type = 0;
  if (g_once_init_enter(&type)) {
    static const GEnumValue values[] = {
        {static_cast<gint>(Pace::kAuto), "Wait when a rule records and upstream is not live", "auto"},
        {static_cast<gint>(Pace::kNever), "Never wait: queue signals, drop frames the encoder can't take", "never"},
        {static_cast<gint>(Pace::kAlways), "Wait for the callback, and for the encoder when a rule records",
         "always"},
        {0, nullptr, nullptr}};
    g_once_init_leave(&type, g_enum_register_static("EmiAiMetaPace", values));
  }
  return type;
}

// The recorder encodes what it is given; everything else only reads metadata.
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));

#define gst_em_ai_meta_parent_class parent_class
G_DEFINE_TYPE(GstEmAiMeta, gst_em_ai_meta, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(emaimeta, "emaimeta", GST_RANK_NONE, GST_TYPE_EM_AI_META);

static void gst_em_ai_meta_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstEmAiMeta* self = GST_EM_AI_META(object);
  GST_OBJECT_LOCK(self);
  Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_LOCATION: settings.location = emi::string_of(value); break;
    case PROP_SIGNAL_INTERVAL: settings.signal_interval = g_value_get_uint(value); break;
    case PROP_POST_MESSAGES: settings.post_messages = g_value_get_boolean(value); break;
    case PROP_CALLBACK_MODULE: settings.callback_module = emi::string_of(value); break;
    case PROP_CALLBACK_FUNCTION: settings.callback_function = emi::string_of(value); break;
    case PROP_STREAM_CONFIG: settings.stream_config = emi::string_of(value); break;
    case PROP_STREAM_ID: settings.stream_id = emi::string_of(value); break;
    case PROP_RECORD_DIR: settings.record_dir = emi::string_of(value); break;
    case PROP_SPOOL_DIR: settings.spool_dir = emi::string_of(value); break;
    case PROP_MAX_PENDING_SIGNALS: settings.max_pending = g_value_get_uint(value); break;
    case PROP_UPLOAD_TIMEOUT: settings.upload_timeout_ms = g_value_get_uint(value); break;
    case PROP_APPEND: settings.append = g_value_get_boolean(value); break;
    case PROP_PACE: settings.pace = static_cast<Pace>(g_value_get_enum(value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
  GST_DEBUG_OBJECT(self, "%s set (takes effect at the next start)", g_param_spec_get_name(pspec));
}

static void gst_em_ai_meta_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmAiMeta* self = GST_EM_AI_META(object);
  GST_OBJECT_LOCK(self);
  const Settings& settings = self->settings;
  const emi::EngineCounters& counters = self->counters;
  switch (prop_id) {
    case PROP_LOCATION: g_value_set_string(value, settings.location.c_str()); break;
    case PROP_SIGNAL_INTERVAL: g_value_set_uint(value, settings.signal_interval); break;
    case PROP_POST_MESSAGES: g_value_set_boolean(value, settings.post_messages); break;
    case PROP_CALLBACK_MODULE: g_value_set_string(value, settings.callback_module.c_str()); break;
    case PROP_CALLBACK_FUNCTION: g_value_set_string(value, settings.callback_function.c_str()); break;
    case PROP_STREAM_CONFIG: g_value_set_string(value, settings.stream_config.c_str()); break;
    case PROP_STREAM_ID: g_value_set_string(value, settings.stream_id.c_str()); break;
    case PROP_RECORD_DIR: g_value_set_string(value, settings.record_dir.c_str()); break;
    case PROP_SPOOL_DIR: g_value_set_string(value, settings.spool_dir.c_str()); break;
    case PROP_MAX_PENDING_SIGNALS: g_value_set_uint(value, settings.max_pending); break;
    case PROP_UPLOAD_TIMEOUT: g_value_set_uint(value, settings.upload_timeout_ms); break;
    case PROP_SIGNALS: g_value_set_uint64(value, counters.signals.load()); break;
    case PROP_EVENTS: g_value_set_uint64(value, counters.events.load()); break;
    case PROP_FIRINGS: g_value_set_uint64(value, counters.firings.load()); break;
    case PROP_CALLBACK_ERRORS: g_value_set_uint64(value, counters.callback_errors.load()); break;
    case PROP_DROPPED_SIGNALS: g_value_set_uint64(value, counters.dropped_signals.load()); break;
    case PROP_APPEND: g_value_set_boolean(value, settings.append); break;
    case PROP_PACE: g_value_set_enum(value, static_cast<gint>(settings.pace)); break;
    case PROP_LOST_SIGNALS: g_value_set_uint64(value, counters.lost_lines.load()); break;
    case PROP_LOST_CLIPS: g_value_set_uint64(value, self->lost_clips.load()); break;
    case PROP_PACED_FRAMES: g_value_set_uint64(value, self->paced_frames.load()); break;
    case PROP_DROPPED_FRAMES:
      g_value_set_uint64(value, self->runtime.actions ? self->runtime.actions->frames_dropped() : 0);
      break;
    case PROP_DROPPED: g_value_set_uint64(value, uploads_since_start(self, false)); break;
    case PROP_REJECTED: g_value_set_uint64(value, uploads_since_start(self, true)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void post_json_message(GstEmAiMeta* self, const char* name, std::string_view text) {
  const std::string owned(text);
  gst_element_post_message(GST_ELEMENT(self),
                           gst_message_new_element(GST_OBJECT(self),
                                                   gst_structure_new(name, emi::kDocumentField, G_TYPE_STRING,
                                                                     owned.c_str(), nullptr)));
}

void BusReporter::fired(const json& firing) {
  post_json_message(element_, kFiredMessageName, firing.dump(-1, ' ', false, json::error_handler_t::replace));
}

void BusReporter::clip_recorded(const json& clip) {
  post_json_message(element_, kClipMessageName, clip.dump(-1, ' ', false, json::error_handler_t::replace));
}

void BusReporter::clip_lost(const std::string& message) {
  const guint64 lost = ++element_->lost_clips;
  GST_ELEMENT_WARNING(element_, RESOURCE, WRITE, ("%s", message.c_str()),
                      ("%" G_GUINT64_FORMAT " clips lost so far (lost-clips)", lost));
}

void BusReporter::warning(const std::string& message, const std::string& detail) {
  GST_ELEMENT_WARNING(element_, STREAM, FAILED, ("%s", message.c_str()), ("%s", detail.c_str()));
}

void BusReporter::fatal(const std::string& message, const std::string& detail) {
  element_->app_failed = true;
  GST_ELEMENT_ERROR(element_, STREAM, FAILED, ("%s", message.c_str()), ("%s", detail.c_str()));
}

static gboolean gst_em_ai_meta_start(GstBaseTransform* transform) {
  GstEmAiMeta* self = GST_EM_AI_META(transform);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);

  reset(self);
  self->counters.reset();
  GST_OBJECT_LOCK(self);
  self->upload_baseline.clear();
  GST_OBJECT_UNLOCK(self);
  self->paced_frames = 0;
  self->lost_clips = 0;
  self->app_failed = false;
  Runtime& runtime = self->runtime;
  runtime.interval = std::max(1u, settings.signal_interval);
  runtime.post_messages = settings.post_messages;
  runtime.upload_timeout_ms = settings.upload_timeout_ms;
  runtime.pace_setting = settings.pace;

  emi::EngineSettings engine_settings;
  engine_settings.output_location = settings.location;
  // What this element wrote is never truncated: a restart appends.
  engine_settings.append_output = settings.append || self->written_locations.count(settings.location) > 0;
  engine_settings.callback_path = settings.callback_module;
  engine_settings.callback_function = settings.callback_function;
  engine_settings.max_pending_signals = std::max(1u, settings.max_pending);
  try {
    if (!settings.stream_config.empty())
      engine_settings.stream_config = emi::rules::load_stream_config(settings.stream_config);
  } catch (const emi::rules::ConfigError& error) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("%s", error.what()),
                      ("stream-config=%s", emi::rules::quotable_config_path(settings.stream_config).c_str()));
    return FALSE;
  }
  for (const std::string& skipped : engine_settings.stream_config.skipped) {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("%s: rule %s is run by EDGEMATRIX's device agent, not here: ignored",
                         emi::rules::quotable_config_path(settings.stream_config).c_str(), skipped.c_str()),
                        (nullptr));
  }
  {
    std::map<std::string, emi::aws::UploadTotals> baseline;
    for (const emi::rules::Rule& rule : engine_settings.stream_config.rules)
      if (rule.action == emi::rules::ActionKind::kUpload)
        baseline[rule.upload.delivery_stream_name] = emi::aws::process_upload_totals(rule.upload.delivery_stream_name);
    GST_OBJECT_LOCK(self);
    self->upload_baseline = std::move(baseline);
    GST_OBJECT_UNLOCK(self);
  }
  emi::RuleActionSettings action_settings;
  action_settings.record_dir = settings.record_dir;
  action_settings.stream_id = !settings.stream_id.empty() ? settings.stream_id
                              : !engine_settings.stream_config.stream_id.empty() ? engine_settings.stream_config.stream_id
                                                                                 : "stream";
  action_settings.spool_dir = settings.spool_dir;
  try {
    runtime.actions = std::make_unique<emi::RuleActions>(engine_settings.stream_config, action_settings, self->reporter);
  } catch (const std::exception& error) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("%s: %s", emi::rules::quotable_config_path(settings.stream_config).c_str(), error.what()),
                      (nullptr));
    return FALSE;
  }
  const std::string location = engine_settings.output_location;
  const std::size_t rule_count = engine_settings.stream_config.rules.size();
  try {
    runtime.engine = std::make_unique<emi::ActionEngine>(std::move(engine_settings), self->counters, self->reporter,
                                                         *runtime.actions);
  } catch (const emi::python::PythonError& error) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", error.what()), ("%s", error.traceback().c_str()));
    return FALSE;
  } catch (const std::exception& error) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("%s", error.what()), (nullptr));
    return FALSE;
  }
  if (!location.empty() && location != "-") self->written_locations.insert(location);
  GST_DEBUG_OBJECT(self, "started: signal every %u frames to %s, %zu rules", runtime.interval,
                   location.empty() ? "(no file)" : location.c_str(), rule_count);
  return TRUE;
}

static gboolean gst_em_ai_meta_stop(GstBaseTransform* transform) {
  reset(GST_EM_AI_META(transform));
  return TRUE;
}

static gboolean gst_em_ai_meta_set_caps(GstBaseTransform* transform, GstCaps* incaps, GstCaps* /*outcaps*/) {
  GstEmAiMeta* self = GST_EM_AI_META(transform);
  Runtime& runtime = self->runtime;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "caps that are not raw video: %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  runtime.width = GST_VIDEO_INFO_WIDTH(&info);
  runtime.height = GST_VIDEO_INFO_HEIGHT(&info);
  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, incaps);
  if (runtime.actions && runtime.actions->records()) {
    try {
      runtime.actions->set_caps(incaps);
    } catch (const std::exception& error) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("Can't record clips: %s", error.what()), (nullptr));
      return FALSE;
    }
  }
  return TRUE;
}

// A camera or network source must never wait for the recorder; a file may. Upstream that can't
// say is taken for a file: waiting is bounded, and a clip missing frames is not.
static bool upstream_is_live(GstEmAiMeta* self) {
  std::unique_ptr<GstQuery, emi::ReleaseWith<gst_query_unref>> latency(gst_query_new_latency());
  gboolean live = FALSE;
  if (gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(self), latency.get()))
    gst_query_parse_latency(latency.get(), &live, nullptr, nullptr);
  return live;
}

// Whether frames wait for the callback and the encoder (the element's description says when).
static bool decide_pace(GstEmAiMeta* self) {
  const Runtime& runtime = self->runtime;
  switch (runtime.pace_setting) {
    case Pace::kNever: return false;
    case Pace::kAlways: return true;
    case Pace::kAuto: break;
  }
  if (!runtime.actions->records()) {
    GST_DEBUG_OBJECT(self, "pace=auto: no rule records, frames never wait");
    return false;
  }
  const bool live = upstream_is_live(self);
  GST_DEBUG_OBJECT(self, "pace=auto: upstream is %s, frames %s", live ? "live" : "not live",
                   live ? "never wait" : "wait for the callback and the encoder");
  return !live;
}

// Signals of documents that travel in events (tracks that ended with the stream, from emtracker).
static void submit_event_document(GstEmAiMeta* self, const GstStructure* structure) {
  const gchar* text = gst_structure_get_string(structure, emi::kDocumentField);
  if (text == nullptr) return;
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return;
  self->runtime.engine->submit(text, std::make_shared<const json>(std::move(document)), self->runtime.last_pts);
  if (self->runtime.post_messages) post_json_message(self, kSignalMessageName, text);
}

static gboolean gst_em_ai_meta_sink_event(GstBaseTransform* transform, GstEvent* event) {
  GstEmAiMeta* self = GST_EM_AI_META(transform);
  Runtime& runtime = self->runtime;
  if (runtime.engine) {
    if (GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_DOWNSTREAM &&
        gst_event_has_name(event, emi::kEndedTracksName)) {
      submit_event_document(self, gst_event_get_structure(event));
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
      // Every signal handled and every clip closed before the application sees EOS.
      runtime.engine->drain();
      runtime.actions->finish(std::chrono::milliseconds(runtime.upload_timeout_ms));
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) {
      // A seek: the frames' PTS start again on a new timeline. Open clips end, the pre-roll ring
      // empties, and events of the frames before it make no clip on the new one.
      const std::uint64_t segment = runtime.engine->flushed();
      if (runtime.actions->records()) runtime.actions->restart_recording(segment);
      runtime.last_pts = GST_CLOCK_TIME_NONE;
      GST_DEBUG_OBJECT(self, "flushed: clip state reset (segment %" G_GUINT64_FORMAT ")", segment);
    }
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(transform, event);
}

static GstFlowReturn gst_em_ai_meta_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmAiMeta* self = GST_EM_AI_META(transform);
  Runtime& runtime = self->runtime;
  if (self->app_failed) return GST_FLOW_ERROR;
  if (!runtime.paced) runtime.paced = decide_pace(self);
  const bool paced = *runtime.paced;
  bool waited = false;
  if (runtime.actions->records()) waited = runtime.actions->push_frame(buffer, paced);
  runtime.last_pts = GST_BUFFER_PTS(buffer);
  const guint64 index = runtime.frames++;
  if (index % runtime.interval != 0) {
    if (waited) ++self->paced_frames;
    GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT " at %" GST_TIME_FORMAT ": no signal (every %u)%s", index,
                   GST_TIME_ARGS(GST_BUFFER_PTS(buffer)), runtime.interval, waited ? ", waited for the encoder" : "");
    return GST_FLOW_OK;
  }

  std::shared_ptr<const json> document = emi::peek_document(buffer);
  if (document == nullptr) {  // no emi element before: the signal still has the frame's fields
    emi::write_document(buffer, emi::build_document(buffer, {index, runtime.width, runtime.height}));
    document = emi::peek_document(buffer);
  }
  const std::string_view text = emi::document_json(buffer);
  runtime.engine->submit(text, std::move(document), GST_BUFFER_PTS(buffer));
  if (runtime.post_messages) post_json_message(self, kSignalMessageName, text);
  // A file runs faster than real time: were the callback to fall behind, the recorder's ring
  // would have moved past an event's pre-roll before the event was known. Paced, it waits.
  if (paced && runtime.engine->handles_signals()) {
    runtime.engine->wait_until_handled();
    waited = true;
  }
  if (waited) ++self->paced_frames;
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT " at %" GST_TIME_FORMAT ": signal of %zu bytes%s", index,
                 GST_TIME_ARGS(GST_BUFFER_PTS(buffer)), text.size(), waited ? ", waited (pace)" : "");
  return GST_FLOW_OK;
}

static void gst_em_ai_meta_finalize(GObject* object) {
  GstEmAiMeta* self = GST_EM_AI_META(object);
  reset(self);
  self->runtime.~Runtime();
  self->settings.~Settings();
  self->counters.~EngineCounters();
  self->reporter.~BusReporter();
  self->written_locations.~set();
  self->upload_baseline.~map();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_ai_meta_class_init(GstEmAiMetaClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_em_ai_meta_set_property;
  gobject_class->get_property = gst_em_ai_meta_get_property;
  gobject_class->finalize = gst_em_ai_meta_finalize;

  // Read at start: changes take effect on the next READY→PAUSED.
  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const auto counter_flags = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  const Settings defaults;

  g_object_class_install_property(gobject_class, PROP_LOCATION,
      g_param_spec_string("location", "Location",
          "File the signals, events and firings are written to as JSON lines (\"-\": stdout; "
          "empty: none)", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_SIGNAL_INTERVAL,
      g_param_spec_uint("signal-interval", "Signal interval",
          "A signal every this many frames (EDGEMATRIX's signal-interval)", 1, G_MAXINT,
          defaults.signal_interval, flags));
  g_object_class_install_property(gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean("post-messages", "Post messages",
          "Post each signal on the bus as an element message named emi-signal (field json)",
          defaults.post_messages, flags));
  g_object_class_install_property(gobject_class, PROP_CALLBACK_MODULE,
      g_param_spec_string("callback-module", "Callback module",
          "The app's emi_signal_callback.py; empty: the events are the signal's records", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_CALLBACK_FUNCTION,
      g_param_spec_string("callback-function", "Callback function",
          "The function of callback-module called with each signal (the app config's "
          "signal_callback_function_name); returns (events, debug_string)",
          kDefaultCallbackFunction, flags));
  g_object_class_install_property(gobject_class, PROP_STREAM_CONFIG,
      g_param_spec_string("stream-config", "Stream config",
          "EDGEMATRIX stream config (JSON) whose action_rules are evaluated on every event", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_STREAM_ID, g_param_spec_string("stream-id", "Stream id",
          "Prefix of recorded clips' names; empty: the stream config's stream_id", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_RECORD_DIR,
      g_param_spec_string("record-dir", "Record directory", "Where record actions write their clips",
          defaults.record_dir.c_str(), flags));
  g_object_class_install_property(gobject_class, PROP_SPOOL_DIR,
      g_param_spec_string("spool-dir", "Spool directory",
          "Where upload actions keep events until Firehose confirmed them (empty: "
          "$XDG_STATE_HOME/emi/firehose/<deliveryStreamName>, shared by every run)", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_PENDING_SIGNALS,
      g_param_spec_uint("max-pending-signals", "Max pending signals",
          "Signals that may wait for a slow callback; beyond, a signal is not handled and a "
          "warning says so", 1, G_MAXUINT, defaults.max_pending, flags));
  g_object_class_install_property(gobject_class, PROP_UPLOAD_TIMEOUT,
      g_param_spec_uint("upload-timeout", "Upload timeout",
          "Milliseconds EOS waits for pending uploads; what is left stays spooled", 0, G_MAXUINT,
          defaults.upload_timeout_ms, flags));
  g_object_class_install_property(gobject_class, PROP_SIGNALS,
      g_param_spec_uint64("signals", "Signals", "Signals emitted since start", 0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_EVENTS,
      g_param_spec_uint64("events", "Events", "Events the callback (or the records) gave", 0, G_MAXUINT64, 0,
          counter_flags));
  g_object_class_install_property(gobject_class, PROP_FIRINGS,
      g_param_spec_uint64("firings", "Firings", "Rules fired", 0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_CALLBACK_ERRORS,
      g_param_spec_uint64("callback-errors", "Callback errors",
          "Signals whose callback raised or returned something else than events", 0, G_MAXUINT64, 0,
          counter_flags));
  g_object_class_install_property(gobject_class, PROP_DROPPED_SIGNALS,
      g_param_spec_uint64("dropped-signals", "Dropped signals",
          "Signals not handled because max-pending-signals were waiting", 0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_APPEND,
      g_param_spec_boolean("append", "Append",
          "Append to location (after dropping a torn last line a crash left) instead of starting it "
          "empty; a restart of the element always appends to what it wrote", defaults.append, flags));
  g_object_class_install_property(gobject_class, PROP_PACE,
      g_param_spec_enum("pace", "Pace",
          "When frames wait for the signal callback and the clip encoder: auto (when a rule records "
          "and upstream is not live), never, always", EMI_TYPE_AIMETA_PACE, static_cast<gint>(defaults.pace), flags));
  g_object_class_install_property(gobject_class, PROP_LOST_SIGNALS,
      g_param_spec_uint64("lost-signals", "Lost signals",
          "Signal, event and firing lines that could not be written to location (a full disk)", 0, G_MAXUINT64, 0,
          counter_flags));
  g_object_class_install_property(gobject_class, PROP_LOST_CLIPS,
      g_param_spec_uint64("lost-clips", "Lost clips",
          "Clips rules asked for that were not written whole (no file, a full disk, no video after the event)",
          0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_PACED_FRAMES,
      g_param_spec_uint64("paced-frames", "Paced frames",
          "Frames held back by pace: until their signal was handled, or until the clip encoder took "
          "more", 0, G_MAXUINT64, 0,
          counter_flags));
  g_object_class_install_property(gobject_class, PROP_DROPPED_FRAMES,
      g_param_spec_uint64("dropped-frames", "Dropped frames",
          "Frames the clip encoder could not take in time (frames never wait: pace, a live source), so "
          "missing from clips", 0, G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_DROPPED,
      g_param_spec_uint64("dropped", "Dropped",
          "Events upload rules could not keep for Firehose (too large, spool full, damaged on disk)", 0,
          G_MAXUINT64, 0, counter_flags));
  g_object_class_install_property(gobject_class, PROP_REJECTED,
      g_param_spec_uint64("rejected", "Rejected",
          "Events Firehose refused for good, kept in rejected.jsonl beside the spool", 0, G_MAXUINT64, 0,
          counter_flags));

  gst_element_class_set_static_metadata(element_class, "EM AI meta", "Filter/Video/Analyzer",
      "Signals out as JSON, the app's signal callback, action rules, and their record and "
      "upload actions", "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_ai_meta_start);
  transform_class->stop = GST_DEBUG_FUNCPTR(gst_em_ai_meta_stop);
  transform_class->set_caps = GST_DEBUG_FUNCPTR(gst_em_ai_meta_set_caps);
  transform_class->sink_event = GST_DEBUG_FUNCPTR(gst_em_ai_meta_sink_event);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_ai_meta_transform_ip);

  GST_DEBUG_CATEGORY_INIT(gst_em_ai_meta_debug, "emi-emaimeta", 0, "emi signals, events and actions");
}

static void gst_em_ai_meta_init(GstEmAiMeta* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here, destroyed in finalize.
  new (&self->settings) Settings();
  new (&self->runtime) Runtime();
  new (&self->counters) emi::EngineCounters();
  new (&self->app_failed) std::atomic<bool>(false);
  new (&self->paced_frames) std::atomic<guint64>(0);
  new (&self->lost_clips) std::atomic<guint64>(0);
  new (&self->reporter) BusReporter(self);
  new (&self->written_locations) std::set<std::string>();
  new (&self->upload_baseline) std::map<std::string, emi::aws::UploadTotals>();
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  // Not passthrough: a frame without a document gets one, so its signal has the frame's fields.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
