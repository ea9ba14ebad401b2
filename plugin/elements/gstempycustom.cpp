// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-empycustom
 *
 * Runs a Python program on every frame (or every Nth), in place and without copying the frame,
 * and stores what it returns in the buffer's frame document (EDGEMATRIX's EMPyCustom contract).
 *
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! video/x-raw,format=RGBA,width=640,height=360 ! \
 *   empycustom module=classify.py options='{"threshold": 0.5}' ! fakesink
 * ]|
 */
#include "elements/gstempycustom.h"

#include <gst/video/video.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/gst_ptr.h"
#include "document/frame_document.h"
#include "document/literal_parser.h"
#include "document/result_placement.h"
#include "embed/user_program.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_py_custom_debug);
#define GST_CAT_DEFAULT gst_em_py_custom_debug

namespace {

enum class OnError { kSkip, kDrop, kFail };

constexpr char kDefaultFunction[] = "process_ip";
constexpr char kDefaultMetaKey[] = "emcustom";
constexpr char kDefaultOptions[] = "{}";
constexpr gsize kExcerptLength = 120;
constexpr gint64 kWarningInterval = G_USEC_PER_SEC;  // at most one bus warning a second
constexpr gdouble kDefaultCallTimeout = 10.0;
// How long stopping the element waits for a running call before interrupting it.
constexpr std::chrono::milliseconds kStopGrace{1000};

// What the properties say; guarded by the object lock.
struct Settings {
  std::string module;
  std::string class_name;
  std::string function = kDefaultFunction;
  std::string options = kDefaultOptions;
  guint process_interval = 1;
  emi::PlacementMode mode = emi::PlacementMode::kAuto;
  std::string meta_key = kDefaultMetaKey;
  gboolean writable = FALSE;
  OnError on_error = OnError::kSkip;
  gdouble call_timeout = kDefaultCallTimeout;
};

// Streaming state, from start() to stop().
struct Runtime {
  std::unique_ptr<emi::UserProgram> program;
  std::string module;
  std::string meta_key;
  GstVideoInfo info{};
  gint64 last_warning_time = 0;
};

}  // namespace

struct _GstEmPyCustom {
  GstBaseTransform parent;

  Settings settings;
  Runtime runtime;
  std::atomic<guint64> frames;
  std::atomic<guint64> processed;
  std::atomic<guint64> errors;
};

enum {
  PROP_0,
  PROP_MODULE,
  PROP_CLASS,
  PROP_FUNCTION,
  PROP_OPTIONS,
  PROP_PROCESS_INTERVAL,
  PROP_MODE,
  PROP_META_KEY,
  PROP_WRITABLE,
  PROP_ON_ERROR,
  PROP_CALL_TIMEOUT,
  PROP_FRAMES,
  PROP_PROCESSED,
  PROP_ERRORS,
};

#define VIDEO_FORMATS "{ RGBA, RGBx, BGRA, BGRx, RGB, BGR, GRAY8, NV12, I420 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(VIDEO_FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(VIDEO_FORMATS)));

#define gst_em_py_custom_parent_class parent_class
G_DEFINE_TYPE(GstEmPyCustom, gst_em_py_custom, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(empycustom, "empycustom", GST_RANK_NONE, GST_TYPE_EM_PY_CUSTOM);

GType gst_em_py_custom_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(emi::PlacementMode::kAuto), "Entry i to object i, entry N to the frame",
       "auto"},
      {static_cast<gint>(emi::PlacementMode::kDetect),
       "Entries with rect_params become new objects", "detect"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstEmPyCustomMode", values));
  return type;
}

GType gst_em_py_custom_on_error_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(OnError::kSkip), "Pass the frame on without results", "skip"},
      {static_cast<gint>(OnError::kDrop), "Drop the frame", "drop"},
      {static_cast<gint>(OnError::kFail), "Post an error and stop the pipeline", "fail"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstEmPyCustomOnError", values));
  return type;
}

