// SPDX-License-Identifier: LGPL-2.1-or-later
// The IOU tracker on generated detection sequences of known truth: ids, gaps, ends, confidence
// filters, classes, the matching cascade, motion prediction, counts, line crossings, and a
// MOT-style score on a scene of many boxes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tracking/iou_tracker.h"

namespace emi::tracking {
namespace {

constexpr std::int64_t kFrameNs = 100'000'000;  // 10 frames a second: durations in tenths
constexpr std::int64_t kIgnored = -2;             // what Scene::step says for an ignored detection

FrameTime time_of(int frame) { return {frame * kFrameNs, "t" + std::to_string(frame)}; }

TrackerSettings reported_at_once() {
  TrackerSettings settings;
  settings.min_hits = 1;
  return settings;
}

// The IOU tracker paper's setting for MOTChallenge's detections: sigma_IoU 0.5, sigma_h 0.5,
// t_min 2, and a track ends at its first miss.
TrackerSettings paper_setting() {
  TrackerSettings settings;
  settings.iou_threshold = 0.5;
  settings.high_confidence = 0.5;
  settings.min_hits = 2;
  settings.max_age = 0;
  return settings;
}

TrackerSettings predicting(TrackerSettings settings = {}) {
  settings.predict = true;
  return settings;
}

Detection box(double left, double top, double confidence = 0.9, std::string label = "car",
              double width = 40, double height = 40, int class_id = 0) {
  return Detection{{left, top, width, height}, confidence, class_id, std::move(label)};
}

// Feeds frames to a tracker and keeps what it said.
struct Scene {
  explicit Scene(TrackerSettings settings = {}) : tracker(std::move(settings)) {}

  // The ids of the frame's detections: -1 on probation, kIgnored when not tracked.
  std::vector<std::int64_t> step(const std::vector<Detection>& detections) {
    const FrameUpdate& update = tracker.update(detections, time_of(frame));
    last = update;
    for (const EndedTrack& track : update.ended) ended.emplace_back(frame, track);
    std::vector<std::int64_t> ids;
    for (const auto& tracked : update.detections) ids.push_back(tracked ? tracked->object_id : kIgnored);
    ++frame;
    return ids;
  }
  std::int64_t step_one(const Detection& detection) { return step({detection})[0]; }

  IouTracker tracker;
  int frame = 0;
  FrameUpdate last;                              // the last frame's update (views not kept)
  std::vector<std::pair<int, EndedTrack>> ended;  // with the frame each track ended on
};

// --- the assignment solver -------------------------------------------------------------------

double total_cost(const std::vector<double>& cost, std::size_t columns, const std::vector<int>& assignment) {
  double total = 0;
  for (std::size_t row = 0; row < assignment.size(); ++row) total += cost[row * columns + assignment[row]];
  return total;
}

TEST(AssignmentSolver, FindsTheMinimumOfBruteForceOnRandomMatrices) {
  std::mt19937 random(7);
  AssignmentSolver solver;
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t rows = 1 + random() % 6;
    const std::size_t columns = rows + random() % 3;
    std::vector<double> cost(rows * columns);
    // Many ties and zeros, as IoU matrices with forbidden pairs have.
    for (double& cell : cost) cell = random() % 3 == 0 ? 0.0 : -static_cast<double>(random() % 10) / 10;
    const std::vector<int> assignment = solver.solve(cost, rows, columns);

    ASSERT_EQ(assignment.size(), rows);
    EXPECT_EQ(std::set<int>(assignment.begin(), assignment.end()).size(), rows) << "columns reused";
    std::vector<int> permutation(columns);
    std::iota(permutation.begin(), permutation.end(), 0);
    double best = 1e9;
    do {
      best = std::min(best, total_cost(cost, columns, std::vector<int>(permutation.begin(), permutation.begin() + rows)));
    } while (std::next_permutation(permutation.begin(), permutation.end()));
    EXPECT_NEAR(total_cost(cost, columns, assignment), best, 1e-9) << "trial " << trial;
  }
}

TEST(AssignmentSolver, RejectsMoreRowsThanColumns) {
  AssignmentSolver solver;
  EXPECT_THROW(solver.solve({0, 0}, 2, 1), std::invalid_argument);
  EXPECT_THROW(solver.solve({0, 0, 0}, 2, 2), std::invalid_argument);
}

// --- geometry and the line --------------------------------------------------------------------

TEST(IntersectionOverUnion, OfKnownBoxes) {
  const Box a{0, 0, 40, 40};
  EXPECT_DOUBLE_EQ(intersection_over_union(a, a), 1.0);
  EXPECT_DOUBLE_EQ(intersection_over_union(a, {20, 0, 40, 40}), 800.0 / 2400.0);
  EXPECT_DOUBLE_EQ(intersection_over_union(a, {10, 10, 20, 20}), 400.0 / 1600.0);
  EXPECT_EQ(intersection_over_union(a, {40, 0, 40, 40}), 0.0);  // touching edges
  EXPECT_EQ(intersection_over_union(a, {100, 100, 10, 10}), 0.0);
  EXPECT_EQ(intersection_over_union(a, {10, 10, 0, 0}), 0.0);
}

TEST(ParseSegment, ReadsFourNumbers) {
  const Segment segment = parse_segment("0,180,640,180");
  EXPECT_EQ(segment.from.x, 0);
  EXPECT_EQ(segment.from.y, 180);
  EXPECT_EQ(segment.to.x, 640);
  EXPECT_EQ(segment.to.y, 180);
  const Segment spaced = parse_segment(" 1.5 , -2,3e1 ,4 ");
  EXPECT_EQ(spaced.from.x, 1.5);
  EXPECT_EQ(spaced.from.y, -2);
  EXPECT_EQ(spaced.to.x, 30);
}

TEST(ParseSegment, SaysWhatIsWrong) {
  const auto problem = [](const std::string& text) {
    try {
      parse_segment(text);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(problem("1,2,3"), "expected four numbers x1,y1,x2,y2, got 3");
  EXPECT_EQ(problem("1,2,3,4,5"), "expected four numbers x1,y1,x2,y2, got more");
  EXPECT_EQ(problem("1,2,x,4"), "\"x\" is not a number");
  EXPECT_EQ(problem("1,,3,4"), "\"\" is not a number");
  EXPECT_EQ(problem("1,2,3,4px"), "\"4px\" is not a number");
  EXPECT_EQ(problem("1,2,3,nan"), "\"nan\" is not a number");
  EXPECT_EQ(problem("1,2,3,1e999"), "\"1e999\" is not a number");
  EXPECT_EQ(problem("5,5,5,5"), "the two points are the same");
  EXPECT_EQ(problem(""), "\"\" is not a number");
}

// --- ids --------------------------------------------------------------------------------------

TEST(IouTracker, GivesAnIdAfterMinHitsFrames) {
  Scene scene;
  EXPECT_EQ(scene.step_one(box(10, 10)), -1);
  EXPECT_EQ(scene.step_one(box(12, 10)), -1);
  EXPECT_EQ(scene.step_one(box(14, 10)), 1);
  const TrackedDetection& tracked = *scene.last.detections[0];
  EXPECT_EQ(tracked.start_timestamp, "t0");
  EXPECT_DOUBLE_EQ(tracked.duration_seconds, 0.2);
  EXPECT_EQ(scene.step_one(box(16, 10)), 1);
  EXPECT_EQ(scene.tracker.active_tracks(), 1u);

  Scene at_once(reported_at_once());
  EXPECT_EQ(at_once.step_one(box(10, 10)), 1);
}

// A moves right fast (12 px a frame), B left slowly (4 px), 6 px lower. At frame 19 B's box lies
// on A's previous one (IoU 0.74, more than A's own 0.54): a tracker that gives each track its best
// detection swaps them there. The optimal matching (1.36 summed IoU against 1.25) does not.
TEST(IouTracker, KeepsIdsOfObjectsSwappingSides) {
  const auto a = [](int frame) { return box(12.0 * frame, 100); };
  const auto b = [](int frame) { return box(292.0 - 4 * frame, 106); };
  EXPECT_GT(intersection_over_union(a(18).box, b(19).box), intersection_over_union(a(18).box, a(19).box));

  Scene scene;
  for (int frame = 0; frame < 40; ++frame) {
    const std::vector<std::int64_t> ids = scene.step({a(frame), b(frame)});
    if (frame < 2) continue;
    EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 2})) << "frame " << frame;
  }
  EXPECT_TRUE(scene.ended.empty());
}

