// SPDX-License-Identifier: LGPL-2.1-or-later
#include "tracking/iou_tracker.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace emi::tracking {
namespace {

double seconds_between(std::int64_t from_ns, std::int64_t to_ns) {
  return std::max<std::int64_t>(0, to_ns - from_ns) / 1e9;
}

bool is_finite(const Box& box) {
  return std::isfinite(box.left) && std::isfinite(box.top) && std::isfinite(box.width) &&
         std::isfinite(box.height);
}

Point centre_of(const Box& box) { return {box.left + box.width / 2, box.top + box.height / 2}; }

// Sign of the cross product (b - a) x (p - a): +1 when p is to the right of a→b as seen on screen
// (y grows downwards), -1 to its left, 0 on the line.
int side_of(Point a, Point b, Point p) {
  const double cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
  return (cross > 0) - (cross < 0);
}

// Whether the move from p to q, which ends on the other side of the line through the segment,
// crosses the segment itself rather than passing beyond one of its ends.
bool move_crosses(Point p, Point q, const Segment& segment) {
  return side_of(p, q, segment.from) * side_of(p, q, segment.to) <= 0;
}

std::string label_key(const Detection& detection) {
  return detection.label.empty() ? std::to_string(detection.class_id) : detection.label;
}

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

double intersection_over_union(const Box& a, const Box& b) {
  const double width = std::min(a.left + a.width, b.left + b.width) - std::max(a.left, b.left);
  const double height = std::min(a.top + a.height, b.top + b.height) - std::max(a.top, b.top);
  if (width <= 0 || height <= 0) return 0;
  const double intersection = width * height;
  return intersection / (a.width * a.height + b.width * b.height - intersection);
}

Segment parse_segment(const std::string& text) {
  double values[4];
  std::size_t count = 0;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view part = trimmed(rest.substr(0, comma));
    if (count == 4) throw std::invalid_argument("expected four numbers x1,y1,x2,y2, got more");
    double& value = values[count++];
    // from_chars ignores the locale: "0.5" is a number under any LC_NUMERIC.
    const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || error != std::errc() || end != part.data() + part.size() || !std::isfinite(value))
      throw std::invalid_argument("\"" + std::string(part) + "\" is not a number");
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (count != 4)
    throw std::invalid_argument("expected four numbers x1,y1,x2,y2, got " + std::to_string(count));
  const Segment segment{{values[0], values[1]}, {values[2], values[3]}};
  if (segment.from.x == segment.to.x && segment.from.y == segment.to.y)
    throw std::invalid_argument("the two points are the same");
  return segment;
}

const std::vector<int>& AssignmentSolver::solve(const std::vector<double>& cost, std::size_t rows,
                                                std::size_t columns) {
  if (rows > columns || cost.size() != rows * columns)
    throw std::invalid_argument("assignment needs rows <= columns and a rows x columns matrix");
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  // Rows and columns count from 1 here; column 0 is a virtual one where each augmenting path starts.
  row_potential_.assign(rows + 1, 0.0);
  column_potential_.assign(columns + 1, 0.0);
  column_row_.assign(columns + 1, 0);
  previous_column_.assign(columns + 1, 0);
  for (std::size_t row = 1; row <= rows; ++row) {
    column_row_[0] = static_cast<int>(row);
    std::size_t column = 0;
    slack_.assign(columns + 1, kInfinity);
    visited_.assign(columns + 1, false);
    // Dijkstra on reduced costs from `row` until a free column is reached.
    do {
      visited_[column] = true;
      const std::size_t current_row = column_row_[column];
      const double* row_costs = &cost[(current_row - 1) * columns];
      double delta = kInfinity;
      std::size_t next_column = 0;
      for (std::size_t j = 1; j <= columns; ++j) {
        if (visited_[j]) continue;
        const double reduced = row_costs[j - 1] - row_potential_[current_row] - column_potential_[j];
        if (reduced < slack_[j]) {
          slack_[j] = reduced;
          previous_column_[j] = static_cast<int>(column);
        }
        if (slack_[j] < delta) {
          delta = slack_[j];
          next_column = j;
        }
      }
      for (std::size_t j = 0; j <= columns; ++j) {
        if (visited_[j]) {
          row_potential_[column_row_[j]] += delta;
          column_potential_[j] -= delta;
        } else {
          slack_[j] -= delta;
        }
      }
      column = next_column;
    } while (column_row_[column] != 0);
    // Shift the assignments along the augmenting path.
    do {
      const std::size_t previous = previous_column_[column];
      column_row_[column] = column_row_[previous];
      column = previous;
    } while (column != 0);
  }
  row_column_.assign(rows, -1);
  for (std::size_t j = 1; j <= columns; ++j) {
    if (column_row_[j] != 0) row_column_[column_row_[j] - 1] = static_cast<int>(j - 1);
  }
  return row_column_;
}

