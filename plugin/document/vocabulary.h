// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame document's vocabulary: every key and marker that emi writes or reads, spelled once.
// docs/frame_document.schema.json describes the same document; test_frame_document checks that
// the two agree.
#pragma once

#include <array>

namespace emi {

namespace field {
// The document: {"frame": [record]}; emi elements work on the first record.
inline constexpr char kFrames[] = "frame";

// Facts about the frame itself, filled in by the first emi element that sees the buffer.
inline constexpr char kFrameNum[] = "frame_num";
inline constexpr char kBufferPts[] = "buf_pts";
inline constexpr char kNtpTimestamp[] = "ntp_timestamp";
inline constexpr char kTimestamp[] = "timestamp";
inline constexpr char kSourceWidth[] = "source_frame_width";
inline constexpr char kSourceHeight[] = "source_frame_height";

// What elements add to a frame record.
inline constexpr char kObjects[] = "object";
inline constexpr char kEvents[] = "events";
inline constexpr char kCounts[] = "counts";

// An object.
inline constexpr char kClassId[] = "class_id";
inline constexpr char kObjectId[] = "object_id";
inline constexpr char kConfidence[] = "confidence";
inline constexpr char kLabel[] = "obj_label";
inline constexpr char kRect[] = "rect_params";
inline constexpr char kLeft[] = "left";
inline constexpr char kTop[] = "top";
inline constexpr char kWidth[] = "width";
inline constexpr char kHeight[] = "height";
inline constexpr char kText[] = "text_params";
inline constexpr char kDisplayText[] = "display_text";
inline constexpr char kTrackingStart[] = "tracking_start_time";
inline constexpr char kTrackingEnded[] = "tracking_ended_time";
inline constexpr char kTrackingDuration[] = "tracking_duration_in_seconds";

// A detector's entry may name its label "label" instead of "obj_label".
inline constexpr char kShortLabel[] = "label";
}  // namespace field

// The frame facts, in the order the schema lists them ($defs/frame_facts).
inline constexpr std::array<const char*, 6> kFrameFacts = {
    field::kFrameNum,     field::kBufferPts,    field::kNtpTimestamp,
    field::kTimestamp,    field::kSourceWidth,  field::kSourceHeight};

// A tracking time that doesn't apply: an object that is not tracked, a track that has not ended.
inline constexpr char kNotApplicable[] = "N/A";
// class_id and object_id of an object that has none.
inline constexpr int kNoId = -1;
// buf_pts of a buffer without a timestamp.
inline constexpr int kNoPts = -1;

}  // namespace emi