// A moves right along y=100; B moves up through A's path. At frame 10 the best pair of all is A's
// last box with B's new detection (IoU 0.74): greedy matching, by track or by best IoU, swaps.
TEST(IouTracker, MatchesOptimallyWhereGreedyMatchingFails) {
  const auto a = [](int frame) { return box(12.0 * frame, 100); };
  const auto b = [](int frame) { return box(108, 106.0 + 12 * (10 - frame)); };
  const double trap = intersection_over_union(a(9).box, b(10).box);
  EXPECT_GT(trap, intersection_over_union(a(9).box, a(10).box));
  EXPECT_GT(trap, intersection_over_union(b(9).box, b(10).box));

  Scene scene;
  for (int frame = 0; frame < 20; ++frame) {
    const std::vector<std::int64_t> ids = scene.step({a(frame), b(frame)});
    if (frame < 2) continue;
    EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 2})) << "frame " << frame;
  }
}

TEST(IouTracker, KeepsTheIdAcrossAGapOfMaxAgeFrames) {
  Scene scene;  // max-age 5
  for (int frame = 0; frame < 10; ++frame) scene.step_one(box(50, 50));
  for (int frame = 0; frame < 5; ++frame) scene.step({});
  EXPECT_EQ(scene.tracker.active_tracks(), 1u);
  EXPECT_EQ(scene.step_one(box(52, 50)), 1);
  EXPECT_TRUE(scene.ended.empty());
  EXPECT_EQ(scene.tracker.counts().total, 1u);
}

TEST(IouTracker, EndsATrackOnceAfterALongerGapAndStartsANewOne) {
  Scene scene;
  for (int frame = 0; frame < 10; ++frame) scene.step_one(box(50 + frame, 50));  // frames 0-9
  for (int frame = 0; frame < 6; ++frame) scene.step({});                         // 10-15
  ASSERT_EQ(scene.ended.size(), 1u);
  const auto& [ended_frame, ended] = scene.ended[0];
  EXPECT_EQ(ended_frame, 15);
  EXPECT_EQ(ended.object_id, 1);
  EXPECT_EQ(ended.start_timestamp, "t0");
  EXPECT_EQ(ended.ended_timestamp, "t15");
  EXPECT_DOUBLE_EQ(ended.duration_seconds, 0.9);  // first to last matched frame
  EXPECT_EQ(ended.box.left, 59);
  EXPECT_EQ(ended.label, "car");
  EXPECT_EQ(scene.tracker.active_tracks(), 0u);

  EXPECT_EQ(scene.step_one(box(59, 50)), -1);  // the same place, a new track
  EXPECT_EQ(scene.step_one(box(59, 50)), -1);
  EXPECT_EQ(scene.step_one(box(59, 50)), 2);
  for (int frame = 0; frame < 20; ++frame) scene.step({});
  EXPECT_EQ(scene.ended.size(), 2u);
  EXPECT_EQ(scene.ended[1].second.object_id, 2);
}

