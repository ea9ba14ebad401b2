// The engine of emaimeta's `record` action (EDGEMATRIX's semantics): an event at time t asks for a
// clip of `duration_in_seconds` before t and as much after it; a further event inside the clip's
// window extends it (end = its time + its duration), never past `max_duration_in_seconds` from the
// clip's start.
//
// The recorder encodes the raw frames it is given to H.264 on a pipeline of its own (x264enc,
// tune=zerolatency), keeps the last `max_pre_seconds` (plus one GOP) of encoded video, and writes
// each clip, from a key frame, to `<directory>/<stream_id>_<id>_<%Y-%m-%dT%H:%M:%S%z>.mp4` on a
// muxing pipeline of its own, with a JSON sidecar beside it (same name, `.json`) listing the clip's
// events. Nothing here blocks the caller's streaming thread: frames the encoder can't take in time
// are dropped and counted.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace emi::record {

struct RecorderSettings {
  std::string directory;               // where clips go; created with its parents when missing
  std::string stream_id;               // first part of each file name
  double max_pre_seconds = 0;          // the largest duration_in_seconds of the record rules
  double key_interval_seconds = 1.0;   // at most this between key frames: how early a clip may start
  // x264enc's speed-preset; ultrafast records 1080p30 with a fifth of a core (superfast: a third)
  std::string speed_preset = "ultrafast";
  unsigned max_queued_frames = 8;      // raw frames waiting for the encoder; more are dropped
};

// A clip whose MP4 file and sidecar are written.
struct FinishedClip {
  std::string path;          // the .mp4
  std::string sidecar_path;  // the .json
  std::uint64_t id = 0;      // the clip's number in this run, from 1
  GstClockTime start_pts = GST_CLOCK_TIME_NONE;  // of its first frame (a key frame)
  GstClockTime end_pts = GST_CLOCK_TIME_NONE;    // of its last frame
  std::uint64_t frames = 0;
  std::size_t events = 0;
  bool cut_short = false;    // finish() closed it before its window ended
};

// Asynchronous errors (a clip that could not be written, an encoder failure), as a sentence naming
// the file or element and the cause. Called from the recorder's own thread, or from finish().
using ErrorSink = std::function<void(const std::string&)>;
// Each clip once its files are complete; called from the recorder's own thread.
using ClipSink = std::function<void(const FinishedClip&)>;

// push(), trigger() and finish() are called from one thread at a time (the element's streaming
// thread); the accessors from any thread.
class ClipRecorder {
 public:
  // Starts the encoding pipeline for frames of `raw_video_caps` (fixed video/x-raw caps). Throws
  // std::runtime_error naming the cause when a setting or the caps are unusable, a GStreamer
  // element is missing or the directory can't be created.
  ClipRecorder(RecorderSettings settings, const GstCaps* raw_video_caps, ErrorSink on_error,
               ClipSink on_clip = {});
  // finish(), when it has not been called.
  ~ClipRecorder();

  ClipRecorder(const ClipRecorder&) = delete;
  ClipRecorder& operator=(const ClipRecorder&) = delete;

  // Hands a frame to the encoder: takes a reference, never copies the pixels nor waits. The frame
  // is dropped (and counted) when `max_queued_frames` frames already wait for the encoder, when it
  // has no PTS, after finish() and after an encoder failure. Its wall-clock time (for the file
  // name) is its frame document's ntp_timestamp, else the time of the call. PTS increase from frame to frame.
  void push(GstBuffer* frame);

  // An event at `event_pts` (the PTS of the frame it was found on) asking for `duration_seconds`
  // of video before and after it: extends the open clip when the event falls inside its window,
  // else opens a clip from the last key frame at or before event_pts - duration_seconds (the
  // oldest one kept, when the stream has less history). `event` goes into the clip's sidecar.
  // Throws std::invalid_argument for an invalid PTS, a negative or non-finite duration, or a
  // max_duration_seconds that is not positive.
  void trigger(GstClockTime event_pts, double duration_seconds, double max_duration_seconds,
               const nlohmann::json& event);

  // At the end of the stream: encodes what was pushed, closes the open clips with what was
  // encoded, and returns once every file is complete (or, after a minute, with an error reported).
  // Idempotent.
  void finish();

  // Waits until every frame accepted so far is encoded, for a caller that would rather pace a
  // non-live source than drop frames. False on timeout, or when the encoder failed.
  bool wait_for_encoder(std::chrono::milliseconds timeout);

  std::vector<FinishedClip> finished_clips() const;
  std::uint64_t frames_pushed() const;   // every push() call
  std::uint64_t frames_dropped() const;  // pushed frames push() refused (see push())
  std::uint64_t frames_encoded() const;

 private:
  class Engine;
  std::unique_ptr<Engine> engine_;
};

}  // namespace emi::record
