// SPDX-License-Identifier: LGPL-2.1-or-later
// emi-bench-record: what the record action's ClipRecorder costs. For 640x360 and 1080p I420 and
// each x264 speed preset: frames per second it encodes when fed as fast as it takes them, and the
// CPU time per frame (so the share of the machine that recording 30 fps takes), a clip being
// written all along; fragmented MP4 (as recorded) against plain; then how long push() takes when frames come faster than the encoder, and
// what a real-time 1080p 30 fps stream loses. Prints a table.
//   ninja -C build bench/emi-bench-record && build/bench/emi-bench-record [--seconds S]
#include <gst/gst.h>
#include <gst/video/video.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "actions/record/clip_recorder.h"
#include "common/gst_ptr.h"

namespace {

using emi::UniqueBuffer;
using emi::UniqueCaps;
using emi::record::ClipRecorder;
using emi::record::RecorderSettings;
using Clock = std::chrono::steady_clock;

constexpr int kFramesPerSecond = 30;
constexpr int kDistinctFrames = 60;

struct Size {
  int width;
  int height;
};

GstClockTime pts_of(int frame) { return gst_util_uint64_scale(frame, GST_SECOND, kFramesPerSecond); }

// Camera-like content: a diagonal gradient drifting right and a bright square crossing the frame,
// with a little fixed grain; kDistinctFrames of them, shown in a loop.
std::vector<UniqueBuffer> scene(Size size) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_I420, size.width, size.height);
  std::vector<UniqueBuffer> frames;
  for (int index = 0; index < kDistinctFrames; ++index) {
    UniqueBuffer buffer(gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr));
    GstVideoFrame frame;
    gst_video_frame_map(&frame, &info, buffer.get(), GST_MAP_WRITE);
    auto* luma = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    const int square = size.height / 4;
    const int square_left = index * (size.width - square) / kDistinctFrames;
    for (int y = 0; y < size.height; ++y) {
      for (int x = 0; x < size.width; ++x) {
        const bool in_square = x >= square_left && x < square_left + square && y >= square && y < 2 * square;
        const int grain = static_cast<int>((x * 7919u + y * 104729u) % 9);
        luma[y * stride + x] = in_square ? 235 : static_cast<guint8>((x + y + 4 * index) % 200 + 16 + grain);
      }
    }
    for (int plane = 1; plane < 3; ++plane) {
      auto* chroma = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane));
      const int chroma_stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane);
      for (int y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT(&frame, plane); ++y)
        std::memset(chroma + y * chroma_stride, plane == 1 ? 110 : 150, GST_VIDEO_FRAME_COMP_WIDTH(&frame, plane));
    }
    gst_video_frame_unmap(&frame);
    frames.push_back(std::move(buffer));
  }
  return frames;
}

// Frame `index` of the loop: a new buffer sharing the scene's memory, with its own PTS.
UniqueBuffer frame_at(const std::vector<UniqueBuffer>& frames, int index) {
  UniqueBuffer frame(gst_buffer_copy(frames[index % frames.size()].get()));
  GST_BUFFER_PTS(frame.get()) = pts_of(index);
  GST_BUFFER_DURATION(frame.get()) = GST_SECOND / kFramesPerSecond;
  return frame;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

UniqueCaps caps_for(Size size) {
  return UniqueCaps(gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "I420", "width", G_TYPE_INT,
                                        size.width, "height", G_TYPE_INT, size.height, "framerate",
                                        GST_TYPE_FRACTION, kFramesPerSecond, 1, nullptr));
}

RecorderSettings settings_for(const std::string& preset) {
  const std::string directory = std::string(EMI_BENCH_BUILD_DIR) + "/record-clips";
  std::filesystem::remove_all(directory);
  RecorderSettings settings{directory, "bench", 5};
  settings.speed_preset = preset;
  return settings;
}

void report_errors(const std::string& error) { std::fprintf(stderr, "error: %s\n", error.c_str()); }

