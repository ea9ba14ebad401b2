// SPDX-License-Identifier: LGPL-2.1-or-later
#include "elements/gstemmodelbin.h"

#include <gst/video/video.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/gst_ptr.h"
#include "elements/gstempycustom.h"
#include "embed/python_convert.h"
#include "embed/python_host.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_model_bin_debug);
#define GST_CAT_DEFAULT gst_em_model_bin_debug

namespace {

namespace py = pybind11;
using emi::python::PythonError;

enum class Device { kAuto, kCpu, kCuda };
enum class Backend { kAuto, kTorch, kOnnxRuntime, kOpenCV };

constexpr const char* kDeviceNames[] = {"auto", "cpu", "cuda"};
constexpr const char* kBackendNames[] = {"auto", "torch", "onnxruntime", "opencv"};
constexpr char kProgramClass[] = "ModelProgram";
// A shared model's batches: emi.inference's defaults (sessions.DEFAULT_MAX_BATCH_SIZE), so that a
// model call takes what came while the model was busy and nobody waits for company.
constexpr guint kDefaultMaxBatchSize = 8;
constexpr guint kMaxMaxBatchSize = 1024;
constexpr gdouble kDefaultMaxBatchDelay = 0.0;  // ms
constexpr gdouble kMaxMaxBatchDelay = 60000.0;  // ms: a minute
constexpr char kInstallHint[] =
    " (install emi's Python package with `meson install`, or put the source tree's python/ folder "
    "on PYTHONPATH)";

using UniquePad = std::unique_ptr<GstPad, emi::ReleaseWith<gst_object_unref>>;

// What the properties say; guarded by the object lock.
struct Settings {
  std::string model;
  std::string model_weights;
  std::string model_proc;
  std::string labels_file;
  Device device = Device::kAuto;
  guint inference_interval = 1;
  gboolean random_weights = FALSE;
  Backend backend = Backend::kAuto;
  gboolean trust_model_file = FALSE;
  guint max_batch_size = kDefaultMaxBatchSize;
  gdouble max_batch_delay = kDefaultMaxBatchDelay;  // ms
};

// An error to post: the GError domain and code, the message and the debug text (a traceback).
struct Failure {
  GQuark domain;
  gint code;
  std::string message;
  std::string debug;
};

}  // namespace

struct GstEmModelBinPrivate {
  Settings settings;
  GstElement* program = nullptr;  // the empycustom child; the bin holds its reference
  bool has_format_filter = false;
  std::string session;  // token of the open session; empty when none is open
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_MODEL_WEIGHTS,
  PROP_MODEL_PROC,
  PROP_LABELS_FILE,
  PROP_DEVICE,
  PROP_INFERENCE_INTERVAL,
  PROP_RANDOM_WEIGHTS,
  PROP_BACKEND,
  PROP_TRUST_MODEL_FILE,
  PROP_CALL_TIMEOUT,
  PROP_MAX_BATCH_SIZE,
  PROP_MAX_BATCH_DELAY,
};

// The packed formats whose pixels the model's pre-processing reads in place.
#define FRAME_CAPS "video/x-raw, format=(string){ RGBA, RGBx, BGRA, BGRx, RGB, BGR }"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(FRAME_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(FRAME_CAPS));

#define gst_em_model_bin_parent_class parent_class
G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(GstEmModelBin, gst_em_model_bin, GST_TYPE_BIN);

GType gst_em_model_device_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(Device::kAuto), "CUDA when torch sees a CUDA device, else the CPU", "auto"},
      {static_cast<gint>(Device::kCpu), "The CPU", "cpu"},
      {static_cast<gint>(Device::kCuda), "The first CUDA device", "cuda"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstEmModelDevice", values));
  return type;
}

GType gst_em_model_backend_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(Backend::kAuto),
       "ONNX files with ONNX Runtime when importable, else OpenCV's DNN; other models with torch", "auto"},
      {static_cast<gint>(Backend::kTorch), "torch (torchvision models, TorchScript files)", "torch"},
      {static_cast<gint>(Backend::kOnnxRuntime), "ONNX Runtime (ONNX files)", "onnxruntime"},
      {static_cast<gint>(Backend::kOpenCV), "OpenCV's DNN module (ONNX files)", "opencv"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstEmModelBackend", values));
  return type;
}