// The start of `text` for a message, as valid UTF-8 (what a script returns may not be).
static std::string excerpt(const std::string& text) {
  const bool cut = text.size() > kExcerptLength;
  emi::UniqueChars valid(g_utf8_make_valid(text.data(), cut ? kExcerptLength : text.size()));
  return cut ? std::string(valid.get()) + "…" : std::string(valid.get());
}

// A per-frame problem: logged and posted on the bus, at most once a second so a script that
// fails on every frame doesn't flood either; every one is counted in `errors`.
static void report_frame_problem(GstEmPyCustom* self, const std::string& message,
                                 const std::string& details) {
  self->errors++;
  const gint64 now = g_get_monotonic_time();
  Runtime& runtime = self->runtime;
  if (runtime.last_warning_time != 0 && now - runtime.last_warning_time < kWarningInterval) {
    GST_DEBUG_OBJECT(self, "%s", message.c_str());
    return;
  }
  runtime.last_warning_time = now;
  GST_ELEMENT_WARNING(self, STREAM, FAILED, ("%s", message.c_str()),
                      ("%s (%" G_GUINT64_FORMAT " errors so far)", details.c_str(),
                       self->errors.load()));
}

static void gst_em_py_custom_set_property(GObject* object, guint prop_id, const GValue* value,
                                          GParamSpec* pspec) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(object);
  const auto text = [value] { return emi::string_of(value); };
  GST_OBJECT_LOCK(self);
  Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_MODULE: settings.module = text(); break;
    case PROP_CLASS: settings.class_name = text(); break;
    case PROP_FUNCTION: settings.function = text().empty() ? kDefaultFunction : text(); break;
    case PROP_OPTIONS: settings.options = text().empty() ? kDefaultOptions : text(); break;
    case PROP_PROCESS_INTERVAL: settings.process_interval = g_value_get_uint(value); break;
    case PROP_MODE: settings.mode = static_cast<emi::PlacementMode>(g_value_get_enum(value)); break;
    case PROP_META_KEY: settings.meta_key = text().empty() ? kDefaultMetaKey : text(); break;
    case PROP_WRITABLE: settings.writable = g_value_get_boolean(value); break;
    case PROP_ON_ERROR: settings.on_error = static_cast<OnError>(g_value_get_enum(value)); break;
    case PROP_CALL_TIMEOUT: settings.call_timeout = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
  gchar* shown = g_strdup_value_contents(value);
  GST_DEBUG_OBJECT(self, "%s = %s", g_param_spec_get_name(pspec), shown);
  g_free(shown);
}

static void gst_em_py_custom_get_property(GObject* object, guint prop_id, GValue* value,
                                          GParamSpec* pspec) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(object);
  GST_OBJECT_LOCK(self);
  const Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_MODULE: g_value_set_string(value, settings.module.c_str()); break;
    case PROP_CLASS: g_value_set_string(value, settings.class_name.c_str()); break;
    case PROP_FUNCTION: g_value_set_string(value, settings.function.c_str()); break;
    case PROP_OPTIONS: g_value_set_string(value, settings.options.c_str()); break;
    case PROP_PROCESS_INTERVAL: g_value_set_uint(value, settings.process_interval); break;
    case PROP_MODE: g_value_set_enum(value, static_cast<gint>(settings.mode)); break;
    case PROP_META_KEY: g_value_set_string(value, settings.meta_key.c_str()); break;
    case PROP_WRITABLE: g_value_set_boolean(value, settings.writable); break;
    case PROP_ON_ERROR: g_value_set_enum(value, static_cast<gint>(settings.on_error)); break;
    case PROP_CALL_TIMEOUT: g_value_set_double(value, settings.call_timeout); break;
    case PROP_FRAMES: g_value_set_uint64(value, self->frames.load()); break;
    case PROP_PROCESSED: g_value_set_uint64(value, self->processed.load()); break;
    case PROP_ERRORS: g_value_set_uint64(value, self->errors.load()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static std::optional<nlohmann::json> parse_options(GstEmPyCustom* self, const std::string& text) {
  try {
    nlohmann::json options = emi::parse_literal(text);
    if (options.is_object()) return options;
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("options must be a JSON object, got: %s", excerpt(text).c_str()), (nullptr));
  } catch (const emi::LiteralParseError& error) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("options is not valid JSON: %s at offset %zu", error.what(), error.offset()),
                      ("options: %s", excerpt(text).c_str()));
  }
  return std::nullopt;
}

