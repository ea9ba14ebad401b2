// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emoverlay
 *
 * Draws the buffer's frame document on the frame, in place: each object's box (a colour per
 * track id, else per label) with a label line (`person #7: black swan 97%`), the frame-level
 * results of every element in the top-left corner, the tracker's counts in the top-right corner
 * with its counting line, and optionally the frame's timestamp in the bottom-left corner.
 * Buffers without a frame document pass untouched.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! \
 *   empycustom module=detector.py mode=detect ! emoverlay display-clock=true ! \
 *   videoconvert ! autovideosink
 * ]|
 */
#include "elements/gstemoverlay.h"

#include <gst/video/video.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "document/frame_document.h"
#include "overlay/overlay_renderer.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_overlay_debug);
#define GST_CAT_DEFAULT gst_em_overlay_debug

// cairo's 32-bit pixels are native-endian words: the format mapping below (BGRA is cairo's own
// layout) holds on little-endian machines only.
static_assert(G_BYTE_ORDER == G_LITTLE_ENDIAN, "emoverlay maps BGRA to cairo's ARGB32 directly");

namespace {

constexpr char kDefaultFont[] = "Sans";
constexpr double kDefaultLineWidth = 3.0;
constexpr guint kDefaultLabelLines = 1;

// What the properties say; guarded by the object lock.
struct Settings {
  emi::OverlayLayers layers;
  std::string result_keys;  // as set, for reading back
  double line_width = kDefaultLineWidth;
  guint label_lines = kDefaultLabelLines;
  std::string font = kDefaultFont;
};

// Streaming state, from start() to stop().
struct Runtime {
  std::unique_ptr<emi::OverlayRenderer> renderer;
  std::string font;  // the family the renderer uses
  GstVideoInfo info{};
  bool warned_unaligned = false;
};

}  // namespace

struct _GstEmOverlay {
  GstBaseTransform parent;

  Settings settings;
  Runtime runtime;
};

enum {
  PROP_0,
  PROP_DRAW_BOXES,
  PROP_DRAW_LABELS,
  PROP_DRAW_RESULTS,
  PROP_DRAW_COUNTS,
  PROP_RESULT_KEYS,
  PROP_DISPLAY_CLOCK,
  PROP_LINE_WIDTH,
  PROP_FONT,
  PROP_LABEL_LINES,
};

#define VIDEO_FORMATS "{ RGBA, RGBx, BGRA, BGRx }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(VIDEO_FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(VIDEO_FORMATS)));