static GstEmModelBinPrivate& private_of(GstEmModelBin* self) {
  return *static_cast<GstEmModelBinPrivate*>(gst_em_model_bin_get_instance_private(self));
}

static std::pair<GQuark, gint> error_code_of(const std::string& reason) {
  if (reason == "not-found") return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND};
  if (reason == "unreadable") return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ};
  if (reason == "invalid") return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS};
  if (reason == "dry-run-failed") return {GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION};
  return {GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT};
}

// Runs `call` with the emi.inference module, under the GIL. A ModelSetupError becomes a failure
// with its own message and the code its reason calls for; any other exception a LIBRARY/INIT
// failure that says what was being done (`context`).
template <typename Call>
static std::optional<Failure> with_inference(const std::string& context, Call&& call) {
  try {
    emi::python::ensure_started();
  } catch (const PythonError& error) {
    return Failure{GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, error.what(), error.traceback()};
  }
  emi::python::GilGuard gil;
  py::object inference;
  try {
    inference = py::module_::import("emi.inference");
  } catch (py::error_already_set& error) {
    PythonError failure = emi::python::to_error(error, "importing emi.inference");
    return Failure{GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, failure.what() + std::string(kInstallHint),
                   failure.traceback()};
  }
  try {
    call(inference);
    return std::nullopt;
  } catch (py::error_already_set& error) {
    const PythonError described = emi::python::to_error(error, context);
    try {
      if (error.matches(inference.attr("ModelSetupError"))) {
        const auto [domain, code] = error_code_of(emi::python::utf8_text(error.value().attr("reason")));
        return Failure{domain, code, emi::python::utf8_text(error.value()), described.traceback()};
      }
    } catch (const std::exception&) {
      PyErr_Clear();  // a ModelSetupError that can't be read is reported as any other exception
    }
    return Failure{GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, described.what(), described.traceback()};
  } catch (const std::exception& error) {  // what the call returned did not convert
    return Failure{GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, context + ": " + error.what(), ""};
  }
}

static void post_error(GstEmModelBin* self, const Failure& failure) {
  GST_WARNING_OBJECT(self, "%s", failure.message.c_str());
  gst_element_message_full(GST_ELEMENT(self), GST_MESSAGE_ERROR, failure.domain, failure.code,
                           g_strdup(failure.message.c_str()), g_strdup(failure.debug.c_str()), __FILE__,
                           GST_FUNCTION, __LINE__);
}

// What the session asks to be said (a model file loaded as a full pickle), as warnings.
static void post_session_warnings(GstEmModelBin* self, const std::string& token) {
  std::vector<std::string> warnings;
  const std::optional<Failure> failure =
      with_inference("reading the session's warnings", [&](py::object inference) {
        // Encoded in Python, with replacement: a path that is not valid UTF-8 can't throw here.
        for (py::handle warning : inference.attr("session_warnings")(token))
          warnings.push_back(warning.attr("encode")("utf-8", "replace").cast<std::string>());
      });
  if (failure) GST_WARNING_OBJECT(self, "%s", failure->message.c_str());
  for (const std::string& warning : warnings)
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("%s", warning.c_str()), (nullptr));
}