TEST(IouTracker, ProbationEndsAtTheFirstMiss) {
  Scene scene;
  EXPECT_EQ(scene.step_one(box(50, 50)), -1);
  EXPECT_EQ(scene.step_one(box(50, 50)), -1);
  scene.step({});
  EXPECT_EQ(scene.step_one(box(50, 50)), -1);  // probation starts over
  EXPECT_EQ(scene.step_one(box(50, 50)), -1);
  EXPECT_EQ(scene.step_one(box(50, 50)), 1);
}

TEST(IouTracker, ProbationTracksEndSilently) {
  Scene scene;
  scene.step_one(box(50, 50));
  scene.step_one(box(50, 50));
  for (int frame = 0; frame < 10; ++frame) scene.step({});
  EXPECT_TRUE(scene.ended.empty());
  EXPECT_TRUE(scene.tracker.finish().empty());
  EXPECT_EQ(scene.tracker.counts().total, 0u);
}

TEST(IouTracker, FollowsJitteredBoxes) {
  std::mt19937 random(11);
  const auto jitter = [&random](double amplitude) {
    return amplitude * (2.0 * random() / std::mt19937::max() - 1.0);
  };
  Scene scene;
  std::vector<std::set<std::int64_t>> ids(3);
  for (int frame = 0; frame < 200; ++frame) {
    std::vector<Detection> detections;
    for (int object = 0; object < 3; ++object) {
      detections.push_back(box(100 + 200 * object + 0.5 * frame + jitter(4), 100 + jitter(4), 0.9,
                               "car", 40 + jitter(3), 60 + jitter(3)));
    }
    const std::vector<std::int64_t> frame_ids = scene.step(detections);
    for (int object = 0; object < 3 && frame >= 2; ++object) ids[object].insert(frame_ids[object]);
  }
  for (int object = 0; object < 3; ++object)
    EXPECT_EQ(ids[object], std::set<std::int64_t>{object + 1}) << "object " << object;
  EXPECT_TRUE(scene.ended.empty());
}

// --- the matching cascade ---------------------------------------------------------------------

// PETS09-S2L1 frames 5-6 (MOT15's public detections): a walker tracked since frame 1 has, on
// frame 5, its detection and a weak duplicate (score 0.11) a few pixels off, which starts a track
// on probation. On frame 6 the only detection overlaps the walker's box at 0.63 and the
// duplicate's at 0.76. Matched in one assignment, the duplicate's track takes it, the walker's
// track ends and the walker gets a new id; tracks with an id match first, so it keeps id 1.
TEST(IouTracker, TracksWithAnIdMatchBeforeTracksOnProbation) {
  const auto walker = [](double left, double top, double confidence = 0.9) {
    return box(left, top, confidence, "person", 30, 70);
  };
  const Detection frame6 = walker(485, 167);
  ASSERT_NEAR(intersection_over_union(walker(490, 162).box, frame6.box), 0.63, 0.01);
  ASSERT_NEAR(intersection_over_union(walker(481, 167).box, frame6.box), 0.76, 0.01);

  Scene scene(paper_setting());
  for (double left : {500, 495, 495, 490}) EXPECT_NE(scene.step_one(walker(left, 160)), kIgnored);
  EXPECT_EQ(scene.step({walker(490, 162), walker(481, 167, 0.11)}), (std::vector<std::int64_t>{1, -1}));
  EXPECT_EQ(scene.step_one(frame6), 1);
  EXPECT_TRUE(scene.ended.empty());
  EXPECT_EQ(scene.tracker.counts().total, 1u);
}

