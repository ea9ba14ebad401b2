/**
 * SECTION:element-emdetect
 *
 * Runs a detection model given by name on each frame (or every Nth) and adds what it finds as
 * objects of the frame document (and GstVideoRegionOfInterestMeta): `class_id`, `obj_label` (from
 * the labels file), `confidence` and `rect_params` in frame pixels. The model is a torchvision
 * detector (its DEFAULT weights from torch's cache, or `model-weights`) or a model file. It is a
 * bin around an empycustom running emi.inference's ready program.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
 *   emdetect model=torchvision.models.detection.ssdlite320_mobilenet_v3_large \
 *     labels-file=coco_91cl_bkgr.txt ! emtracker ! emoverlay ! videoconvert ! autovideosink
 * ]|
 */
#include "elements/gstemdetect.h"

constexpr gdouble kDefaultThreshold = 0.5;

struct _GstEmDetect {
  GstEmModelBin parent;

  gdouble threshold;  // guarded by the object lock
};

enum {
  PROP_0,
  PROP_THRESHOLD,
};

#define gst_em_detect_parent_class parent_class
G_DEFINE_TYPE(GstEmDetect, gst_em_detect, GST_TYPE_EM_MODEL_BIN);
GST_ELEMENT_REGISTER_DEFINE(emdetect, "emdetect", GST_RANK_NONE, GST_TYPE_EM_DETECT);

static void gst_em_detect_configure(GstEmModelBin* bin, nlohmann::json& session_settings,
                                    GstElement* program) {
  GstEmDetect* self = GST_EM_DETECT(bin);
  GST_OBJECT_LOCK(self);
  session_settings["threshold"] = self->threshold;
  GST_OBJECT_UNLOCK(self);
  gst_util_set_object_arg(G_OBJECT(program), "mode", "detect");
}

static void gst_em_detect_set_property(GObject* object, guint prop_id, const GValue* value,
                                       GParamSpec* pspec) {
  GstEmDetect* self = GST_EM_DETECT(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_THRESHOLD: self->threshold = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_detect_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmDetect* self = GST_EM_DETECT(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_THRESHOLD: g_value_set_double(value, self->threshold); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_detect_class_init(GstEmDetectClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstEmModelBinClass* model_class = GST_EM_MODEL_BIN_CLASS(klass);

  gobject_class->set_property = gst_em_detect_set_property;
  gobject_class->get_property = gst_em_detect_get_property;
  model_class->task = "detect";
  model_class->configure = gst_em_detect_configure;

  g_object_class_install_property(gobject_class, PROP_THRESHOLD,
      g_param_spec_double("threshold", "Threshold", "Detections with a lower score are left out", 0.0, 1.0,
                          kDefaultThreshold,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY)));

  gst_element_class_set_static_metadata(GST_ELEMENT_CLASS(klass), "EM detect", "Filter/Video/Analyzer",
      "Detects objects with a torchvision or TorchScript model given by name; they become the frame "
      "document's objects", "emi developers");
}

static void gst_em_detect_init(GstEmDetect* self) { self->threshold = kDefaultThreshold; }
