// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emclassify
 *
 * Runs a classification model given by name on each object of the frame document (cut out of
 * the frame and batched), or on the whole frame, and stores the top class under `meta-key`:
 * `{"predicted_class": "tabby", "class_id": 281, "probability": 91.2}`. Tracked objects are
 * classified again only every `reclassify-interval` frames. The model is a torchvision classifier
 * (torchvision.models.…, or a video model of torchvision.models.video on clips of frames) or a
 * model file (ONNX, run by onnxruntime or OpenCV's DNN; TorchScript). It is a bin around an
 * empycustom running emi.inference's ready program.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *   emdetect model=torchvision.models.detection.ssdlite320_mobilenet_v3_large labels-file=coco.txt ! \
 *   emtracker ! emclassify model=torchvision.models.resnet50 model-weights=/path/w.pth \
 *     labels-file=imagenet.txt object-class=person ! emoverlay ! videoconvert ! autovideosink
 * ]|
 */
#include "elements/gstemclassify.h"

#include <string>

#include "common/gst_ptr.h"

namespace {

enum class Region { kFullFrame, kRoiList };

constexpr gdouble kDefaultThreshold = 0.0;
constexpr guint kDefaultBatchSize = 8;
constexpr char kDefaultMetaKey[] = "emclassify";

// What the properties say; guarded by the object lock.
struct Settings {
  gdouble threshold = kDefaultThreshold;
  guint batch_size = kDefaultBatchSize;
  Region region = Region::kRoiList;
  std::string object_class;
  guint reclassify_interval = 1;
  std::string meta_key = kDefaultMetaKey;
};

}  // namespace

struct _GstEmClassify {
  GstEmModelBin parent;

  Settings settings;
};

enum {
  PROP_0,
  PROP_THRESHOLD,
  PROP_BATCH_SIZE,
  PROP_INFERENCE_REGION,
  PROP_OBJECT_CLASS,
  PROP_RECLASSIFY_INTERVAL,
  PROP_META_KEY,
};

#define gst_em_classify_parent_class parent_class
G_DEFINE_TYPE(GstEmClassify, gst_em_classify, GST_TYPE_EM_MODEL_BIN);
GST_ELEMENT_REGISTER_DEFINE(emclassify, "emclassify", GST_RANK_NONE, GST_TYPE_EM_CLASSIFY);

GType gst_em_classify_region_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(Region::kFullFrame), "The whole frame; a frame-level result", "full-frame"},
      {static_cast<gint>(Region::kRoiList), "Each object of the frame document; a result per object",
       "roi-list"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstEmClassifyRegion", values));
  return type;
}

static void gst_em_classify_configure(GstEmModelBin* bin, nlohmann::json& session_settings,
                                      GstElement* program) {
  GstEmClassify* self = GST_EM_CLASSIFY(bin);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);
  const bool full_frame = settings.region == Region::kFullFrame;
  session_settings["threshold"] = settings.threshold;
  session_settings["batch_size"] = settings.batch_size;
  session_settings["inference_region"] = full_frame ? "full-frame" : "roi-list";
  session_settings["object_class"] = settings.object_class;
  session_settings["reclassify_interval"] = settings.reclassify_interval;
  // A frame's result goes to the frame even when it has objects: in empycustom's detect mode,
  // entries without rect_params do. Per-object results go to objects by index (auto).
  gst_util_set_object_arg(G_OBJECT(program), "mode", full_frame ? "detect" : "auto");
  g_object_set(program, "meta-key", settings.meta_key.c_str(), nullptr);
}

static void gst_em_classify_set_property(GObject* object, guint prop_id, const GValue* value,
                                         GParamSpec* pspec) {
  GstEmClassify* self = GST_EM_CLASSIFY(object);
  const auto text = [value] { return emi::string_of(value); };
  GST_OBJECT_LOCK(self);
  Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_THRESHOLD: settings.threshold = g_value_get_double(value); break;
    case PROP_BATCH_SIZE: settings.batch_size = g_value_get_uint(value); break;
    case PROP_INFERENCE_REGION: settings.region = static_cast<Region>(g_value_get_enum(value)); break;
    case PROP_OBJECT_CLASS: settings.object_class = text(); break;
    case PROP_RECLASSIFY_INTERVAL: settings.reclassify_interval = g_value_get_uint(value); break;
    case PROP_META_KEY: settings.meta_key = text().empty() ? kDefaultMetaKey : text(); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_classify_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmClassify* self = GST_EM_CLASSIFY(object);
  GST_OBJECT_LOCK(self);
  const Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_THRESHOLD: g_value_set_double(value, settings.threshold); break;
    case PROP_BATCH_SIZE: g_value_set_uint(value, settings.batch_size); break;
    case PROP_INFERENCE_REGION: g_value_set_enum(value, static_cast<gint>(settings.region)); break;
    case PROP_OBJECT_CLASS: g_value_set_string(value, settings.object_class.c_str()); break;
    case PROP_RECLASSIFY_INTERVAL: g_value_set_uint(value, settings.reclassify_interval); break;
    case PROP_META_KEY: g_value_set_string(value, settings.meta_key.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_classify_finalize(GObject* object) {
  GST_EM_CLASSIFY(object)->settings.~Settings();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_classify_class_init(GstEmClassifyClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstEmModelBinClass* model_class = GST_EM_MODEL_BIN_CLASS(klass);

  gobject_class->set_property = gst_em_classify_set_property;
  gobject_class->get_property = gst_em_classify_get_property;
  gobject_class->finalize = gst_em_classify_finalize;
  model_class->task = "classify";
  model_class->configure = gst_em_classify_configure;

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_THRESHOLD,
      g_param_spec_double("threshold", "Threshold",
          "Results whose top class has a lower probability (0-1) are left out", 0.0, 1.0, kDefaultThreshold,
          flags));
  g_object_class_install_property(gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint("batch-size", "Batch size",
          "Most objects of a frame in one model call (inference-region=roi-list)", 1, 1024,
          kDefaultBatchSize, flags));
  g_object_class_install_property(gobject_class, PROP_INFERENCE_REGION,
      g_param_spec_enum("inference-region", "Inference region",
          "What is classified: each object of the frame document, or the whole frame",
          GST_TYPE_EM_CLASSIFY_REGION, static_cast<gint>(Region::kRoiList), flags));
  g_object_class_install_property(gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string("object-class", "Object class",
          "Comma-separated obj_labels of the objects to classify (person,car); empty: every object",
          "", flags));
  g_object_class_install_property(gobject_class, PROP_RECLASSIFY_INTERVAL,
      g_param_spec_uint("reclassify-interval", "Reclassify interval",
          "Classify a tracked object (object_id >= 0) again only after this many frames, keeping its last "
          "result in between; 0: once per track", 0, G_MAXUINT, 1, flags));
  g_object_class_install_property(gobject_class, PROP_META_KEY,
      g_param_spec_string("meta-key", "Meta key", "Key under which results are stored in the frame document",
                          kDefaultMetaKey, flags));

  gst_element_class_set_static_metadata(GST_ELEMENT_CLASS(klass), "EM classify", "Filter/Video/Analyzer",
      "Classifies the frame or each of its objects with an ONNX, torchvision or TorchScript model given "
      "by name", "emi developers");
  gst_type_mark_as_plugin_api(GST_TYPE_EM_CLASSIFY_REGION, static_cast<GstPluginAPIFlags>(0));
}

static void gst_em_classify_init(GstEmClassify* self) {
  // GObject hands out zeroed memory; the settings are constructed here and destroyed in finalize.
  new (&self->settings) Settings();
}