// TUD-Stadtmitte frame 62 in MOT15, simplified: a duplicate detection beside a person tracked
// for a while gets an id of its own; then a single detection overlaps the duplicate's box better
// (0.88) than the person's (0.76). The summed IoU alone would give it to the young track and end
// the old one (max-age 0); weighed by age, the older track keeps it.
TEST(IouTracker, AnOlderTrackKeepsItsDetectionAgainstAYoungDuplicate) {
  const auto person = [](double left, double top) { return box(left, top, 0.9, "person", 40, 80); };
  const Detection single = person(104, 103);
  ASSERT_NEAR(intersection_over_union(person(100, 100).box, single.box), 0.76, 0.01);
  ASSERT_NEAR(intersection_over_union(person(106, 104).box, single.box), 0.88, 0.01);

  Scene scene(paper_setting());
  for (int frame = 0; frame < 10; ++frame) scene.step_one(person(100, 100));
  EXPECT_EQ(scene.step({person(100, 100), person(106, 104)}), (std::vector<std::int64_t>{1, -1}));
  EXPECT_EQ(scene.step({person(100, 100), person(106, 104)}), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(scene.step_one(single), 1);
  ASSERT_EQ(scene.ended.size(), 1u);
  EXPECT_EQ(scene.ended[0].second.object_id, 2);
}

// The cascade ranks stages, not pairs: within the probation stage the assignment stays optimal.
// Two weak tracks (never reported at 0.3) meet the crossing trap of the test above on their third
// frame; matched greedily, A's track would take B's detection, B's would end and A's detection
// would start a new track: A would be reported, later, as a track started on that frame.
TEST(IouTracker, MatchesTracksOnProbationOptimallyAmongThemselves) {
  const auto a = [](int frame, double confidence = 0.3) { return box(12.0 * frame, 100, confidence); };
  const auto b = [](int frame, double confidence = 0.3) {
    return box(108, 106.0 + 12 * (10 - frame), confidence);
  };
  EXPECT_GT(intersection_over_union(a(9).box, b(10).box), intersection_over_union(a(9).box, a(10).box));

  Scene scene(paper_setting());
  for (int frame = 8; frame <= 11; ++frame) {
    EXPECT_EQ(scene.step({a(frame), b(frame)}), (std::vector<std::int64_t>{-1, -1})) << "frame " << frame;
  }
  EXPECT_EQ(scene.step({a(12, 0.9), b(12, 0.9)}), (std::vector<std::int64_t>{1, 2}));
  for (const auto& tracked : scene.last.detections) EXPECT_EQ(tracked->start_timestamp, "t0");
}

// The PETS09-S2L1 situation above, from MOT15's own detection file (skipped without it).
TEST(IouTracker, KeepsTheWalkersIdOnPets09Frame6) {
  const char* folder = std::getenv("EMI_MOT15");
  const std::string path = std::string(folder != nullptr ? folder : "") + "/PETS09-S2L1/det/det.txt";
  std::ifstream file(path);
  if (folder == nullptr || !file) GTEST_SKIP() << path << " is absent (MOT15 data, not shipped with emi)";
  std::map<int, std::vector<Detection>> frames;
  for (std::string line; std::getline(file, line);) {
    double fields[7];
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &fields[0], &fields[1], &fields[2], &fields[3],
                    &fields[4], &fields[5], &fields[6]) != 7 || fields[0] > 6)
      continue;
    frames[static_cast<int>(fields[0])].push_back(
        {{fields[2], fields[3], fields[4], fields[5]}, fields[6] * 0.01, 0, "person"});
  }
  ASSERT_EQ(frames.size(), 6u);
  ASSERT_EQ(frames[6][0].box.left, 485);  // the walker's detection on frame 6
  Scene scene(paper_setting());
  std::vector<std::int64_t> ids;
  for (const auto& [frame, detections] : frames) ids = scene.step(detections);
  EXPECT_EQ(ids[0], 1);
  for (const auto& [frame, ended] : scene.ended) EXPECT_NE(ended.object_id, 1) << "ended on frame " << frame + 1;
}

// --- motion prediction ------------------------------------------------------------------------

TEST(MotionFilter, PredictsConstantVelocity) {
  MotionFilter filter(Box{100, 50, 40, 80});
  for (int frame = 1; frame <= 10; ++frame) {
    filter.predict();
    filter.update(Box{100.0 + 6 * frame, 50.0 - 2 * frame, 40, 80});
  }
  // The velocity is learnt to within a few percent (process noise keeps it adaptable).
  const Box next = filter.predict();
  EXPECT_NEAR(next.left, 166, 1);
  EXPECT_NEAR(next.top, 28, 1);
  EXPECT_NEAR(next.width, 40, 0.5);
  EXPECT_NEAR(next.height, 80, 0.5);
  filter.predict();
  const Box after_gap = filter.predict();  // two frames unseen
  EXPECT_NEAR(after_gap.left, 178, 2);
  EXPECT_NEAR(after_gap.top, 24, 1);
}

TEST(MotionFilter, StartsAtRestAndFollowsTheDetections) {
  MotionFilter filter(Box{10, 10, 20, 20});
  const Box first = filter.predict();  // nothing known of its velocity yet
  EXPECT_DOUBLE_EQ(first.left, 10);
  EXPECT_DOUBLE_EQ(first.width, 20);
  filter.update(Box{14, 10, 20, 20});
  // A new filter trusts the detection far more than its guess.
  EXPECT_GT(filter.box().left, 13);
  EXPECT_LE(filter.box().left, 14);
  EXPECT_GT(filter.predict().left, 14);  // and it learnt that the box moves right
}

TEST(MotionFilter, KeepsBoxesAtLeastOnePixel) {
  MotionFilter filter(Box{0, 0, 8, 8});
  for (double side : {6, 4, 2}) {
    filter.predict();
    filter.update(Box{0, 0, side, side});
  }
  for (int frame = 0; frame < 10; ++frame) {
    const Box box = filter.predict();
    EXPECT_GE(box.width, 1.0);
    EXPECT_GE(box.height, 1.0);
  }
}

// A box 40 px wide moving 20 px a frame: IoU 1/3 from frame to frame, none after two frames
// unseen. Without prediction the track is lost across the gap; with it the id holds.
TEST(IouTracker, PredictionBridgesAGapOfAFastObject) {
  const auto run = [](TrackerSettings settings) {
    Scene scene(settings);
    std::vector<std::int64_t> ids;
    for (int frame = 0; frame < 20; ++frame) {
      if (frame == 10 || frame == 11) {
        scene.step({});
        continue;
      }
      ids.push_back(scene.step_one(box(20.0 * frame, 100)));
    }
    return std::make_pair(ids.back(), scene.tracker.counts().total);
  };
  EXPECT_EQ(run(TrackerSettings{}), std::make_pair(std::int64_t{2}, std::uint64_t{2}));
  EXPECT_EQ(run(predicting()), std::make_pair(std::int64_t{1}, std::uint64_t{1}));
}

