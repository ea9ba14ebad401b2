// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/record/clip_recorder.h"

#include <gst/app/app.h>
#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

#include "actions/record/clip_window.h"
#include "actions/record/record_log.h"
#include "common/gst_ptr.h"
#include "common/posix_io.h"
#include "document/frame_document.h"
#include "document/vocabulary.h"

#define GST_CAT_DEFAULT emi::record_debug()

namespace emi::record {
namespace {

using nlohmann::json;
using UniqueSample = std::unique_ptr<GstSample, ReleaseWith<gst_sample_unref>>;
using UniqueFactory = std::unique_ptr<GstElementFactory, ReleaseWith<gst_object_unref>>;

void stop_and_unref(GstElement* pipeline) {
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
// A pipeline that is stopped before it is released.
using RunningPipeline = std::unique_ptr<GstElement, ReleaseWith<stop_and_unref>>;

// How long finish() waits for the encoder to drain and the clips to be finalised.
constexpr auto kFinishTimeout = std::chrono::seconds(60);
// Frame rate assumed for the key frame interval when the caps don't say (variable rate).
constexpr int kAssumedFramesPerSecond = 30;

// The Debian package of each element used, for the message when one is missing.
struct ElementSource {
  const char* factory;
  const char* package;
};
constexpr ElementSource kElementSources[] = {
    {"appsrc", "gstreamer1.0-plugins-base"},  {"appsink", "gstreamer1.0-plugins-base"},
    {"videoconvert", "gstreamer1.0-plugins-base"}, {"capsfilter", "libgstreamer1.0-0"},
    {"x264enc", "gstreamer1.0-plugins-ugly"}, {"h264parse", "gstreamer1.0-plugins-bad"},
    {"mp4mux", "gstreamer1.0-plugins-good"},  {"filesink", "libgstreamer1.0-0"},
};

std::string missing_element_message(const char* factory) {
  std::string message = std::string("record: the GStreamer element '") + factory + "' is missing";
  for (const ElementSource& source : kElementSources) {
    if (g_str_equal(source.factory, factory)) message += std::string(" (install ") + source.package + ")";
  }
  return message;
}

// Makes `factory` inside `bin`, which owns it.
GstElement* add_element(GstElement* bin, const char* factory) {
  GstElement* element = gst_element_factory_make(factory, nullptr);
  if (element == nullptr) throw std::runtime_error(missing_element_message(factory));
  gst_bin_add(GST_BIN(bin), element);
  return element;
}

// Sets an enum property by its nick ("ultrafast"); false when the property has no such value.
bool set_enum_by_nick(GstElement* element, const char* property, const std::string& nick) {
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), property);
  if (spec == nullptr || !G_IS_PARAM_SPEC_ENUM(spec)) return false;
  const GEnumValue* value = g_enum_get_value_by_nick(G_PARAM_SPEC_ENUM(spec)->enum_class, nick.c_str());
  if (value == nullptr) return false;
  g_object_set(element, property, value->value, nullptr);
  return true;
}

RunningPipeline new_pipeline() {
  return RunningPipeline(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new(nullptr))));
}

// For seconds already checked to be finite and in [0, a few hours]: no overflow.
GstClockTime to_clock_time(double seconds) {
  return static_cast<GstClockTime>(std::llround(seconds * GST_SECOND));
}

double to_seconds(GstClockTime time) { return static_cast<double>(time) / GST_SECOND; }

std::string seconds_text(GstClockTime time) {
  char text[32];
  g_snprintf(text, sizeof text, "%.3f s", to_seconds(time));
  return text;
}

// "2026-11-23T08:24:36+0900": local time of the file name.
std::string file_time(gint64 unix_time_us) {
  const time_t seconds = static_cast<time_t>(unix_time_us / G_USEC_PER_SEC);
  struct tm local {};
  localtime_r(&seconds, &local);
  char text[40];
  return std::string(text, strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local));
}

// Wall-clock time of a frame in µs since the Unix epoch: its frame document's ntp_timestamp, the
// time its events carry, else now.
gint64 wall_time_us(GstBuffer* frame) {
  if (has_document(frame)) {
    if (std::shared_ptr<const json> document = peek_document(frame)) {
      if (const json* record = find_frame_record(*document)) {
        const auto ntp = record->find(field::kNtpTimestamp);
        if (ntp != record->end() && ntp->is_number_integer()) return ntp->get<gint64>() / 1000;
      }
    }
  }
  return g_get_real_time();
}

// "message (debug)" of an error message.
std::string error_text(GstMessage* message) {
  GError* error = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(message, &error, &debug);
  std::unique_ptr<GError, ReleaseWith<g_error_free>> owned_error(error);
  UniqueChars owned_debug(debug);
  std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " +
                     (error != nullptr ? error->message : "unknown error");
  if (debug != nullptr) text += std::string(" (") + debug + ")";
  return text;
}

