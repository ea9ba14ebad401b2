// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emdetect
 *
 * Runs a detection model given by name on each frame (or every Nth) and adds what it finds as
 * objects of the frame document (and GstVideoRegionOfInterestMeta): `class_id`, `obj_label` (from
 * the labels file), `confidence` and `rect_params` in frame pixels. The model is an ONNX detector
 * (YOLOX, YOLOv5, YOLOv8 or an exported torchvision one: the layout is guessed from its output,
 * or named by the model-proc's "converter"), a torchvision detector (its DEFAULT weights from
 * torch's cache, or `model-weights`) or a TorchScript file. `object-class` keeps only some
 * classes; `roi` limits detection to rectangles of the frame. It is a bin around an empycustom
 * running emi.inference's ready program.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *   emdetect model=yolox_nano.onnx labels-file=coco_80cl.txt object-class=person threshold=0.3 ! \
 *   emtracker ! emoverlay ! videoconvert ! autovideosink
 * ]|
 */
#include "elements/gstemdetect.h"

#include <string>

#include "common/gst_ptr.h"

namespace {

constexpr gdouble kDefaultThreshold = 0.5;

// What the properties say; guarded by the object lock.
struct Settings {
  gdouble threshold = kDefaultThreshold;
  std::string object_class;
  std::string roi;
};

}  // namespace

struct _GstEmDetect {
  GstEmModelBin parent;

  Settings settings;
};

enum {
  PROP_0,
  PROP_THRESHOLD,
  PROP_OBJECT_CLASS,
  PROP_ROI,
};

#define gst_em_detect_parent_class parent_class
G_DEFINE_TYPE(GstEmDetect, gst_em_detect, GST_TYPE_EM_MODEL_BIN);
GST_ELEMENT_REGISTER_DEFINE(emdetect, "emdetect", GST_RANK_NONE, GST_TYPE_EM_DETECT);

static void gst_em_detect_configure(GstEmModelBin* bin, nlohmann::json& session_settings,
                                    GstElement* program) {
  GstEmDetect* self = GST_EM_DETECT(bin);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);
  session_settings["threshold"] = settings.threshold;
  session_settings["object_class"] = settings.object_class;
  session_settings["roi"] = settings.roi;
  gst_util_set_object_arg(G_OBJECT(program), "mode", "detect");
}

static void gst_em_detect_set_property(GObject* object, guint prop_id, const GValue* value,
                                       GParamSpec* pspec) {
  GstEmDetect* self = GST_EM_DETECT(object);
  GST_OBJECT_LOCK(self);
  Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_THRESHOLD: settings.threshold = g_value_get_double(value); break;
    case PROP_OBJECT_CLASS: settings.object_class = emi::string_of(value); break;
    case PROP_ROI: settings.roi = emi::string_of(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_detect_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmDetect* self = GST_EM_DETECT(object);
  GST_OBJECT_LOCK(self);
  const Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_THRESHOLD: g_value_set_double(value, settings.threshold); break;
    case PROP_OBJECT_CLASS: g_value_set_string(value, settings.object_class.c_str()); break;
    case PROP_ROI: g_value_set_string(value, settings.roi.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_detect_finalize(GObject* object) {
  GST_EM_DETECT(object)->settings.~Settings();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_detect_class_init(GstEmDetectClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstEmModelBinClass* model_class = GST_EM_MODEL_BIN_CLASS(klass);

  gobject_class->set_property = gst_em_detect_set_property;
  gobject_class->get_property = gst_em_detect_get_property;
  gobject_class->finalize = gst_em_detect_finalize;
  model_class->task = "detect";
  model_class->configure = gst_em_detect_configure;

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_THRESHOLD,
      g_param_spec_double("threshold", "Threshold", "Detections with a lower score are left out", 0.0, 1.0,
                          kDefaultThreshold, flags));
  g_object_class_install_property(gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string("object-class", "Object class",
          "Comma-separated labels of the classes to keep (person,car), names from labels-file; empty: "
          "every class", "", flags));
  g_object_class_install_property(gobject_class, PROP_ROI,
      g_param_spec_string("roi", "Region of interest",
          "Detect only inside these rectangles of the frame, each run through the model on its own: "
          "left,top,width,height in frame pixels, rectangles separated by ; (0,0,640,360;640,0,640,360); "
          "its objects are clipped to it. Empty: the whole frame", "", flags));

  gst_element_class_set_static_metadata(GST_ELEMENT_CLASS(klass), "EM detect", "Filter/Video/Analyzer",
      "Detects objects with an ONNX (YOLOX, YOLOv5, YOLOv8), torchvision or TorchScript model given by "
      "name; they become the frame document's objects", "emi developers");
}

static void gst_em_detect_init(GstEmDetect* self) {
  // GObject hands out zeroed memory; the settings are constructed here and destroyed in finalize.
  new (&self->settings) Settings();
}
