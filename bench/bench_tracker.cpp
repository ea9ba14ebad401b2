// SPDX-License-Identifier: LGPL-2.1-or-later
// emi-bench-tracker: frames per second of the IOU tracker with 10, 100 and 500 moving objects a
// frame, alone (emi::tracking::IouTracker::update, with its defaults, with predict on, and with
// bench/mot_eval.py's predict setting) and as
// the emtracker element (through a GstHarness: the frame document read, tracked, written back).
// Single-threaded; prints a table.
//   ninja -C build bench/emi-bench-tracker && build/bench/emi-bench-tracker [--runs R] [--scale S]
#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "document/frame_document.h"
#include "common/gst_ptr.h"
#include "tracking/iou_tracker.h"

namespace {

using emi::tracking::Detection;
using emi::tracking::FrameTime;
using emi::tracking::IouTracker;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kWidth = 1920;
constexpr int kHeight = 1080;
constexpr std::int64_t kFrameNs = 33'333'333;

struct Workload {
  int objects;
  int frames;
};

// Boxes in linear motion across a 1080p frame, bouncing off its edges, with ±2 px detector noise
// and 5% missed detections (as the MOT test's scene, more objects).
std::vector<std::vector<Detection>> moving_boxes(int objects, int frames) {
  std::mt19937 engine(2017);
  const auto uniform = [&engine](double low, double high) {
    return low + (high - low) * (engine() / 4294967296.0);
  };
  struct Motion {
    double left, top, width, height, dx, dy;
  };
  std::vector<Motion> motions;
  for (int id = 0; id < objects; ++id) {
    const double width = uniform(24, 96), height = uniform(24, 128);
    motions.push_back({uniform(0, kWidth - width), uniform(0, kHeight - height), width, height,
                       uniform(-4, 4), uniform(-4, 4)});
  }
  std::vector<std::vector<Detection>> scene(frames);
  for (auto& detections : scene) {
    for (Motion& motion : motions) {
      motion.left += motion.dx;
      motion.top += motion.dy;
      if (motion.left < 0 || motion.left + motion.width > kWidth) motion.dx = -motion.dx;
      if (motion.top < 0 || motion.top + motion.height > kHeight) motion.dy = -motion.dy;
      if (uniform(0, 1) < 0.05) continue;
      detections.push_back({{std::round(motion.left + uniform(-2, 2)), std::round(motion.top + uniform(-2, 2)),
                             std::round(motion.width + uniform(-2, 2)), std::round(motion.height + uniform(-2, 2))},
                            uniform(0.6, 1.0), 0, "car"});
    }
  }
  return scene;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

emi::tracking::TrackerSettings predicting() {
  emi::tracking::TrackerSettings settings;
  settings.predict = true;
  return settings;
}

// bench/mot_eval.py's predict preset: the paper's thresholds, predict, max-age 2,
// confident-first, weak-min-hits 6.
emi::tracking::TrackerSettings mot_setting() {
  emi::tracking::TrackerSettings settings;
  settings.min_confidence = 0;
  settings.high_confidence = 0.5;
  settings.iou_threshold = 0.5;
  settings.min_hits = 2;
  settings.max_age = 2;
  settings.predict = true;
  settings.confident_first = true;
  settings.weak_min_hits = 6;
  return settings;
}

// Seconds per frame of IouTracker::update over the scene.
double time_algorithm(const std::vector<std::vector<Detection>>& scene,
                      const emi::tracking::TrackerSettings& settings = {}) {
  std::vector<FrameTime> times;
  for (std::size_t frame = 0; frame < scene.size(); ++frame)
    times.push_back({static_cast<std::int64_t>(frame) * kFrameNs, emi::format_iso8601(0)});
  IouTracker tracker(settings);
  const Clock::time_point start = Clock::now();
  for (std::size_t frame = 0; frame < scene.size(); ++frame) tracker.update(scene[frame], times[frame]);
  return seconds_since(start) / scene.size();
}

// The buffers `empycustom mode=detect` would hand on: the objects in the frame document and
// mirrored as ROI metas. They share one frame's memory: the element never looks at it.
std::vector<GstBuffer*> detector_output(const std::vector<std::vector<Detection>>& scene, GstMemory* frame) {
  std::vector<GstBuffer*> buffers;
  for (std::size_t index = 0; index < scene.size(); ++index) {
    GstBuffer* buffer = gst_buffer_new();
    gst_buffer_append_memory(buffer, gst_memory_ref(frame));
    GST_BUFFER_PTS(buffer) = index * kFrameNs;
    json document = emi::build_document(buffer, {index, kWidth, kHeight});
    json& objects = emi::frame_record(document)["object"];
    for (const Detection& detection : scene[index]) {
      objects.push_back({{"class_id", detection.class_id},
                         {"object_id", -1},
                         {"confidence", detection.confidence},
                         {"obj_label", detection.label},
                         {"rect_params",
                          {{"left", static_cast<int>(detection.box.left)},
                           {"top", static_cast<int>(detection.box.top)},
                           {"width", static_cast<int>(detection.box.width)},
                           {"height", static_cast<int>(detection.box.height)}}},
                         {"text_params", {{"display_text", detection.label}}}});
    }
    for (std::size_t object = 0; object < objects.size(); ++object)
      emi::attach_object_roi(buffer, objects[object], static_cast<guint>(object));
    emi::write_document(buffer, std::move(document));
    buffers.push_back(buffer);
  }
  return buffers;
}

// Seconds per frame of pushing the buffers through `element` in a harness and pulling them out.
double time_element(const char* element, const std::vector<std::vector<Detection>>& scene, GstMemory* frame) {
  std::unique_ptr<GstHarness, emi::ReleaseWith<gst_harness_teardown>> harness(gst_harness_new(element));
  gst_harness_set_src_caps_str(harness.get(), "video/x-raw,format=GRAY8,width=1920,height=1080,framerate=30/1");
  const std::vector<GstBuffer*> buffers = detector_output(scene, frame);
  // Push and pull are timed; freeing the buffer (and its document) after is not: a pipeline pays
  // it once per frame, in whichever element drops the buffer.
  Clock::duration timed{};
  for (GstBuffer* buffer : buffers) {
    const Clock::time_point start = Clock::now();
    if (gst_harness_push(harness.get(), buffer) != GST_FLOW_OK) {
      std::fprintf(stderr, "%s refused a buffer\n", element);
      std::exit(1);
    }
    GstBuffer* out = gst_harness_pull(harness.get());
    timed += Clock::now() - start;
    gst_buffer_unref(out);
  }
  return std::chrono::duration<double>(timed).count() / buffers.size();
}

// Seconds per frame of what any emi element pays for the document alone: build_document (parse,
// ROI scan) and write_document (serialise), without tracking.
double time_document_only(const std::vector<std::vector<Detection>>& scene, GstMemory* frame) {
  const std::vector<GstBuffer*> buffers = detector_output(scene, frame);
  const Clock::time_point start = Clock::now();
  for (std::size_t index = 0; index < buffers.size(); ++index) {
    json document = emi::build_document(buffers[index], {index, kWidth, kHeight});
    emi::write_document(buffers[index], std::move(document));
  }
  const double seconds = seconds_since(start) / buffers.size();
  for (GstBuffer* buffer : buffers) gst_buffer_unref(buffer);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  double scale = 1.0;
  for (int index = 1; index < argc; ++index) {
    const std::string argument = argv[index];
    if (argument == "--runs" && index + 1 < argc) runs = std::max(1, std::atoi(argv[++index]));
    else if (argument == "--scale" && index + 1 < argc) scale = std::max(0.01, std::atof(argv[++index]));
    else {
      std::fprintf(stderr, "usage: %s [--runs R] [--scale S]  (S multiplies the frames per run)\n", argv[0]);
      return 2;
    }
  }
  g_setenv("GST_PLUGIN_PATH", EMI_BENCH_PLUGIN_DIR, TRUE);
  if (g_getenv("GST_REGISTRY") == nullptr)
    g_setenv("GST_REGISTRY", EMI_BENCH_BUILD_DIR "/emi-bench-tracker-registry.bin", TRUE);
  gst_init(&argc, &argv);

  GstMemory* frame = gst_allocator_alloc(nullptr, kWidth * kHeight, nullptr);
  const Workload workloads[] = {{10, 4000}, {100, 1000}, {500, 200}};
  std::printf("%8s %8s %14s %10s %14s %14s %14s %10s %12s %12s\n", "objects", "frames", "tracker fps",
              "us/frame", "predict fps", "mot fps", "element fps", "us/frame", "document us", "identity us");
  double fps_at_100 = 0;
  for (const Workload& workload : workloads) {
    const int frames = std::max(10, static_cast<int>(workload.frames * scale));
    const std::vector<std::vector<Detection>> scene = moving_boxes(workload.objects, frames);
    std::vector<double> algorithm, predicted, mot, element, document, identity;
    for (int run = 0; run < runs; ++run) {
      algorithm.push_back(time_algorithm(scene));
      predicted.push_back(time_algorithm(scene, predicting()));
      mot.push_back(time_algorithm(scene, mot_setting()));
      element.push_back(time_element("emtracker", scene, frame));
      document.push_back(time_document_only(scene, frame));
      identity.push_back(time_element("identity", scene, frame));
    }
    const double algorithm_s = median(algorithm), element_s = median(element);
    if (workload.objects == 100) fps_at_100 = 1 / algorithm_s;
    std::printf("%8d %8d %14.0f %10.2f %14.0f %14.0f %14.0f %10.2f %12.2f %12.2f\n", workload.objects, frames,
                1 / algorithm_s, algorithm_s * 1e6, 1 / median(predicted), 1 / median(mot), 1 / element_s,
                element_s * 1e6, median(document) * 1e6, median(identity) * 1e6);
  }
  std::printf("\nmedians of %d runs; 'predict': the tracker with predict=true; 'mot': with mot_eval.py's predict\n"
              "setting (predict, max-age 2, confident-first, weak-min-hits 6); 'document': build_document +\n"
              "write_document alone; 'identity': the same buffers through identity in the same harness.\n"
              "Target: tracker >= 5000 fps at 100 objects on one core: %.0f fps, %s\n",
              runs, fps_at_100, fps_at_100 >= 5000 ? "met" : "NOT MET");
  gst_memory_unref(frame);
  return 0;
}
