// SPDX-License-Identifier: LGPL-2.1-or-later
// The IOU tracker of Bochinski, Eiselein and Sikora ("High-Speed Tracking-by-Detection Without
// Using Image Information", AVSS 2017), made for real video: plain C++, no GStreamer.
//
// Differences from the paper, all for live video where detectors flicker:
// * each frame's detections are matched to the live tracks one-to-one by an optimal assignment
//   (Hungarian algorithm), not greedily, so crossing objects keep their ids; pairs below the IoU
//   threshold (and, per class, of different classes) never match. A pair weighs its IoU plus
//   log2 of the track's matched frames: where two tracks want one detection, a track twice as old
//   as the other keeps it whatever the overlaps (IoU differs by less than 1), so a young duplicate
//   track can't take an established object's detection, while between tracks of similar age the
//   better overlap wins; where every track can be matched either way, the ages cancel out and the
//   summed IoU decides;
// * the matching is a cascade, as in DeepSORT: tracks with an id first, then tracks on probation
//   against the detections left over, so a track started by a weak duplicate detection never
//   takes a known object's detection (the paper's greedy loop gets both by serving older tracks
//   first, at the price of swapping crossing objects);
// * optionally (`predict`), each track's box is predicted by constant velocity (a Kalman filter,
//   as in SORT) and matched by its IoU with the predicted box, in particular across gaps;
// * a track with an id survives `max_age` frames without a match (short detection gaps keep the
//   id); a track on probation ends at its first miss, as DeepSORT's tentative tracks do, so the
//   stale box of a false positive can't take a real object's detection frames later;
// * the paper's offline filter (length >= t_min, best confidence >= sigma_h) decides online
//   when a track gets its id; until then it is on probation and reported with id -1. Optionally
//   (`weak_min_hits`), a track held long enough gets its id without a confident detection;
// * optionally (`confident_first`), tracks with an id are matched to confident detections
//   (>= sigma_h) before weak ones, as ByteTrack's BYTE association does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracking/box.h"
#include "tracking/motion_filter.h"

namespace emi::tracking {

// Intersection over union; 0 when either box is empty.
double intersection_over_union(const Box& a, const Box& b);

struct Point {
  double x = 0;
  double y = 0;
};

// A counting line from `from` to `to`, in pixels.
struct Segment {
  Point from;
  Point to;
};

// "x1,y1,x2,y2" (spaces allowed): four finite numbers, two distinct points. Throws
// std::invalid_argument saying what is wrong.
Segment parse_segment(const std::string& text);

struct TrackerSettings {
  double iou_threshold = 0.3;    // sigma_IoU: the least IoU with a track's last box that matches
  double min_confidence = 0.0;   // sigma_l: detections below are ignored
  double high_confidence = 0.5;  // sigma_h: a track is reported once it had a detection >= this
  unsigned min_hits = 3;         // t_min: matched frames before a track is reported
  unsigned max_age = 5;          // frames a track with an id survives unmatched; one more: it ends
  bool per_class = true;         // only detections of the track's class_id and label match
  bool predict = false;          // match against each track's box predicted by constant velocity
  // Tracks with an id take the detections of at least high_confidence first, then the weaker
  // ones left over (ByteTrack's two rounds), so a weak detection can't win a track over a
  // confident one.
  bool confident_first = false;
  // Matched frames after which a track gets its id without a detection of high_confidence
  // (0: never, as in the paper): a track held that long is rarely a false positive.
  unsigned weak_min_hits = 0;
  std::optional<Segment> line;   // count crossings of this segment
};

struct Detection {
  Box box;
  double confidence = 1.0;
  int class_id = -1;
  std::string label;
};

// The frame being tracked.
struct FrameTime {
  std::int64_t time_ns = 0;  // stream time (the buffer's PTS): durations come from it
  std::string timestamp;     // wall-clock text (ISO 8601) kept as a track's start and end time
};

// What the tracker says about one detection of the frame.
struct TrackedDetection {
  std::int64_t object_id = -1;        // -1 while the track is on probation
  std::string_view start_timestamp;   // of the track's first frame; valid until the next update()
  double duration_seconds = 0;        // this frame's time minus the track's first frame's
};

// A reported track that ended: its last detection and its life.
struct EndedTrack {
  std::int64_t object_id = -1;
  Box box;
  double confidence = 0;
  int class_id = -1;
  std::string label;
  std::string start_timestamp;
  std::string ended_timestamp;  // the frame where it ended
  double duration_seconds = 0;  // from its first to its last matched frame
};

struct LineCrossings {
  std::uint64_t forward = 0;   // from the left of from→to to its right, as seen on screen
  std::uint64_t backward = 0;  // the other way
};

struct Counts {
  std::uint64_t total = 0;                          // reported tracks so far
  std::map<std::string, std::uint64_t> by_label;    // the same by label (class_id when unlabelled)
  std::size_t in_view = 0;                          // reported tracks matched in this frame
  LineCrossings line_crossings;                     // by reported tracks, with a line set
};

struct FrameUpdate {
  // One per detection, in order; empty for detections that were ignored (below min_confidence,
  // or an empty box).
  std::vector<std::optional<TrackedDetection>> detections;
  // Tracks with an id that ended on this frame (unmatched for more than max_age frames), by id.
  std::vector<EndedTrack> ended;
};

// Minimum-cost assignment of each row to a distinct column (rows <= columns) by shortest
// augmenting paths with potentials (Kuhn-Munkres in the Jonker-Volgenant form), O(rows² columns).
// Keeps its work arrays between calls.
class AssignmentSolver {
 public:
  // `cost` is rows x columns, row-major. Returns the column of each row.
  const std::vector<int>& solve(const std::vector<double>& cost, std::size_t rows, std::size_t columns);

