// SPDX-License-Identifier: LGPL-2.1-or-later
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
  ASSERT_EQ(outcome.new_objects.size(), 1u);
  EXPECT_EQ(outcome.new_objects[0].index, 1u);
  EXPECT_EQ(outcome.new_objects[0].description.label, "dog");
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

// What a script returns is never trusted: a field of the wrong type skips its entry, named with
// its value, and nothing throws (these aborted the process through nlohmann's type_error).
TEST(ResultPlacement, DetectModeSkipsEntriesWithFieldsOfTheWrongType) {
  json frame = frame_with_objects(0);
  const PlacementOutcome outcome = place_results(frame, json::parse(R"([
      {"rect_params": {"left": 0, "top": 0, "width": 5, "height": 5}, "label": 3},
      {"rect_params": {"left": 0, "top": 0, "width": 5, "height": 5}, "class_id": "car"},
      {"rect_params": {"left": 0, "top": 0, "width": 5, "height": 5}, "confidence": null},
      {"rect_params": {"left": 0, "top": 0, "width": 5, "height": 5}, "obj_label": ["a"]},
      {"rect_params": {"left": 0, "top": 0, "width": 5, "height": 5}, "class_id": 2.5},
      {"rect_params": {"left": 1, "top": 1, "width": 5, "height": 5}, "class_id": 3.0, "label": "ok"}])"),
      PlacementMode::kDetect, "emcustom", 100, 50);
  ASSERT_EQ(outcome.problems.size(), 5u);
  EXPECT_EQ(outcome.problems[0], "entry 0: label must be a string, got 3");
  EXPECT_EQ(outcome.problems[1], "entry 1: class_id must be an integer, got \"car\"");
  EXPECT_EQ(outcome.problems[2], "entry 2: confidence must be a number, got null");
  EXPECT_EQ(outcome.problems[3], "entry 3: obj_label must be a string, got [\"a\"]");
  EXPECT_EQ(outcome.problems[4], "entry 4: class_id must be an integer, got 2.5");
  ASSERT_EQ(frame["object"].size(), 1u);
  EXPECT_EQ(frame["object"][0]["class_id"], 3);
  EXPECT_EQ(frame["object"][0]["obj_label"], "ok");
}

TEST(ResultPlacement, AutoModeSkipsObjectsThatAreNotObjects) {
  json frame = {{"object", {1, {{"object_id", 4}}}}};
  const PlacementOutcome outcome =
      place_results(frame, json::parse(R"([{"a": 1}, {"b": 2}])"), PlacementMode::kAuto, "k", 10, 10);
  ASSERT_EQ(outcome.problems.size(), 1u);
  EXPECT_EQ(frame["object"][0], 1);
  EXPECT_EQ(frame["object"][1]["k"], json({{"b", 2}}));
}

TEST(ResultPlacement, ExcerptsReplaceInvalidUtf8AndCutWholeCharacters) {
  EXPECT_EQ(json_excerpt(json("caf\xe9")), "\"caf\xef\xbf\xbd\"");
  EXPECT_EQ(json_excerpt(json("\xc3\xa9\xc3\xa9"), 4), "\"\xc3\xa9…");
}

}  // namespace
}  // namespace emi