struct ClipPipeline {
  RunningPipeline pipeline;
  GstAppSrc* source = nullptr;  // owned by the pipeline
};

// appsrc ! mp4mux ! filesink. No parser: the encoder's h264parse already gives avc access units
// with codec_data, as mp4mux takes them. Fragmented: the moov goes first and each fragment is
// complete when written, so the file plays whatever happens to the process; unbuffered, so what
// is written is in the file (the page cache) at once, not in the process.
ClipPipeline make_clip_pipeline(const std::string& path, GstCaps* encoded_caps, unsigned fragment_milliseconds) {
  ClipPipeline clip{new_pipeline()};
  GstElement* source = add_element(clip.pipeline.get(), "appsrc");
  GstElement* muxer = add_element(clip.pipeline.get(), "mp4mux");
  GstElement* sink = add_element(clip.pipeline.get(), "filesink");
  // Unbounded and never blocking: the worker hands over references, the muxer writes as it can.
  g_object_set(source, "caps", encoded_caps, "format", GST_FORMAT_TIME, "block", FALSE, "max-bytes", guint64{0},
               nullptr);
  g_object_set(muxer, "fragment-duration", fragment_milliseconds, nullptr);
  g_object_set(sink, "location", path.c_str(), nullptr);
  // Each fragment reaches the file as mp4mux pushes it. filesink's stdio buffer (64 KiB) held a
  // dozen fragments of a small clip in the process, and a kill -9 took them with it.
  gst_util_set_object_arg(G_OBJECT(sink), "buffer-mode", "unbuffered");
  // By the video pad's name: linking by caps would take mp4mux's first request pad, audio_%u.
  if (!gst_element_link_pads(source, "src", muxer, "video_%u") || !gst_element_link(muxer, sink))
    throw std::runtime_error("record: cannot link the muxing pipeline of " + path);
  clip.source = GST_APP_SRC(source);
  return clip;
}

const RecorderSettings& validated(const RecorderSettings& settings) {
  if (settings.directory.empty()) throw std::runtime_error("record: no directory given for the clips");
  if (settings.stream_id.empty() || settings.stream_id.find('/') != std::string::npos)
    throw std::runtime_error("record: stream_id '" + settings.stream_id +
                             "' can't be part of a file name (empty, or has a '/')");
  // The pre-roll is the longest record duration plus some lag: a few hours at most.
  if (!std::isfinite(settings.max_pre_seconds) || settings.max_pre_seconds < 0 ||
      settings.max_pre_seconds > 2 * kMaxRecordSeconds)
    throw std::runtime_error("record: max_pre_seconds must be a number of seconds in [0, " +
                             std::to_string(static_cast<int>(2 * kMaxRecordSeconds)) + "]");
  if (!std::isfinite(settings.key_interval_seconds) || settings.key_interval_seconds <= 0 ||
      settings.key_interval_seconds > 60)
    throw std::runtime_error("record: key_interval_seconds must be a number of seconds in (0, 60]");
  if (settings.max_queued_frames == 0) throw std::runtime_error("record: max_queued_frames must be at least 1");
  if (settings.max_ring_bytes == 0) throw std::runtime_error("record: max_ring_bytes must be at least 1");
  return settings;
}

GQuark clip_id_quark() {
  static const GQuark quark = g_quark_from_static_string("emi-record-clip-id");
  return quark;
}

// The largest sequence number of `stream_id`'s clips in `directory` (names end in "_<n>.mp4").
std::uint64_t last_sequence(const std::string& directory, const std::string& stream_id) {
  std::uint64_t last = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = stream_id + "_";
    if (name.size() <= prefix.size() + 4 || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - 4, 4, ".mp4") != 0)
      continue;
    const std::string digits = name.substr(name.rfind('_') + 1, name.size() - 4 - name.rfind('_') - 1);
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    last = std::max<std::uint64_t>(last, std::stoull(digits));
  }
  return last;
}

}  // namespace

class ClipRecorder::Engine {
 public:
  Engine(RecorderSettings settings, const GstCaps* raw_video_caps, ErrorSink on_error, ClipSink on_clip,
         LostSink on_lost);
  ~Engine() { finish(); }

  void push(GstBuffer* frame);
  void trigger(GstClockTime event_pts, double duration_seconds, double max_duration_seconds,
               const json& event);
  void finish();
  bool wait_for_encoder(std::chrono::milliseconds timeout);

  std::vector<FinishedClip> finished_clips() const {
    std::lock_guard lock(finished_mutex_);
    return finished_clips_;
  }
  std::uint64_t frames_pushed() const { return pushed_; }
  std::uint64_t frames_dropped() const { return dropped_; }
  std::uint64_t frames_encoded() const { return encoded_; }
  std::uint64_t clips_lost() const { return lost_; }

