// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/rule_actions.h"

#include <algorithm>
#include <stdexcept>

#include "actions/actions_log.h"
#include "actions/record/clip_recorder.h"
#include "actions/upload/firehose_uploader.h"

#define GST_CAT_DEFAULT emi::actions_debug()

namespace emi {
namespace {

constexpr unsigned kMaxQueuedFrames = 8;
// A paced source waits for the encoder at most this long per frame; then frames are dropped.
constexpr std::chrono::seconds kPaceTimeout{5};
constexpr double kCallbackLagSeconds = 2;

}  // namespace

void release_caps(GstCaps* caps) { gst_caps_unref(caps); }

RuleActions::RuleActions(const rules::StreamConfig& config, RuleActionSettings settings, ActionReporter& reporter)
    : settings_(std::move(settings)), reporter_(reporter) {
  const auto on_error = [&reporter](const std::string& message) { reporter.warning(message, ""); };
  for (const rules::Rule& rule : config.rules) {
    if (rule.action == rules::ActionKind::kRecord) {
      max_record_seconds_ = std::max(max_record_seconds_, rule.record.duration_seconds);
      continue;
    }
    aws::FirehoseSettings upload;
    upload.delivery_stream_name = rule.upload.delivery_stream_name;
    upload.access_key = rule.upload.access_key;
    upload.secret_key = rule.upload.secret_key;
    upload.region = rule.upload.region;
    upload.endpoint = rule.upload.endpoint;
    // Empty: the uploader's own per-stream default, shared by every run.
    if (!settings_.spool_dir.empty()) upload.spool_dir = settings_.spool_dir + "/" + rule.upload.delivery_stream_name;
    try {
      uploaders_[rule.name] = std::make_unique<aws::FirehoseUploader>(upload, on_error);
    } catch (const std::invalid_argument& error) {
      // EDGEMATRIX's stream configs leave the keys to its device agent: such a rule still fires
      // (its firings are in the output), it just has nowhere to send to.
      reporter_.warning("rule \"" + rule.name + "\" can't upload: " + error.what() +
                            "; its firings are logged, not sent",
                        "");
    }
  }
}

RuleActions::~RuleActions() = default;

std::unique_ptr<record::ClipRecorder> RuleActions::new_recorder(const GstCaps* caps) {
  record::RecorderSettings recording;
  recording.directory = settings_.record_dir;
  recording.stream_id = settings_.stream_id;
  // With a live source the callback may run behind the video: the ring keeps some more.
  recording.max_pre_seconds = max_record_seconds_ + kCallbackLagSeconds;
  recording.max_queued_frames = kMaxQueuedFrames;
  return std::make_unique<record::ClipRecorder>(
      recording, caps, [this](const std::string& message) { reporter_.warning(message, ""); },
      [this](const record::FinishedClip& clip) {
        reporter_.clip_recorded({{"path", clip.path}, {"sidecar", clip.sidecar_path}, {"id", clip.id},
                                 {"start_pts", clip.start_pts}, {"end_pts", clip.end_pts}, {"frames", clip.frames},
                                 {"events", clip.events}, {"cut_short", clip.cut_short}});
      },
      [this](const std::string& message) { reporter_.clip_lost(message); });
}

void RuleActions::retire(std::unique_ptr<record::ClipRecorder> recorder) {
  if (!recorder) return;
  recorder->finish();
  retired_frames_dropped_ += recorder->frames_dropped();
  frames_dropped_ = retired_frames_dropped_ + (recorder_ ? recorder_->frames_dropped() : 0);
}

void RuleActions::set_caps(const GstCaps* caps) {
  if (!records()) return;
  std::unique_ptr<record::ClipRecorder> replacement = new_recorder(caps);
  GST_DEBUG("a recorder for %" GST_PTR_FORMAT, caps);
  {
    std::lock_guard lock(recorder_mutex_);
    recorder_.swap(replacement);
  }
  caps_.reset(gst_caps_copy(caps));
  // The old one ends outside the lock: no firing waits for its clips to be written.
  retire(std::move(replacement));
}

void RuleActions::restart_recording(std::uint64_t segment) {
  if (!caps_) {
    std::lock_guard lock(recorder_mutex_);
    segment_ = segment;
    return;
  }
  std::unique_ptr<record::ClipRecorder> replacement = new_recorder(caps_.get());
  GST_DEBUG("flushed: recording starts afresh (segment %" G_GUINT64_FORMAT ")", segment);
  {
    std::lock_guard lock(recorder_mutex_);
    recorder_.swap(replacement);
    segment_ = segment;
  }
  retire(std::move(replacement));
}

bool RuleActions::push_frame(GstBuffer* frame, bool pace) {
  if (!recorder_) return false;
  bool waited = false;
  if (pace) {
    const std::uint64_t waiting =
        recorder_->frames_pushed() - recorder_->frames_dropped() - recorder_->frames_encoded();
    if (waiting + 1 >= kMaxQueuedFrames) {
      recorder_->wait_for_encoder(kPaceTimeout);
      waited = true;
    }
  }
  recorder_->push(frame);
  frames_dropped_ = retired_frames_dropped_ + recorder_->frames_dropped();
  return waited;
}

void RuleActions::run(const Firing& firing) {
  const rules::Rule& rule = firing.rule;
  if (rule.action == rules::ActionKind::kRecord) {
    std::lock_guard lock(recorder_mutex_);
    if (firing.segment != segment_) {
      GST_INFO("rule \"%s\": its event at %" GST_TIME_FORMAT " came before a seek: no clip", rule.name.c_str(),
               GST_TIME_ARGS(firing.pts));
      return;
    }
    if (!recorder_) {
      reporter_.clip_lost("rule \"" + rule.name + "\" can't record: its event came before the video's caps");
      return;
    }
    try {
      recorder_->trigger(firing.pts, rule.record.duration_seconds, rule.record.max_duration_seconds, firing.event);
    } catch (const std::invalid_argument& error) {
      reporter_.clip_lost("rule \"" + rule.name + "\" can't record: " + error.what());
    }
    return;
  }
  const auto uploader = uploaders_.find(rule.name);
  if (uploader != uploaders_.end())
    uploader->second->enqueue(firing.event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void RuleActions::finish(std::chrono::milliseconds upload_timeout) {
  if (recorder_) recorder_->finish();
  for (auto& [rule, uploader] : uploaders_) {
    if (!uploader->flush(upload_timeout))
      reporter_.warning("rule \"" + rule + "\": events not yet delivered to Firehose stay in the spool for the next run",
                        "");
  }
}

std::uint64_t RuleActions::uploads_dropped() const {
  std::uint64_t dropped = 0;
  for (const auto& [rule, uploader] : uploaders_) dropped += uploader->dropped();
  return dropped;
}

std::uint64_t RuleActions::uploads_rejected() const {
  std::uint64_t rejected = 0;
  for (const auto& [rule, uploader] : uploaders_) rejected += uploader->rejected();
  return rejected;
}

}  // namespace emi
