#include "actions/rule_actions.h"

#include <algorithm>
#include <stdexcept>

#include "actions/record/clip_recorder.h"
#include "actions/upload/firehose_uploader.h"

namespace emi {
namespace {

constexpr unsigned kMaxQueuedFrames = 8;
// A paced source waits for the encoder at most this long per frame; then frames are dropped.
constexpr std::chrono::seconds kPaceTimeout{5};
constexpr double kCallbackLagSeconds = 2;

}  // namespace

RuleActions::RuleActions(const rules::StreamConfig& config, RuleActionSettings settings, ErrorSink on_error,
                         ClipSink on_clip)
    : settings_(std::move(settings)), on_error_(std::move(on_error)), on_clip_(std::move(on_clip)) {
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
    upload.spool_dir = settings_.spool_dir + "/" + rule.upload.delivery_stream_name;
    try {
      uploaders_[rule.name] = std::make_unique<aws::FirehoseUploader>(upload, on_error_);
    } catch (const std::invalid_argument& error) {
      // EDGEMATRIX's stream configs leave the keys to its device agent: such a rule still fires
      // (its firings are in the output), it just has nowhere to send to.
      on_error_("rule \"" + rule.name + "\" can't upload: " + error.what() +
                "; its firings are logged, not sent");
    }
  }
}

RuleActions::~RuleActions() = default;

void RuleActions::set_caps(const GstCaps* caps) {
  if (!records()) return;
  if (recorder_) recorder_->finish();
  record::RecorderSettings recording;
  recording.directory = settings_.record_dir;
  recording.stream_id = settings_.stream_id;
  // With a live source the callback may run behind the video: the ring keeps some more.
  recording.max_pre_seconds = max_record_seconds_ + kCallbackLagSeconds;
  recording.max_queued_frames = kMaxQueuedFrames;
  recorder_ = std::make_unique<record::ClipRecorder>(recording, caps, on_error_, [this](const record::FinishedClip& clip) {
    on_clip_({{"path", clip.path}, {"sidecar", clip.sidecar_path}, {"id", clip.id}, {"start_pts", clip.start_pts},
              {"end_pts", clip.end_pts}, {"frames", clip.frames}, {"events", clip.events},
              {"cut_short", clip.cut_short}});
  });
}

void RuleActions::push_frame(GstBuffer* frame, bool pace) {
  if (!recorder_) return;
  if (pace) {
    const std::uint64_t waiting =
        recorder_->frames_pushed() - recorder_->frames_dropped() - recorder_->frames_encoded();
    if (waiting + 1 >= kMaxQueuedFrames) recorder_->wait_for_encoder(kPaceTimeout);
  }
  recorder_->push(frame);
}

void RuleActions::run(const rules::Rule& rule, const nlohmann::json& event, GstClockTime pts) {
  if (rule.action == rules::ActionKind::kRecord) {
    if (!recorder_) return;
    try {
      recorder_->trigger(pts, rule.record.duration_seconds, rule.record.max_duration_seconds, event);
    } catch (const std::invalid_argument& error) {
      on_error_("rule \"" + rule.name + "\" can't record: " + error.what());
    }
    return;
  }
  const auto uploader = uploaders_.find(rule.name);
  if (uploader != uploaders_.end()) uploader->second->enqueue(event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void RuleActions::finish(std::chrono::milliseconds upload_timeout) {
  if (recorder_) recorder_->finish();
  for (auto& [rule, uploader] : uploaders_) {
    if (!uploader->flush(upload_timeout))
      on_error_("rule \"" + rule + "\": events not yet delivered to Firehose stay in the spool for the next run");
  }
}

}  // namespace emi
