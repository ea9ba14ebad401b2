// SPDX-License-Identifier: LGPL-2.1-or-later
#include "overlay/overlay_renderer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "document/vocabulary.h"

namespace emi {
namespace {

using nlohmann::json;

using UniqueSurface = std::unique_ptr<cairo_surface_t, ReleaseWith<cairo_surface_destroy>>;
using UniqueCairo = std::unique_ptr<cairo_t, ReleaseWith<cairo_destroy>>;
using UniqueFontOptions = std::unique_ptr<cairo_font_options_t, ReleaseWith<cairo_font_options_destroy>>;
using UniqueFont = std::unique_ptr<PangoFont, ReleaseWith<g_object_unref>>;
using UniqueFontDescription =
    std::unique_ptr<PangoFontDescription, ReleaseWith<pango_font_description_free>>;

// Bright colours (Material accents) that read well as text on the dark label background.
// Ordered by hue; kPaletteStep walks it so that consecutive track ids get distant hues.
constexpr std::array<Colour, 16> kPalette = {{
    {1.00, 0.32, 0.32}, {1.00, 0.43, 0.25}, {1.00, 0.57, 0.00}, {1.00, 0.77, 0.00},
    {1.00, 0.92, 0.00}, {0.78, 1.00, 0.00}, {0.46, 1.00, 0.01}, {0.00, 0.90, 0.46},
    {0.11, 0.91, 0.71}, {0.00, 0.90, 1.00}, {0.25, 0.77, 1.00}, {0.27, 0.54, 1.00},
    {0.33, 0.43, 1.00}, {0.49, 0.30, 1.00}, {0.88, 0.25, 0.98}, {1.00, 0.25, 0.51},
}};
constexpr std::size_t kPaletteStep = 7;  // coprime with 16: every colour before a repeat
constexpr Colour kWhite = {1.0, 1.0, 1.0};
constexpr Colour kBlack = {0.0, 0.0, 0.0};
constexpr Colour kCountingLineColour = {1.00, 0.92, 0.00};
constexpr double kBackgroundAlpha = 0.6;
// Layouts kept beyond this many are dropped unless the last frame used them.
constexpr std::size_t kMaxTextBlocks = 256;

// Keys of a frame record that hold no element's results.
bool is_structural_frame_key(const std::string& key) { return key == field::kObjects || key == field::kEvents; }

std::optional<double> number_in(const json& object, const char* key) {
  const auto found = object.find(key);
  if (found == object.end() || !found->is_number()) return std::nullopt;
  return found->get<double>();
}

const json* child(const json& object, const char* key, json::value_t type) {
  const auto found = object.find(key);
  return found != object.end() && found->type() == type ? &*found : nullptr;
}

std::string text_of(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// Counts are integers; a tracker writing 3.0 still reads "3".
std::string count_text(double count) { return std::to_string(std::llround(count)); }

// FNV-1a: stable across runs and builds, unlike std::hash, so a label keeps its colour.
std::size_t stable_hash(std::string_view text) {
  std::uint32_t hash = 2166136261u;
  for (const char c : text) hash = (hash ^ static_cast<std::uint8_t>(c)) * 16777619u;
  return hash;
}

bool shows_key(const OverlayLayers& layers, const std::string& key) {
  return layers.result_keys.empty() ||
         std::find(layers.result_keys.begin(), layers.result_keys.end(), key) !=
             layers.result_keys.end();
}

// "black swan 97%" for {"predicted_class": "black swan", "probability": 97.1}; probabilities of
// at most 1 are fractions. Anything without predicted_class is not a classification result.
std::optional<std::string> result_text(const json& result) {
  if (!result.is_object()) return std::nullopt;
  const auto predicted = result.find("predicted_class");
  if (predicted == result.end() || predicted->is_null()) return std::nullopt;
  std::string text = text_of(*predicted);
  if (const std::optional<double> probability = number_in(result, "probability")) {
    const double percent = *probability > 1.0 ? *probability : *probability * 100.0;
    text += ' ' + std::to_string(std::llround(percent)) + '%';
  }
  return text;
}

// Results stored under one key: a dict (an object's), or a list of dicts (a frame's).
void collect_results(const json& value, std::vector<std::string>& texts) {
  if (value.is_array()) {
    for (const json& entry : value) collect_results(entry, texts);
  } else if (std::optional<std::string> text = result_text(value)) {
    texts.push_back(std::move(*text));
  }
}

std::string joined(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const std::string& part : parts) {
    if (!text.empty()) text += separator;
    text += part;
  }
  return text;
}

// A track that ended is reported once more by the tracker, on the frame where it ends; it is
// no longer in view.
bool is_ended_track(const json& object) {
  const auto ended = object.find(field::kTrackingEnded);
  return ended != object.end() && !ended->is_null() && *ended != kNotApplicable;
}

struct Scale {
  double x;
  double y;
};

std::optional<Rect> rect_of(const json& object, Scale scale) {
  const json* rect = child(object, field::kRect, json::value_t::object);
  if (rect == nullptr) return std::nullopt;
  const auto left = number_in(*rect, field::kLeft);
  const auto top = number_in(*rect, field::kTop);
  const auto width = number_in(*rect, field::kWidth);
  const auto height = number_in(*rect, field::kHeight);
  if (!left || !top || !width || !height || *width <= 0 || *height <= 0) return std::nullopt;
  return Rect{*left * scale.x, *top * scale.y, *width * scale.x, *height * scale.y};
}

std::string label_of(const json& object) {
  if (const json* label = child(object, field::kLabel, json::value_t::string);
      label != nullptr && !label->get_ref<const std::string&>().empty())
    return label->get<std::string>();
  const std::optional<double> class_id = number_in(object, field::kClassId);
  return class_id && *class_id >= 0 ? "class " + std::to_string(std::llround(*class_id)) : "";
}

std::optional<long long> track_id_of(const json& object) {
  const std::optional<double> id = number_in(object, field::kObjectId);
  if (!id || *id < 0) return std::nullopt;
  return std::llround(*id);
}

// A colour per track; untracked objects get one per label, so classes stay apart.
Colour colour_of(std::optional<long long> track_id, const std::string& label) {
  const std::size_t index = track_id ? static_cast<std::size_t>(*track_id) * kPaletteStep
                                     : stable_hash(label);
  return kPalette[index % kPalette.size()];
}

// "person #7: black swan 97%", and stacked, "person #7\nblack swan 97%".
void describe_label(const json& object, const std::string& label, std::optional<long long> track_id,
                    const OverlayLayers& layers, LabelMark& mark) {
  std::string head = label;
  if (track_id) head += (head.empty() ? "#" : " #") + std::to_string(*track_id);
  std::vector<std::string> results;
  for (const auto& [key, value] : object.items())
    if (shows_key(layers, key)) collect_results(value, results);
  if (head.empty()) {
    mark.text = joined(results, ", ");
  } else if (results.empty()) {
    mark.text = std::move(head);
  } else {
    mark.text = head + ": " + joined(results, ", ");
    mark.short_text = head;
    results.insert(results.begin(), std::move(head));
  }
  if (results.size() > 1) mark.stacked_text = joined(results, "\n");
}

void describe_objects(const json& frame, const OverlayLayers& layers, Scale scale,
                      OverlayScene& scene) {
  const json* objects = child(frame, field::kObjects, json::value_t::array);
  if (objects == nullptr) return;
  for (const json& object : *objects) {
    if (!object.is_object() || is_ended_track(object)) continue;
    const std::optional<Rect> rect = rect_of(object, scale);
    if (!rect) continue;
    const std::string label = label_of(object);
    const std::optional<long long> track_id = track_id_of(object);
    const Colour colour = colour_of(track_id, label);
    if (layers.boxes) scene.boxes.push_back({*rect, colour});
    if (layers.labels) {
      LabelMark mark{*rect, colour, "", "", ""};
      describe_label(object, label, track_id, layers, mark);
      if (!mark.text.empty()) scene.labels.push_back(std::move(mark));
    }
  }
}

// {"total", "in_view", "by_label", "line_crossings": {"forward", "backward"}, "line"}: what
// emtracker writes under frame["counts"].
void describe_counts(const json& counts, Scale scale, OverlayScene& scene) {
  std::vector<std::string> totals;
  if (const auto in_view = number_in(counts, "in_view")) totals.push_back("in view " + count_text(*in_view));
  if (const auto total = number_in(counts, "total")) totals.push_back("total " + count_text(*total));
  if (!totals.empty()) scene.count_lines.push_back(joined(totals, "   "));

  if (const json* by_label = child(counts, "by_label", json::value_t::object)) {
    std::vector<std::string> labels;
    for (const auto& [label, count] : by_label->items())
      if (count.is_number()) labels.push_back(label + ' ' + count_text(count.get<double>()));
    if (!labels.empty()) scene.count_lines.push_back(joined(labels, "   "));
  }

  if (const json* crossings = child(counts, "line_crossings", json::value_t::object)) {
    const auto forward = number_in(*crossings, "forward");
    const auto backward = number_in(*crossings, "backward");
    if (forward || backward)
      scene.count_lines.push_back("line: " + count_text(forward.value_or(0)) + " forward, " +
                                  count_text(backward.value_or(0)) + " backward");
  }

  if (const json* line = child(counts, "line", json::value_t::array);
      line != nullptr && line->size() == 4 &&
      std::all_of(line->begin(), line->end(), [](const json& v) { return v.is_number(); })) {
    scene.counting_line = LineSegment{(*line)[0].get<double>() * scale.x, (*line)[1].get<double>() * scale.y,
                                      (*line)[2].get<double>() * scale.x, (*line)[3].get<double>() * scale.y};
  }
}

Scale scale_from_source(const json& frame, int width, int height) {
  const auto source_width = number_in(frame, field::kSourceWidth);
  const auto source_height = number_in(frame, field::kSourceHeight);
  return {source_width && *source_width > 0 ? width / *source_width : 1.0,
          source_height && *source_height > 0 ? height / *source_height : 1.0};
}

bool is_generic_family(const std::string& family) {
  static const std::array<const char*, 10> generic = {"sans", "sans-serif", "serif", "monospace",
                                                      "mono", "cursive", "fantasy", "system-ui",
                                                      "emoji", "math"};
  return std::any_of(generic.begin(), generic.end(), [&](const char* name) {
    return g_ascii_strcasecmp(name, family.c_str()) == 0;
  });
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  return std::string(text.substr(first, text.find_last_not_of(" \t") - first + 1));
}

// A family list as Pango takes it ("Noto Sans, DejaVu Sans"), trimmed.
std::vector<std::string> family_list(const std::string& families) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start <= families.size()) {
    const std::size_t comma = std::min(families.find(',', start), families.size());
    if (std::string name = trimmed(std::string_view(families).substr(start, comma - start)); !name.empty())
      names.push_back(std::move(name));
    start = comma + 1;
  }
  return names;
}

