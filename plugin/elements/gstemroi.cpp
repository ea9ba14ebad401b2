// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-emroi
 *
 * A stream's regions of interest (the stream config's `roi`, which `emi run` turns into this
 * element's `roi` property). With `drop=true` (the default) objects of the frame document whose
 * box bottom-centre (where a person or a car touches the ground) lies outside every region are
 * removed, with their GstVideoRegionOfInterestMeta, so that a tracker after it never sees them;
 * objects without a box (frame-level results) stay. With `draw=true` it outlines the regions on
 * packed RGB frames (RGBA, BGRx, RGB, …). Without regions it passes everything.
 *
 * `roi` is JSON: a list of polygons, each a list of at least three [x, y] points in pixels of
 * the frames it gets; a point on a polygon's edge is inside.
 *
 * |[
 * gst-launch-1.0 videotestsrc ! video/x-raw,format=RGBA,width=640,height=360 ! \
 *   empycustom mode=detect module=detector.py ! \
 *   emroi roi="[[[0,180],[640,180],[640,360],[0,360]]]" ! emtracker ! \
 *   emoverlay ! emroi drop=false draw=true roi="[[[0,180],[640,180],[640,360],[0,360]]]" ! …
 * ]|
 */
#include "elements/gstemroi.h"

#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/gst_ptr.h"
#include "document/frame_document.h"

GST_DEBUG_CATEGORY_STATIC(gst_em_roi_debug);
#define GST_CAT_DEFAULT gst_em_roi_debug