// Prediction changes what is matched, not the contract: ids from 1, never reused, -1 on
// probation (which still ends at its first miss), one ended record per id.
TEST(IouTracker, PredictionKeepsTheIdContract) {
  Scene scene(predicting());
  EXPECT_EQ(scene.step_one(box(0, 0)), -1);
  scene.step({});
  EXPECT_EQ(scene.step_one(box(0, 0)), -1);  // probation started over
  EXPECT_EQ(scene.step_one(box(4, 0)), -1);
  EXPECT_EQ(scene.step_one(box(8, 0)), 1);
  for (int frame = 0; frame < 6; ++frame) scene.step({});
  ASSERT_EQ(scene.ended.size(), 1u);
  EXPECT_EQ(scene.ended[0].second.object_id, 1);
  EXPECT_EQ(scene.ended[0].second.box.left, 8);  // the last detection, not a prediction
  for (int frame = 0; frame < 3; ++frame) scene.step_one(box(8, 0));
  EXPECT_EQ(scene.step_one(box(8, 0)), 2);
  EXPECT_EQ(scene.tracker.finish().size(), 1u);
  EXPECT_EQ(scene.ended.size(), 1u);
}

// --- confidence and classes -------------------------------------------------------------------

TEST(IouTracker, NeverReportsFalsePositivesBelowHighConfidence) {
  Scene scene;  // high-confidence 0.5
  for (int frame = 0; frame < 50; ++frame) EXPECT_EQ(scene.step_one(box(50, 50, 0.4)), -1);
  for (int frame = 0; frame < 10; ++frame) scene.step({});
  EXPECT_TRUE(scene.ended.empty());
  EXPECT_EQ(scene.tracker.counts().total, 0u);

  // One confident detection is enough, from then on.
  const std::vector<double> confidences = {0.3, 0.3, 0.3, 0.6, 0.3, 0.3};
  std::vector<std::int64_t> ids;
  for (double confidence : confidences) ids.push_back(scene.step_one(box(200, 50, confidence)));
  EXPECT_EQ(ids, (std::vector<std::int64_t>{-1, -1, -1, 1, 1, 1}));
}

// With confident-first, a track with an id takes a confident detection that overlaps it enough
// over a weak one that overlaps it better (a weak duplicate or a poorly placed box), and a track
// with no confident detection in reach still takes a weak one, in the second round.
TEST(IouTracker, ConfidentFirstMatchesConfidentDetectionsBeforeWeakOnes) {
  const Detection weak = box(101, 100, 0.2);
  const Detection confident = box(110, 100, 0.9);
  ASSERT_NEAR(intersection_over_union(box(100, 100).box, weak.box), 0.95, 0.01);
  ASSERT_NEAR(intersection_over_union(box(100, 100).box, confident.box), 0.6, 0.01);
  const auto run = [&](bool confident_first) {
    TrackerSettings settings = paper_setting();
    settings.confident_first = confident_first;
    Scene scene(settings);
    for (int frame = 0; frame < 3; ++frame) scene.step({box(100, 100), box(300, 100)});
    // The second track has only a weak detection in reach.
    return scene.step({weak, confident, box(302, 100, 0.2)});
  };
  EXPECT_EQ(run(false), (std::vector<std::int64_t>{1, -1, 2}));  // the better overlap wins
  EXPECT_EQ(run(true), (std::vector<std::int64_t>{-1, 1, 2}));
}

// A track held for weak-min-hits frames gets its id without a confident detection; one that
// flickers (on probation it ends at each miss) never holds that long.
TEST(IouTracker, WeakMinHitsGivesAnIdToAWeakTrackHeldLongEnough) {
  TrackerSettings settings = paper_setting();  // min-hits 2
  settings.weak_min_hits = 4;
  Scene scene(settings);
  std::vector<std::int64_t> ids;
  for (int frame = 0; frame < 5; ++frame) ids.push_back(scene.step_one(box(10.0 + frame, 50, 0.3)));
  EXPECT_EQ(ids, (std::vector<std::int64_t>{-1, -1, -1, 1, 1}));
  // A confident detection still gives the id at min-hits.
  EXPECT_EQ(scene.step({box(14, 50, 0.3), box(300, 50, 0.9)})[1], -1);
  EXPECT_EQ(scene.step({box(14, 50, 0.3), box(300, 50, 0.9)})[1], 2);

  Scene flicker(settings);
  for (int round = 0; round < 5; ++round) {
    for (int frame = 0; frame < 3; ++frame) EXPECT_EQ(flicker.step_one(box(200, 200, 0.3)), -1);
    flicker.step({});
  }
  EXPECT_EQ(flicker.tracker.counts().total, 0u);

  // min-hits still applies: weak-min-hits below it changes nothing.
  settings.min_hits = 3;
  settings.weak_min_hits = 1;
  Scene early(settings);
  ids.clear();
  for (int frame = 0; frame < 3; ++frame) ids.push_back(early.step_one(box(10, 50, 0.3)));
  EXPECT_EQ(ids, (std::vector<std::int64_t>{-1, -1, 1}));
}