// Encoded frames per second and CPU ms per frame, fed at the encoder's pace (nothing dropped),
// with one event a second so that a clip is always being written.
// `fragment_milliseconds` 0: plain MP4 (its moov written at the end), else fragmented as recorded.
void throughput(Size size, const std::string& preset, int frames_to_push, unsigned fragment_milliseconds = 1000) {
  const std::vector<UniqueBuffer> frames = scene(size);
  RecorderSettings settings = settings_for(preset);
  settings.fragment_milliseconds = fragment_milliseconds;
  ClipRecorder recorder(settings, caps_for(size).get(), report_errors);
  const double cpu_before = cpu_seconds();
  const Clock::time_point start = Clock::now();
  for (int index = 0; index < frames_to_push; ++index) {
    UniqueBuffer frame = frame_at(frames, index);
    recorder.push(frame.get());
    if (index % kFramesPerSecond == 0) recorder.trigger(pts_of(index), 5, 60, {{"frame", index}});
    recorder.wait_for_encoder(std::chrono::seconds(10));
  }
  recorder.finish();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_ms_per_frame = (cpu_seconds() - cpu_before) * 1000 / frames_to_push;
  std::uintmax_t bytes = 0;
  double clip_seconds = 0;
  for (const auto& clip : recorder.finished_clips()) {
    bytes += std::filesystem::file_size(clip.path);
    clip_seconds += static_cast<double>(clip.frames) / kFramesPerSecond;
  }
  std::printf("| %4dx%-4d | %-9s | %-10s | %5.0f | %6.2f | %4.2f | %6.0f |\n", size.width, size.height,
              preset.c_str(), fragment_milliseconds > 0 ? "fragmented" : "plain", frames_to_push / seconds,
              cpu_ms_per_frame, cpu_ms_per_frame * kFramesPerSecond / 1000,
              clip_seconds > 0 ? bytes * 8 / clip_seconds / 1000 : 0.0);
}

// push() when frames come far faster than the encoder takes them: how long each call takes, and
// how many frames are dropped.
void burst(Size size, int frames_to_push) {
  const std::vector<UniqueBuffer> frames = scene(size);
  ClipRecorder recorder(settings_for("ultrafast"), caps_for(size).get(), report_errors);
  std::vector<double> push_us;
  for (int index = 0; index < frames_to_push; ++index) {
    UniqueBuffer frame = frame_at(frames, index);
    const Clock::time_point before = Clock::now();
    recorder.push(frame.get());
    push_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - before).count());
  }
  recorder.finish();
  std::sort(push_us.begin(), push_us.end());
  std::printf("burst of %d %dx%d frames: push() median %.1f µs, max %.1f µs; %llu dropped, %llu encoded\n",
              frames_to_push, size.width, size.height, push_us[push_us.size() / 2], push_us.back(),
              static_cast<unsigned long long>(recorder.frames_dropped()),
              static_cast<unsigned long long>(recorder.frames_encoded()));
}

// A live 30 fps stream (frames pushed on their time) with a clip written throughout.
void real_time(Size size, const std::string& preset, int seconds) {
  const std::vector<UniqueBuffer> frames = scene(size);
  ClipRecorder recorder(settings_for(preset), caps_for(size).get(), report_errors);
  const int frames_to_push = seconds * kFramesPerSecond;
  const double cpu_before = cpu_seconds();
  const Clock::time_point start = Clock::now();
  for (int index = 0; index < frames_to_push; ++index) {
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(pts_of(index)));
    UniqueBuffer frame = frame_at(frames, index);
    recorder.push(frame.get());
    if (index % kFramesPerSecond == 0) recorder.trigger(pts_of(index), 5, 60, {{"frame", index}});
  }
  const double cpu = cpu_seconds() - cpu_before;
  recorder.finish();
  std::printf("live %dx%d at 30 fps, %s, %d s: %llu of %d frames dropped, %.0f%% of one core\n", size.width,
              size.height, preset.c_str(), seconds, static_cast<unsigned long long>(recorder.frames_dropped()),
              frames_to_push, cpu * 100 / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int seconds = 10;
  for (int index = 1; index + 1 < argc; ++index) {
    if (std::strcmp(argv[index], "--seconds") == 0) seconds = std::max(1, std::atoi(argv[index + 1]));
  }
  std::printf("%u CPU cores\n\n", std::thread::hardware_concurrency());
  std::printf("| size      | preset    | MP4        | fps   | CPU ms/frame | cores busy at 30 fps | clip kbit/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Size size : {Size{640, 360}, Size{1920, 1080}}) {
    for (const char* preset : {"ultrafast", "superfast", "veryfast"})
      throughput(size, preset, seconds * kFramesPerSecond);
  }
  // What clips that survive a kill -9 cost: fragmented against plain MP4, interleaved.
  for (int round = 0; round < 2; ++round) {
    throughput(Size{640, 360}, "ultrafast", seconds * kFramesPerSecond, 1000);
    throughput(Size{640, 360}, "ultrafast", seconds * kFramesPerSecond, 0);
  }
  std::printf("\n");
  burst(Size{1920, 1080}, 300);
  real_time(Size{1920, 1080}, "ultrafast", seconds);
  real_time(Size{1920, 1080}, "superfast", seconds);
  return 0;
}