static gboolean gst_em_py_custom_start(GstBaseTransform* transform) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(transform);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);

  self->runtime = Runtime{};
  self->frames = 0;
  self->processed = 0;
  self->errors = 0;
  if (settings.module.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No module set"),
                      ("set the `module` property to the path of a Python script"));
    return FALSE;
  }
  if (!g_file_test(settings.module.c_str(), G_FILE_TEST_IS_REGULAR)) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Python module %s not found", settings.module.c_str()),
                      (nullptr));
    return FALSE;
  }
  std::optional<nlohmann::json> options = parse_options(self, settings.options);
  if (!options) return FALSE;

  emi::ProgramSpec spec{settings.module, settings.class_name, settings.function, std::move(*options)};
  spec.call_timeout = std::chrono::milliseconds(static_cast<gint64>(settings.call_timeout * 1000));
  // From the watchdog's thread, once per call.
  spec.on_stall = [self, module = settings.module, function = settings.function, timeout = settings.call_timeout](
                      const emi::python::CallWatchdog::Stall& stall) {
    GST_ELEMENT_WARNING(self, RESOURCE, BUSY,
                        ("%s: %s() has run for %.1f s on frame %" G_GUINT64_FORMAT " and still runs, at %s",
                         module.c_str(), function.c_str(), stall.seconds, stall.frame, stall.where.c_str()),
                        ("call-timeout is %.1f s", timeout));
  };
  try {
    auto program = std::make_unique<emi::UserProgram>(spec);
    program->start();
    self->runtime.program = std::move(program);
  } catch (const emi::python::PythonError& error) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", error.what()), ("%s", error.traceback().c_str()));
    return FALSE;
  }
  self->runtime.module = settings.module;
  self->runtime.meta_key = settings.meta_key;
  GST_INFO_OBJECT(self, "started %s", settings.module.c_str());
  return TRUE;
}

static gboolean gst_em_py_custom_stop(GstBaseTransform* transform) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(transform);
  Runtime& runtime = self->runtime;
  if (runtime.program) {
    try {
      runtime.program->stop();
    } catch (const emi::python::PythonError& error) {
      GST_ELEMENT_WARNING(self, LIBRARY, SHUTDOWN, ("%s", error.what()), ("%s", error.traceback().c_str()));
    }
  }
  self->runtime = Runtime{};
  return TRUE;
}

static gboolean gst_em_py_custom_set_caps(GstBaseTransform* transform, GstCaps* incaps,
                                          GstCaps* /*outcaps*/) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(transform);
  if (!gst_video_info_from_caps(&self->runtime.info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "frames of %dx%d %s: %" GST_PTR_FORMAT, GST_VIDEO_INFO_WIDTH(&self->runtime.info),
                   GST_VIDEO_INFO_HEIGHT(&self->runtime.info),
                   gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&self->runtime.info)), incaps);
  return TRUE;
}

// Places what the script returned. Returns what could not be used (each reported as a warning
// and counted): nothing aborts on what a script returns.
static std::vector<std::string> store_results(GstEmPyCustom* self, GstBuffer* buffer, nlohmann::json document,
                                              emi::ProgramOutput& output, emi::PlacementMode mode) {
  Runtime& runtime = self->runtime;
  std::vector<std::string> problems;
  if (output.unusable) {
    problems.push_back(runtime.module + " returned something that is not a list of results: " +
                       excerpt(*output.unusable));
    report_frame_problem(self, problems.back(), output.unusable_details);
  }
  const emi::Placement placement{mode, runtime.meta_key, GST_VIDEO_INFO_WIDTH(&runtime.info),
                                 GST_VIDEO_INFO_HEIGHT(&runtime.info)};
  for (const std::string& problem :
       emi::store_results(buffer, std::move(document), output.results, std::move(output.events), placement)) {
    problems.push_back(runtime.module + ": " + problem);
    report_frame_problem(self, problems.back(), emi::json_excerpt(output.results));
  }
  return problems;
}