TEST(IouTracker, IgnoresDetectionsBelowMinConfidence) {
  TrackerSettings settings;
  settings.min_confidence = 0.2;
  Scene scene(settings);
  for (int frame = 0; frame < 5; ++frame) {
    EXPECT_EQ(scene.step({box(50, 50, 0.1), box(300, 50, 0.9)}),
              (std::vector<std::int64_t>{kIgnored, frame < 2 ? -1 : 1}));
  }
  // A weak frame counts as a missed one, so the id survives it.
  EXPECT_EQ(scene.step({box(300, 50, 0.1)})[0], kIgnored);
  EXPECT_EQ(scene.step_one(box(300, 50, 0.9)), 1);
  EXPECT_EQ(scene.tracker.counts().total, 1u);
}

TEST(IouTracker, IgnoresEmptyAndNonFiniteBoxes) {
  Scene scene(reported_at_once());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(scene.step({box(0, 0, 0.9, "car", 0, 10), box(nan, 0), box(0, 0, nan), box(10, 10)}),
            (std::vector<std::int64_t>{kIgnored, kIgnored, kIgnored, 1}));
}

TEST(IouTracker, MatchesOnlyTheSameClassPerClass) {
  Scene per_class;
  for (int frame = 0; frame < 5; ++frame) per_class.step_one(box(50, 50, 0.9, "car"));
  EXPECT_EQ(per_class.step_one(box(50, 50, 0.9, "person")), -1);  // a new track
  EXPECT_EQ(per_class.step_one(box(50, 50, 0.9, "car", 40, 40, 1)), -1);  // another class_id
  EXPECT_EQ(per_class.tracker.active_tracks(), 1u);  // the car, unmatched for now

  TrackerSettings any_class;
  any_class.per_class = false;
  Scene across(any_class);
  for (int frame = 0; frame < 5; ++frame) across.step_one(box(50, 50, 0.9, "car"));
  EXPECT_EQ(across.step_one(box(50, 50, 0.9, "person")), 1);
}

// --- ends, counts, the line -------------------------------------------------------------------

TEST(IouTracker, FinishEndsLiveReportedTracksOnce) {
  Scene scene;
  for (int frame = 0; frame < 5; ++frame) scene.step({box(10 + frame, 10), box(200, 10)});
  scene.step({box(15, 10), box(400, 10)});  // a third object, on probation; the second misses
  std::vector<EndedTrack> ended = scene.tracker.finish();
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[0].object_id, 1);
  EXPECT_EQ(ended[0].ended_timestamp, "t5");
  EXPECT_DOUBLE_EQ(ended[0].duration_seconds, 0.5);
  EXPECT_EQ(ended[1].object_id, 2);
  EXPECT_DOUBLE_EQ(ended[1].duration_seconds, 0.4);  // last matched at frame 4
  EXPECT_TRUE(scene.tracker.finish().empty());
  EXPECT_EQ(scene.tracker.active_tracks(), 0u);
  EXPECT_EQ(scene.tracker.counts().total, 2u);
}

TEST(IouTracker, CountsTracksByLabelAndInView) {
  Scene scene;
  for (int frame = 0; frame < 3; ++frame)
    scene.step({box(10, 10), box(200, 10), box(400, 10, 0.9, "person"), box(600, 10, 0.9, "", 40, 40, 7)});
  Counts counts = scene.tracker.counts();
  EXPECT_EQ(counts.total, 4u);
  EXPECT_EQ(counts.in_view, 4u);
  EXPECT_EQ(counts.by_label, (std::map<std::string, std::uint64_t>{{"car", 2}, {"person", 1}, {"7", 1}}));

  scene.step({box(10, 10), box(400, 10, 0.9, "person")});  // two in a gap: not in view
  EXPECT_EQ(scene.tracker.counts().in_view, 2u);
  EXPECT_EQ(scene.tracker.active_tracks(), 4u);
  scene.step({box(10, 10), box(400, 10, 0.9, "person"), box(800, 10, 0.9, "person")});
  EXPECT_EQ(scene.tracker.counts().in_view, 2u);  // the new one is on probation
  EXPECT_EQ(scene.tracker.counts().total, 4u);
}

TrackerSettings with_line(const std::string& line) {
  TrackerSettings settings;
  settings.line = parse_segment(line);
  return settings;
}

// Boxes of 40 moving 10 px a frame along one axis: IoU 0.6 from frame to frame.
std::vector<Detection> vertical_path(double x, double from_top, double to_top) {
  std::vector<Detection> path;
  const double step = to_top > from_top ? 10 : -10;
  for (double top = from_top; step > 0 ? top <= to_top : top >= to_top; top += step) path.push_back(box(x, top));
  return path;
}

TEST(IouTracker, CountsLineCrossingsInBothDirections) {
  Scene scene(with_line("0,100,400,100"));  // forward: downwards (to the right of west→east)
  const std::vector<Detection> down = vertical_path(50, 0, 160);    // centre 20 → 180
  const std::vector<Detection> up = vertical_path(200, 160, 0);
  const std::vector<Detection> beyond = vertical_path(500, 0, 160);  // past the segment's end
  for (std::size_t frame = 0; frame < down.size(); ++frame) scene.step({down[frame], up[frame], beyond[frame]});
  EXPECT_EQ(scene.tracker.counts().total, 3u);
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 1u);
  EXPECT_EQ(scene.tracker.counts().line_crossings.backward, 1u);
}

