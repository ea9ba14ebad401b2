// SPDX-License-Identifier: LGPL-2.1-or-later
// emi-bench-overlay: what emoverlay costs per frame, through the element as a pipeline runs it
// (read the frame document, describe the scene, map the frame, draw), at 1920x1080 and 360x360.
// See README.md. Not a test:
//   build/bench/emi-bench-overlay [--frames N] [--rounds R] [--png DIR]
#include <cairo.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "document/frame_document.h"
#include "common/gst_ptr.h"

#ifndef EMI_BENCH_PLUGIN_DIR
#error "EMI_BENCH_PLUGIN_DIR must name the folder of libgstemi.so"
#endif

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using HarnessPtr = std::unique_ptr<GstHarness, emi::ReleaseWith<gst_harness_teardown>>;

constexpr int kObjects = 20;
const char* const kLabels[] = {"person", "car", "bicycle", "dog", "truck"};
const char* const kClasses[] = {"black swan", "sports car", "mountain bike", "golden retriever",
                                "pickup"};

struct Size {
  int width;
  int height;
};

// 20 tracked objects on a 5 x 4 grid, each with a classifier result; two elements' frame-level
// results; the tracker's counts and counting line. `variant` changes every probability, so
// every text differs from the previous frame's.
json scene_document(Size size, int variant) {
  json objects = json::array();
  const double cell_width = size.width / 5.0;
  const double cell_height = size.height / 4.0;
  for (int i = 0; i < kObjects; ++i) {
    const int column = i % 5;
    const int row = i / 5;
    objects.push_back(
        {{"class_id", i % 5},
         {"object_id", 100 + i},
         {"confidence", 0.9},
         {"obj_label", kLabels[i % 5]},
         {"rect_params", {{"left", column * cell_width + cell_width * 0.1},
                          {"top", row * cell_height + cell_height * 0.3},
                          {"width", cell_width * 0.7},
                          {"height", cell_height * 0.6}}},
         {"tracking_ended_time", "N/A"},
         {"emcustom", {{"predicted_class", kClasses[i % 5]}, {"probability", 50 + (i + variant) % 50}}}});
  }
  json frame = {{"frame_num", variant},
                {"timestamp", "2026-11-23T08:24:36.748+0000"},
                {"source_frame_width", size.width},
                {"source_frame_height", size.height},
                {"object", objects}};
  frame["emcustom"] = {{{"predicted_class", "marching"}, {"probability", 60 + variant % 40}}};
  frame["action"] = {{{"predicted_class", "walking"}, {"probability", 0.42}}};
  frame["counts"] = {{"total", 120 + variant},
                     {"in_view", kObjects},
                     {"by_label", {{"person", 40}, {"car", 30}, {"bicycle", 20}, {"dog", 15}, {"truck", 15}}},
                     {"line_crossings", {{"forward", 60}, {"backward", 31}}},
                     {"line", {0, size.height * 0.8, size.width, size.height * 0.7}}};
  return {{"frame", {frame}}};
}

struct Scene {
  const char* name;
  const char* properties;
  // The document of frame i (nullopt: the buffer carries none).
  std::function<std::optional<json>(Size, int)> document;
};

const std::vector<Scene>& scenes() {
  static const std::vector<Scene> all = {
      {"no document", "", [](Size, int) { return std::optional<json>(); }},
      {"layers off (parse only)", "draw-boxes=false draw-labels=false draw-results=false draw-counts=false",
       [](Size size, int) { return std::optional<json>(scene_document(size, 0)); }},
      {"20 objects", "display-clock=true",
       [](Size size, int) { return std::optional<json>(scene_document(size, 0)); }},
      {"20 objects, new text", "display-clock=true",
       [](Size size, int i) { return std::optional<json>(scene_document(size, i)); }},
  };
  return all;
}

GstBuffer* background(Size size) {
  GstBuffer* buffer = gst_buffer_new_allocate(nullptr, static_cast<gsize>(size.width) * size.height * 4, nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  for (int y = 0; y < size.height; ++y) {
    for (int x = 0; x < size.width; ++x) {
      guint8* pixel = map.data + (static_cast<gsize>(y) * size.width + x) * 4;
      pixel[0] = static_cast<guint8>(60 + y * 120 / size.height);
      pixel[1] = static_cast<guint8>(70 + x * 90 / size.width);
      pixel[2] = ((x * 8 / size.width) + (y * 8 / size.height)) % 2 == 0 ? 150 : 100;
      pixel[3] = 255;
    }
  }
  gst_buffer_unmap(buffer, &map);
  return buffer;
}

void write_png(GstBuffer* buffer, Size size, const std::string& path) {
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_READ);
  // BGRA is cairo's ARGB32 on little-endian machines.
  std::unique_ptr<cairo_surface_t, emi::ReleaseWith<cairo_surface_destroy>> surface(
      cairo_image_surface_create_for_data(map.data, CAIRO_FORMAT_ARGB32, size.width, size.height,
                                          size.width * 4));
  const cairo_status_t status = cairo_surface_write_to_png(surface.get(), path.c_str());
  gst_buffer_unmap(buffer, &map);
  if (status == CAIRO_STATUS_SUCCESS) std::fprintf(stderr, "wrote %s\n", path.c_str());
  else std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), cairo_status_to_string(status));
}