// Draws with colours given as RGB; on RGBA/RGBx frames red and blue trade places.
struct Painter {
  cairo_t* cr;
  bool red_first;

  void set_colour(Colour colour, double alpha = 1.0) const {
    if (red_first) cairo_set_source_rgba(cr, colour.blue, colour.green, colour.red, alpha);
    else cairo_set_source_rgba(cr, colour.red, colour.green, colour.blue, alpha);
  }
  void fill_rect(double x, double y, double width, double height, Colour colour, double alpha) const {
    set_colour(colour, alpha);
    cairo_rectangle(cr, x, y, width, height);
    cairo_fill(cr);
  }
  // The stroke lies inside the box, so the box's pixels are exactly its rect; a box too small
  // for two strokes is filled.
  void box_outline(const Rect& rect, double line_width, Colour colour) const {
    set_colour(colour);
    if (rect.width <= 2 * line_width || rect.height <= 2 * line_width) {
      cairo_rectangle(cr, rect.left, rect.top, rect.width, rect.height);
      cairo_fill(cr);
      return;
    }
    cairo_set_line_width(cr, line_width);
    cairo_rectangle(cr, rect.left + line_width / 2, rect.top + line_width / 2,
                    rect.width - line_width, rect.height - line_width);
    cairo_stroke(cr);
  }
};

}  // namespace

