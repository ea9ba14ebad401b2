// SPDX-License-Identifier: LGPL-2.1-or-later
// The GStreamer plumbing of emaimeta's `record` action; which frames go into which clip is the
// clip-window policy's (clip_window.h).
//
// The recorder encodes the raw frames it is given to H.264 on a pipeline of its own (x264enc,
// tune=zerolatency), keeps the last `max_pre_seconds` (plus one GOP) of encoded video in a ring of
// at most `max_ring_bytes`, and writes each clip, from a key frame, to
// `<directory>/<stream_id>_<%Y-%m-%dT%H:%M:%S%z of the event>_<sequence>.mp4` on a muxing pipeline
// of its own. The sequence goes on from the largest one in the directory (it survives restarts)
// and each file is created with O_EXCL (0600), so two recorders never write one file. Clips are
// fragmented MP4 (a fragment a second): a process killed mid-clip leaves a file that plays up to
// its last complete fragment. A JSON sidecar beside it (same name, `.json`, replaced atomically)
// lists the clip's events; it is written when the clip starts and again when it is complete.
// Nothing here blocks the caller's streaming thread: frames the encoder can't take in time are
// dropped and counted.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/record/clip_window.h"

namespace emi::record {

struct RecorderSettings {
  std::string directory;               // where clips go; created with its parents when missing
  std::string stream_id;               // first part of each file name
  double max_pre_seconds = 0;          // the largest duration_in_seconds of the record rules
  double key_interval_seconds = 1.0;   // at most this between key frames: how early a clip may start
  // x264enc's speed-preset; ultrafast records 1080p30 with a fifth of a core (superfast: a third)
  std::string speed_preset = "ultrafast";
  unsigned max_queued_frames = 8;      // raw frames waiting for the encoder; more are dropped
  // The pre-roll ring's bound: x264enc (pass=qual) caps its rate at 2048 kbit/s, so 256 MiB hold
  // at least 17 minutes; a longer pre-roll is then shortened (whole GOPs from its start).
  std::size_t max_ring_bytes = std::size_t{256} << 20;
  // MP4 fragment length: what a process killed mid-clip loses at most.
  unsigned fragment_milliseconds = 1000;
};

// A clip whose MP4 file and sidecar are written.
struct FinishedClip {
  std::string path;          // the .mp4
  std::string sidecar_path;  // the .json
  std::uint64_t id = 0;      // its sequence number in the directory (in its name), from 1
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
// Each clip asked for and not written whole (see clips_lost()), as a sentence; called from the
// recorder's thread, the one that calls trigger(), or finish(). When empty, these go to ErrorSink.
using LostSink = std::function<void(const std::string&)>;

// push() is called from one thread (the element's streaming thread), trigger() from one other
// (the ActionEngine's worker) or the same; finish() when neither can call any more. The accessors
// from any thread.
class ClipRecorder {
 public:
  // Starts the encoding pipeline for frames of `raw_video_caps` (fixed video/x-raw caps). Throws
  // std::runtime_error naming the cause when a setting or the caps are unusable, a GStreamer
  // element is missing or the directory can't be created.
  ClipRecorder(RecorderSettings settings, const GstCaps* raw_video_caps, ErrorSink on_error,
               ClipSink on_clip = {}, LostSink on_lost = {});
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
  // max_duration_seconds that is not positive; either above kMaxRecordSeconds.
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
  // Clips asked for that were not written whole: a file that could not be made or written (a full
  // disk), no video after the event, an event after finish(); each is also reported.
  std::uint64_t clips_lost() const;

 private:
  class Engine;
  std::unique_ptr<Engine> engine_;
};

}  // namespace emi::record
