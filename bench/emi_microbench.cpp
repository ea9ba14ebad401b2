// SPDX-License-Identifier: LGPL-2.1-or-later
// emi-microbench: where empycustom's per-frame time goes, step by step, outside GStreamer.
//
// Replays what gst_em_py_custom_transform_ip() does for one frame (see plugin/gstempycustom.cpp and
// plugin/user_program.cpp), with the plugin's own functions from libemicore, and times each step
// with the monotonic clock. Not built by default, since it links the plugin's internals:
//   ninja -C build bench/emi-microbench && build/bench/emi-microbench [--frames N] [--width W --height H]
#include <gst/gst.h>
#include <gst/video/video.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "document/frame_document.h"
#include "document/literal_parser.h"
#include "embed/python_convert.h"
#include "embed/python_frame.h"
#include "embed/python_host.h"
#include "document/result_placement.h"

namespace py = pybind11;

namespace {

double now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

enum Step {
  kBuildDocument,
  kGilTake,
  kMapAndView,
  kInMeta,
  kCall,
  kResultAndEvents,
  kFinish,
  kGilRelease,
  kParseResult,
  kPlaceResults,
  kWriteDocument,
  kDestroyDocument,
  kSteps
};

const char* const kStepNames[kSteps] = {
    "build_document (read meta, timestamps, ISO 8601 text, ROI scan)",
    "GilGuard() (PyGILState_Ensure)",
    "FrameForScript (gst_buffer_map, MappedFrame, FrameArray view)",
    "to_python(in_meta) (the whole document as a dict)",
    "process_ip(io_buffer, in_meta) call (incl. context string)",
    "result to std::string, from_python(events)",
    "drop in_meta/io_buffer + FrameForScript::finish (unmap)",
    "~GilGuard() (PyGILState_Release)",
    "parse_literal(\"[]\")",
    "frame_record + place_results",
    "write_document (dump + custom meta + gst_structure_set)",
    "~json (the document)",
};

}  // namespace

int main(int argc, char** argv) {
  int frames = 200000;
  int width = 640;
  int height = 360;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--frames") frames = std::max(1, std::atoi(argv[i + 1]));
    else if (arg == "--width") width = std::atoi(argv[i + 1]);
    else if (arg == "--height") height = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: emi-microbench [--frames N] [--width W] [--height H]\n");
      return 2;
    }
  }
  gst_init(nullptr, nullptr);
  emi::register_document_meta();
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, width, height);
  std::vector<guint8> pixels(GST_VIDEO_INFO_SIZE(&info));
  GstMemory* memory = gst_memory_new_wrapped(GST_MEMORY_FLAG_READONLY, pixels.data(), pixels.size(),
                                             0, pixels.size(), nullptr, nullptr);

  emi::python::ensure_started();
  py::object function;
  {
    emi::python::GilGuard gil;
    py::object module = emi::python::helpers().attr("load_module")(
        std::string(EMI_BENCH_SOURCE_DIR) + "/noop.py", "emi_microbench_noop");
    function = module.attr("process_ip");
  }
  const std::string function_name = "process_ip";
  const std::string path = std::string(EMI_BENCH_SOURCE_DIR) + "/noop.py";

  std::array<double, kSteps> total{};
  double iso_total = 0;
  double dump_total = 0;
  const int warmup = std::min(frames / 10, 10000);
  for (int frame = -warmup; frame < frames; ++frame) {
    // What imagefreeze pushes: a fresh buffer sharing the frame's memory.
    GstBuffer* buffer = gst_buffer_new();
    gst_buffer_append_memory(buffer, gst_memory_ref(memory));
    GST_BUFFER_PTS(buffer) = static_cast<GstClockTime>(frame + warmup) * 33333333;

    std::array<double, kSteps + 1> t{};
    t[0] = now_ns();
    nlohmann::json document = emi::build_document(
        buffer, {static_cast<guint64>(frame + warmup), width, height});
    t[1] = now_ns();
    std::string text;
    {
      emi::python::GilGuard gil;
      t[2] = now_ns();
      std::optional<emi::python::FrameForScript> view;
      view.emplace(buffer, info, false);
      t[3] = now_ns();
      py::object in_meta = emi::python::to_python(document);
      t[4] = now_ns();
      py::list events;
      const std::string context = function_name + "() of " + path;  // as process() does
      py::object result = function(view->io_buffer(), in_meta);
      t[5] = now_ns();
      text = result.cast<std::string>();
      nlohmann::json event_values = emi::python::from_python(events);
      t[6] = now_ns();
      result = py::object();
      in_meta = py::object();
      view->finish(buffer);
      view.reset();
      t[7] = now_ns();
    }
    t[8] = now_ns();
    nlohmann::json results = emi::parse_literal(text);
    t[9] = now_ns();
    nlohmann::json& record = emi::frame_record(document);
    emi::place_results(record, results, emi::PlacementMode::kAuto, "emcustom", width, height);
    t[10] = now_ns();
    emi::write_document(buffer, document);
    t[11] = now_ns();
    document = nlohmann::json();
    results = nlohmann::json();
    t[12] = now_ns();
    gst_buffer_unref(buffer);

    // Pieces of the above, timed on their own.
    const double i0 = now_ns();
    std::string iso = emi::format_iso8601(g_get_real_time() * 1000);
    const double i1 = now_ns();
    if (frame >= 0) {
      for (int step = 0; step < kSteps; ++step) total[step] += t[step + 1] - t[step];
      iso_total += i1 - i0;
    }
  }
  {
    // dump() of a document like the one write_document stores.
    GstBuffer* buffer = gst_buffer_new();
    nlohmann::json document = emi::build_document(buffer, {1, width, height});
    emi::place_results(emi::frame_record(document), emi::parse_literal("[]"),
                       emi::PlacementMode::kAuto, "emcustom", width, height);
    std::printf("document as stored (%zu bytes): %s\n\n", document.dump().size(), document.dump().c_str());
    const double d0 = now_ns();
    std::size_t bytes = 0;
    for (int i = 0; i < frames; ++i)
      bytes += document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
    dump_total = now_ns() - d0;
    if (bytes == 0) std::printf("?\n");
    gst_buffer_unref(buffer);
  }

  double sum = 0;
  for (double value : total) sum += value;
  std::printf("emi-microbench: %d frames of %dx%d RGBA (after %d warm-up), ns/frame per step\n",
              frames, width, height, warmup);
  const double c0 = now_ns();
  double sink = 0;
  for (int i = 0; i < 1000000; ++i) sink += now_ns();
  const double clock_read = (now_ns() - c0) / 1e6;
  std::printf("(each step includes one clock read, %.0f ns)\n\n", sink > 0 ? clock_read : 0.0);
  for (int step = 0; step < kSteps; ++step)
    std::printf("%8.0f ns  %5.1f%%  %s\n", total[step] / frames, 100.0 * total[step] / sum,
                kStepNames[step]);
  std::printf("%8.0f ns  100.0%%  total\n\n", sum / frames);
  std::printf("%8.0f ns          of which format_iso8601 (in build_document), timed alone\n",
              iso_total / frames);
  std::printf("%8.0f ns          of which json::dump (in write_document), timed alone\n",
              dump_total / frames);
  gst_memory_unref(memory);
  return 0;
}
