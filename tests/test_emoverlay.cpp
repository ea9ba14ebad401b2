// SPDX-License-Identifier: LGPL-2.1-or-later
// emoverlay through GstHarness: pixels on generated frames, properties, and a golden image.
#include <cairo.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "document/frame_document.h"
#include "gst_test_support.h"
#include "overlay/overlay_renderer.h"

namespace emi::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr guint8 kGrey = 128;
const char* const kTimestamp = "2026-11-23T08:24:36.748+0000";

// A frame of one grey, opaque.
GstBuffer* grey_frame(int width = kWidth, int height = kHeight) {
  GstBuffer* buffer = gst_buffer_new_allocate(nullptr, static_cast<gsize>(width) * height * 4, nullptr);
  gst_buffer_memset(buffer, 0, kGrey, gst_buffer_get_size(buffer));
  GST_BUFFER_PTS(buffer) = 0;
  return buffer;
}

GstBuffer* with_document(GstBuffer* buffer, const json& frame) {
  write_document(buffer, {{"frame", {frame}}});
  return buffer;
}

json object_at(int left, int top, int width, int height, int track_id, const std::string& label) {
  return {{"class_id", 0},
          {"object_id", track_id},
          {"confidence", 0.9},
          {"obj_label", label},
          {"rect_params", {{"left", left}, {"top", top}, {"width", width}, {"height", height}}},
          {"tracking_ended_time", "N/A"}};
}

json frame_record(json objects = json::array()) {
  return {{"frame_num", 0}, {"timestamp", kTimestamp}, {"source_frame_width", kWidth},
          {"source_frame_height", kHeight}, {"object", std::move(objects)}};
}

std::vector<guint8> bytes_of(GstBuffer* buffer) {
  std::vector<guint8> bytes(gst_buffer_get_size(buffer));
  gst_buffer_extract(buffer, 0, bytes.data(), bytes.size());
  return bytes;
}

// The pixels of a tightly packed 4-byte frame, in memory order.
struct Pixels {
  std::vector<guint8> bytes;
  int width;

  std::array<guint8, 4> at(int x, int y) const {
    const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 4;
    return {bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]};
  }
  bool untouched(int x, int y) const {
    const auto pixel = at(x, y);
    return pixel[0] == kGrey && pixel[1] == kGrey && pixel[2] == kGrey;
  }
  // Pixels in [x0, x1) x [y0, y1) for which `test` holds.
  int count(int x0, int y0, int x1, int y1, const std::function<bool(std::array<guint8, 4>)>& test) const {
    int matching = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) matching += test(at(x, y)) ? 1 : 0;
    return matching;
  }
  int changed(int x0, int y0, int x1, int y1) const {
    return count(x0, y0, x1, y1, [](std::array<guint8, 4> p) {
      return p[0] != kGrey || p[1] != kGrey || p[2] != kGrey;
    });
  }
  // Text is drawn bright on a dark background.
  int white(int x0, int y0, int x1, int y1) const {
    return count(x0, y0, x1, y1, [](std::array<guint8, 4> p) {
      return p[0] > 200 && p[1] > 200 && p[2] > 200;
    });
  }
};

// Runs one frame through emoverlay with `properties`; the frame's pixels afterwards.
Pixels overlay_once(GstBuffer* frame, const std::string& properties = "",
                    const std::string& format = "RGBA", int width = kWidth, int height = kHeight) {
  Watched watched("emoverlay " + properties);
  HarnessPtr harness = harness_for(watched, format, width, height);
  UniqueBuffer out = push_and_pull(harness.get(), frame);
  EXPECT_TRUE(out);
  return Pixels{out ? bytes_of(out.get()) : std::vector<guint8>(), width};
}