#define gst_em_overlay_parent_class parent_class
G_DEFINE_TYPE(GstEmOverlay, gst_em_overlay, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(emoverlay, "emoverlay", GST_RANK_NONE, GST_TYPE_EM_OVERLAY);

static void gst_em_overlay_set_property(GObject* object, guint prop_id, const GValue* value,
                                        GParamSpec* pspec) {
  GstEmOverlay* self = GST_EM_OVERLAY(object);
  GST_OBJECT_LOCK(self);
  Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_DRAW_BOXES: settings.layers.boxes = g_value_get_boolean(value); break;
    case PROP_DRAW_LABELS: settings.layers.labels = g_value_get_boolean(value); break;
    case PROP_DRAW_RESULTS: settings.layers.results = g_value_get_boolean(value); break;
    case PROP_DRAW_COUNTS: settings.layers.counts = g_value_get_boolean(value); break;
    case PROP_DISPLAY_CLOCK: settings.layers.clock = g_value_get_boolean(value); break;
    case PROP_LINE_WIDTH: settings.line_width = g_value_get_double(value); break;
    case PROP_LABEL_LINES: settings.label_lines = g_value_get_uint(value); break;
    case PROP_RESULT_KEYS: {
      const gchar* text = g_value_get_string(value);
      const std::string keys = text != nullptr ? text : "";
      try {
        settings.layers.result_keys = emi::parse_result_keys(keys);
        settings.result_keys = keys;
      } catch (const std::invalid_argument& error) {
        // As GObject does with an out-of-range number: refused, said on stderr, old value kept.
        g_warning("%s: invalid result-keys: %s; keeping \"%s\"", GST_OBJECT_NAME(self),
                  error.what(), settings.result_keys.c_str());
      }
      break;
    }
    case PROP_FONT: {
      const gchar* font = g_value_get_string(value);
      settings.font = font != nullptr && *font != '\0' ? font : kDefaultFont;
      break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_overlay_get_property(GObject* object, guint prop_id, GValue* value,
                                        GParamSpec* pspec) {
  GstEmOverlay* self = GST_EM_OVERLAY(object);
  GST_OBJECT_LOCK(self);
  const Settings& settings = self->settings;
  switch (prop_id) {
    case PROP_DRAW_BOXES: g_value_set_boolean(value, settings.layers.boxes); break;
    case PROP_DRAW_LABELS: g_value_set_boolean(value, settings.layers.labels); break;
    case PROP_DRAW_RESULTS: g_value_set_boolean(value, settings.layers.results); break;
    case PROP_DRAW_COUNTS: g_value_set_boolean(value, settings.layers.counts); break;
    case PROP_DISPLAY_CLOCK: g_value_set_boolean(value, settings.layers.clock); break;
    case PROP_LINE_WIDTH: g_value_set_double(value, settings.line_width); break;
    case PROP_LABEL_LINES: g_value_set_uint(value, settings.label_lines); break;
    case PROP_RESULT_KEYS: g_value_set_string(value, settings.result_keys.c_str()); break;
    case PROP_FONT: g_value_set_string(value, settings.font.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

// Hands the renderer the font family; a family that isn't installed is a warning on the bus, as
// fontconfig then draws with another one.
static void use_font(GstEmOverlay* self, const std::string& font) {
  Runtime& runtime = self->runtime;
  if (const std::optional<std::string> substitute = runtime.renderer->set_font_family(font)) {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("Font family \"%s\" is not installed; drawing with \"%s\"", font.c_str(),
                         substitute->c_str()),
                        ("`fc-list : family` lists the installed families"));
  }
  runtime.font = font;
}

static gboolean gst_em_overlay_start(GstBaseTransform* transform) {
  GstEmOverlay* self = GST_EM_OVERLAY(transform);
  GST_OBJECT_LOCK(self);
  const std::string font = self->settings.font;
  GST_OBJECT_UNLOCK(self);
  self->runtime = Runtime{};
  self->runtime.renderer = std::make_unique<emi::OverlayRenderer>();
  use_font(self, font);
  return TRUE;
}

static gboolean gst_em_overlay_stop(GstBaseTransform* transform) {
  GST_EM_OVERLAY(transform)->runtime = Runtime{};
  return TRUE;
}

static gboolean gst_em_overlay_set_caps(GstBaseTransform* transform, GstCaps* incaps,
                                        GstCaps* /*outcaps*/) {
  GstEmOverlay* self = GST_EM_OVERLAY(transform);
  if (!gst_video_info_from_caps(&self->runtime.info, incaps)) {
    GST_ERROR_OBJECT(self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  return TRUE;
}

static GstFlowReturn gst_em_overlay_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmOverlay* self = GST_EM_OVERLAY(transform);
  Runtime& runtime = self->runtime;
  const std::shared_ptr<const nlohmann::json> document = emi::peek_document(buffer);
  if (!document) return GST_FLOW_OK;
  const nlohmann::json* frame = emi::find_frame_record(*document);
  if (frame == nullptr) return GST_FLOW_OK;

  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);
  const GstVideoInfo& info = runtime.info;
  const emi::OverlayScene scene = emi::describe_frame(
      *frame, settings.layers, GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info));
  if (scene.empty()) return GST_FLOW_OK;  // nothing to draw: the frame is not even mapped

  if (settings.font != runtime.font) use_font(self, settings.font);
  runtime.renderer->set_line_width(settings.line_width);
  runtime.renderer->set_label_lines(static_cast<int>(settings.label_lines));

  GstVideoFrame video_frame;
  if (!gst_video_frame_map(&video_frame, &runtime.info, buffer, GST_MAP_READWRITE)) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot map the frame for writing"), (nullptr));
    return GST_FLOW_ERROR;
  }
  const GstVideoFormat format = GST_VIDEO_FRAME_FORMAT(&video_frame);
  const emi::FramePixels pixels{
      static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&video_frame, 0)),
      GST_VIDEO_FRAME_WIDTH(&video_frame),
      GST_VIDEO_FRAME_HEIGHT(&video_frame),
      GST_VIDEO_FRAME_PLANE_STRIDE(&video_frame, 0),
      format == GST_VIDEO_FORMAT_RGBA || format == GST_VIDEO_FORMAT_BGRA,
      format == GST_VIDEO_FORMAT_RGBA || format == GST_VIDEO_FORMAT_RGBx,
  };
  if (emi::cairo_can_draw_on(pixels)) {
    runtime.renderer->draw(scene, pixels);
    GST_LOG_OBJECT(self, "pts %" GST_TIME_FORMAT ": %zu boxes, %zu labels drawn, %d left out (no room)",
                   GST_TIME_ARGS(GST_BUFFER_PTS(buffer)), scene.boxes.size(),
                   runtime.renderer->label_rects().size(), runtime.renderer->dropped_labels());
  } else if (!runtime.warned_unaligned) {
    runtime.warned_unaligned = true;
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Frames pass without overlay"),
                        ("cairo needs rows that start on 4-byte boundaries; this buffer has "
                         "stride %d", pixels.stride));
  }
  gst_video_frame_unmap(&video_frame);
  return GST_FLOW_OK;
}

