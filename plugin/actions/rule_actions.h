// The actions fired rules run: `record` (clips around events) and `upload` (events to AWS Kinesis
// Firehose), built from the stream config's rules.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "actions/action_rules.h"

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

class RuleActions {
 public:
  using ErrorSink = std::function<void(const std::string&)>;
  // Each clip once its MP4 and sidecar are complete (path, pts range, frames, events), as JSON.
  using ClipSink = std::function<void(const nlohmann::json&)>;
  // Creates an uploader per upload rule. A rule without keys or region (neither in the rule nor
  // in the environment) is reported through `on_error` and uploads nothing; a spool that can't
  // be used throws std::runtime_error.
  RuleActions(const rules::StreamConfig& config, RuleActionSettings settings, ErrorSink on_error,
              ClipSink on_clip);
  ~RuleActions();
  RuleActions(const RuleActions&) = delete;
  RuleActions& operator=(const RuleActions&) = delete;

  // Whether a rule records clips, so frames must be handed over.
  bool records() const { return max_record_seconds_ > 0; }
  // The frames' caps: (re)creates the recorder. Throws std::runtime_error.
  void set_caps(const GstCaps* caps);
  // Every frame, from the streaming thread. Never blocks a live source: frames the encoder can't
  // take are dropped (and counted). With `pace` (a file, not a camera) it waits for the encoder
  // instead, so that clips of a movie have every frame.
  void push_frame(GstBuffer* frame, bool pace);
  // A rule fired for `event` on the frame at `pts`.
  void run(const rules::Rule& rule, const nlohmann::json& event, GstClockTime pts);
  // End of stream: open clips closed, uploads given `upload_timeout` to be delivered (what is
  // not stays spooled for the next run).
  void finish(std::chrono::milliseconds upload_timeout);

 private:
  RuleActionSettings settings_;
  ErrorSink on_error_;
  ClipSink on_clip_;
  double max_record_seconds_ = 0;
  std::unique_ptr<record::ClipRecorder> recorder_;
  std::map<std::string, std::unique_ptr<aws::FirehoseUploader>> uploaders_;  // by rule name
};

}  // namespace emi