IouTracker::IouTracker(TrackerSettings settings) : settings_(std::move(settings)) {}

std::size_t IouTracker::active_tracks() const {
  return std::count_if(tracks_.begin(), tracks_.end(),
                       [](const Track& track) { return track.object_id >= 0; });
}

// Pairs of a track and a usable detection that may match: IoU above the threshold and, per class,
// the same class. Only detections that overlap the track horizontally are looked at.
void IouTracker::find_candidates(const std::vector<Detection>& detections) {
  detection_track_.assign(detections.size(), kIgnored);
  usable_detections_.clear();
  double widest = 0;
  for (std::size_t index = 0; index < detections.size(); ++index) {
    const Detection& detection = detections[index];
    // `!(x >= y)` also turns away NaN confidences.
    if (!(detection.confidence >= settings_.min_confidence) || !is_finite(detection.box) ||
        detection.box.width <= 0 || detection.box.height <= 0)
      continue;
    detection_track_[index] = kUnmatched;
    usable_detections_.push_back(static_cast<int>(index));
    widest = std::max(widest, detection.box.width);
  }
  const auto left_of = [&detections](int index) { return detections[index].box.left; };
  std::sort(usable_detections_.begin(), usable_detections_.end(), [&](int a, int b) {
    return left_of(a) != left_of(b) ? left_of(a) < left_of(b) : a < b;
  });

  candidates_.clear();
  for (std::size_t track_index = 0; track_index < tracks_.size(); ++track_index) {
    const Track& track = tracks_[track_index];
    const Box& expected = track.expected;
    const double right = expected.left + expected.width;
    // A detection overlapping the track horizontally has its left edge in (left - widest, right).
    const auto first = std::upper_bound(
        usable_detections_.begin(), usable_detections_.end(), expected.left - widest,
        [&](double edge, int index) { return edge < left_of(index); });
    for (auto it = first; it != usable_detections_.end() && left_of(*it) < right; ++it) {
      const Detection& detection = detections[*it];
      if (settings_.per_class &&
          (detection.class_id != track.last.class_id || detection.label != track.last.label))
        continue;
      const double iou = intersection_over_union(expected, detection.box);
      if (iou > 0 && iou >= settings_.iou_threshold)
        candidates_.push_back({static_cast<int>(track_index), *it, iou + std::log2(track.hits)});
    }
  }
}

// The cascade: tracks with an id take their detections first; tracks on probation match what is
// left. Each stage is an optimal assignment of its own.
void IouTracker::match_candidates(const std::vector<Detection>& detections) {
  const auto probation = std::partition(candidates_.begin(), candidates_.end(), [this](const Candidate& candidate) {
    return tracks_[candidate.track].object_id >= 0;
  });
  if (settings_.confident_first) {
    // Two rounds for the tracks with an id: confident detections, then weak ones for the tracks
    // still unmatched. The weak round's detections can't have been taken in the first.
    const auto weak = std::partition(candidates_.begin(), probation, [&](const Candidate& candidate) {
      return detections[candidate.detection].confidence >= settings_.high_confidence;
    });
    match_stage(candidates_.begin(), weak);
    const auto weak_open = std::remove_if(weak, probation, [this](const Candidate& candidate) {
      return tracks_[candidate.track].detection >= 0;
    });
    match_stage(weak, weak_open);
  } else {
    match_stage(candidates_.begin(), probation);
  }
  const auto still_open = std::remove_if(probation, candidates_.end(), [this](const Candidate& candidate) {
    return detection_track_[candidate.detection] != kUnmatched;
  });
  match_stage(probation, still_open);
}