namespace {

using nlohmann::json;

struct Point {
  double x;
  double y;
};
using Polygon = std::vector<Point>;

// What the properties say; guarded by the object lock. The regions are parsed at start.
struct Settings {
  std::string roi;
  bool drop = true;
  bool draw = false;
};

// Streaming state, from start() to stop().
struct Runtime {
  std::vector<Polygon> regions;
  bool drop = true;
  bool draw = false;
  GstVideoInfo info{};
  bool drawable = false;  // the caps' format is packed RGB
  guint64 frames = 0;
};

std::vector<Polygon> parse_regions(const std::string& text) {
  if (text.empty()) return {};
  const json value = json::parse(text, nullptr, false);
  if (value.is_discarded()) throw std::invalid_argument("not JSON");
  if (!value.is_array()) throw std::invalid_argument("not a list of polygons");
  std::vector<Polygon> regions;
  for (std::size_t index = 0; index < value.size(); ++index) {
    const json& polygon = value[index];
    const std::string where = "polygon " + std::to_string(index);
    if (!polygon.is_array() || polygon.size() < 3)
      throw std::invalid_argument(where + " is not a list of at least three [x, y] points");
    Polygon points;
    for (const json& point : polygon) {
      if (!point.is_array() || point.size() != 2 || !point[0].is_number() || !point[1].is_number() ||
          !std::isfinite(point[0].get<double>()) || !std::isfinite(point[1].get<double>()))
        throw std::invalid_argument(where + " has a point that is not [x, y]: " + point.dump());
      points.push_back({point[0].get<double>(), point[1].get<double>()});
    }
    regions.push_back(std::move(points));
  }
  return regions;
}

bool on_segment(const Point& p, const Point& a, const Point& b) {
  const double cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
  const double scale = std::max({std::abs(b.x - a.x), std::abs(b.y - a.y), 1.0});
  return std::abs(cross) <= 1e-9 * scale * scale && p.x >= std::min(a.x, b.x) && p.x <= std::max(a.x, b.x) &&
         p.y >= std::min(a.y, b.y) && p.y <= std::max(a.y, b.y);
}

// Even-odd rule; the edges belong to the polygon.
bool inside(const Polygon& polygon, const Point& p) {
  bool in = false;
  for (std::size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
    const Point& a = polygon[i];
    const Point& b = polygon[j];
    if (on_segment(p, a, b)) return true;
    if ((a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x) in = !in;
  }
  return in;
}

bool inside_any(const std::vector<Polygon>& regions, const Point& p) {
  return std::any_of(regions.begin(), regions.end(), [&](const Polygon& polygon) { return inside(polygon, p); });
}

// Where the object stands: the middle of its box's bottom edge. None for an object without a box.
std::optional<Point> bottom_centre(const json& object) {
  if (!object.is_object()) return std::nullopt;
  const auto rect = object.find("rect_params");
  if (rect == object.end() || !rect->is_object()) return std::nullopt;
  const auto number = [&](const char* key) -> std::optional<double> {
    const auto found = rect->find(key);
    if (found == rect->end() || !found->is_number()) return std::nullopt;
    return found->get<double>();
  };
  const auto left = number("left"), top = number("top"), width = number("width"), height = number("height");
  if (!left || !top || !width || !height) return std::nullopt;
  return Point{*left + *width / 2.0, *top + *height};
}

bool is_emi_object_roi(GstVideoRegionOfInterestMeta* roi) {
  return gst_video_region_of_interest_meta_get_param(roi, emi::kRoiParamsName) != nullptr;
}

// Removes the ROI metas the kept objects are mirrored again as (ours: their indices change), and
// other elements' ROI metas that stand outside every region.
void remove_outside_rois(GstBuffer* buffer, const std::vector<Polygon>& regions) {
  gpointer state = nullptr;
  std::vector<GstMeta*> doomed;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    const Point foot{roi->x + roi->w / 2.0, static_cast<double>(roi->y + roi->h)};
    if (is_emi_object_roi(roi) || !inside_any(regions, foot)) doomed.push_back(meta);
  }
  for (GstMeta* meta : doomed) gst_buffer_remove_meta(buffer, meta);
}

// One pixel of a packed RGB frame.
void put_pixel(GstVideoFrame* frame, int x, int y, const guint8 colour[3]) {
  if (x < 0 || y < 0 || x >= GST_VIDEO_FRAME_WIDTH(frame) || y >= GST_VIDEO_FRAME_HEIGHT(frame)) return;
  guint8* row = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(frame, 0)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
  const int pixel_stride = GST_VIDEO_FRAME_COMP_PSTRIDE(frame, 0);
  for (int component = 0; component < 3; ++component)
    row[x * pixel_stride + GST_VIDEO_FRAME_COMP_OFFSET(frame, component)] = colour[component];
  if (GST_VIDEO_INFO_HAS_ALPHA(&frame->info))
    row[x * pixel_stride + GST_VIDEO_FRAME_COMP_OFFSET(frame, GST_VIDEO_COMP_A)] = 255;
}

// A line `thickness` pixels wide (Bresenham, a square brush).
void draw_line(GstVideoFrame* frame, Point from, Point to, int thickness, const guint8 colour[3]) {
  int x0 = static_cast<int>(std::lround(from.x)), y0 = static_cast<int>(std::lround(from.y));
  const int x1 = static_cast<int>(std::lround(to.x)), y1 = static_cast<int>(std::lround(to.y));
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int step_x = x0 < x1 ? 1 : -1, step_y = y0 < y1 ? 1 : -1;
  const int low = -(thickness - 1) / 2, high = thickness / 2;
  const int width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
  // Endpoints far outside the frame: clamping keeps the walk bounded by the frame's size.
  const auto far_outside = [&](int x, int y) { return std::abs(x) > 8 * width + 8 || std::abs(y) > 8 * height + 8; };
  if (far_outside(x0, y0) || far_outside(x1, y1)) return;
  int error = dx + dy;
  while (true) {
    for (int oy = low; oy <= high; ++oy)
      for (int ox = low; ox <= high; ++ox) put_pixel(frame, x0 + ox, y0 + oy, colour);
    if (x0 == x1 && y0 == y1) break;
    const int doubled = 2 * error;
    if (doubled >= dy) {
      error += dy;
      x0 += step_x;
    }
    if (doubled <= dx) {
      error += dx;
      y0 += step_y;
    }
  }
}

bool packed_rgb(GstVideoFormat format) {
  const GstVideoFormatInfo* info = gst_video_format_get_info(format);
  return info != nullptr && GST_VIDEO_FORMAT_INFO_IS_RGB(info) && GST_VIDEO_FORMAT_INFO_N_PLANES(info) == 1 &&
         GST_VIDEO_FORMAT_INFO_BITS(info) == 8 && GST_VIDEO_FORMAT_INFO_N_COMPONENTS(info) >= 3 &&
         !GST_VIDEO_FORMAT_INFO_HAS_PALETTE(info);
}

}  // namespace