 private:
  // What the worker thread is told, in order (Command, below).
  //
  // An access unit, timed like the raw frames: x264enc moves its output 1000 hours forward (room
  // for negative DTS) and its segment with it, so running time is the pushed frames' PTS.
  struct EncodedFrame {
    UniqueSample sample;
    GstClockTime pts = GST_CLOCK_TIME_NONE;
    GstClockTime dts = GST_CLOCK_TIME_NONE;
    bool key = false;
    std::size_t bytes = 0;
    gint64 wall_time_us = 0;
  };
  struct Trigger {
    GstClockTime event_pts;
    GstClockTime duration;
    GstClockTime max_duration;
    json event;
  };
  struct EncoderEnded {
    std::string error;  // empty at EOS
  };
  struct ClipEnded {
    ClipWindows::ClipId id;
    std::string error;  // empty at EOS: the file is complete
  };
  struct Stop {};
  using Command = std::variant<EncodedFrame, Trigger, EncoderEnded, ClipEnded, Stop>;

  // A clip's files; its window is the policy's (windows_), under the same id.
  struct Clip {
    ClipWindows::ClipId id = 0;
    GstClockTime first_event_pts = 0;
    json events = json::array();
    std::uint64_t sequence = 0;  // given with its first frame, with its file
    std::string path;
    std::string sidecar_path;
    RunningPipeline pipeline;
    GstAppSrc* source = nullptr;  // owned by the pipeline
    GstClockTime start_pts = GST_CLOCK_TIME_NONE;
    GstClockTime last_pts = GST_CLOCK_TIME_NONE;
    gint64 start_wall_time_us = 0;
    std::uint64_t frames = 0;
    bool cut_short = false;  // ended by the end of the stream
  };

  struct FrameTime {
    GstClockTime pts;
    gint64 wall_time_us;
  };

  static GstFlowReturn on_encoded_sample(GstAppSink* sink, gpointer engine);
  static void on_encoder_eos(GstAppSink* sink, gpointer engine);
  static GstBusSyncReply on_encoder_message(GstBus* bus, GstMessage* message, gpointer engine);
  static GstBusSyncReply on_clip_message(GstBus* bus, GstMessage* message, gpointer engine);

  void post(Command command);
  gint64 take_wall_time(GstClockTime pts);
  void report(const std::string& message) const {
    GST_WARNING("%s", message.c_str());
    if (on_error_) on_error_(message);
  }
  void lose(const std::string& message) {
    ++lost_;
    if (!on_lost_) return report(message);
    GST_WARNING("%s", message.c_str());
    on_lost_(message);
  }

  // The worker thread and what it does; it alone touches windows_, ring_ and clips_ until
  // finish() joins it.
  void run();
  void handle(EncodedFrame& frame);
  void handle(Trigger& trigger);
  void handle(EncoderEnded& ended);
  void handle(ClipEnded& ended);
  void handle(Stop&) {}
  Clip* find(ClipWindows::ClipId id);
  void forget(ClipWindows::ClipId id);
  // Does what the policy says clip `id` does with `frame`.
  void apply(ClipWindows::ClipId id, const EncodedFrame& frame, const FrameStamp& stamp);
  bool begin_clip(Clip& clip, const EncodedFrame& first);
  std::optional<std::string> create_clip_file(gint64 event_wall_time_us, std::uint64_t& sequence);
  void write_frame(Clip& clip, const EncodedFrame& frame);
  void end_clip(Clip& clip, bool cut_short);
  void complete_clip(Clip& clip);
  void write_sidecar(const Clip& clip, bool complete);

  const RecorderSettings settings_;
  const ErrorSink on_error_;
  const ClipSink on_clip_;
  const LostSink on_lost_;

  std::atomic<bool> accepting_{true};
  std::atomic<bool> finishing_{false};
  std::atomic<bool> encoder_failed_{false};
  std::atomic<std::uint64_t> pushed_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> encoded_{0};
  std::atomic<std::uint64_t> lost_{0};
  std::mutex progress_mutex_;  // with progress_changed_: encoded_ and encoder_failed_ changed
  std::condition_variable progress_changed_;

  std::mutex frame_times_mutex_;
  std::deque<FrameTime> frame_times_;  // wall-clock times of frames in the encoder, by PTS

  std::mutex commands_mutex_;
  std::condition_variable commands_ready_;
  std::deque<Command> commands_;

  std::mutex written_mutex_;
  std::condition_variable written_changed_;
  bool all_written_ = false;  // the encoder ended and no clip is open

  mutable std::mutex finished_mutex_;
  std::vector<FinishedClip> finished_clips_;

  // Worker state.
  ClipWindows windows_;
  std::deque<EncodedFrame> ring_;  // in step with windows_.ring()
  std::vector<std::unique_ptr<Clip>> clips_;  // oldest first
  std::uint64_t last_sequence_ = 0;
  bool ring_bound_reported_ = false;
  bool encoder_ended_ = false;