// The optimal matching decomposes over the connected components of the candidate graph, which in
// real scenes hold one or a few tracks: each is solved on its own.
void IouTracker::match_stage(std::vector<Candidate>::iterator first_candidate,
                             std::vector<Candidate>::iterator last_candidate) {
  if (first_candidate == last_candidate) return;
  const int track_count = static_cast<int>(tracks_.size());
  const std::size_t nodes = tracks_.size() + detection_track_.size();
  component_parent_.resize(nodes);
  std::iota(component_parent_.begin(), component_parent_.end(), 0);
  const auto root = [this](int node) {
    while (component_parent_[node] != node) {
      component_parent_[node] = component_parent_[component_parent_[node]];
      node = component_parent_[node];
    }
    return node;
  };
  for (auto candidate = first_candidate; candidate != last_candidate; ++candidate)
    component_parent_[root(candidate->track)] = root(track_count + candidate->detection);
  for (auto candidate = first_candidate; candidate != last_candidate; ++candidate)
    component_parent_[candidate->track] = root(candidate->track);

  std::sort(first_candidate, last_candidate, [this](const Candidate& a, const Candidate& b) {
    const int component_a = component_parent_[a.track];
    const int component_b = component_parent_[b.track];
    if (component_a != component_b) return component_a < component_b;
    return a.track != b.track ? a.track < b.track : a.detection < b.detection;
  });
  local_index_.assign(nodes, -1);
  for (auto first = first_candidate; first != last_candidate;) {
    auto last = first;
    while (last != last_candidate && component_parent_[last->track] == component_parent_[first->track]) ++last;
    assign_component(first, last);
    first = last;
  }
}

void IouTracker::assign_component(std::vector<Candidate>::const_iterator first,
                                  std::vector<Candidate>::const_iterator last) {
  const auto match = [this](int track, int detection) {
    tracks_[track].detection = detection;
    detection_track_[detection] = track;
  };
  if (last - first == 1) {
    match(first->track, first->detection);
    return;
  }
  const int track_count = static_cast<int>(tracks_.size());
  component_tracks_.clear();
  component_detections_.clear();
  for (auto it = first; it != last; ++it) {
    if (local_index_[it->track] < 0) {
      local_index_[it->track] = static_cast<int>(component_tracks_.size());
      component_tracks_.push_back(it->track);
    }
    if (local_index_[track_count + it->detection] < 0) {
      local_index_[track_count + it->detection] = static_cast<int>(component_detections_.size());
      component_detections_.push_back(it->detection);
    }
  }
  // The solver wants rows <= columns: the smaller side are the rows. Cost -weight for allowed
  // pairs and 0 for the others, so the minimum is the matching of greatest summed weight.
  const bool tracks_are_rows = component_tracks_.size() <= component_detections_.size();
  const std::size_t rows = tracks_are_rows ? component_tracks_.size() : component_detections_.size();
  const std::size_t columns = tracks_are_rows ? component_detections_.size() : component_tracks_.size();
  component_cost_.assign(rows * columns, 0.0);
  for (auto it = first; it != last; ++it) {
    const int track = local_index_[it->track];
    const int detection = local_index_[track_count + it->detection];
    const std::size_t cell = tracks_are_rows ? track * columns + detection : detection * columns + track;
    component_cost_[cell] = -it->weight;
  }
  const std::vector<int>& assignment = solver_.solve(component_cost_, rows, columns);
  for (std::size_t row = 0; row < rows; ++row) {
    const std::size_t column = assignment[row];
    if (component_cost_[row * columns + column] >= 0) continue;  // not an allowed pair
    if (tracks_are_rows) match(component_tracks_[row], component_detections_[column]);
    else match(component_tracks_[column], component_detections_[row]);
  }
  for (int track : component_tracks_) local_index_[track] = -1;
  for (int detection : component_detections_) local_index_[track_count + detection] = -1;
}

// A crossing: the box centre is now strictly on the other side of the line from where it last
// was off it, and the move between the two went through the segment.
void IouTracker::update_line_crossings(Track& track) {
  const Segment& line = *settings_.line;
  const Point centre = centre_of(track.last.box);
  const int side = side_of(line.from, line.to, centre);
  if (side == 0) return;  // on the line: which side it leaves to decides
  if (track.anchor_side != 0 && side != track.anchor_side && move_crosses(track.anchor, centre, line)) {
    LineCrossings& tally = track.object_id >= 0 ? counts_.line_crossings : track.unreported_crossings;
    ++(side > 0 ? tally.forward : tally.backward);
  }
  track.anchor = centre;
  track.anchor_side = side;
}

