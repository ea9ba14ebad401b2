// EDGEMATRIX's placement rule, on documents built by hand.
#include <gtest/gtest.h>

#include "document/result_placement.h"

namespace emi {
namespace {

using nlohmann::json;

json frame_with_objects(int count) {
  json frame{{"object", json::array()}};
  for (int i = 0; i < count; ++i) frame["object"].push_back({{"object_id", i}});
  return frame;
}

TEST(ResultPlacement, EntriesGoToObjectsInOrderThenOneToTheFrame) {
  json frame = frame_with_objects(2);
  const PlacementOutcome outcome = place_results(
      frame, json::parse(R"([{"c": "a"}, {"c": "b"}, {"c": "scene"}])"), PlacementMode::kAuto,
      "emcustom", 100, 100);
  EXPECT_TRUE(outcome.problems.empty());
  EXPECT_EQ(frame["object"][0]["emcustom"], json({{"c", "a"}}));
  EXPECT_EQ(frame["object"][1]["emcustom"], json({{"c", "b"}}));
  EXPECT_EQ(frame["emcustom"], json::array({{{"c", "scene"}}}));
}

TEST(ResultPlacement, WithoutObjectsTheFirstEntryIsTheFrames) {
  json frame = frame_with_objects(0);
  const PlacementOutcome outcome = place_results(
      frame, json::parse(R"([{"predicted_class": "marching"}, {"extra": 1}])"), PlacementMode::kAuto,
      "emcustom", 100, 100);
  EXPECT_EQ(frame["emcustom"], json::array({{{"predicted_class", "marching"}}}));
  ASSERT_EQ(outcome.problems.size(), 1u);  // the ignored second entry is reported, not lost silently
}

TEST(ResultPlacement, FrameEntriesOfSeveralElementsAccumulate) {
  json frame = frame_with_objects(0);
  place_results(frame, json::array({{{"by", "first"}}}), PlacementMode::kAuto, "emcustom", 10, 10);
  place_results(frame, json::array({{{"by", "second"}}}), PlacementMode::kAuto, "emcustom", 10, 10);
  EXPECT_EQ(frame["emcustom"].size(), 2u);
  EXPECT_EQ(frame["emcustom"][1]["by"], "second");
}

TEST(ResultPlacement, ASingleValueIsAOneEntryListAndNoneIsNothing) {
  json frame = frame_with_objects(1);
  place_results(frame, json{{"c", "x"}}, PlacementMode::kAuto, "k", 10, 10);
  EXPECT_EQ(frame["object"][0]["k"], json({{"c", "x"}}));
  json empty = frame_with_objects(1);
  const PlacementOutcome outcome = place_results(empty, nullptr, PlacementMode::kAuto, "k", 10, 10);
  EXPECT_EQ(empty, frame_with_objects(1));
  EXPECT_TRUE(outcome.problems.empty());
}

TEST(ResultPlacement, DetectModeMakesObjectsFromRectangles) {
  json frame = frame_with_objects(1);
  const PlacementOutcome outcome = place_results(frame, json::parse(R"([
      {"rect_params": {"left": -5, "top": 2.5, "width": 20, "height": 10}, "label": "dog", "confidence": 0.7},
      {"rect_params": {"left": 200, "top": 0, "width": 5, "height": 5}},
      {"rect_params": [1, 2, 3, 4]},
      {"count": 3}])"), PlacementMode::kDetect, "emcustom", 100, 50);
  ASSERT_EQ(outcome.new_objects, (std::vector<std::size_t>{1}));
  const json& dog = frame["object"][1];
  EXPECT_EQ(dog["obj_label"], "dog");
  EXPECT_EQ(dog["object_id"], -1);
  EXPECT_EQ(dog["class_id"], -1);
  EXPECT_DOUBLE_EQ(dog["confidence"].get<double>(), 0.7);
  EXPECT_EQ(dog["rect_params"], json::parse(R"({"left": 0, "top": 2.5, "width": 15, "height": 10})"));
  EXPECT_FALSE(dog.contains("emcustom"));  // nothing beyond the standard fields
  EXPECT_EQ(outcome.problems.size(), 2u);  // outside the frame; not an object of numbers
  EXPECT_EQ(frame["emcustom"], json::array({{{"count", 3}}}));
}

}  // namespace
}  // namespace emi