static GstFlowReturn gst_em_py_custom_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(transform);
  Runtime& runtime = self->runtime;
  GST_OBJECT_LOCK(self);
  const guint interval = self->settings.process_interval;
  const emi::PlacementMode mode = self->settings.mode;
  const bool writable = self->settings.writable;
  const OnError on_error = self->settings.on_error;
  GST_OBJECT_UNLOCK(self);

  const guint64 frame_index = self->frames++;
  nlohmann::json document = emi::build_document(
      buffer, {frame_index, GST_VIDEO_INFO_WIDTH(&runtime.info), GST_VIDEO_INFO_HEIGHT(&runtime.info)});
  if (interval > 1 && frame_index % interval != 0) {
    GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": not processed (process-interval %u)", frame_index, interval);
    emi::write_document(buffer, std::move(document));
    return GST_FLOW_OK;
  }

  emi::ProgramOutput output;
  try {
    output = runtime.program->process(buffer, runtime.info, writable, document, frame_index);
  } catch (const emi::CallStopped& error) {
    GST_INFO_OBJECT(self, "frame %" G_GUINT64_FORMAT ": the call was interrupted as the element stops: %s",
                    frame_index, error.what());
    return GST_FLOW_FLUSHING;
  } catch (const emi::python::PythonError& error) {
    switch (on_error) {
      case OnError::kFail:
        self->errors++;
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", error.what()), ("%s", error.traceback().c_str()));
        return GST_FLOW_ERROR;
      case OnError::kDrop:
        report_frame_problem(self, std::string(error.what()) + " (frame dropped)", error.traceback());
        return GST_BASE_TRANSFORM_FLOW_DROPPED;
      case OnError::kSkip:
        report_frame_problem(self, std::string(error.what()) + " (frame passed without results)",
                             error.traceback());
        emi::write_document(buffer, std::move(document));
        return GST_FLOW_OK;
    }
  }
  self->processed++;
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": %zu results, %zu events, %" G_GINT64_FORMAT " µs in Python",
                 frame_index, output.results.is_array() ? output.results.size() : std::size_t{!output.results.is_null()},
                 output.events.size(), output.python_us);
  const std::vector<std::string> problems = store_results(self, buffer, std::move(document), output, mode);
  // Results that can't be used (skipped, and reported above) treat the frame as on-error says.
  if (problems.empty() || on_error == OnError::kSkip) return GST_FLOW_OK;
  if (on_error == OnError::kDrop) return GST_BASE_TRANSFORM_FLOW_DROPPED;
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", problems.front().c_str()),
                    ("%zu results of this frame could not be used", problems.size()));
  return GST_FLOW_ERROR;
}

// A script blocked in process_ip holds the streaming thread, and with it the deactivation of
// the pads: after a grace period the call is interrupted, so set_state(NULL) returns.
static GstStateChangeReturn gst_em_py_custom_change_state(GstElement* element, GstStateChange transition) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(element);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY && self->runtime.program)
    self->runtime.program->interrupt_running_call(kStopGrace);
  return GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
}