struct _GstEmRoi {
  GstBaseTransform parent;

  Settings settings;
  Runtime runtime;
  std::atomic<guint64> dropped;
};

enum {
  PROP_0,
  PROP_ROI,
  PROP_DROP,
  PROP_DRAW,
  PROP_DROPPED,
};

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));

G_DEFINE_TYPE(GstEmRoi, gst_em_roi, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(emroi, "emroi", GST_RANK_NONE, GST_TYPE_EM_ROI);

static void gst_em_roi_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstEmRoi* self = GST_EM_ROI(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_ROI: self->settings.roi = emi::string_of(value); break;
    case PROP_DROP: self->settings.drop = g_value_get_boolean(value); break;
    case PROP_DRAW: self->settings.draw = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_em_roi_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstEmRoi* self = GST_EM_ROI(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_ROI: g_value_set_string(value, self->settings.roi.c_str()); break;
    case PROP_DROP: g_value_set_boolean(value, self->settings.drop); break;
    case PROP_DRAW: g_value_set_boolean(value, self->settings.draw); break;
    case PROP_DROPPED: g_value_set_uint64(value, self->dropped.load()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static gboolean gst_em_roi_start(GstBaseTransform* transform) {
  GstEmRoi* self = GST_EM_ROI(transform);
  GST_OBJECT_LOCK(self);
  const Settings settings = self->settings;
  GST_OBJECT_UNLOCK(self);
  self->runtime = Runtime{};
  self->runtime.drop = settings.drop;
  self->runtime.draw = settings.draw;
  try {
    self->runtime.regions = parse_regions(settings.roi);
  } catch (const std::invalid_argument& error) {
    // The stream goes on, every object counted, as without regions.
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("Invalid roi property \"%s\": %s; no region applied", settings.roi.c_str(), error.what()),
                        ("roi is a JSON list of polygons, each a list of [x, y] points, e.g. "
                         "[[[0,0],[320,0],[320,360],[0,360]]]"));
  }
  GST_DEBUG_OBJECT(self, "start: %zu regions, drop %d, draw %d", self->runtime.regions.size(), settings.drop,
                   settings.draw);
  return TRUE;
}

static gboolean gst_em_roi_set_caps(GstBaseTransform* transform, GstCaps* incaps, GstCaps* /*outcaps*/) {
  GstEmRoi* self = GST_EM_ROI(transform);
  if (!gst_video_info_from_caps(&self->runtime.info, incaps)) {
    GST_ERROR_OBJECT(self, "caps that are not video: %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  self->runtime.drawable = packed_rgb(GST_VIDEO_INFO_FORMAT(&self->runtime.info));
  if (self->runtime.draw && !self->runtime.drawable)
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("emroi draws on packed RGB frames only, not %s: regions not drawn",
                                               GST_VIDEO_INFO_NAME(&self->runtime.info)), (nullptr));
  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, incaps);
  return TRUE;
}

static void drop_outside(GstEmRoi* self, GstBuffer* buffer) {
  const std::vector<Polygon>& regions = self->runtime.regions;
  if (!emi::has_document(buffer)) {
    remove_outside_rois(buffer, regions);
    return;
  }
  std::optional<json> document = emi::take_document(buffer);
  if (!document) return;
  json& frame = emi::frame_record(*document);
  const auto found = frame.find("object");
  if (found == frame.end() || !found->is_array()) {
    emi::write_document(buffer, std::move(*document));
    return;
  }
  json& objects = *found;
  json kept = json::array();
  std::size_t dropped = 0;
  for (json& object : objects) {
    const std::optional<Point> foot = bottom_centre(object);
    if (!foot || inside_any(regions, *foot)) {
      kept.push_back(std::move(object));
    } else {
      ++dropped;
    }
  }
  GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": %zu of %zu objects inside the regions, %zu dropped",
                 self->runtime.frames, kept.size(), kept.size() + dropped, dropped);
  if (dropped > 0) {
    self->dropped += dropped;
    remove_outside_rois(buffer, regions);
    for (std::size_t index = 0; index < kept.size(); ++index)
      if (bottom_centre(kept[index])) emi::attach_object_roi(buffer, kept[index], static_cast<guint>(index));
  }
  objects = std::move(kept);
  emi::write_document(buffer, std::move(*document));
}

static void draw_regions(GstEmRoi* self, GstBuffer* buffer) {
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &self->runtime.info, buffer, GST_MAP_READWRITE)) {
    GST_WARNING_OBJECT(self, "frame %" G_GUINT64_FORMAT ": can't map it to draw", self->runtime.frames);
    return;
  }
  static const guint8 kAmber[3] = {255, 191, 0};
  const int thickness = std::max(2, GST_VIDEO_FRAME_HEIGHT(&frame) / 240);
  for (const Polygon& polygon : self->runtime.regions)
    for (std::size_t i = 0; i < polygon.size(); ++i)
      draw_line(&frame, polygon[i], polygon[(i + 1) % polygon.size()], thickness, kAmber);
  gst_video_frame_unmap(&frame);
}