  RunningPipeline encoder_;
  GstAppSrc* encoder_source_ = nullptr;  // owned by encoder_
  std::thread worker_;
};

ClipRecorder::Engine::Engine(RecorderSettings settings, const GstCaps* raw_video_caps, ErrorSink on_error,
                             ClipSink on_clip, LostSink on_lost)
    : settings_(validated(settings)),
      on_error_(std::move(on_error)),
      on_clip_(std::move(on_clip)),
      on_lost_(std::move(on_lost)),
      windows_(to_clock_time(settings_.max_pre_seconds), settings_.max_ring_bytes) {
  GstVideoInfo info;
  if (raw_video_caps == nullptr || !gst_caps_is_fixed(raw_video_caps) ||
      !gst_video_info_from_caps(&info, raw_video_caps)) {
    UniqueChars text(raw_video_caps != nullptr ? gst_caps_to_string(raw_video_caps) : g_strdup("(none)"));
    throw std::runtime_error(std::string("record: the frames' caps are not fixed raw video caps: ") + text.get());
  }
  try {
    posix::create_private_directories(settings_.directory, /*private_leaf=*/false);
  } catch (const std::system_error& error) {
    throw std::runtime_error("record: the clip directory: " + std::string(error.what()));
  }
  last_sequence_ = last_sequence(settings_.directory, settings_.stream_id);
  // The clips' elements are checked now, so that a missing one stops the start, not a clip.
  for (const char* factory : {"mp4mux", "filesink"}) {
    if (!UniqueFactory(gst_element_factory_find(factory))) throw std::runtime_error(missing_element_message(factory));
  }

  encoder_ = new_pipeline();
  GstElement* source = add_element(encoder_.get(), "appsrc");
  GstElement* convert = add_element(encoder_.get(), "videoconvert");
  GstElement* raw_format = add_element(encoder_.get(), "capsfilter");
  GstElement* encoder = add_element(encoder_.get(), "x264enc");
  GstElement* parser = add_element(encoder_.get(), "h264parse");
  GstElement* stream_format = add_element(encoder_.get(), "capsfilter");
  GstElement* sink = add_element(encoder_.get(), "appsink");

  // The queue is bounded by push(), which counts what it drops; the appsrc never blocks.
  g_object_set(source, "caps", raw_video_caps, "format", GST_FORMAT_TIME, "block", FALSE, "max-bytes",
               guint64{0}, nullptr);
  // 4:2:0, which every player decodes (RGB input would otherwise give High 4:4:4).
  UniqueCaps i420(gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "I420", nullptr));
  g_object_set(raw_format, "caps", i420.get(), nullptr);
  const double frames_per_second = info.fps_n > 0 && info.fps_d > 0
                                       ? static_cast<double>(info.fps_n) / info.fps_d
                                       : kAssumedFramesPerSecond;
  const auto key_interval_frames = static_cast<guint>(
      std::max(1L, std::lround(frames_per_second * settings_.key_interval_seconds)));
  // zerolatency: no B-frames nor lookahead, so each frame comes out as soon as it went in and the
  // ring holds everything pushed. Constant quality (pass=qual) suits any frame size; x264enc
  // caps it at its `bitrate` (2048 kbit/s), so a busy 1080p scene stays a surveillance-sized file.
  if (!set_enum_by_nick(encoder, "speed-preset", settings_.speed_preset))
    throw std::runtime_error("record: '" + settings_.speed_preset + "' is not an x264enc speed-preset");
  gst_util_set_object_arg(G_OBJECT(encoder), "tune", "zerolatency");
  gst_util_set_object_arg(G_OBJECT(encoder), "pass", "qual");
  g_object_set(encoder, "key-int-max", key_interval_frames, nullptr);
  // avc with codec_data, one access unit per buffer: what mp4mux takes as it is.
  UniqueCaps avc(gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING, "avc", "alignment",
                                     G_TYPE_STRING, "au", nullptr));
  g_object_set(stream_format, "caps", avc.get(), nullptr);
  g_object_set(sink, "sync", FALSE, "enable-last-sample", FALSE, nullptr);
  if (!gst_element_link_many(source, convert, raw_format, encoder, parser, stream_format, sink, nullptr))
    throw std::runtime_error("record: cannot link the encoding pipeline (appsrc ! videoconvert ! x264enc ! "
                             "h264parse ! appsink)");

  GstAppSinkCallbacks callbacks{};
  callbacks.new_sample = &Engine::on_encoded_sample;
  callbacks.eos = &Engine::on_encoder_eos;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, this, nullptr);
  GstBus* bus = gst_element_get_bus(encoder_.get());
  gst_bus_set_sync_handler(bus, &Engine::on_encoder_message, this, nullptr);
  gst_object_unref(bus);
  encoder_source_ = GST_APP_SRC(source);

  if (gst_element_set_state(encoder_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    throw std::runtime_error("record: the encoding pipeline does not start");
  GST_DEBUG("recorder for %" GST_PTR_FORMAT " in %s: pre-roll %.1f s, ring at most %zu bytes, clips from sequence %"
            G_GUINT64_FORMAT, raw_video_caps, settings_.directory.c_str(), settings_.max_pre_seconds,
            settings_.max_ring_bytes, last_sequence_ + 1);
  worker_ = std::thread([this] { run(); });
}

void ClipRecorder::Engine::push(GstBuffer* frame) {
  ++pushed_;
  if (!accepting_ || !GST_BUFFER_PTS_IS_VALID(frame) ||
      gst_app_src_get_current_level_buffers(encoder_source_) >= settings_.max_queued_frames) {
    ++dropped_;
    GST_LOG("frame %" GST_TIME_FORMAT " dropped: the encoder is %s", GST_TIME_ARGS(GST_BUFFER_PTS(frame)),
            accepting_ ? "busy" : "stopped");
    return;
  }
  const GstClockTime pts = GST_BUFFER_PTS(frame);
  {
    std::lock_guard lock(frame_times_mutex_);
    frame_times_.push_back({pts, wall_time_us(frame)});
  }
  // Only this thread adds to the queue, so the level checked above can only have gone down.
  if (gst_app_src_push_buffer(encoder_source_, gst_buffer_ref(frame)) != GST_FLOW_OK) {
    std::lock_guard lock(frame_times_mutex_);
    if (!frame_times_.empty() && frame_times_.back().pts == pts) frame_times_.pop_back();
    ++dropped_;
    return;
  }
  ++accepted_;
}

void ClipRecorder::Engine::trigger(GstClockTime event_pts, double duration_seconds, double max_duration_seconds,
                                   const json& event) {
  if (!GST_CLOCK_TIME_IS_VALID(event_pts)) throw std::invalid_argument("record: the event has no PTS");
  const std::string limit = std::to_string(static_cast<int>(kMaxRecordSeconds));
  if (!std::isfinite(duration_seconds) || duration_seconds < 0 || duration_seconds > kMaxRecordSeconds)
    throw std::invalid_argument("record: duration_in_seconds must be a number of seconds in [0, " + limit +
                                "], not " + std::to_string(duration_seconds));
  if (!std::isfinite(max_duration_seconds) || max_duration_seconds <= 0 || max_duration_seconds > kMaxRecordSeconds)
    throw std::invalid_argument("record: max_duration_in_seconds must be a number of seconds in (0, " + limit +
                                "], not " + std::to_string(max_duration_seconds));
  if (finishing_) {
    lose("record: the event at " + seconds_text(event_pts) + " came after the end of the stream: no clip");
    return;
  }
  post(Trigger{event_pts, to_clock_time(duration_seconds), to_clock_time(max_duration_seconds), event});
}

void ClipRecorder::Engine::finish() {
  if (finishing_.exchange(true)) return;
  accepting_ = false;
  gst_app_src_end_of_stream(encoder_source_);
  bool written = false;
  {
    std::unique_lock lock(written_mutex_);
    written = written_changed_.wait_for(lock, kFinishTimeout, [this] { return all_written_; });
  }
  post(Stop{});
  worker_.join();
  encoder_.reset();
  if (!written && clips_.empty()) {
    report("record: the encoder did not finish within " + std::to_string(kFinishTimeout.count()) +
           " s of the end of the stream");
  } else if (!written) {
    std::string unfinished;
    for (const auto& clip : clips_) unfinished += " " + (clip->path.empty() ? "(not started)" : clip->path);
    lost_ += clips_.size() - 1;  // lose() counts one
    lose("record: clips still being written " + std::to_string(kFinishTimeout.count()) +
         " s after the end of the stream were abandoned:" + unfinished);
  }
  clips_.clear();
  ring_.clear();
}

bool ClipRecorder::Engine::wait_for_encoder(std::chrono::milliseconds timeout) {
  std::unique_lock lock(progress_mutex_);
  progress_changed_.wait_for(lock, timeout, [this] { return encoder_failed_ || encoded_ >= accepted_; });
  return !encoder_failed_ && encoded_ >= accepted_;
}

GstFlowReturn ClipRecorder::Engine::on_encoded_sample(GstAppSink* sink, gpointer engine) {
  auto* self = static_cast<Engine*>(engine);
  UniqueSample sample(gst_app_sink_pull_sample(sink));
  if (!sample) return GST_FLOW_FLUSHING;
  GstBuffer* buffer = gst_sample_get_buffer(sample.get());
  const GstSegment* segment = gst_sample_get_segment(sample.get());
  EncodedFrame frame;
  frame.pts = gst_segment_to_running_time(segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
  frame.dts = gst_segment_to_running_time(segment, GST_FORMAT_TIME, GST_BUFFER_DTS(buffer));
  frame.key = !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  frame.bytes = gst_buffer_get_size(buffer);
  frame.wall_time_us = self->take_wall_time(frame.pts);
  frame.sample = std::move(sample);
  self->post(std::move(frame));
  {
    std::lock_guard lock(self->progress_mutex_);
    ++self->encoded_;
  }
  self->progress_changed_.notify_all();
  return GST_FLOW_OK;
}

void ClipRecorder::Engine::on_encoder_eos(GstAppSink*, gpointer engine) {
  static_cast<Engine*>(engine)->post(EncoderEnded{});
}

// Called on the thread that posts; every message is handled here, so the bus keeps none.
GstBusSyncReply ClipRecorder::Engine::on_encoder_message(GstBus*, GstMessage* message, gpointer engine) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    auto* self = static_cast<Engine*>(engine);
    self->accepting_ = false;
    {
      std::lock_guard lock(self->progress_mutex_);
      self->encoder_failed_ = true;
    }
    self->progress_changed_.notify_all();
    self->post(EncoderEnded{error_text(message)});
  }
  return GST_BUS_DROP;
}