TEST(IouTracker, CountsEachMovementAcrossTheLineOnce) {
  Scene scene(with_line("0,100,400,100"));
  // Centre 60 → 100 (on the line, three frames) → 140: one crossing, not two.
  for (double top : {40, 50, 60, 70, 80, 80, 80, 90, 100, 110, 120})
    scene.step_one(box(50, top));
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 1u);
  EXPECT_EQ(scene.tracker.counts().line_crossings.backward, 0u);
  // Back up and down again: one crossing each way.
  for (double top : {110, 100, 90, 80, 70, 80, 90})
    scene.step_one(box(50, top));
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 2u);
  EXPECT_EQ(scene.tracker.counts().line_crossings.backward, 1u);
  // A line touched from below and left the way it came counts nothing.
  for (double top : {80, 90, 100}) scene.step_one(box(50, top));
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 2u);
  EXPECT_EQ(scene.tracker.counts().line_crossings.backward, 1u);
  EXPECT_EQ(scene.tracker.counts().total, 1u);
}

TEST(IouTracker, CreditsCrossingsMadeOnProbationOnceReported) {
  Scene scene(with_line("0,100,400,100"));
  scene.step({box(50, 70), box(250, 70, 0.3)});   // centres at 90
  scene.step({box(50, 80), box(250, 80, 0.3)});   // 100: on the line
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 0u);
  scene.step({box(50, 90), box(250, 90, 0.3)});   // 110: crossed, and the first gets its id
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 1u);
  for (double top : {100, 110, 120}) scene.step({box(50, top), box(250, top, 0.3)});
  EXPECT_EQ(scene.tracker.counts().line_crossings.forward, 1u);  // the weak one never counts
  EXPECT_EQ(scene.tracker.counts().total, 1u);
}

// --- a MOT-style score ------------------------------------------------------------------------

// Uniform numbers from mt19937's standard-defined sequence (std::uniform_real_distribution is
// not the same on every standard library).
struct Random {
  std::mt19937 engine;
  double uniform(double low, double high) { return low + (high - low) * (engine() / 4294967296.0); }
  bool chance(double probability) { return uniform(0, 1) < probability; }
};

struct Truth {
  int id;
  Box box;
};

struct Hypothesis {
  std::int64_t id;
  Box box;
};

// IDF1 (Ristani et al. 2016): the share of boxes whose identity the best one-to-one mapping of
// true ids to tracker ids explains, a true box and a tracker box matching at IoU >= 0.5.
double idf1(const std::vector<std::vector<Truth>>& truth, const std::vector<std::vector<Hypothesis>>& hypotheses,
            int truth_ids) {
  std::map<std::int64_t, int> hypothesis_column;
  std::size_t truth_boxes = 0;
  std::size_t hypothesis_boxes = 0;
  for (const auto& frame : hypotheses) {
    hypothesis_boxes += frame.size();
    for (const Hypothesis& hypothesis : frame) hypothesis_column.emplace(hypothesis.id, hypothesis_column.size());
  }
  const std::size_t columns = hypothesis_column.size();
  std::vector<double> shared(truth_ids * columns, 0.0);  // frames where a true id and a tracker id match
  for (std::size_t frame = 0; frame < truth.size(); ++frame) {
    truth_boxes += truth[frame].size();
    for (const Truth& object : truth[frame]) {
      for (const Hypothesis& hypothesis : hypotheses[frame]) {
        if (intersection_over_union(object.box, hypothesis.box) >= 0.5)
          shared[object.id * columns + hypothesis_column[hypothesis.id]] += 1;
      }
    }
  }
  // The best mapping maximises the shared frames: as a minimum of their negation, with the
  // smaller side as rows.
  const bool truth_rows = static_cast<std::size_t>(truth_ids) <= columns;
  const std::size_t rows = truth_rows ? truth_ids : columns;
  const std::size_t cols = truth_rows ? columns : truth_ids;
  std::vector<double> cost(rows * cols);
  for (std::size_t t = 0; t < static_cast<std::size_t>(truth_ids); ++t) {
    for (std::size_t h = 0; h < columns; ++h)
      cost[truth_rows ? t * cols + h : h * cols + t] = -shared[t * columns + h];
  }
  AssignmentSolver solver;
  const double identity_true_positives = -total_cost(cost, cols, solver.solve(cost, rows, cols));
  return 2 * identity_true_positives / static_cast<double>(truth_boxes + hypothesis_boxes);
}