// Mean ms per frame over `frames` frames pushed through one emoverlay. The same buffer goes round
// (pushed, pulled, pushed again), so no frame is ever copied; only the push, which runs the
// element's transform, is timed, not attaching the document.
double run_once(const Scene& scene, Size size, int frames, const std::string& png_path) {
  HarnessPtr harness(gst_harness_new_parse((std::string("emoverlay ") + scene.properties).c_str()));
  gst_harness_set_src_caps_str(harness.get(),
      ("video/x-raw,format=BGRA,width=" + std::to_string(size.width) + ",height=" +
       std::to_string(size.height) + ",framerate=30/1").c_str());
  emi::UniqueBuffer buffer(background(size));
  constexpr int kWarmup = 20;
  Clock::duration timed{};
  for (int i = -kWarmup; i < frames; ++i) {
    if (std::optional<json> document = scene.document(size, i + kWarmup))
      emi::write_document(buffer.get(), *document);
    const Clock::time_point start = Clock::now();
    const GstFlowReturn flow = gst_harness_push(harness.get(), buffer.release());
    if (i >= 0) timed += Clock::now() - start;
    if (flow != GST_FLOW_OK) {
      std::fprintf(stderr, "push failed: %s\n", gst_flow_get_name(flow));
      std::exit(1);
    }
    buffer.reset(gst_harness_pull(harness.get()));
  }
  if (!png_path.empty()) write_png(buffer.get(), size, png_path);
  return std::chrono::duration<double, std::milli>(timed).count() / frames;
}

// Before gst_init: our build's plugin first on the path, a registry of our own.
void set_up_environment() {
  const gchar* plugin_dir = g_getenv("EMI_BENCH_PLUGIN_DIR");
  std::string path = plugin_dir != nullptr && *plugin_dir != '\0' ? plugin_dir : EMI_BENCH_PLUGIN_DIR;
  if (const gchar* existing = g_getenv("GST_PLUGIN_PATH")) path += std::string(":") + existing;
  g_setenv("GST_PLUGIN_PATH", path.c_str(), TRUE);
  if (g_getenv("GST_REGISTRY") == nullptr)
    g_setenv("GST_REGISTRY", EMI_BENCH_BUILD_DIR "/emi-bench-registry.bin", TRUE);
}

}  // namespace

int main(int argc, char** argv) {
  int frames = 300;
  int rounds = 5;
  std::string png_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--frames" && i + 1 < argc) frames = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--png" && i + 1 < argc) png_dir = argv[++i];
    else {
      std::fprintf(stderr, "usage: emi-bench-overlay [--frames N] [--rounds R] [--png DIR]\n"
                           "  --png DIR  also writes each size's last drawn frame as a PNG\n");
      return 2;
    }
  }
  set_up_environment();
  gst_init(nullptr, nullptr);
  if (GstElementFactory* factory = gst_element_factory_find("emoverlay")) {
    gst_object_unref(factory);
  } else {
    std::fprintf(stderr, "emoverlay not found in %s\n", g_getenv("GST_PLUGIN_PATH"));
    return 1;
  }

  std::printf("%-10s %-26s %7s %12s %9s\n", "size", "scene", "frames", "ms/frame", "min");
  double worst_1080p = 0;
  for (const Size size : {Size{1920, 1080}, Size{360, 360}}) {
    const std::string size_name = std::to_string(size.width) + "x" + std::to_string(size.height);
    for (const Scene& scene : scenes()) {
      std::vector<double> per_frame;
      for (int round = 0; round < rounds; ++round) {
        const bool keep_png = !png_dir.empty() && round == 0 && std::string(scene.name) == "20 objects";
        per_frame.push_back(run_once(scene, size, frames,
                                     keep_png ? png_dir + "/overlay_" + size_name + ".png" : ""));
      }
      std::sort(per_frame.begin(), per_frame.end());
      const double median = per_frame[per_frame.size() / 2];
      std::printf("%-10s %-26s %7d %12.3f %9.3f\n", size_name.c_str(), scene.name, frames, median,
                  per_frame.front());
      std::fflush(stdout);
      if (size.height == 1080) worst_1080p = std::max(worst_1080p, median);
    }
  }
  std::printf("\nTarget: <= 2 ms per 1080p frame with 20 labelled objects: %.3f ms (%s)\n", worst_1080p,
              worst_1080p <= 2.0 ? "met" : "NOT MET");
  gst_deinit();
  return 0;
}