 private:
  std::vector<double> row_potential_, column_potential_, slack_;
  std::vector<int> column_row_, previous_column_, row_column_;
  std::vector<bool> visited_;
};

class IouTracker {
 public:
  explicit IouTracker(TrackerSettings settings = {});

  // Tracks one frame. The result (and the views in it) stays valid until the next call.
  const FrameUpdate& update(const std::vector<Detection>& detections, const FrameTime& time);

  // Ends every live track, as at the end of the stream: the reported ones come back, by id, ended
  // at the last frame's timestamp. The tracker is then empty; counts are kept.
  std::vector<EndedTrack> finish();

  const Counts& counts() const { return counts_; }
  // Reported tracks that have not ended.
  std::size_t active_tracks() const;
  const TrackerSettings& settings() const { return settings_; }

 private:
  struct Track {
    std::int64_t object_id = -1;  // -1 until reported
    Detection last;               // the last matched detection
    Box expected;                 // where it is looked for in this frame: last.box, or predicted
    std::optional<MotionFilter> motion;  // with predict
    double best_confidence = 0;
    unsigned hits = 0;            // matched frames
    unsigned misses = 0;          // frames since the last match
    std::int64_t start_ns = 0;
    std::int64_t last_ns = 0;
    std::string start_timestamp;
    int detection = -1;           // the detection matched in this frame, or -1
    // Line counting: the last box centre seen off the line, and its side (0: none yet).
    Point anchor;
    int anchor_side = 0;
    LineCrossings unreported_crossings;  // made on probation, counted once reported
  };
  struct Candidate {
    int track;
    int detection;
    double weight;  // what the pair adds to the assignment: IoU + log2(the track's matched frames)
  };
  // detection_track_ holds, per detection, its track's index or one of these.
  static constexpr int kIgnored = -2;
  static constexpr int kUnmatched = -1;

  void find_candidates(const std::vector<Detection>& detections);
  void match_candidates(const std::vector<Detection>& detections);
  void match_stage(std::vector<Candidate>::iterator first, std::vector<Candidate>::iterator last);
  void assign_component(std::vector<Candidate>::const_iterator first,
                        std::vector<Candidate>::const_iterator last);
  void start_track(const Detection& detection, int index, const FrameTime& time);
  void update_line_crossings(Track& track);
  void report(Track& track);
  EndedTrack ended_record(const Track& track, const std::string& ended_timestamp) const;

  TrackerSettings settings_;
  std::vector<Track> tracks_;
  Counts counts_;
  std::int64_t next_object_id_ = 1;
  FrameTime last_time_;
  FrameUpdate update_;

  // Per-frame work arrays, kept to avoid allocations.
  std::vector<int> usable_detections_;     // indices with confidence >= min_confidence, by left edge
  std::vector<Candidate> candidates_;      // track/detection pairs allowed to match
  std::vector<int> detection_track_;       // matched track of each detection, kUnmatched, kIgnored
  std::vector<int> component_parent_;      // union-find over tracks then detections
  std::vector<int> local_index_;           // node → row/column within one component
  std::vector<int> component_tracks_, component_detections_;
  std::vector<double> component_cost_;
  AssignmentSolver solver_;
};

}  // namespace emi::tracking