GstBusSyncReply ClipRecorder::Engine::on_clip_message(GstBus* bus, GstMessage* message, gpointer engine) {
  const auto id = static_cast<ClipWindows::ClipId>(GPOINTER_TO_SIZE(g_object_get_qdata(G_OBJECT(bus), clip_id_quark())));
  auto* self = static_cast<Engine*>(engine);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) self->post(ClipEnded{id, {}});
  else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) self->post(ClipEnded{id, error_text(message)});
  return GST_BUS_DROP;
}

void ClipRecorder::Engine::post(Command command) {
  {
    std::lock_guard lock(commands_mutex_);
    commands_.push_back(std::move(command));
  }
  commands_ready_.notify_one();
}

// The wall-clock time push() noted for the frame the encoder gave back; the encoder keeps PTS.
gint64 ClipRecorder::Engine::take_wall_time(GstClockTime pts) {
  std::lock_guard lock(frame_times_mutex_);
  while (!frame_times_.empty() && frame_times_.front().pts < pts) frame_times_.pop_front();
  if (frame_times_.empty() || frame_times_.front().pts != pts) return g_get_real_time();
  const gint64 wall_time = frame_times_.front().wall_time_us;
  frame_times_.pop_front();
  return wall_time;
}

void ClipRecorder::Engine::run() {
  for (;;) {
    Command command;
    {
      std::unique_lock lock(commands_mutex_);
      commands_ready_.wait(lock, [this] { return !commands_.empty(); });
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    if (std::holds_alternative<Stop>(command)) return;
    try {
      std::visit([this](auto& what) { handle(what); }, command);
    } catch (const std::exception& error) {
      report(error.what());
    }
    if (encoder_ended_ && clips_.empty()) {
      {
        std::lock_guard lock(written_mutex_);
        all_written_ = true;
      }
      written_changed_.notify_all();
    }
  }
}

ClipRecorder::Engine::Clip* ClipRecorder::Engine::find(ClipWindows::ClipId id) {
  const auto it = std::find_if(clips_.begin(), clips_.end(), [id](const auto& clip) { return clip->id == id; });
  return it != clips_.end() ? it->get() : nullptr;
}

void ClipRecorder::Engine::forget(ClipWindows::ClipId id) {
  windows_.forget(id);
  clips_.erase(std::remove_if(clips_.begin(), clips_.end(), [id](const auto& clip) { return clip->id == id; }),
               clips_.end());
}

void ClipRecorder::Engine::handle(EncodedFrame& frame) {
  const FrameStamp stamp{frame.pts, frame.key, frame.bytes};
  for (const ClipWindows::ClipId id : windows_.clips()) apply(id, frame, stamp);
  const std::size_t forgotten = windows_.admit(stamp);
  ring_.push_back(std::move(frame));
  ring_.erase(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(forgotten));
  if (windows_.shortened() > 0 && !ring_bound_reported_) {
    ring_bound_reported_ = true;
    report("record: the pre-roll ring reached its bound of " + std::to_string(settings_.max_ring_bytes) +
           " bytes: clips may start later than their rules ask");
  }
}

void ClipRecorder::Engine::apply(ClipWindows::ClipId id, const EncodedFrame& frame, const FrameStamp& stamp) {
  Clip* clip = find(id);
  if (clip == nullptr) return;
  switch (windows_.step(id, stamp)) {
    case ClipStep::kStart:
      if (!begin_clip(*clip, frame)) forget(id);
      break;
    case ClipStep::kWrite: write_frame(*clip, frame); break;
    case ClipStep::kEnd: end_clip(*clip, false); break;
    case ClipStep::kWait:
    case ClipStep::kNone: break;
  }
}

void ClipRecorder::Engine::handle(Trigger& trigger) {
  const ClipWindows::Triggered triggered = windows_.trigger(trigger.event_pts, trigger.duration, trigger.max_duration);
  json event{{"pts", trigger.event_pts}, {"event", std::move(trigger.event)}};
  if (!triggered.opened) {
    if (Clip* open = find(triggered.clip)) open->events.push_back(std::move(event));
    GST_DEBUG("the event at %s extends clip %s", seconds_text(trigger.event_pts).c_str(),
              std::to_string(triggered.clip).c_str());
    return;
  }
  auto clip = std::make_unique<Clip>();
  clip->id = triggered.clip;
  clip->first_event_pts = trigger.event_pts;
  clip->events.push_back(std::move(event));
  clips_.push_back(std::move(clip));
  if (!triggered.replay_from) {
    GST_DEBUG("the event at %s opens a clip that starts with the next key frame", seconds_text(trigger.event_pts).c_str());
    return;
  }
  for (std::size_t index = *triggered.replay_from; index < ring_.size(); ++index)
    apply(triggered.clip, ring_[index], windows_.ring()[index]);
}

// Reserves the clip's file name: never one that exists, whoever made it. The name, or empty after
// reporting why no file could be made.
std::optional<std::string> ClipRecorder::Engine::create_clip_file(gint64 event_wall_time_us, std::uint64_t& sequence) {
  constexpr int kAttempts = 1000;
  const std::string prefix = settings_.directory + "/" + settings_.stream_id + "_" + file_time(event_wall_time_us) + "_";
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    sequence = ++last_sequence_;
    const std::string path = prefix + std::to_string(sequence) + ".mp4";
    try {
      posix::open_private(path, O_WRONLY | O_CREAT | O_EXCL);
      return path;
    } catch (const std::system_error& error) {
      if (error.code().value() == EEXIST) continue;
      lose("record: no clip for the event: " + std::string(error.what()));
      return std::nullopt;
    }
  }
  lose("record: no clip for the event: " + std::to_string(kAttempts) + " names " + prefix + "<n>.mp4 are taken");
  return std::nullopt;
}