static GstFlowReturn gst_em_roi_transform_ip(GstBaseTransform* transform, GstBuffer* buffer) {
  GstEmRoi* self = GST_EM_ROI(transform);
  Runtime& runtime = self->runtime;
  if (!runtime.regions.empty()) {
    if (runtime.drop) drop_outside(self, buffer);
    if (runtime.draw && runtime.drawable) draw_regions(self, buffer);
  }
  ++runtime.frames;
  return GST_FLOW_OK;
}

static void gst_em_roi_finalize(GObject* object) {
  GstEmRoi* self = GST_EM_ROI(object);
  self->runtime.~Runtime();
  self->settings.~Settings();
  G_OBJECT_CLASS(gst_em_roi_parent_class)->finalize(object);
}

static void gst_em_roi_class_init(GstEmRoiClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* transform_class = GST_BASE_TRANSFORM_CLASS(klass);
  gobject_class->set_property = gst_em_roi_set_property;
  gobject_class->get_property = gst_em_roi_get_property;
  gobject_class->finalize = gst_em_roi_finalize;

  const auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_ROI,
      g_param_spec_string("roi", "Regions of interest",
          "JSON list of polygons, each a list of at least three [x, y] points in frame pixels; "
          "empty: no regions (everything passes)", "", flags));
  g_object_class_install_property(gobject_class, PROP_DROP,
      g_param_spec_boolean("drop", "Drop outside",
          "Remove objects whose box bottom-centre is outside every region", TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_DRAW,
      g_param_spec_boolean("draw", "Draw regions", "Outline the regions on the frame (packed RGB formats)",
          FALSE, flags));
  g_object_class_install_property(gobject_class, PROP_DROPPED,
      g_param_spec_uint64("dropped", "Dropped", "Objects dropped since start (outside every region)", 0,
          G_MAXUINT64, 0, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_set_static_metadata(element_class, "EM regions of interest", "Filter/Video/Analyzer",
      "Drops the frame document's objects that stand outside every region of interest, and "
      "draws the regions", "emi developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  transform_class->start = GST_DEBUG_FUNCPTR(gst_em_roi_start);
  transform_class->set_caps = GST_DEBUG_FUNCPTR(gst_em_roi_set_caps);
  transform_class->transform_ip = GST_DEBUG_FUNCPTR(gst_em_roi_transform_ip);

  GST_DEBUG_CATEGORY_INIT(gst_em_roi_debug, "emi-emroi", 0, "emi regions of interest");
}

static void gst_em_roi_init(GstEmRoi* self) {
  // GObject hands out zeroed memory; the C++ members are constructed here and destroyed in
  // finalize.
  new (&self->settings) Settings();
  new (&self->runtime) Runtime();
  new (&self->dropped) std::atomic<guint64>(0);
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  // Never passthrough: it changes metadata (and, drawing, pixels), so buffers must be writable.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}