TEST(EmOverlay, DocumentsItsPropertiesWithDefaults) {
  UniqueElement element = make_element("emoverlay");
  gboolean boxes = FALSE, labels = FALSE, results = FALSE, counts = FALSE, clock = TRUE;
  gdouble line_width = 0;
  gchar* keys = nullptr;
  gchar* font = nullptr;
  g_object_get(element.get(), "draw-boxes", &boxes, "draw-labels", &labels, "draw-results", &results,
               "draw-counts", &counts, "display-clock", &clock, "line-width", &line_width,
               "result-keys", &keys, "font", &font, nullptr);
  EXPECT_TRUE(boxes && labels && results && counts);
  EXPECT_FALSE(clock);
  EXPECT_EQ(line_width, 3.0);
  EXPECT_STREQ(UniqueChars(keys).get(), "");
  EXPECT_STREQ(UniqueChars(font).get(), "Sans");
}

TEST(EmOverlay, PassesBuffersWithoutADocumentUntouched) {
  Watched watched("emoverlay");
  HarnessPtr harness = harness_for(watched, "RGBA", 64, 48);
  GstBuffer* frame = patterned_frame("RGBA", 64, 48);
  const std::vector<guint8> before = bytes_of(frame);
  // Shared, as after a tee: a write map would give the output a copy of the memory.
  UniqueBuffer kept(gst_buffer_ref(frame));
  UniqueBuffer out = push_and_pull(harness.get(), frame);
  ASSERT_TRUE(out);
  EXPECT_EQ(bytes_of(out.get()), before);
  EXPECT_EQ(gst_buffer_peek_memory(out.get(), 0), gst_buffer_peek_memory(kept.get(), 0));
  EXPECT_FALSE(read_document(out.get()));
}

TEST(EmOverlay, DrawsTheBoxEdgeAtItsCoordinatesAndLeavesTheInside) {
  const Pixels pixels = overlay_once(
      with_document(grey_frame(), frame_record({object_at(100, 80, 60, 90, 7, "person")})));
  for (int y : {80, 120, 169}) {
    EXPECT_FALSE(pixels.untouched(100, y)) << y;  // left edge, 3 px wide
    EXPECT_FALSE(pixels.untouched(102, y)) << y;
    EXPECT_FALSE(pixels.untouched(159, y)) << y;  // right edge
    EXPECT_TRUE(pixels.untouched(99, y)) << y;
    EXPECT_TRUE(pixels.untouched(160, y)) << y;
  }
  EXPECT_FALSE(pixels.untouched(130, 169));  // bottom edge
  EXPECT_TRUE(pixels.untouched(130, 170));
  EXPECT_EQ(pixels.changed(103, 83, 157, 167), 0) << "the inside of the box";
  EXPECT_EQ(pixels.changed(0, 175, kWidth, kHeight), 0) << "below the box";
  EXPECT_EQ(pixels.changed(170, 0, kWidth, kHeight), 0) << "right of the label";
}

TEST(EmOverlay, DrawsTheLabelAboveTheBox) {
  json person = object_at(100, 80, 60, 90, 7, "person");
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  const Pixels pixels = overlay_once(with_document(grey_frame(), frame_record({person})));
  // One line by default: "person #7: black swan 97%" is wider than the box, so "person #7".
  const int line_rows = 2 * OverlayRenderer::font_pixels(kHeight);
  // The label's dark background starts at the box's left and ends on its top edge...
  EXPECT_GT(pixels.changed(100, 80 - line_rows, 160, 80), 60 * line_rows / 3);
  EXPECT_TRUE(pixels.untouched(99, 75));
  EXPECT_EQ(pixels.changed(0, 0, kWidth, 80 - line_rows), 0) << "nothing above one line";
  // ...and holds text in the track's colour: bright red, green well below it, on dark.
  const int text_pixels = pixels.count(100, 80 - line_rows, kWidth, 80, [](std::array<guint8, 4> p) {
    return p[0] > 160 && p[1] < p[0] && p[2] < p[1];
  });
  EXPECT_GT(text_pixels, 20);
}

TEST(EmOverlay, LabelLinesStackTheLabelsParts) {
  json person = object_at(100, 80, 60, 90, 7, "person");
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  const Pixels pixels = overlay_once(with_document(grey_frame(), frame_record({person})), "label-lines=2");
  // Two lines, "person #7", "black swan 97%": the second still wider than the box.
  const int two_lines = 3 * OverlayRenderer::font_pixels(kHeight);
  EXPECT_GT(pixels.changed(100, 80 - two_lines, 160, 80 - two_lines / 2), 0);
  EXPECT_GT(pixels.changed(170, 80 - two_lines, kWidth, 80), 0) << "runs past the box's right side";
}