// False, reported, when its file or pipeline can't be made: the clip is then dropped.
bool ClipRecorder::Engine::begin_clip(Clip& clip, const EncodedFrame& first) {
  // The event's wall-clock time, from the first frame's and the PTS between them.
  const gint64 event_wall_time_us =
      first.wall_time_us + (static_cast<gint64>(clip.first_event_pts) - static_cast<gint64>(first.pts)) / 1000;
  std::uint64_t sequence = 0;
  std::optional<std::string> path = create_clip_file(event_wall_time_us, sequence);
  if (!path) return false;
  ClipPipeline writer;
  try {
    writer = make_clip_pipeline(*path, gst_sample_get_caps(first.sample.get()), settings_.fragment_milliseconds);
  } catch (const std::exception& error) {
    std::remove(path->c_str());
    lose(error.what());
    return false;
  }
  clip.sequence = sequence;
  clip.path = std::move(*path);
  clip.sidecar_path = clip.path.substr(0, clip.path.size() - 4) + ".json";
  clip.pipeline = std::move(writer.pipeline);
  clip.source = writer.source;
  clip.start_pts = first.pts;
  clip.start_wall_time_us = first.wall_time_us;

  GstBus* bus = gst_element_get_bus(clip.pipeline.get());
  g_object_set_qdata(G_OBJECT(bus), clip_id_quark(), GSIZE_TO_POINTER(static_cast<gsize>(clip.id)));
  gst_bus_set_sync_handler(bus, &Engine::on_clip_message, this, nullptr);
  gst_object_unref(bus);
  // A file that can't be opened posts an error, handled as the clip's end.
  gst_element_set_state(clip.pipeline.get(), GST_STATE_PLAYING);
  GST_INFO("clip %" G_GUINT64_FORMAT " starts at %s for the event at %s: %s", clip.sequence,
           seconds_text(clip.start_pts).c_str(), seconds_text(clip.first_event_pts).c_str(), clip.path.c_str());
  write_sidecar(clip, false);
  write_frame(clip, first);
  return true;
}