// Loads the labels, the model-proc and the model under a new session token and points the
// empycustom at it. A setting that can't work is an error on the bus, and false.
static bool open_session(GstEmModelBin* self) {
  GstEmModelBinPrivate& priv = private_of(self);
  if (!priv.has_format_filter) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("The capsfilter element is missing"),
                      ("install GStreamer's core elements (libgstcoreelements)"));
    return false;
  }
  GST_OBJECT_LOCK(self);
  const Settings settings = priv.settings;
  GST_OBJECT_UNLOCK(self);

  nlohmann::json session_settings{{"task", GST_EM_MODEL_BIN_GET_CLASS(self)->task},
                                  {"model", settings.model},
                                  {"model_weights", settings.model_weights},
                                  {"model_proc", settings.model_proc},
                                  {"labels_file", settings.labels_file},
                                  {"device", kDeviceNames[static_cast<int>(settings.device)]},
                                  {"random_weights", settings.random_weights != FALSE},
                                  {"backend", kBackendNames[static_cast<int>(settings.backend)]},
                                  {"trust_model_file", settings.trust_model_file != FALSE},
                                  {"inference_interval", settings.inference_interval},
                                  {"max_batch_size", settings.max_batch_size},
                                  {"max_batch_delay", settings.max_batch_delay}};
  GST_EM_MODEL_BIN_GET_CLASS(self)->configure(self, session_settings, priv.program);

  static std::atomic<guint> sessions{0};
  const std::string token = std::string(GST_OBJECT_NAME(self)) + "#" + std::to_string(sessions++);
  std::string program_path;
  const std::optional<Failure> failure =
      with_inference("opening model " + settings.model, [&](py::object inference) {
        inference.attr("open_session")(token, emi::python::to_python(session_settings));
        program_path = inference.attr("PROGRAM_PATH").cast<std::string>();
      });
  if (failure) {
    post_error(self, *failure);
    return false;
  }
  post_session_warnings(self, token);
  priv.session = token;
  g_object_set(priv.program, "module", program_path.c_str(), "class", kProgramClass, "options",
               nlohmann::json{{"session", token}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(),
               nullptr);
  GST_INFO_OBJECT(self, "opened %s as %s", settings.model.c_str(), token.c_str());
  return true;
}

static void close_session(GstEmModelBin* self) {
  GstEmModelBinPrivate& priv = private_of(self);
  if (priv.session.empty()) return;
  const std::optional<Failure> failure =
      with_inference("closing the model session",
                     [&](py::object inference) { inference.attr("close_session")(priv.session); });
  if (failure) GST_WARNING_OBJECT(self, "%s", failure->message.c_str());
  priv.session.clear();
}

// The dry run on a blank frame of the new caps: a model that can't take these frames fails here,
// with an error, and the caps are refused.
static bool prepare_session(GstEmModelBin* self, GstCaps* caps) {
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Caps are not raw video"), ("%" GST_PTR_FORMAT, caps));
    return false;
  }
  const std::string& token = private_of(self).session;
  const std::optional<Failure> failure =
      with_inference("the model's dry run", [&](py::object inference) {
        inference.attr("prepare_session")(token, GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info),
                                          gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)));
      });
  if (failure) {
    post_error(self, *failure);
    return false;
  }
  GST_INFO_OBJECT(self, "dry run passed for %" GST_PTR_FORMAT, caps);
  return true;
}

static gboolean gst_em_model_bin_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps* caps = nullptr;
    gst_event_parse_caps(event, &caps);
    if (!prepare_session(GST_EM_MODEL_BIN(parent), caps)) {
      gst_event_unref(event);
      return FALSE;
    }
  }
  return gst_pad_event_default(pad, parent, event);
}

static GstStateChangeReturn gst_em_model_bin_change_state(GstElement* element, GstStateChange transition) {
  GstEmModelBin* self = GST_EM_MODEL_BIN(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !open_session(self)) return GST_STATE_CHANGE_FAILURE;
  const GstStateChangeReturn result = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  // The program (in empycustom) lets go of the session when it stops.
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && result == GST_STATE_CHANGE_FAILURE))
    close_session(self);
  return result;
}

