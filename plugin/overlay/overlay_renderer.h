// SPDX-License-Identifier: LGPL-2.1-or-later
// What emoverlay draws, in two steps: a frame record of the frame document becomes an
// OverlayScene (plain data, no drawing), and OverlayRenderer draws a scene with cairo and pango on
// a 32-bit frame in place.
#pragma once

#include <cairo.h>
#include <glib.h>
#include <pango/pangocairo.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/gst_ptr.h"

namespace emi {

// Which layers to draw; what the element's properties say.
struct OverlayLayers {
  bool boxes = true;
  bool labels = true;
  bool results = true;
  bool counts = true;
  bool clock = false;
  std::vector<std::string> result_keys;  // keys whose results are shown; empty: every key
};

// "emcustom, action" → {"emcustom", "action"}; "" → {} (every key). Throws
// std::invalid_argument, saying why, when an entry is empty ("a,,b", a trailing comma).
std::vector<std::string> parse_result_keys(const std::string& text);

struct Colour {
  double red;
  double green;
  double blue;
};

struct Rect {
  double left;
  double top;
  double width;
  double height;
};

struct BoxMark {
  Rect rect;
  Colour colour;
};

// A label drawn above `anchor`, else inside its top, else below it: wherever it overlaps no
// label drawn before it (labels of larger boxes first); dropped when there is no such place.
struct LabelMark {
  Rect anchor;
  Colour colour;
  std::string text;          // one line: "person #7: black swan 97%"
  std::string short_text;    // the head alone, "person #7", drawn instead when `text` is much
                             // wider than the box; empty when `text` is the head
  std::string stacked_text;  // one line per part, "person #7\nblack swan 97%", drawn instead
                             // when `text` is wider than the box and labels may take several
                             // lines; empty when only one part
};

struct LineSegment {
  double x1;
  double y1;
  double x2;
  double y2;
};

// Everything to draw on one frame, in frame pixels.
struct OverlayScene {
  std::vector<BoxMark> boxes;
  std::vector<LabelMark> labels;
  std::vector<std::string> result_lines;  // frame-level results: top-left panel
  std::vector<std::string> count_lines;   // the tracker's counts: top-right panel
  std::optional<LineSegment> counting_line;
  std::string clock;                      // the frame's timestamp, bottom-left; empty: none

  bool empty() const {
    return boxes.empty() && labels.empty() && result_lines.empty() && count_lines.empty() &&
           !counting_line && clock.empty();
  }
};

// The scene for `frame` (document["frame"][0]) on a frame of width x height pixels. Coordinates
// are scaled from the document's source_frame_width/height when the frame was resized since.
// Malformed parts (a missing rect, a count that isn't a number) are left out, never thrown on.
OverlayScene describe_frame(const nlohmann::json& frame, const OverlayLayers& layers, int width,
                            int height);

// A mapped 32-bit frame. cairo's pixels are native-endian 32-bit words, B,G,R,A/x in memory on
// little-endian machines: BGRA/BGRx frames are cairo's own layout, RGBA/RGBx have red and blue
// swapped (the renderer swaps the colours it draws instead of converting pixels).
struct FramePixels {
  guint8* data;
  int width;
  int height;
  int stride;       // bytes per row; cairo needs a multiple of 4
  bool has_alpha;   // RGBA/BGRA, else RGBx/BGRx
  bool red_first;   // RGBA/RGBx
};

// Whether cairo can draw on `pixels` as they are: a 4-aligned start and stride.
bool cairo_can_draw_on(const FramePixels& pixels);

// Draws scenes. Keeps its fonts and the text layouts of recent frames, so a label that stays the
// same from frame to frame is laid out once. Not thread-safe: one streaming thread uses it.
class OverlayRenderer {
 public:
  OverlayRenderer();

  // Font family for the text (a Pango/fontconfig family such as "Sans" or "DejaVu Sans").
  // Returns the installed family used instead when `family` is not installed.
  std::optional<std::string> set_font_family(const std::string& family);
  void set_line_width(double line_width) { line_width_ = line_width; }
  // Lines a label may take (1: one line per object, the default; more: stacked parts).
  void set_label_lines(int lines) { label_lines_ = lines; }

  // A label's text is never taller than this fraction of its box, nor than the frame's font.
  static constexpr double kLabelBoxFraction = 0.25;
  // Labels whose text would be smaller than this are not drawn.
  static constexpr int kMinLabelPixels = 7;
  // The font size of a label of a box `box_height` tall on a frame of `frame_height` rows; 0: none.
  static int label_pixels(double box_height, int frame_height);

  // Font size in pixels for frames of `height` rows: legible at 360 and at 1080.
  static int font_pixels(int height);

  void draw(const OverlayScene& scene, const FramePixels& pixels);

  // Where the last draw() put the labels it drew, and how many it dropped for want of room.
  const std::vector<Rect>& label_rects() const { return label_rects_; }
  int dropped_labels() const { return dropped_labels_; }

 private:
  struct TextBlock {
    std::unique_ptr<PangoLayout, ReleaseWith<g_object_unref>> layout;
    int width;
    int height;
    guint64 last_used;
  };

  const TextBlock& text_block(const std::string& text) { return text_block(text, font_size_); }
  const TextBlock& text_block(const std::string& text, int pixels);
  void use_font_size(int pixels);
  void forget_unused_text();

  std::unique_ptr<PangoFontMap, ReleaseWith<g_object_unref>> font_map_;
  std::unique_ptr<PangoContext, ReleaseWith<g_object_unref>> context_;
  std::unique_ptr<PangoFontDescription, ReleaseWith<pango_font_description_free>> font_;
  int font_size_ = 0;
  double line_width_ = 3.0;
  int label_lines_ = 1;
  std::vector<Rect> label_rects_;
  int dropped_labels_ = 0;
  std::unordered_map<std::string, TextBlock> text_blocks_;
  guint64 frames_drawn_ = 0;
};

}  // namespace emi