void IouTracker::start_track(const Detection& detection, int index, const FrameTime& time) {
  Track& track = tracks_.emplace_back();
  track.last = detection;
  track.expected = detection.box;
  if (settings_.predict) track.motion.emplace(detection.box);
  track.best_confidence = detection.confidence;
  track.hits = 1;
  track.start_ns = track.last_ns = time.time_ns;
  track.start_timestamp = time.timestamp;
  track.detection = index;
  if (settings_.line) update_line_crossings(track);
}

void IouTracker::report(Track& track) {
  track.object_id = next_object_id_++;
  ++counts_.total;
  ++counts_.by_label[label_key(track.last)];
  counts_.line_crossings.forward += track.unreported_crossings.forward;
  counts_.line_crossings.backward += track.unreported_crossings.backward;
  track.unreported_crossings = {};
}

EndedTrack IouTracker::ended_record(const Track& track, const std::string& ended_timestamp) const {
  return EndedTrack{track.object_id,
                    track.last.box,
                    track.last.confidence,
                    track.last.class_id,
                    track.last.label,
                    track.start_timestamp,
                    ended_timestamp,
                    seconds_between(track.start_ns, track.last_ns)};
}

const FrameUpdate& IouTracker::update(const std::vector<Detection>& detections, const FrameTime& time) {
  update_.detections.assign(detections.size(), std::nullopt);
  update_.ended.clear();
  for (Track& track : tracks_) {
    track.detection = -1;
    if (track.motion) track.expected = track.motion->predict();
  }
  find_candidates(detections);
  match_candidates(detections);

  // Matched tracks follow their detection; the others age, and end past max_age (on probation: at
  // once).
  std::size_t kept = 0;
  for (std::size_t index = 0; index < tracks_.size(); ++index) {
    Track& track = tracks_[index];
    if (track.detection >= 0) {
      const Detection& detection = detections[track.detection];
      track.last = detection;
      track.expected = detection.box;
      if (track.motion) track.motion->update(detection.box);
      track.best_confidence = std::max(track.best_confidence, detection.confidence);
      ++track.hits;
      track.misses = 0;
      track.last_ns = time.time_ns;
      if (settings_.line) update_line_crossings(track);
    } else if (++track.misses > settings_.max_age || track.object_id < 0) {
      if (track.object_id >= 0) update_.ended.push_back(ended_record(track, time.timestamp));
      continue;
    }
    if (kept != index) tracks_[kept] = std::move(track);
    ++kept;
  }
  tracks_.erase(tracks_.begin() + static_cast<std::ptrdiff_t>(kept), tracks_.end());

  // Unmatched detections start tracks, on probation.
  for (std::size_t index = 0; index < detections.size(); ++index) {
    if (detection_track_[index] == kUnmatched) start_track(detections[index], static_cast<int>(index), time);
  }

  // Tracks become reported (get an id) in the order they started; the views below point into
  // tracks_, which no longer changes until the next call.
  counts_.in_view = 0;
  for (Track& track : tracks_) {
    if (track.detection < 0) continue;
    if (track.object_id < 0 && track.hits >= settings_.min_hits &&
        (track.best_confidence >= settings_.high_confidence ||
         (settings_.weak_min_hits > 0 && track.hits >= settings_.weak_min_hits)))
      report(track);
    if (track.object_id >= 0) ++counts_.in_view;
    update_.detections[track.detection] =
        TrackedDetection{track.object_id, track.start_timestamp, seconds_between(track.start_ns, time.time_ns)};
  }
  std::sort(update_.ended.begin(), update_.ended.end(),
            [](const EndedTrack& a, const EndedTrack& b) { return a.object_id < b.object_id; });
  last_time_ = time;
  return update_;
}

std::vector<EndedTrack> IouTracker::finish() {
  std::vector<EndedTrack> ended;
  for (const Track& track : tracks_) {
    if (track.object_id >= 0) ended.push_back(ended_record(track, last_time_.timestamp));
  }
  std::sort(ended.begin(), ended.end(),
            [](const EndedTrack& a, const EndedTrack& b) { return a.object_id < b.object_id; });
  tracks_.clear();
  counts_.in_view = 0;
  return ended;
}

}  // namespace emi::tracking
