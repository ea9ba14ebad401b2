// SPDX-License-Identifier: LGPL-2.1-or-later
// The actions fired rules run: `record` (clips around events) and `upload` (events to AWS Kinesis
// Firehose), built from the stream config's rules. The ActionEngine runs them (ActionRunner); the
// element hands over the frames and their caps.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "actions/action_rules.h"
#include "actions/action_runner.h"

namespace emi {

namespace aws {
class FirehoseUploader;
}
namespace record {
class ClipRecorder;
}

struct RuleActionSettings {
  std::string record_dir;
  std::string stream_id;
  std::string spool_dir;  // each delivery stream spools in a folder of its own below it
};

void release_caps(GstCaps* caps);

class RuleActions : public ActionRunner {
 public:
  // Creates an uploader per upload rule. A rule without keys or region (neither in the rule nor
  // in the environment) is reported through `reporter` and uploads nothing; a spool that can't
  // be used throws std::runtime_error. `reporter` must outlive this.
  RuleActions(const rules::StreamConfig& config, RuleActionSettings settings, ActionReporter& reporter);
  ~RuleActions() override;
  RuleActions(const RuleActions&) = delete;
  RuleActions& operator=(const RuleActions&) = delete;

  // Whether a rule records clips, so frames must be handed over.
  bool records() const { return max_record_seconds_ > 0; }
  // The frames' caps, from the streaming thread: a new recorder for them, swapped in while the
  // engine's worker may be firing (the old one's open clips end there). Throws std::runtime_error.
  void set_caps(const GstCaps* caps);
  // A flush (a seek) began `segment`: the recorder starts afresh (its open clips end, its ring is
  // emptied), and takes only the events of that segment.
  void restart_recording(std::uint64_t segment);
  // Every frame, from the streaming thread. Never blocks unless `pace`: then, when the encoder's
  // queue is full, it waits for the encoder (at most a few seconds) instead of dropping the frame,
  // so that clips of a movie have every frame. Whether it waited.
  bool push_frame(GstBuffer* frame, bool pace);
  // A rule fired, on the engine's worker thread.
  void run(const Firing& firing) override;
  // End of stream: open clips closed, uploads given `upload_timeout` to be delivered (what is
  // not stays spooled for the next run).
  void finish(std::chrono::milliseconds upload_timeout);

  // Raw frames the recorders could not take in time (missing from clips); any thread.
  std::uint64_t frames_dropped() const { return frames_dropped_; }
  // Over the upload rules' uploaders: events dropped, and events Firehose refused for good.
  std::uint64_t uploads_dropped() const;
  std::uint64_t uploads_rejected() const;

 private:
  std::unique_ptr<record::ClipRecorder> new_recorder(const GstCaps* caps);
  // Ends `recorder` (from the streaming thread, after the swap).
  void retire(std::unique_ptr<record::ClipRecorder> recorder);

  RuleActionSettings settings_;
  ActionReporter& reporter_;
  double max_record_seconds_ = 0;
  std::map<std::string, std::unique_ptr<aws::FirehoseUploader>> uploaders_;  // by rule name

  // The recorder: replaced by the streaming thread (set_caps, restart_recording), used by the
  // engine's worker (run). The streaming thread reads it without the lock: only it writes it.
  mutable std::mutex recorder_mutex_;
  std::unique_ptr<record::ClipRecorder> recorder_;
  // The recorder's (gst_caps_unref is static inline: a function pointer keeps this type external).
  std::unique_ptr<GstCaps, void (*)(GstCaps*)> caps_{nullptr, &release_caps};
  std::uint64_t segment_ = 0;       // the recorder's; under recorder_mutex_
  std::uint64_t retired_frames_dropped_ = 0;  // by recorders replaced; streaming thread
  std::atomic<std::uint64_t> frames_dropped_{0};
};

}  // namespace emi