void ClipRecorder::Engine::write_frame(Clip& clip, const EncodedFrame& frame) {
  // A new buffer sharing the encoded memory, timed from the clip's start so that the file starts at 0.
  GstBuffer* restamped = gst_buffer_copy(gst_sample_get_buffer(frame.sample.get()));
  GST_BUFFER_PTS(restamped) = frame.pts - clip.start_pts;
  GST_BUFFER_DTS(restamped) = GST_CLOCK_TIME_IS_VALID(frame.dts) && frame.dts > clip.start_pts
                                  ? frame.dts - clip.start_pts
                                  : GST_BUFFER_PTS(restamped);
  gst_app_src_push_buffer(clip.source, restamped);
  clip.last_pts = frame.pts;
  ++clip.frames;
}

void ClipRecorder::Engine::end_clip(Clip& clip, bool cut_short) {
  clip.cut_short = cut_short;
  GST_DEBUG("clip %" G_GUINT64_FORMAT " ends at %s%s", clip.sequence, seconds_text(clip.last_pts).c_str(),
            cut_short ? " (cut short by the end of the stream)" : "");
  gst_app_src_end_of_stream(clip.source);
}

void ClipRecorder::Engine::handle(EncoderEnded& ended) {
  if (!ended.error.empty()) report("record: the encoder stopped: " + ended.error);
  if (encoder_ended_) return;
  encoder_ended_ = true;
  const ClipWindows::Ending ending = windows_.end_of_stream();
  for (const ClipWindows::ClipId id : ending.cut_short) {
    if (Clip* clip = find(id)) end_clip(*clip, true);
  }
  for (const ClipWindows::ClipId id : ending.never_started) {
    if (Clip* clip = find(id))
      lose("record: no video was encoded after the event at " + seconds_text(clip->first_event_pts) +
           ": no clip written");
    forget(id);
  }
}