static void gst_em_py_custom_finalize(GObject* object) {
  GstEmPyCustom* self = GST_EM_PY_CUSTOM(object);
  self->runtime.~Runtime();
  self->settings.~Settings();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_py_custom_class_init(GstEmPyCustomClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_em_py_custom_set_property;
  gobject_class->get_property = gst_em_py_custom_get_property;
  gobject_class->finalize = gst_em_py_custom_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_em_py_custom_change_state);

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  const auto live_flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_PLAYING);
  const auto counter_flags = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_property(gobject_class, PROP_MODULE,
      g_param_spec_string("module", "Module",
          "Path of the Python script (.py) to run; its folder is put on sys.path", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_CLASS,
      g_param_spec_string("class", "Class",
          "Name of a class in the module: start/stop/process are then methods of one instance "
          "(made with the options when its constructor takes an argument); empty: module functions",
          nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_FUNCTION,
      g_param_spec_string("function", "Function",
          "Per-frame function: function(io_buffer, in_meta, options, events), or any prefix of "
          "those parameters", kDefaultFunction, flags));
  g_object_class_install_property(gobject_class, PROP_OPTIONS,
      g_param_spec_string("options", "Options",
          "JSON object (a Python dict literal works too) handed to start(), stop() and the "
          "per-frame function as `options`", kDefaultOptions, flags));
  g_object_class_install_property(gobject_class, PROP_PROCESS_INTERVAL,
      g_param_spec_uint("process-interval", "Process interval",
          "Call the script on every Nth frame; the others pass with the frame document only",
          1, G_MAXUINT, 1, live_flags));
  g_object_class_install_property(gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
          "Where results go: auto (entry i to object i, entry N to the frame) or detect (entries "
          "with rect_params become new objects)",
          GST_TYPE_EM_PY_CUSTOM_MODE, static_cast<gint>(emi::PlacementMode::kAuto), live_flags));
  g_object_class_install_property(gobject_class, PROP_META_KEY,
      g_param_spec_string("meta-key", "Meta key",
          "Key under which results are stored in the frame document", kDefaultMetaKey, flags));
  g_object_class_install_property(gobject_class, PROP_WRITABLE,
      g_param_spec_boolean("writable", "Writable",
          "Map the frame read-write so the script may draw on it (copies the frame when its "
          "memory is shared, e.g. after a tee)", FALSE, live_flags));
  g_object_class_install_property(gobject_class, PROP_ON_ERROR,
      g_param_spec_enum("on-error", "On error",
          "What an exception in the per-frame function, or a result of it that can't be used (skipped "
          "and counted in errors), does to the frame",
          GST_TYPE_EM_PY_CUSTOM_ON_ERROR, static_cast<gint>(OnError::kSkip), live_flags));
  g_object_class_install_property(gobject_class, PROP_CALL_TIMEOUT,
      g_param_spec_double("call-timeout", "Call timeout",
          "Seconds one call of the per-frame function may run before a warning names the script, "
          "the line it is at and the frame (0: never). Stopping the element interrupts a call "
          "still running after 1 s", 0, G_MAXDOUBLE, kDefaultCallTimeout, flags));
  g_object_class_install_property(gobject_class, PROP_FRAMES,
      g_param_spec_uint64("frames", "Frames", "Frames seen since start", 0, G_MAXUINT64, 0,
                          counter_flags));
  g_object_class_install_property(gobject_class, PROP_PROCESSED,
      g_param_spec_uint64("processed", "Processed",
          "Frames the script processed without raising since start", 0, G_MAXUINT64, 0,
          counter_flags));
  g_object_class_install_property(gobject_class, PROP_ERRORS,
      g_param_spec_uint64("errors", "Errors",
          "Exceptions in the script and unusable results since start", 0, G_MAXUINT64, 0,
          counter_flags));

  gst_element_class_set_static_metadata(element_class, "EM Python custom", "Filter/Video/Analyzer",
      "Runs a Python (PyTorch, NumPy, OpenCV) program on each frame without copying it and "
      "stores its results as buffer metadata", "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_py_custom_start);
  transform_class->stop = GST_DEBUG_FUNCPTR(gst_em_py_custom_stop);
  transform_class->set_caps = GST_DEBUG_FUNCPTR(gst_em_py_custom_set_caps);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_py_custom_transform_ip);

  gst_type_mark_as_plugin_api(GST_TYPE_EM_PY_CUSTOM_MODE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_EM_PY_CUSTOM_ON_ERROR, static_cast<GstPluginAPIFlags>(0));
  GST_DEBUG_CATEGORY_INIT(gst_em_py_custom_debug, "emi-empycustom", 0, "emi Python custom element");
}

static void gst_em_py_custom_init(GstEmPyCustom* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  new (&self->settings) Settings();
  new (&self->runtime) Runtime();
  new (&self->frames) std::atomic<guint64>(0);
  new (&self->processed) std::atomic<guint64>(0);
  new (&self->errors) std::atomic<guint64>(0);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