// ID switches as CLEAR MOT counts them: frame by frame, true objects keep their tracker id while
// it still matches (IoU >= 0.5); the others are matched optimally; a true object matched to
// another id than it last had is a switch.
int id_switches(const std::vector<std::vector<Truth>>& truth, const std::vector<std::vector<Hypothesis>>& hypotheses) {
  std::map<int, std::int64_t> last_id;
  int switches = 0;
  AssignmentSolver solver;
  for (std::size_t frame = 0; frame < truth.size(); ++frame) {
    const auto& objects = truth[frame];
    const auto& candidates = hypotheses[frame];
    std::vector<int> match(objects.size(), -1);
    std::vector<bool> taken(candidates.size(), false);
    for (std::size_t t = 0; t < objects.size(); ++t) {
      const auto previous = last_id.find(objects[t].id);
      for (std::size_t h = 0; previous != last_id.end() && h < candidates.size(); ++h) {
        if (!taken[h] && candidates[h].id == previous->second &&
            intersection_over_union(objects[t].box, candidates[h].box) >= 0.5) {
          match[t] = static_cast<int>(h);
          taken[h] = true;
        }
      }
    }
    std::vector<int> free_objects, free_candidates;
    for (std::size_t t = 0; t < objects.size(); ++t) if (match[t] < 0) free_objects.push_back(t);
    for (std::size_t h = 0; h < candidates.size(); ++h) if (!taken[h]) free_candidates.push_back(h);
    if (!free_objects.empty() && !free_candidates.empty()) {
      const bool object_rows = free_objects.size() <= free_candidates.size();
      const std::size_t rows = object_rows ? free_objects.size() : free_candidates.size();
      const std::size_t cols = object_rows ? free_candidates.size() : free_objects.size();
      std::vector<double> cost(rows * cols, 0.0);
      for (std::size_t t = 0; t < free_objects.size(); ++t) {
        for (std::size_t h = 0; h < free_candidates.size(); ++h) {
          const double iou = intersection_over_union(objects[free_objects[t]].box, candidates[free_candidates[h]].box);
          if (iou >= 0.5) cost[object_rows ? t * cols + h : h * cols + t] = -iou;
        }
      }
      const std::vector<int>& assignment = solver.solve(cost, rows, cols);
      for (std::size_t row = 0; row < rows; ++row) {
        if (cost[row * cols + assignment[row]] >= 0) continue;
        const std::size_t t = object_rows ? row : assignment[row];
        const std::size_t h = object_rows ? assignment[row] : row;
        match[free_objects[t]] = free_candidates[h];
      }
    }
    for (std::size_t t = 0; t < objects.size(); ++t) {
      if (match[t] < 0) continue;
      const std::int64_t id = candidates[match[t]].id;
      const auto previous = last_id.find(objects[t].id);
      if (previous != last_id.end() && previous->second != id) ++switches;
      last_id[objects[t].id] = id;
    }
  }
  return switches;
}

struct SceneScore {
  double idf1;
  int id_switches;
  std::uint64_t tracks;
};

// 30 boxes of random sizes in linear motion across a 1280x720 frame, bouncing off its edges, seen
// by a detector with ±2 px noise on every edge, 5% missed detections and three weak false
// positives a frame, for 200 frames.
SceneScore track_generated_scene(std::uint32_t seed) {
  constexpr int kObjects = 30;
  constexpr int kFrames = 200;
  constexpr double kWidth = 1280, kHeight = 720;
  Random random{std::mt19937(seed)};
  struct Motion {
    Box box;
    double dx, dy;
  };
  std::vector<Motion> motions;
  for (int id = 0; id < kObjects; ++id) {
    const double width = random.uniform(30, 90), height = random.uniform(30, 120);
    motions.push_back({{random.uniform(0, kWidth - width), random.uniform(0, kHeight - height), width, height},
                       random.uniform(-4, 4), random.uniform(-4, 4)});
  }

  IouTracker tracker;
  std::vector<std::vector<Truth>> truth(kFrames);
  std::vector<std::vector<Hypothesis>> hypotheses(kFrames);
  for (int frame = 0; frame < kFrames; ++frame) {
    std::vector<Detection> detections;
    for (int id = 0; id < kObjects; ++id) {
      Motion& motion = motions[id];
      Box& box = motion.box;
      if (frame > 0) {
        box.left += motion.dx;
        box.top += motion.dy;
        if (box.left < 0 || box.left + box.width > kWidth) motion.dx = -motion.dx;
        if (box.top < 0 || box.top + box.height > kHeight) motion.dy = -motion.dy;
      }
      truth[frame].push_back({id, box});
      if (random.chance(0.05)) continue;
      const double left = box.left + random.uniform(-2, 2), top = box.top + random.uniform(-2, 2);
      const double right = box.left + box.width + random.uniform(-2, 2);
      const double bottom = box.top + box.height + random.uniform(-2, 2);
      detections.push_back({{left, top, right - left, bottom - top}, random.uniform(0.6, 1.0), 0, "car"});
    }
    for (int false_positive = 0; false_positive < 3; ++false_positive) {
      detections.push_back({{random.uniform(0, kWidth - 60), random.uniform(0, kHeight - 60), 50, 50},
                            random.uniform(0.1, 0.45), 0, "car"});
    }
    const FrameUpdate& update = tracker.update(detections, time_of(frame));
    for (std::size_t index = 0; index < detections.size(); ++index) {
      const auto& tracked = update.detections[index];
      if (tracked && tracked->object_id >= 0) hypotheses[frame].push_back({tracked->object_id, detections[index].box});
    }
  }
  return {idf1(truth, hypotheses, kObjects), id_switches(truth, hypotheses), tracker.counts().total};
}

// Ten scenes (300 true tracks). Bound: IDF1 >= 0.9 in every scene, and ID switches at most 3% of
// the true tracks over all of them (measured: IDF1 0.952-0.971, 7 switches, 2.3%). The two frames
// of probation of each track and the missed detections keep IDF1 under 1; the switches are true
// IoU ambiguities: two boxes of the same size overlapping, or a missed detection while a weak
// false positive lies on the track.
TEST(IouTracker, ScoresWellOnGeneratedScenesOfManyMovingBoxes) {
  constexpr int kScenes = 10;
  int switches = 0;
  for (std::uint32_t seed = 1; seed <= kScenes; ++seed) {
    const SceneScore score = track_generated_scene(seed);
    std::printf("scene %u: IDF1 %.4f, %d ID switches, %llu tracks for 30 objects\n", seed, score.idf1,
                score.id_switches, static_cast<unsigned long long>(score.tracks));
    EXPECT_GE(score.idf1, 0.9) << "scene " << seed;
    switches += score.id_switches;
  }
  EXPECT_LE(switches, 0.03 * 30 * kScenes);
}

}  // namespace
}  // namespace emi::tracking