TEST(EmOverlay, ColoursKeepTheirMeaningInRgbaAndBgra) {
  // Track 7's colour is an orange red: (255, 110, 64).
  const json frame = frame_record({object_at(100, 80, 60, 90, 7, "person")});
  const auto rgba = overlay_once(with_document(grey_frame(), frame), "", "RGBA").at(101, 120);
  const auto bgra = overlay_once(with_document(grey_frame(), frame), "", "BGRA").at(101, 120);
  const auto rgbx = overlay_once(with_document(grey_frame(), frame), "", "RGBx").at(101, 120);
  const auto bgrx = overlay_once(with_document(grey_frame(), frame), "", "BGRx").at(101, 120);
  EXPECT_EQ(rgba[0], 255);
  EXPECT_NEAR(rgba[1], 110, 1);
  EXPECT_NEAR(rgba[2], 64, 1);
  EXPECT_EQ(rgba[3], 255);
  for (const auto& pixel : {bgra, bgrx}) {
    EXPECT_EQ(pixel[2], rgba[0]);
    EXPECT_EQ(pixel[1], rgba[1]);
    EXPECT_EQ(pixel[0], rgba[2]);
  }
  EXPECT_EQ(rgbx[0], rgba[0]);
  EXPECT_EQ(rgbx[2], rgba[2]);
}

TEST(EmOverlay, FrameResultsGoInTheTopLeftCorner) {
  json frame = frame_record();
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  const Pixels pixels = overlay_once(with_document(grey_frame(), frame));
  EXPECT_GT(pixels.white(0, 0, kWidth / 3, kHeight / 8), 20);
  EXPECT_EQ(pixels.changed(kWidth / 2, 0, kWidth, kHeight), 0);
  EXPECT_EQ(pixels.changed(0, kHeight / 4, kWidth, kHeight), 0);
}

TEST(EmOverlay, CountsGoInTheTopRightCornerWithTheCountingLine) {
  json frame = frame_record();
  frame["counts"] = {{"total", 14},
                     {"in_view", 3},
                     {"by_label", {{"person", 9}, {"car", 5}}},
                     {"line_crossings", {{"forward", 6}, {"backward", 2}}},
                     {"line", {0, 180, kWidth, 180}}};
  const Pixels pixels = overlay_once(with_document(grey_frame(), frame));
  EXPECT_GT(pixels.white(kWidth / 2, 0, kWidth, kHeight / 4), 50);
  EXPECT_EQ(pixels.changed(0, 0, kWidth / 4, kHeight / 2), 0);
  const auto on_line = pixels.at(160, 180);  // yellow
  EXPECT_GT(on_line[0], 240);
  EXPECT_GT(on_line[1], 220);
  EXPECT_LT(on_line[2], 30);
  EXPECT_EQ(pixels.changed(0, 190, kWidth, kHeight), 0);
}

TEST(EmOverlay, DisplaysTheClockOnlyWhenAsked) {
  const Pixels without = overlay_once(with_document(grey_frame(), frame_record()));
  EXPECT_EQ(without.changed(0, 0, kWidth, kHeight), 0);
  const Pixels with = overlay_once(with_document(grey_frame(), frame_record()), "display-clock=true");
  EXPECT_GT(with.white(0, kHeight * 7 / 8, kWidth / 2 + 40, kHeight), 50);
  EXPECT_EQ(with.changed(0, 0, kWidth, kHeight * 3 / 4), 0);
}

json everything() {
  json person = object_at(100, 80, 60, 90, 7, "person");
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  json frame = frame_record({person});
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  frame["counts"] = {{"total", 14}, {"line", {0, 180, kWidth, 180}}};
  return frame;
}