static void gst_em_overlay_finalize(GObject* object) {
  GstEmOverlay* self = GST_EM_OVERLAY(object);
  self->runtime.~Runtime();
  self->settings.~Settings();
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_em_overlay_class_init(GstEmOverlayClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_em_overlay_set_property;
  gobject_class->get_property = gst_em_overlay_get_property;
  gobject_class->finalize = gst_em_overlay_finalize;

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_PLAYING);

  g_object_class_install_property(gobject_class, PROP_DRAW_BOXES,
      g_param_spec_boolean("draw-boxes", "Draw boxes",
          "Draw each object's box (a colour per track id, else per label)", TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_DRAW_LABELS,
      g_param_spec_boolean("draw-labels", "Draw labels",
          "Draw a label line above each object: label, #track id and the object's results",
          TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_DRAW_RESULTS,
      g_param_spec_boolean("draw-results", "Draw results",
          "Draw the frame-level results of every element in the top-left corner", TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_DRAW_COUNTS,
      g_param_spec_boolean("draw-counts", "Draw counts",
          "Draw the tracker's counts (frame[\"counts\"]) in the top-right corner and its "
          "counting line", TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_RESULT_KEYS,
      g_param_spec_string("result-keys", "Result keys",
          "Comma-separated keys whose results are shown (e.g. \"emcustom,action\"); empty: all",
          "", flags));
  g_object_class_install_property(gobject_class, PROP_DISPLAY_CLOCK,
      g_param_spec_boolean("display-clock", "Display clock",
          "Draw the frame's timestamp in the bottom-left corner", FALSE, flags));
  g_object_class_install_property(gobject_class, PROP_LINE_WIDTH,
      g_param_spec_double("line-width", "Line width",
          "Width of box outlines and the counting line, in pixels", 1.0, 64.0, kDefaultLineWidth,
          flags));
  g_object_class_install_property(gobject_class, PROP_FONT,
      g_param_spec_string("font", "Font",
          "Pango font family of the text (its size follows the frame height)", kDefaultFont,
          flags));
  g_object_class_install_property(gobject_class, PROP_LABEL_LINES,
      g_param_spec_uint("label-lines", "Label lines",
          "Lines an object's label may take when it is wider than the box (its parts stacked); with 1, "
          "a label too wide shows the label and track id only. Labels are scaled to their box and "
          "the frame, and a label that would overlap another is moved or left out", 1, 8,
          kDefaultLabelLines, flags));

  gst_element_class_set_static_metadata(element_class, "EM overlay", "Filter/Effect/Video",
      "Draws the frame document's objects, track ids, labels, results and counts on the frame",
      "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_overlay_start);
  transform_class->stop = GST_DEBUG_FUNCPTR(gst_em_overlay_stop);
  transform_class->set_caps = GST_DEBUG_FUNCPTR(gst_em_overlay_set_caps);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_overlay_transform_ip);

  GST_DEBUG_CATEGORY_INIT(gst_em_overlay_debug, "emi-emoverlay", 0, "emi overlay element");
}

static void gst_em_overlay_init(GstEmOverlay* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  new (&self->settings) Settings();
  new (&self->runtime) Runtime();
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