static void gst_em_model_bin_set_property(GObject* object, guint prop_id, const GValue* value,
                                          GParamSpec* pspec) {
  GstEmModelBin* self = GST_EM_MODEL_BIN(object);
  auto text = [value] {
    const gchar* string = g_value_get_string(value);
    return std::string(string != nullptr ? string : "");
  };
  if (prop_id == PROP_CALL_TIMEOUT) {  // the program's own (the empycustom inside)
    g_object_set_property(G_OBJECT(private_of(self).program), "call-timeout", value);
    return;
  }
  GST_OBJECT_LOCK(self);
  Settings& settings = private_of(self).settings;
  switch (prop_id) {
    case PROP_MODEL: settings.model = text(); break;
    case PROP_MODEL_WEIGHTS: settings.model_weights = text(); break;
    case PROP_MODEL_PROC: settings.model_proc = text(); break;
    case PROP_LABELS_FILE: settings.labels_file = text(); break;
    case PROP_DEVICE: settings.device = static_cast<Device>(g_value_get_enum(value)); break;
    case PROP_INFERENCE_INTERVAL: settings.inference_interval = g_value_get_uint(value); break;
    case PROP_RANDOM_WEIGHTS: settings.random_weights = g_value_get_boolean(value); break;
    case PROP_BACKEND: settings.backend = static_cast<Backend>(g_value_get_enum(value)); break;
    case PROP_TRUST_MODEL_FILE: settings.trust_model_file = g_value_get_boolean(value); break;
    case PROP_MAX_BATCH_SIZE: settings.max_batch_size = g_value_get_uint(value); break;
    case PROP_MAX_BATCH_DELAY: settings.max_batch_delay = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
  gchar* shown = g_strdup_value_contents(value);
  GST_DEBUG_OBJECT(self, "%s = %s (used from the next start)", g_param_spec_get_name(pspec), shown);
  g_free(shown);
}

static void gst_em_model_bin_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmModelBin* self = GST_EM_MODEL_BIN(object);
  if (prop_id == PROP_CALL_TIMEOUT) {
    g_object_get_property(G_OBJECT(private_of(self).program), "call-timeout", value);
    return;
  }
  GST_OBJECT_LOCK(self);
  const Settings& settings = private_of(self).settings;
  switch (prop_id) {
    case PROP_MODEL: g_value_set_string(value, settings.model.c_str()); break;
    case PROP_MODEL_WEIGHTS: g_value_set_string(value, settings.model_weights.c_str()); break;
    case PROP_MODEL_PROC: g_value_set_string(value, settings.model_proc.c_str()); break;
    case PROP_LABELS_FILE: g_value_set_string(value, settings.labels_file.c_str()); break;
    case PROP_DEVICE: g_value_set_enum(value, static_cast<gint>(settings.device)); break;
    case PROP_INFERENCE_INTERVAL: g_value_set_uint(value, settings.inference_interval); break;
    case PROP_RANDOM_WEIGHTS: g_value_set_boolean(value, settings.random_weights); break;
    case PROP_BACKEND: g_value_set_enum(value, static_cast<gint>(settings.backend)); break;
    case PROP_TRUST_MODEL_FILE: g_value_set_boolean(value, settings.trust_model_file); break;
    case PROP_MAX_BATCH_SIZE: g_value_set_uint(value, settings.max_batch_size); break;
    case PROP_MAX_BATCH_DELAY: g_value_set_double(value, settings.max_batch_delay); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_model_bin_finalize(GObject* object) {
  GstEmModelBin* self = GST_EM_MODEL_BIN(object);
  close_session(self);
  private_of(self).~GstEmModelBinPrivate();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_model_bin_class_init(GstEmModelBinClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_em_model_bin_set_property;
  gobject_class->get_property = gst_em_model_bin_get_property;
  gobject_class->finalize = gst_em_model_bin_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_em_model_bin_change_state);

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model",
          "A torchvision model by its import path (torchvision.models.resnet50, "
          "torchvision.models.detection.ssdlite320_mobilenet_v3_large, torchvision.models.video.r3d_18), "
          "or a model file: ONNX (.onnx), TorchScript (torch.jit.save) or a whole pickled model (torch.save; "
          "only with trust-model-file=true)",
          nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_MODEL_WEIGHTS,
      g_param_spec_string("model-weights", "Model weights",
          "A state_dict file for a torchvision model; empty: its DEFAULT weights from torch's cache "
          "(an error says how to get them when they are not there)", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_MODEL_PROC,
      g_param_spec_string("model-proc", "Model proc",
          "A JSON file of pre- and post-processing (resize, crop, mean, std, range, color_space, method, "
          "clip_length); it overrides the weights' own transforms", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_LABELS_FILE,
      g_param_spec_string("labels-file", "Labels file",
          "A text file with one label per line, line i naming class i; empty: the labels that came with "
          "the DEFAULT weights, else class numbers", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_DEVICE,
      g_param_spec_enum("device", "Device",
                        "Where the model runs: auto (CUDA when torch sees it), cpu or cuda",
                        GST_TYPE_EM_MODEL_DEVICE,
                        static_cast<gint>(Device::kAuto), flags));
  g_object_class_install_property(gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint("inference-interval", "Inference interval",
          "Run the model on every Nth frame; the frames between reuse its last results", 1, G_MAXUINT, 1,
          flags));
  g_object_class_install_property(gobject_class, PROP_RANDOM_WEIGHTS,
      g_param_spec_boolean("random-weights", "Random weights",
          "Give a torchvision model random (untrained) weights instead of model-weights or its DEFAULT "
          "weights: for tests", FALSE, flags));
  g_object_class_install_property(gobject_class, PROP_BACKEND,
      g_param_spec_enum("backend", "Backend",
                        "What runs the model: auto (ONNX files with onnxruntime when importable, else opencv; "
                        "other models with torch), torch, onnxruntime or opencv",
                        GST_TYPE_EM_MODEL_BACKEND, static_cast<gint>(Backend::kAuto), flags));
  g_object_class_install_property(gobject_class, PROP_TRUST_MODEL_FILE,
      g_param_spec_boolean("trust-model-file", "Trust model file",
          "Load a model file that is a whole pickled torch model (torch.save(model)), which runs code from "
          "the file as it loads (a warning says so); without it only TorchScript, ONNX and tensor-only "
          "files load", FALSE, flags));
  g_object_class_install_property(gobject_class, PROP_CALL_TIMEOUT,
      g_param_spec_double("call-timeout", "Call timeout",
          "Seconds one frame's inference may run before a warning names the line it is at and the frame "
          "(0: never); stopping the element interrupts a call still running after 1 s",
          0, G_MAXDOUBLE, 10.0, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_BATCH_SIZE,
      g_param_spec_uint("max-batch-size", "Max batch size",
          "Most images in one model call, gathered from every element of the process that shares the model "
          "(the same model file, weights and device: one loaded copy); the element that opens the model "
          "first sets it",
          1, kMaxMaxBatchSize, kDefaultMaxBatchSize, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_BATCH_DELAY,
      g_param_spec_double("max-batch-delay", "Max batch delay",
          "Milliseconds a model call waits for requests of the other elements sharing the model until "
          "max-batch-size images are there (0: no waiting; requests that come while the model is busy "
          "still run together); the element that opens the model first sets it",
          0.0, kMaxMaxBatchDelay, kDefaultMaxBatchDelay, flags));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_type_mark_as_plugin_api(GST_TYPE_EM_MODEL_BIN, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_EM_MODEL_DEVICE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_EM_MODEL_BACKEND, static_cast<GstPluginAPIFlags>(0));
  GST_DEBUG_CATEGORY_INIT(gst_em_model_bin_debug, "emi-emmodelbin", 0,
                          "emi model elements (emdetect, emclassify)");
}

// A ghost pad of the bin for `target`, from the bin's template of the same name.
static GstPad* add_ghost_pad(GstEmModelBin* self, const char* name, GstElement* child) {
  UniquePad target(gst_element_get_static_pad(child, name));
  GstPad* ghost = gst_ghost_pad_new_from_template(
      name, target.get(), gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), name));
  gst_element_add_pad(GST_ELEMENT(self), ghost);
  return ghost;
}

static void gst_em_model_bin_init(GstEmModelBin* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  GstEmModelBinPrivate& priv = *new (&private_of(self)) GstEmModelBinPrivate();
  priv.program = GST_ELEMENT(g_object_new(GST_TYPE_EM_PY_CUSTOM, "name", "program", nullptr));
  gst_bin_add(GST_BIN(self), priv.program);
  // Only packed RGB reaches the program, so that an upstream videoconvert converts to it.
  GstElement* formats = gst_element_factory_make("capsfilter", "formats");
  GstElement* first = priv.program;
  if (formats != nullptr) {
    emi::UniqueCaps caps(gst_caps_from_string(FRAME_CAPS));
    g_object_set(formats, "caps", caps.get(), nullptr);
    gst_bin_add(GST_BIN(self), formats);
    gst_element_link(formats, priv.program);
    first = formats;
    priv.has_format_filter = true;
  }
  GstPad* sink = add_ghost_pad(self, "sink", first);
  gst_pad_set_event_function(sink, gst_em_model_bin_sink_event);
  add_ghost_pad(self, "src", priv.program);
}