TEST(EmOverlay, LayersOffLeaveTheFrameAsItWas) {
  GstBuffer* frame = with_document(patterned_frame("RGBA", kWidth, kHeight), everything());
  const std::vector<guint8> before = bytes_of(frame);
  const Pixels pixels = overlay_once(
      frame, "draw-boxes=false draw-labels=false draw-results=false draw-counts=false");
  EXPECT_EQ(pixels.bytes, before);
}

TEST(EmOverlay, EachLayerTurnsOffAlone) {
  const Pixels no_boxes = overlay_once(with_document(grey_frame(), everything()), "draw-boxes=false");
  EXPECT_TRUE(no_boxes.untouched(100, 120));
  EXPECT_GT(no_boxes.changed(100, 60, 160, 80), 0);
  const Pixels no_labels = overlay_once(with_document(grey_frame(), everything()), "draw-labels=false");
  EXPECT_FALSE(no_labels.untouched(100, 120));
  EXPECT_EQ(no_labels.changed(100, 60, 160, 80), 0);
  const Pixels no_results = overlay_once(with_document(grey_frame(), everything()), "draw-results=false");
  EXPECT_EQ(no_results.changed(0, 0, 90, 30), 0);
  const Pixels no_counts = overlay_once(with_document(grey_frame(), everything()), "draw-counts=false");
  EXPECT_TRUE(no_counts.untouched(20, 180));
  EXPECT_EQ(no_counts.changed(kWidth - 60, 0, kWidth, 30), 0);
}

TEST(EmOverlay, ResultKeysLimitTheResultsShown) {
  json frame = frame_record();
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  const Pixels other_key = overlay_once(with_document(grey_frame(), frame), "result-keys=action");
  EXPECT_EQ(other_key.changed(0, 0, kWidth, kHeight), 0);
  const Pixels listed = overlay_once(with_document(grey_frame(), frame), "result-keys=\"action,emcustom\"");
  EXPECT_GT(listed.changed(0, 0, kWidth, kHeight), 0);
}

TEST(EmOverlay, HonoursPaddedStridesFromVideoMeta) {
  const int stride = kWidth * 4 + 64;
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, static_cast<gsize>(stride) * kHeight, nullptr);
  gst_buffer_memset(frame, 0, kGrey, gst_buffer_get_size(frame));
  gsize offsets[GST_VIDEO_MAX_PLANES] = {0};
  gint strides[GST_VIDEO_MAX_PLANES] = {stride};
  gst_buffer_add_video_meta_full(frame, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_RGBA, kWidth,
                                 kHeight, 1, offsets, strides);
  with_document(frame, frame_record({object_at(100, 80, 60, 90, 7, "person")}));
  const Pixels rows = overlay_once(frame);
  const Pixels padded{std::vector<guint8>(rows.bytes), stride / 4};
  EXPECT_FALSE(padded.untouched(100, 120));
  EXPECT_TRUE(padded.untouched(99, 120));
  EXPECT_EQ(padded.changed(103, 83, 157, 167), 0);
  EXPECT_EQ(padded.changed(kWidth, 0, stride / 4, kHeight), 0) << "the padding";
}

// Catches GLib warnings (g_warning) of one log domain while alive.
class WarningCatcher {
 public:
  explicit WarningCatcher(const char* domain)
      : domain_(domain),
        handler_(g_log_set_handler(domain, G_LOG_LEVEL_WARNING, &WarningCatcher::collect, this)) {}
  ~WarningCatcher() { g_log_remove_handler(domain_, handler_); }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  static void collect(const gchar*, GLogLevelFlags, const gchar* message, gpointer self) {
    static_cast<WarningCatcher*>(self)->messages_.emplace_back(message);
  }
  const char* domain_;
  guint handler_;
  std::vector<std::string> messages_;
};

TEST(EmOverlay, RefusesBadResultKeysAndKeepsTheOldValue) {
  UniqueElement element = make_element("emoverlay result-keys=emcustom");
  WarningCatcher warnings(nullptr);
  g_object_set(element.get(), "result-keys", "emcustom,,action", nullptr);
  gchar* keys = nullptr;
  g_object_get(element.get(), "result-keys", &keys, nullptr);
  EXPECT_STREQ(UniqueChars(keys).get(), "emcustom");
  ASSERT_EQ(warnings.messages().size(), 1u);
  EXPECT_THAT(warnings.messages()[0], HasSubstr("result-keys"));
  EXPECT_THAT(warnings.messages()[0], HasSubstr("key 2 of \"emcustom,,action\" is empty"));
}

