// SPDX-License-Identifier: LGPL-2.1-or-later
// emoverlay's two halves without GStreamer: the scene a frame document describes, and how the
// renderer puts it on pixels.
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "overlay/overlay_renderer.h"

namespace emi {
namespace {

using nlohmann::json;

json object_at(double left, double top, double width, double height, int track_id = 7,
               const std::string& label = "person") {
  return {{"class_id", 0},
          {"object_id", track_id},
          {"confidence", 0.9},
          {"obj_label", label},
          {"rect_params", {{"left", left}, {"top", top}, {"width", width}, {"height", height}}},
          {"text_params", {{"display_text", label}}},
          {"tracking_ended_time", "N/A"}};
}

json frame_with_objects(json objects) {
  return {{"frame_num", 1}, {"source_frame_width", 320}, {"source_frame_height", 240},
          {"object", std::move(objects)}};
}

OverlayScene scene_of(const json& frame, OverlayLayers layers = {}) {
  return describe_frame(frame, layers, 320, 240);
}

bool same_colour(const Colour& a, const Colour& b) {
  return a.red == b.red && a.green == b.green && a.blue == b.blue;
}

TEST(OverlayScene, LabelLineHasLabelTrackIdAndTheObjectsResults) {
  json person = object_at(10, 20, 50, 120);
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  person["colour"] = {{"predicted_class", "red"}, {"probability", 0.5}};
  const OverlayScene scene = scene_of(frame_with_objects({person}));
  ASSERT_EQ(scene.boxes.size(), 1u);
  EXPECT_EQ(scene.boxes[0].rect.left, 10);
  EXPECT_EQ(scene.boxes[0].rect.height, 120);
  ASSERT_EQ(scene.labels.size(), 1u);
  EXPECT_EQ(scene.labels[0].text, "person #7: red 50%, black swan 97%");
  // For boxes narrower than that line:
  EXPECT_EQ(scene.labels[0].stacked_text, "person #7\nred 50%\nblack swan 97%");
}

TEST(OverlayScene, ProbabilitiesAreShownInPercent) {
  auto label_for = [](json result) {
    json object = object_at(0, 0, 10, 10, -1, "");
    object["class_id"] = -1;  // no label, no class, no track: the results alone
    object["emcustom"] = std::move(result);
    return scene_of(frame_with_objects({object})).labels.at(0).text;
  };
  EXPECT_EQ(label_for({{"predicted_class", "marching"}, {"probability", 63.0}}), "marching 63%");
  EXPECT_EQ(label_for({{"predicted_class", "marching"}, {"probability", 0.634}}), "marching 63%");
  EXPECT_EQ(label_for({{"predicted_class", "marching"}, {"probability", 1.0}}), "marching 100%");
  EXPECT_EQ(label_for({{"predicted_class", "marching"}}), "marching");
  EXPECT_EQ(label_for({{"predicted_class", 3}, {"probability", 0.5}}), "3 50%");
}

TEST(OverlayScene, UntrackedObjectsHaveNoIdAndAColourPerLabel) {
  const OverlayScene scene = scene_of(frame_with_objects(
      {object_at(0, 0, 10, 10, -1, "car"), object_at(20, 0, 10, 10, -1, "car"),
       object_at(40, 0, 10, 10, -1, "person")}));
  ASSERT_EQ(scene.labels.size(), 3u);
  EXPECT_EQ(scene.labels[0].text, "car");
  EXPECT_EQ(scene.labels[0].stacked_text, "");  // one part: nothing to stack
  EXPECT_TRUE(same_colour(scene.boxes[0].colour, scene.boxes[1].colour));
  EXPECT_FALSE(same_colour(scene.boxes[0].colour, scene.boxes[2].colour));
}

TEST(OverlayScene, TrackIdsPickTheColour) {
  const OverlayScene scene = scene_of(frame_with_objects(
      {object_at(0, 0, 10, 10, 1, "car"), object_at(20, 0, 10, 10, 2, "car"),
       object_at(40, 0, 10, 10, 1, "person")}));
  EXPECT_FALSE(same_colour(scene.boxes[0].colour, scene.boxes[1].colour));
  EXPECT_TRUE(same_colour(scene.boxes[0].colour, scene.boxes[2].colour));
}

TEST(OverlayScene, UnlabelledObjectsShowTheirClass) {
  json object = object_at(0, 0, 10, 10, 4, "");
  object["class_id"] = 2;
  EXPECT_EQ(scene_of(frame_with_objects({object})).labels.at(0).text, "class 2 #4");
}

TEST(OverlayScene, EndedTracksAreNotDrawn) {
  json ended = object_at(0, 0, 10, 10, 3);
  ended["tracking_ended_time"] = "2026-11-23T08:24:36.748+0000";
  json alive = object_at(20, 0, 10, 10, 4);
  json untracked = object_at(40, 0, 10, 10, -1);
  untracked.erase("tracking_ended_time");
  const OverlayScene scene = scene_of(frame_with_objects({ended, alive, untracked}));
  ASSERT_EQ(scene.labels.size(), 2u);
  EXPECT_EQ(scene.labels[0].text, "person #4");
  EXPECT_EQ(scene.labels[1].text, "person");
}

TEST(OverlayScene, FrameResultsOfEveryElement) {
  json frame = frame_with_objects(json::array());
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  frame["action"] = {{{"predicted_class", "walking"}, {"probability", 0.42}},
                     {{"frame_num", 3}}};  // not a classification: left out
  frame["events"] = {{{"predicted_class", "an event, not a result"}}};
  EXPECT_EQ(scene_of(frame).result_lines, (std::vector<std::string>{"walking 42%", "marching 63%"}));
}

TEST(OverlayScene, ResultKeysChooseWhichResultsAreShown) {
  json object = object_at(0, 0, 10, 10);
  object["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.0}};
  object["colour"] = {{"predicted_class", "red"}, {"probability", 0.5}};
  json frame = frame_with_objects({object});
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  frame["action"] = {{{"predicted_class", "walking"}, {"probability", 0.42}}};
  OverlayLayers layers;
  layers.result_keys = {"action", "colour"};
  const OverlayScene scene = scene_of(frame, layers);
  EXPECT_EQ(scene.labels.at(0).text, "person #7: red 50%");
  EXPECT_EQ(scene.result_lines, std::vector<std::string>{"walking 42%"});
}

TEST(OverlayScene, CountsAndTheCountingLine) {
  json frame = frame_with_objects(json::array());
  frame["counts"] = {{"total", 14},
                     {"in_view", 3},
                     {"by_label", {{"person", 9}, {"car", 5.0}}},
                     {"line_crossings", {{"forward", 6}, {"backward", 2}}},
                     {"line", {0, 120, 320, 100}}};
  const OverlayScene scene = scene_of(frame);
  EXPECT_EQ(scene.count_lines, (std::vector<std::string>{"in view 3   total 14", "car 5   person 9",
                                                         "line: 6 forward, 2 backward"}));
  ASSERT_TRUE(scene.counting_line);
  EXPECT_EQ(scene.counting_line->y1, 120);
  EXPECT_EQ(scene.counting_line->x2, 320);
}

TEST(OverlayScene, ClockOnlyWhenAsked) {
  json frame = frame_with_objects(json::array());
  frame["timestamp"] = "2026-11-23T08:24:36.748+0000";
  EXPECT_TRUE(scene_of(frame).empty());
  OverlayLayers layers;
  layers.clock = true;
  EXPECT_EQ(scene_of(frame, layers).clock, "2026-11-23T08:24:36.748+0000");
}

TEST(OverlayScene, ScalesFromTheSourceFrameSize) {
  json frame = frame_with_objects({object_at(10, 20, 50, 60)});
  frame["counts"] = {{"line", {0, 100, 320, 100}}};
  const OverlayScene scene = describe_frame(frame, {}, 640, 480);
  const Rect& rect = scene.boxes.at(0).rect;
  EXPECT_EQ(rect.left, 20);
  EXPECT_EQ(rect.top, 40);
  EXPECT_EQ(rect.width, 100);
  EXPECT_EQ(rect.height, 120);
  EXPECT_EQ(scene.counting_line->y2, 200);
}

TEST(OverlayScene, LayersOffGiveNothing) {
  json object = object_at(0, 0, 10, 10);
  object["emcustom"] = {{"predicted_class", "black swan"}};
  json frame = frame_with_objects({object});
  frame["emcustom"] = {{{"predicted_class", "marching"}}};
  frame["counts"] = {{"total", 1}, {"line", {0, 0, 10, 10}}};
  OverlayLayers off;
  off.boxes = off.labels = off.results = off.counts = false;
  EXPECT_TRUE(scene_of(frame, off).empty());
  OverlayLayers labels_only = off;
  labels_only.labels = true;
  const OverlayScene scene = scene_of(frame, labels_only);
  EXPECT_TRUE(scene.boxes.empty());
  EXPECT_EQ(scene.labels.size(), 1u);
}

TEST(OverlayScene, MalformedPartsAreLeftOut) {
  json frame = {{"object", {{{"rect_params", {{"left", "ten"}}}},
                            {{"rect_params", {{"left", 0}, {"top", 0}, {"width", 0}, {"height", 5}}}},
                            "not an object",
                            {{"object_id", "seven"},
                             {"rect_params", {{"left", 0}, {"top", 0}, {"width", 5}, {"height", 5}}}}}},
                {"emcustom", "not a list"},
                {"counts", {{"total", "many"}, {"by_label", {{"car", "x"}}}, {"line", {0, 1, 2}}}},
                {"source_frame_width", 0}};
  const OverlayScene scene = scene_of(frame);
  EXPECT_EQ(scene.boxes.size(), 1u);
  EXPECT_TRUE(scene.labels.empty());  // no label, no id, no results: nothing to say
  EXPECT_TRUE(scene.count_lines.empty());
  EXPECT_FALSE(scene.counting_line);
  EXPECT_TRUE(scene_of(json::array()).empty());
}

TEST(OverlayScene, ParsesResultKeys) {
  EXPECT_TRUE(parse_result_keys("").empty());
  EXPECT_TRUE(parse_result_keys("  ").empty());
  EXPECT_EQ(parse_result_keys(" emcustom , action"), (std::vector<std::string>{"emcustom", "action"}));
  EXPECT_THROW(parse_result_keys("emcustom,,action"), std::invalid_argument);
  EXPECT_THROW(parse_result_keys("emcustom,"), std::invalid_argument);
}

// A grey BGRA/RGBA frame, tightly packed.
struct Canvas {
  int width;
  int height;
  std::vector<guint8> bytes;
  Canvas(int w, int h) : width(w), height(h), bytes(static_cast<std::size_t>(w) * h * 4, 128) {}
  FramePixels pixels(bool red_first) {
    return {bytes.data(), width, height, width * 4, /*has_alpha=*/true, red_first};
  }
};

OverlayScene busy_scene() {
  json person = object_at(40, 60, 80, 120);
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  json frame = frame_with_objects({person, object_at(200, 0, 60, 50, 12, "car")});
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  frame["counts"] = {{"total", 14}, {"in_view", 2}, {"line", {0, 200, 320, 180}}};
  return scene_of(frame);
}

TEST(OverlayRenderer, RgbaFramesGetTheSameColoursAsBgra) {
  OverlayRenderer renderer;
  Canvas bgra(320, 240);
  Canvas rgba(320, 240);
  renderer.draw(busy_scene(), bgra.pixels(false));
  renderer.draw(busy_scene(), rgba.pixels(true));
  ASSERT_NE(bgra.bytes, Canvas(320, 240).bytes);
  for (std::size_t i = 0; i < bgra.bytes.size(); i += 4) {
    ASSERT_EQ(bgra.bytes[i], rgba.bytes[i + 2]) << "pixel " << i / 4;
    ASSERT_EQ(bgra.bytes[i + 1], rgba.bytes[i + 1]) << "pixel " << i / 4;
    ASSERT_EQ(bgra.bytes[i + 2], rgba.bytes[i]) << "pixel " << i / 4;
    ASSERT_EQ(bgra.bytes[i + 3], rgba.bytes[i + 3]) << "pixel " << i / 4;
  }
}

TEST(OverlayRenderer, CachedTextDrawsTheSamePixels) {
  OverlayRenderer renderer;
  Canvas first(320, 240);
  Canvas again(320, 240);
  renderer.draw(busy_scene(), first.pixels(false));
  renderer.draw(busy_scene(), again.pixels(false));
  EXPECT_EQ(first.bytes, again.bytes);
}

TEST(OverlayRenderer, LabelGoesInsideABoxAtTheTopOfTheFrame) {
  json frame = frame_with_objects({object_at(100, 0, 120, 100)});
  OverlayLayers labels_only;
  labels_only.boxes = false;
  OverlayRenderer renderer;
  Canvas canvas(320, 240);
  renderer.draw(scene_of(frame, labels_only), canvas.pixels(false));
  auto changed = [&](int x, int y) {
    return canvas.bytes[(static_cast<std::size_t>(y) * canvas.width + x) * 4] != 128;
  };
  EXPECT_TRUE(changed(100, 1));
  EXPECT_FALSE(changed(99, 1));
  EXPECT_FALSE(changed(150, 60));
}

// Rows above `top` that the label of a box at column x changed.
int label_rows(const Canvas& canvas, int x, int top) {
  int rows = 0;
  for (int y = top - 1; y >= 0 && canvas.bytes[(static_cast<std::size_t>(y) * canvas.width + x) * 4] != 128; --y)
    ++rows;
  return rows;
}

TEST(OverlayRenderer, OneLinePerObjectUnlessLabelLinesAllowMore) {
  json narrow = object_at(20, 150, 40, 60);
  narrow["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  json wide = object_at(150, 150, 165, 60);
  wide["emcustom"] = narrow["emcustom"];
  const OverlayScene scene = scene_of(frame_with_objects({narrow, wide}));
  OverlayRenderer renderer;
  Canvas one_line(320, 240);
  renderer.draw(scene, one_line.pixels(false));
  const int line = label_rows(one_line, 151, 150);
  EXPECT_GE(line, OverlayRenderer::label_pixels(60, 240));
  EXPECT_EQ(label_rows(one_line, 21, 150), line);  // the narrow box: its head only, "person #7"
  renderer.set_label_lines(2);
  Canvas stacked(320, 240);
  renderer.draw(scene, stacked.pixels(false));
  EXPECT_GE(label_rows(stacked, 21, 150), 2 * line - 4);  // two lines, one padding
}

// A crowd at 360×360: 24 people of 26×52 pixels, shoulder to shoulder, each with a result.
OverlayScene crowd_scene() {
  std::vector<json> people;
  for (int row = 0; row < 4; ++row)
    for (int column = 0; column < 6; ++column) {
      json person = object_at(20 + column * 55, 40 + row * 75, 26, 52, row * 6 + column + 1, "person");
      person["emcustom"] = {{"predicted_class", "jersey"}, {"probability", 41.0}};
      people.push_back(person);
    }
  return scene_of(frame_with_objects(people));
}

TEST(OverlayRenderer, LabelsOfACrowdAreSmallAndNeverOverlap) {
  OverlayRenderer renderer;
  Canvas canvas(360, 360);
  const OverlayScene scene = crowd_scene();
  renderer.draw(scene, canvas.pixels(false));
  const std::vector<Rect>& labels = renderer.label_rects();
  EXPECT_EQ(static_cast<int>(labels.size()) + renderer.dropped_labels(), 24);
  EXPECT_GE(labels.size(), 12u);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    // Never taller than 2/5 of a person's box (52 px), padding included.
    EXPECT_LE(labels[i].height, 0.4 * 52) << "label " << i;
    for (std::size_t j = i + 1; j < labels.size(); ++j) {
      const Rect& a = labels[i];
      const Rect& b = labels[j];
      const bool overlap = a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height &&
                           b.top < a.top + a.height;
      EXPECT_FALSE(overlap) << "labels " << i << " and " << j;
    }
  }
}

TEST(OverlayRenderer, LabelSizeFollowsTheBoxAndTheFrame) {
  EXPECT_EQ(OverlayRenderer::label_pixels(400, 1080), 27);  // the frame's font
  EXPECT_EQ(OverlayRenderer::label_pixels(60, 1080), 15);   // a quarter of the box
  EXPECT_EQ(OverlayRenderer::label_pixels(20, 1080), 0);    // too small to read: no label
  OverlayRenderer renderer;
  Canvas canvas(320, 240);
  renderer.draw(scene_of(frame_with_objects({object_at(10, 100, 10, 20, 3, "person")})), canvas.pixels(false));
  EXPECT_TRUE(renderer.label_rects().empty());
  EXPECT_EQ(renderer.dropped_labels(), 1);
}

TEST(OverlayRenderer, FontSizeFollowsTheFrameHeight) {
  EXPECT_EQ(OverlayRenderer::font_pixels(240), 10);
  EXPECT_EQ(OverlayRenderer::font_pixels(1080), 27);
}

TEST(OverlayRenderer, SaysWhichFontReplacesAMissingFamily) {
  OverlayRenderer renderer;
  EXPECT_EQ(renderer.set_font_family("Sans"), std::nullopt);
  EXPECT_EQ(renderer.set_font_family("DejaVu Sans"), std::nullopt);
  EXPECT_EQ(renderer.set_font_family("dejavu sans"), std::nullopt);
  EXPECT_EQ(renderer.set_font_family("No Such Family, DejaVu Sans"), std::nullopt);
  const std::optional<std::string> substitute = renderer.set_font_family("No Such Family");
  ASSERT_TRUE(substitute);
  EXPECT_FALSE(substitute->empty());
}

TEST(OverlayRenderer, CairoNeedsAlignedRows) {
  std::vector<guint8> bytes(64 * 10 * 4 + 8);
  EXPECT_TRUE(cairo_can_draw_on({bytes.data(), 64, 10, 64 * 4, true, false}));
  EXPECT_FALSE(cairo_can_draw_on({bytes.data(), 64, 10, 64 * 4 + 2, true, false}));
  EXPECT_FALSE(cairo_can_draw_on({bytes.data() + 1, 64, 10, 64 * 4, true, false}));
}

}  // namespace
}  // namespace emi