void ClipRecorder::Engine::handle(ClipEnded& ended) {
  Clip* clip = find(ended.id);
  if (clip == nullptr) return;  // a second message about a clip already ended
  clip->pipeline.reset();
  if (ended.error.empty()) complete_clip(*clip);
  else lose("record: could not write " + clip->path + ": " + ended.error);
  forget(ended.id);
}

void ClipRecorder::Engine::complete_clip(Clip& clip) {
  FinishedClip finished;
  finished.path = clip.path;
  finished.sidecar_path = clip.sidecar_path;
  finished.id = clip.sequence;
  finished.start_pts = clip.start_pts;
  finished.end_pts = clip.last_pts;
  finished.frames = clip.frames;
  finished.events = clip.events.size();
  finished.cut_short = clip.cut_short;
  write_sidecar(clip, true);
  GST_INFO("clip %" G_GUINT64_FORMAT " complete: %s to %s, %" G_GUINT64_FORMAT " frames, %zu events%s: %s",
           clip.sequence, seconds_text(clip.start_pts).c_str(), seconds_text(clip.last_pts).c_str(), clip.frames,
           clip.events.size(), clip.cut_short ? ", cut short" : "", clip.path.c_str());
  {
    std::lock_guard lock(finished_mutex_);
    finished_clips_.push_back(finished);
  }
  if (on_clip_) on_clip_(finished);
}

// Replaced atomically, so whoever watches the folder reads it whole: first when the clip starts
// (complete: false, so a clip a crash cut has its events too), then when its file is complete.
void ClipRecorder::Engine::write_sidecar(const Clip& clip, bool complete) {
  const json sidecar{{"stream_id", settings_.stream_id},
                     {"clip_id", clip.sequence},
                     {"file", clip.path.substr(clip.path.rfind('/') + 1)},
                     {"start_time", format_iso8601(clip.start_wall_time_us * 1000)},
                     {"start_pts", clip.start_pts},
                     {"end_pts", complete ? json(clip.last_pts) : json()},
                     {"frames", complete ? json(clip.frames) : json()},
                     {"cut_short", clip.cut_short},
                     {"complete", complete},
                     {"events", clip.events}};
  try {
    posix::replace_file(clip.sidecar_path, sidecar.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  } catch (const std::system_error& error) {
    report("record: the sidecar of " + clip.path + ": " + error.what());
  }
}

ClipRecorder::ClipRecorder(RecorderSettings settings, const GstCaps* raw_video_caps, ErrorSink on_error,
                           ClipSink on_clip, LostSink on_lost)
    : engine_(std::make_unique<Engine>(std::move(settings), raw_video_caps, std::move(on_error), std::move(on_clip),
                                       std::move(on_lost))) {}

ClipRecorder::~ClipRecorder() = default;

void ClipRecorder::push(GstBuffer* frame) { engine_->push(frame); }

void ClipRecorder::trigger(GstClockTime event_pts, double duration_seconds, double max_duration_seconds,
                           const json& event) {
  engine_->trigger(event_pts, duration_seconds, max_duration_seconds, event);
}

void ClipRecorder::finish() { engine_->finish(); }

bool ClipRecorder::wait_for_encoder(std::chrono::milliseconds timeout) { return engine_->wait_for_encoder(timeout); }

std::vector<FinishedClip> ClipRecorder::finished_clips() const { return engine_->finished_clips(); }
std::uint64_t ClipRecorder::frames_pushed() const { return engine_->frames_pushed(); }
std::uint64_t ClipRecorder::frames_dropped() const { return engine_->frames_dropped(); }
std::uint64_t ClipRecorder::frames_encoded() const { return engine_->frames_encoded(); }
std::uint64_t ClipRecorder::clips_lost() const { return engine_->clips_lost(); }

}  // namespace emi::record