TEST(EmOverlay, RefusesLineWidthsOutOfRange) {
  UniqueElement element = make_element("emoverlay");
  WarningCatcher warnings("GLib-GObject");
  g_object_set(element.get(), "line-width", 0.0, nullptr);
  gdouble line_width = 0;
  g_object_get(element.get(), "line-width", &line_width, nullptr);
  EXPECT_EQ(line_width, 3.0);
  ASSERT_EQ(warnings.messages().size(), 1u);
  EXPECT_THAT(warnings.messages()[0], HasSubstr("line-width"));
}

TEST(EmOverlay, WarnsWhenTheFontIsNotInstalled) {
  Watched watched("emoverlay font=\"No Such Font Family\"");
  HarnessPtr harness = harness_for(watched, "RGBA", kWidth, kHeight);
  json frame = frame_record();
  frame["emcustom"] = {{{"predicted_class", "marching"}}};
  UniqueBuffer out = push_and_pull(harness.get(), with_document(grey_frame(), frame));
  ASSERT_TRUE(out);
  EXPECT_GT((Pixels{bytes_of(out.get()), kWidth}).white(0, 0, kWidth / 3, kHeight / 8), 10) << "drawn anyway";
  const auto warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(text_of(warnings[0].get()).message,
              HasSubstr("Font family \"No Such Font Family\" is not installed"));
}

// ---- The golden image: one scene with every layer, compared within a tolerance. ----

constexpr int kGoldenWidth = 640;
constexpr int kGoldenHeight = 360;

std::string golden_path() {
  const char* folder = std::getenv("EMI_TEST_DATA");
  return std::string(folder != nullptr ? folder : "tests/data") + "/overlay_golden.png";
}

// A BGRA background with gradients and a checker, so translucency shows.
GstBuffer* golden_background() {
  GstBuffer* buffer = gst_buffer_new_allocate(nullptr, kGoldenWidth * kGoldenHeight * 4, nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  for (int y = 0; y < kGoldenHeight; ++y) {
    for (int x = 0; x < kGoldenWidth; ++x) {
      guint8* pixel = map.data + (y * kGoldenWidth + x) * 4;
      const bool light_square = ((x / 40) + (y / 40)) % 2 == 0;
      pixel[0] = static_cast<guint8>(60 + y * 120 / kGoldenHeight);  // blue
      pixel[1] = static_cast<guint8>(70 + x * 90 / kGoldenWidth);     // green
      pixel[2] = light_square ? 150 : 100;                            // red
      pixel[3] = 255;
    }
  }
  gst_buffer_unmap(buffer, &map);
  return buffer;
}

json golden_frame() {
  json person = object_at(60, 120, 90, 200, 7, "person");
  person["emcustom"] = {{"predicted_class", "black swan"}, {"probability", 97.1}};
  json car = object_at(300, 200, 160, 100, 12, "car");
  car["emcustom"] = {{"predicted_class", "sports car"}, {"probability", 0.81}};
  json dog = object_at(500, 100, 80, 70, -1, "dog");
  json bicycle = object_at(200, 0, 70, 60, -1, "bicycle");  // at the top: label inside
  json gone = object_at(20, 20, 40, 40, 3, "person");
  gone["tracking_ended_time"] = kTimestamp;  // an ended track: not drawn
  json frame = {{"frame_num", 42},
                {"timestamp", kTimestamp},
                {"source_frame_width", kGoldenWidth},
                {"source_frame_height", kGoldenHeight},
                {"object", {person, car, dog, bicycle, gone}}};
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 63.0}}};
  frame["action"] = {{{"predicted_class", "walking"}, {"probability", 0.42}}};
  frame["counts"] = {{"total", 14},
                     {"in_view", 4},
                     {"by_label", {{"person", 9}, {"car", 5}}},
                     {"line_crossings", {{"forward", 6}, {"backward", 2}}},
                     {"line", {0, 300, 640, 260}}};
  return frame;
}