std::vector<std::string> parse_result_keys(const std::string& text) {
  std::vector<std::string> keys;
  if (trimmed(text).empty()) return keys;
  std::size_t start = 0;
  for (std::size_t position = 1;; ++position) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string key = trimmed(std::string_view(text).substr(start, comma - start));
    if (key.empty())
      throw std::invalid_argument("key " + std::to_string(position) + " of \"" + text +
                                  "\" is empty (expected comma-separated keys such as "
                                  "\"emcustom,action\")");
    keys.push_back(std::move(key));
    if (comma == text.size()) return keys;
    start = comma + 1;
  }
}

OverlayScene describe_frame(const json& frame, const OverlayLayers& layers, int width, int height) {
  OverlayScene scene;
  if (!frame.is_object()) return scene;
  const Scale scale = scale_from_source(frame, width, height);
  if (layers.boxes || layers.labels) describe_objects(frame, layers, scale, scene);
  if (layers.results) {
    for (const auto& [key, value] : frame.items())
      if (!is_structural_frame_key(key) && shows_key(layers, key)) collect_results(value, scene.result_lines);
  }
  if (layers.counts) {
    if (const json* counts = child(frame, field::kCounts, json::value_t::object))
      describe_counts(*counts, scale, scene);
  }
  if (layers.clock) {
    if (const json* timestamp = child(frame, field::kTimestamp, json::value_t::string))
      scene.clock = timestamp->get<std::string>();
  }
  return scene;
}

bool cairo_can_draw_on(const FramePixels& pixels) {
  const cairo_format_t format = pixels.has_alpha ? CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24;
  return reinterpret_cast<std::uintptr_t>(pixels.data) % 4 == 0 && pixels.stride % 4 == 0 &&
         pixels.stride >= cairo_format_stride_for_width(format, pixels.width);
}

OverlayRenderer::OverlayRenderer()
    // A font map of our own: Pango's default one is per thread, and the streaming thread that
    // draws may not be the one that made the renderer.
    : font_map_(pango_cairo_font_map_new()),
      context_(pango_font_map_create_context(font_map_.get())),
      font_(pango_font_description_from_string("Sans Bold")) {
  // Fixed font options instead of the machine's fontconfig settings: the same pixels everywhere
  // (the golden test relies on it), and no subpixel colour fringes on video.
  UniqueFontOptions options(cairo_font_options_create());
  cairo_font_options_set_antialias(options.get(), CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(options.get(), CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics(options.get(), CAIRO_HINT_METRICS_OFF);
  pango_cairo_context_set_font_options(context_.get(), options.get());
  use_font_size(font_pixels(360));
}

int OverlayRenderer::font_pixels(int height) {
  return std::max(10, static_cast<int>(std::lround(height / 40.0)));
}

int OverlayRenderer::label_pixels(double box_height, int frame_height) {
  const int fitting = static_cast<int>(std::floor(box_height * kLabelBoxFraction));
  const int pixels = std::min(font_pixels(frame_height), fitting);
  return pixels >= kMinLabelPixels ? pixels : 0;
}

std::optional<std::string> OverlayRenderer::set_font_family(const std::string& family) {
  pango_font_description_set_family(font_.get(), family.c_str());
  pango_context_set_font_description(context_.get(), font_.get());
  text_blocks_.clear();

  const UniqueFont font(pango_font_map_load_font(font_map_.get(), context_.get(), font_.get()));
  if (!font) return std::string("no font at all");
  const UniqueFontDescription used(pango_font_describe(font.get()));
  const std::string used_family = pango_font_description_get_family(used.get());
  for (const std::string& name : family_list(family))
    if (is_generic_family(name) || g_ascii_strcasecmp(name.c_str(), used_family.c_str()) == 0)
      return std::nullopt;
  return used_family;
}

void OverlayRenderer::use_font_size(int pixels) {
  if (pixels == font_size_) return;
  font_size_ = pixels;
  pango_font_description_set_absolute_size(font_.get(), pixels * PANGO_SCALE);
  pango_context_set_font_description(context_.get(), font_.get());
  text_blocks_.clear();
}

const OverlayRenderer::TextBlock& OverlayRenderer::text_block(const std::string& text, int pixels) {
  auto [entry, inserted] = text_blocks_.try_emplace(std::to_string(pixels) + '\n' + text);
  TextBlock& block = entry->second;
  if (inserted) {
    block.layout.reset(pango_layout_new(context_.get()));
    const UniqueFontDescription font(pango_font_description_copy(font_.get()));
    pango_font_description_set_absolute_size(font.get(), pixels * PANGO_SCALE);
    pango_layout_set_font_description(block.layout.get(), font.get());
    pango_layout_set_text(block.layout.get(), text.data(), static_cast<int>(text.size()));
    PangoRectangle logical;
    pango_layout_get_pixel_extents(block.layout.get(), nullptr, &logical);
    block.width = logical.width;
    block.height = logical.height;
  }
  block.last_used = frames_drawn_;
  return block;
}

void OverlayRenderer::forget_unused_text() {
  if (text_blocks_.size() <= kMaxTextBlocks) return;
  for (auto entry = text_blocks_.begin(); entry != text_blocks_.end();) {
    if (entry->second.last_used != frames_drawn_) entry = text_blocks_.erase(entry);
    else ++entry;
  }
}

void OverlayRenderer::draw(const OverlayScene& scene, const FramePixels& pixels) {
  ++frames_drawn_;
  use_font_size(font_pixels(pixels.height));
  const UniqueSurface surface(cairo_image_surface_create_for_data(
      pixels.data, pixels.has_alpha ? CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24, pixels.width,
      pixels.height, pixels.stride));
  const UniqueCairo cr(cairo_create(surface.get()));
  const Painter painter{cr.get(), pixels.red_first};
  const double padding = std::max(2, font_size_ / 4);

  for (const BoxMark& box : scene.boxes) painter.box_outline(box.rect, line_width_, box.colour);

  if (scene.counting_line) {
    // A dark edge keeps the yellow line visible on bright scenes.
    const LineSegment& line = *scene.counting_line;
    cairo_set_line_cap(cr.get(), CAIRO_LINE_CAP_ROUND);
    struct Stroke {
      double width;
      Colour colour;
      double alpha;
    };
    for (const Stroke& stroke : {Stroke{line_width_ + 2, kBlack, kBackgroundAlpha},
                                 Stroke{line_width_, kCountingLineColour, 1.0}}) {
      cairo_set_line_width(cr.get(), stroke.width);
      painter.set_colour(stroke.colour, stroke.alpha);
      cairo_move_to(cr.get(), line.x1, line.y1);
      cairo_line_to(cr.get(), line.x2, line.y2);
      cairo_stroke(cr.get());
    }
  }

  // Text on a translucent dark background at (x, y), its top-left corner.
  auto draw_text = [&](const TextBlock& block, double x, double y, Colour colour) {
    painter.fill_rect(x, y, block.width + 2 * padding, block.height + 2 * padding, kBlack,
                      kBackgroundAlpha);
    painter.set_colour(colour);
    cairo_move_to(cr.get(), x + padding, y + padding);
    pango_cairo_show_layout(cr.get(), block.layout.get());
  };

  // Labels of larger boxes (nearer objects) first; each where it overlaps no label drawn before.
  std::vector<const LabelMark*> labels;
  for (const LabelMark& label : scene.labels) labels.push_back(&label);
  std::stable_sort(labels.begin(), labels.end(), [](const LabelMark* a, const LabelMark* b) {
    return a->anchor.width * a->anchor.height > b->anchor.width * b->anchor.height;
  });
  label_rects_.clear();
  dropped_labels_ = 0;
  for (const LabelMark* label : labels) {
    const int text_pixels = label_pixels(label->anchor.height, pixels.height);
    if (text_pixels == 0) {
      ++dropped_labels_;
      continue;
    }
    const double label_padding = std::max(1, text_pixels / 5);
    const TextBlock* block = &text_block(label->text, text_pixels);
    if (block->width > label->anchor.width) {
      if (label_lines_ > 1 && !label->stacked_text.empty())
        block = &text_block(label->stacked_text, text_pixels);
      else if (!label->short_text.empty())
        block = &text_block(label->short_text, text_pixels);
    }
    const double width = block->width + 2 * label_padding;
    const double height = block->height + 2 * label_padding;
    const double x = std::clamp(label->anchor.left, 0.0, std::max(0.0, pixels.width - width));
    const double bottom_limit = std::max(0.0, pixels.height - height);
    // Above the box, inside its top, below it.
    const double candidates[] = {label->anchor.top - height, label->anchor.top,
                                 label->anchor.top + label->anchor.height};
    std::optional<Rect> placed;
    for (const double y : candidates) {
      const Rect rect{x, std::clamp(y, 0.0, bottom_limit), width, height};
      const bool overlaps = std::any_of(label_rects_.begin(), label_rects_.end(), [&](const Rect& other) {
        return rect.left < other.left + other.width && other.left < rect.left + rect.width &&
               rect.top < other.top + other.height && other.top < rect.top + rect.height;
      });
      if (!overlaps) {
        placed = rect;
        break;
      }
    }
    if (!placed) {
      ++dropped_labels_;
      continue;
    }
    label_rects_.push_back(*placed);
    painter.fill_rect(placed->left, placed->top, width, height, kBlack, kBackgroundAlpha);
    painter.set_colour(label->colour);
    cairo_move_to(cr.get(), placed->left + label_padding, placed->top + label_padding);
    pango_cairo_show_layout(cr.get(), block->layout.get());
  }

  const double margin = padding;
  if (!scene.result_lines.empty())
    draw_text(text_block(joined(scene.result_lines, "\n")), margin, margin, kWhite);
  if (!scene.count_lines.empty()) {
    const TextBlock& block = text_block(joined(scene.count_lines, "\n"));
    draw_text(block, pixels.width - margin - block.width - 2 * padding, margin, kWhite);
  }
  if (!scene.clock.empty()) {
    const TextBlock& block = text_block(scene.clock);
    draw_text(block, margin, pixels.height - margin - block.height - 2 * padding, kWhite);
  }

  cairo_surface_flush(surface.get());
  forget_unused_text();
}

}  // namespace emi