using SurfacePtr = std::unique_ptr<cairo_surface_t, ReleaseWith<cairo_surface_destroy>>;

// The frame as a cairo surface: BGRA is cairo's ARGB32 on little-endian machines.
SurfacePtr surface_of(std::vector<guint8>& bgra) {
  return SurfacePtr(cairo_image_surface_create_for_data(bgra.data(), CAIRO_FORMAT_ARGB32,
                                                        kGoldenWidth, kGoldenHeight, kGoldenWidth * 4));
}

// Regenerate with: EMI_UPDATE_GOLDEN=1 meson test -C build emoverlay (then look at the PNG).
TEST(EmOverlay, MatchesTheGoldenImage) {
  // DejaVu Sans (fonts-dejavu-core) pinned: "Sans" depends on the machine's fontconfig.
  Watched watched("emoverlay display-clock=true font=\"DejaVu Sans\"");
  HarnessPtr harness = harness_for(watched, "BGRA", kGoldenWidth, kGoldenHeight);
  UniqueBuffer out = push_and_pull(harness.get(), with_document(golden_background(), golden_frame()));
  ASSERT_TRUE(out);
  EXPECT_TRUE(watched.take(GST_MESSAGE_WARNING).empty()) << "DejaVu Sans must be installed";
  std::vector<guint8> actual = bytes_of(out.get());

  if (const char* update = std::getenv("EMI_UPDATE_GOLDEN"); update != nullptr && *update == '1') {
    ASSERT_EQ(cairo_surface_write_to_png(surface_of(actual).get(), golden_path().c_str()),
              CAIRO_STATUS_SUCCESS);
    GTEST_SKIP() << "wrote " << golden_path();
  }

  SurfacePtr golden(cairo_image_surface_create_from_png(golden_path().c_str()));
  ASSERT_EQ(cairo_surface_status(golden.get()), CAIRO_STATUS_SUCCESS)
      << "cannot read " << golden_path() << " (EMI_UPDATE_GOLDEN=1 writes it)";
  ASSERT_EQ(cairo_image_surface_get_width(golden.get()), kGoldenWidth);
  ASSERT_EQ(cairo_image_surface_get_height(golden.get()), kGoldenHeight);
  const guint8* expected = cairo_image_surface_get_data(golden.get());
  const int expected_stride = cairo_image_surface_get_stride(golden.get());

  double total_difference = 0;
  int far_off = 0;
  for (int y = 0; y < kGoldenHeight; ++y) {
    for (int x = 0; x < kGoldenWidth; ++x) {
      int largest = 0;
      for (int channel = 0; channel < 4; ++channel) {
        const int difference = std::abs(actual[(y * kGoldenWidth + x) * 4 + channel] -
                                        expected[y * expected_stride + x * 4 + channel]);
        total_difference += difference;
        largest = std::max(largest, difference);
      }
      far_off += largest > 64 ? 1 : 0;
    }
  }
  // Room for another FreeType/pixman's antialiasing, not for a changed layout: a label moved to
  // two lines gives a mean of 0.48 and 0.59% of pixels far off.
  constexpr double kMeanLimit = 1.0;
  constexpr double kFarOffLimit = 0.0025;
  const double pixels = kGoldenWidth * kGoldenHeight;
  const double mean_difference = total_difference / (pixels * 4);
  const double far_off_share = far_off / pixels;
  if (mean_difference >= kMeanLimit || far_off_share >= kFarOffLimit) {
    const char* folder = std::getenv("EMI_TEST_OUTPUT");
    const std::string written = std::string(folder != nullptr ? folder : ".") + "/overlay_actual.png";
    cairo_surface_write_to_png(surface_of(actual).get(), written.c_str());
    ADD_FAILURE() << "differs from " << golden_path() << ": mean difference " << mean_difference
                  << " (limit " << kMeanLimit << "), " << far_off_share * 100
                  << "% of pixels off by more than 64 (limit " << kFarOffLimit * 100
                  << "%); this run's image: " << written;
  }
}

}  // namespace
}  // namespace emi::test
