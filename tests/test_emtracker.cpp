// SPDX-License-Identifier: LGPL-2.1-or-later
// emtracker through GstHarness: ids, times and durations from PTS, ended tracks, counts, the EOS
// event and message, untouched buffers, bad properties.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "document/frame_document.h"
#include "gst_test_support.h"

namespace emi::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;
using EventPtr = std::unique_ptr<GstEvent, ReleaseWith<gst_event_unref>>;

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr GstClockTime kFrameDuration = 100 * GST_MSECOND;  // durations in tenths of a second

struct Roi {
  const char* label;
  guint left, top, width, height;
  double confidence = 0.9;
};

// Frame `index` (PTS index x 100 ms), with the boxes as another element's ROI metas.
GstBuffer* frame_with(int index, const std::vector<Roi>& rois = {}) {
  GstBuffer* buffer = patterned_frame("GRAY8", kWidth, kHeight, index, index * kFrameDuration);
  for (const Roi& roi : rois) {
    GstVideoRegionOfInterestMeta* meta = gst_buffer_add_video_region_of_interest_meta(
        buffer, roi.label, roi.left, roi.top, roi.width, roi.height);
    gst_video_region_of_interest_meta_add_param(
        meta, gst_structure_new("detection", "confidence", G_TYPE_DOUBLE, roi.confidence, nullptr));
  }
  return buffer;
}

struct Tracker {
  explicit Tracker(const std::string& properties = "")
      : watched("emtracker " + properties), harness(harness_for(watched, "GRAY8", kWidth, kHeight)) {}

  // Pushes frame `next_frame` with these boxes; the frame record that came out (null: no document).
  json push(const std::vector<Roi>& rois = {}) {
    UniqueBuffer out = push_and_pull(harness.get(), frame_with(next_frame++, rois));
    EXPECT_TRUE(out);
    std::optional<json> document = out ? read_document(out.get()) : std::nullopt;
    return document ? (*document)["frame"][0] : json();
  }

  // The ended-tracks document carried by the events that came out so far, if any.
  std::optional<json> ended_tracks_event() {
    std::optional<json> found;
    while (GstEvent* raw = gst_harness_try_pull_event(harness.get())) {
      EventPtr event(raw);
      const GstStructure* structure = gst_event_get_structure(event.get());
      if (GST_EVENT_TYPE(event.get()) == GST_EVENT_CUSTOM_DOWNSTREAM &&
          gst_structure_has_name(structure, "emi/ended-tracks")) {
        EXPECT_FALSE(found) << "two ended-tracks events";
        found = json::parse(gst_structure_get_string(structure, "json"));
        events_after_ended_tracks.clear();
      } else if (found) {
        events_after_ended_tracks.push_back(GST_EVENT_TYPE(event.get()));
      }
    }
    return found;
  }

  Watched watched;
  HarnessPtr harness;
  int next_frame = 0;
  std::vector<GstEventType> events_after_ended_tracks;
};

std::vector<json> ended_objects(const json& frame) {
  std::vector<json> ended;
  if (frame.is_null()) return ended;
  for (const json& object : frame["object"]) {
    if (object["tracking_ended_time"] != "N/A") ended.push_back(object);
  }
  return ended;
}

TEST(EmTracker, DocumentsItsPropertiesWithDefaults) {
  UniqueElement element = make_element("emtracker");
  gdouble iou = 0, low = 1, high = 0;
  guint hits = 0, age = 0;
  gboolean per_class = FALSE, predict = TRUE, confident_first = TRUE;
  guint weak_hits = 1;
  gchar* line = nullptr;
  g_object_get(element.get(), "iou-threshold", &iou, "min-confidence", &low, "high-confidence", &high,
               "min-hits", &hits, "max-age", &age, "per-class", &per_class, "predict", &predict,
               "confident-first", &confident_first, "weak-min-hits", &weak_hits, "line", &line, nullptr);
  UniqueChars owned_line(line);
  EXPECT_DOUBLE_EQ(iou, 0.3);
  EXPECT_DOUBLE_EQ(low, 0.0);
  EXPECT_DOUBLE_EQ(high, 0.5);
  EXPECT_EQ(hits, 3u);
  EXPECT_EQ(age, 5u);
  EXPECT_TRUE(per_class);
  EXPECT_FALSE(predict);
  EXPECT_FALSE(confident_first);
  EXPECT_EQ(weak_hits, 0u);
  EXPECT_STREQ(line, "");
  for (const char* name : {"iou-threshold", "min-confidence", "high-confidence", "min-hits", "max-age",
                           "per-class", "predict", "confident-first", "weak-min-hits", "line",
                           "tracks-total", "active-tracks"}) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element.get()), name);
    ASSERT_NE(spec, nullptr) << name;
    EXPECT_GT(std::string(g_param_spec_get_blurb(spec)).size(), 20u) << name;
  }
}

TEST(EmTracker, GivesIdsStartTimesAndDurationsFromPts) {
  Tracker tracker;
  std::vector<json> frames;
  for (guint step = 0; step < 4; ++step) frames.push_back(tracker.push({{"car", 10 + 2 * step, 20, 40, 60}}));
  const std::string start = frames[0]["timestamp"];
  for (std::size_t index = 0; index < frames.size(); ++index) {
    ASSERT_EQ(frames[index]["object"].size(), 1u) << index;
    const json& object = frames[index]["object"][0];
    EXPECT_EQ(object["object_id"], index < 2 ? -1 : 1) << index;  // min-hits 3
    EXPECT_EQ(object["tracking_start_time"], start);
    EXPECT_EQ(object["tracking_ended_time"], "N/A");
    EXPECT_DOUBLE_EQ(object["tracking_duration_in_seconds"].get<double>(), 0.1 * index);
    EXPECT_EQ(object["obj_label"], "car");
  }
  EXPECT_EQ(tracker.watched.counter("tracks-total"), 1u);
  guint active = 0;
  g_object_get(tracker.watched.element.get(), "active-tracks", &active, nullptr);
  EXPECT_EQ(active, 1u);
}

TEST(EmTracker, ReportsAnEndedTrackOnceOnTheFrameWhereItEnds) {
  Tracker tracker;  // max-age 5
  json first;
  for (guint step = 0; step < 5; ++step) {
    json frame = tracker.push({{"car", 10 + 2 * step, 20, 40, 60}});
    if (step == 0) first = frame;
  }
  std::vector<json> after;  // frames 5-11: no detections
  for (int step = 0; step < 7; ++step) after.push_back(tracker.push());

  for (int step : {0, 1, 2, 3, 4, 6}) EXPECT_TRUE(after[step].is_null()) << "frame " << 5 + step << " touched";
  const json& ended_frame = after[5];  // frame 10: the sixth without a match
  ASSERT_FALSE(ended_frame.is_null());
  const std::vector<json> ended = ended_objects(ended_frame);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["object_id"], 1);
  EXPECT_EQ(ended[0]["obj_label"], "car");
  EXPECT_EQ(ended[0]["tracking_start_time"], first["timestamp"]);
  EXPECT_EQ(ended[0]["tracking_ended_time"], ended_frame["timestamp"]);
  EXPECT_DOUBLE_EQ(ended[0]["tracking_duration_in_seconds"].get<double>(), 0.4);
  EXPECT_EQ(ended[0]["rect_params"], json({{"left", 18}, {"top", 20}, {"width", 40}, {"height", 60}}));
  EXPECT_EQ(ended_frame["counts"]["total"], 1);
  EXPECT_EQ(ended_frame["counts"]["in_view"], 0);
  EXPECT_FALSE(tracker.ended_tracks_event());  // nothing left for EOS
  gst_harness_push_event(tracker.harness.get(), gst_event_new_eos());
  EXPECT_FALSE(tracker.ended_tracks_event());
}

// A box 40 px wide moving 20 px a frame, unseen for two frames: its last box no longer overlaps
// it, its predicted box does.
TEST(EmTracker, PredictsMotionAcrossAGapWhenAsked) {
  const auto ids_after_gap = [](const std::string& properties) {
    Tracker tracker(properties);
    std::vector<json> ids;
    for (guint step = 0; step < 10; ++step) {
      if (step == 5 || step == 6) {
        tracker.push();
        continue;
      }
      const json frame = tracker.push({{"car", 20 * step, 100, 40, 40}});
      if (step >= 7) ids.push_back(frame["object"][0]["object_id"]);
    }
    return ids;
  };
  EXPECT_EQ(ids_after_gap("predict=true"), (std::vector<json>{1, 1, 1}));
  EXPECT_EQ(ids_after_gap(""), (std::vector<json>{-1, -1, 2}));
}

TEST(EmTracker, CountsTracksAndLineCrossings) {
  Tracker tracker("line=0,100,320,100");
  json frame;
  for (guint step = 0; step < 12; ++step)  // the car's centre goes from y 30 to 140
    frame = tracker.push({{"car", 50, 10 * step, 40, 40}, {"person", 200, 150, 30, 60}});
  EXPECT_EQ(frame["counts"], json({{"total", 2},
                                   {"by_label", {{"car", 1}, {"person", 1}}},
                                   {"in_view", 2},
                                   {"line_crossings", {{"forward", 1}, {"backward", 0}}},
                                   {"line", {0, 100, 320, 100}}}));
  for (guint step = 12; step-- > 0;) frame = tracker.push({{"car", 50, 10 * step, 40, 40}});
  EXPECT_EQ(frame["counts"]["line_crossings"], json({{"forward", 1}, {"backward", 1}}));
  EXPECT_EQ(frame["counts"]["in_view"], 1);

  Tracker without_line;
  EXPECT_FALSE(without_line.push({{"car", 50, 10, 40, 40}})["counts"].contains("line_crossings"));
}

TEST(EmTracker, SendsTracksAliveAtEosDownstreamBeforeTheEosAndOnTheBus) {
  Tracker tracker;
  json last;
  for (guint step = 0; step < 4; ++step)
    last = tracker.push({{"car", 10 + 2 * step, 20, 40, 60}, {"bird", 200, 20, 20, 20, 0.2}});
  EXPECT_FALSE(tracker.ended_tracks_event());
  gst_harness_push_event(tracker.harness.get(), gst_event_new_eos());

  const std::optional<json> document = tracker.ended_tracks_event();
  ASSERT_TRUE(document);
  EXPECT_EQ(tracker.events_after_ended_tracks, std::vector<GstEventType>{GST_EVENT_EOS});
  const json& frame = (*document)["frame"][0];
  EXPECT_EQ(frame["frame_num"], last["frame_num"]);
  EXPECT_EQ(frame["timestamp"], last["timestamp"]);
  ASSERT_EQ(frame["object"].size(), 1u);  // the weak bird never had an id
  const json& object = frame["object"][0];
  EXPECT_EQ(object["object_id"], 1);
  EXPECT_EQ(object["tracking_ended_time"], last["timestamp"]);
  EXPECT_DOUBLE_EQ(object["tracking_duration_in_seconds"].get<double>(), 0.3);
  EXPECT_EQ(frame["counts"]["total"], 1);

  const std::vector<MessagePtr> messages = tracker.watched.take(GST_MESSAGE_ELEMENT);
  ASSERT_EQ(messages.size(), 1u);
  const GstStructure* structure = gst_message_get_structure(messages[0].get());
  EXPECT_TRUE(gst_structure_has_name(structure, "emi/ended-tracks"));
  EXPECT_EQ(json::parse(gst_structure_get_string(structure, "json")), *document);
}

TEST(EmTracker, EndsLiveTracksAtAFlush) {
  Tracker tracker;
  for (guint step = 0; step < 4; ++step) tracker.push({{"car", 10, 20, 40, 60}});
  gst_harness_push_event(tracker.harness.get(), gst_event_new_flush_start());
  gst_harness_push_event(tracker.harness.get(), gst_event_new_flush_stop(TRUE));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(tracker.harness.get(), gst_event_new_segment(&segment));
  const std::optional<json> document = tracker.ended_tracks_event();
  ASSERT_TRUE(document);
  EXPECT_EQ((*document)["frame"][0]["object"][0]["object_id"], 1);
  // Frames after the seek start new tracks.
  for (guint step = 0; step < 3; ++step) tracker.push({{"car", 10, 20, 40, 60}});
  EXPECT_EQ(tracker.push({{"car", 10, 20, 40, 60}})["object"][0]["object_id"], 2);
}

TEST(EmTracker, PassesBuffersWithoutMetadataUntouched) {
  Tracker tracker;
  UniqueBuffer out = push_and_pull(tracker.harness.get(), frame_with(0));
  ASSERT_TRUE(out);
  EXPECT_FALSE(read_document(out.get()));
  EXPECT_EQ(gst_buffer_get_n_meta(out.get(), GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE), 0u);
  UniqueBuffer expected(frame_with(0));
  GstMapInfo got, want;
  ASSERT_TRUE(gst_buffer_map(out.get(), &got, GST_MAP_READ));
  ASSERT_TRUE(gst_buffer_map(expected.get(), &want, GST_MAP_READ));
  EXPECT_EQ(got.size, want.size);
  EXPECT_EQ(memcmp(got.data, want.data, want.size), 0);
  gst_buffer_unmap(expected.get(), &want);
  gst_buffer_unmap(out.get(), &got);
}

TEST(EmTracker, TracksObjectsOfTheDocumentAndKeepsTheirFields) {
  Tracker tracker;
  json frame;
  for (int step = 0; step < 3; ++step) {
    // What `empycustom mode=detect` leaves: the object in the document, mirrored as our ROI.
    GstBuffer* buffer = frame_with(tracker.next_frame++);
    json document = build_document(buffer, {static_cast<guint64>(step), kWidth, kHeight});
    const json object = {{"class_id", 2}, {"object_id", -1}, {"confidence", 0.8}, {"obj_label", "dog"},
                         {"rect_params", {{"left", 100}, {"top", 50}, {"width", 30}, {"height", 30}}},
                         {"emcustom", {{"breed", "shiba"}}}};
    frame_record(document)["object"].push_back(object);
    write_document(buffer, document);
    attach_object_roi(buffer, object, 0);
    UniqueBuffer out = push_and_pull(tracker.harness.get(), buffer);
    ASSERT_TRUE(out);
    frame = frame_of(out.get());
    // Read again by a later emi element, the document has the same objects.
    EXPECT_EQ(build_document(out.get(), {0, kWidth, kHeight})["frame"][0]["object"].size(), 1u);
  }
  ASSERT_EQ(frame["object"].size(), 1u);
  EXPECT_EQ(frame["object"][0]["object_id"], 1);
  EXPECT_EQ(frame["object"][0]["emcustom"]["breed"], "shiba");
  EXPECT_EQ(frame["counts"]["by_label"], json({{"dog", 1}}));
}

TEST(EmTracker, ReadsForeignRoisOnlyOnce) {
  Tracker tracker;
  GstBuffer* buffer = frame_with(0, {{"car", 10, 20, 40, 60}, {"person", 100, 20, 20, 50}});
  UniqueBuffer out = push_and_pull(tracker.harness.get(), buffer);
  ASSERT_TRUE(out);
  EXPECT_EQ(frame_of(out.get())["object"].size(), 2u);
  // A later emi element builds its document from ours and does not add the ROIs again.
  const json again = build_document(out.get(), {0, kWidth, kHeight});
  ASSERT_EQ(again["frame"][0]["object"].size(), 2u);
  EXPECT_EQ(again["frame"][0]["object"][1]["obj_label"], "person");
}

TEST(EmTracker, LeavesWeakDetectionsUntracked) {
  Tracker tracker("min-confidence=0.5");
  json frame;
  for (int step = 0; step < 4; ++step) frame = tracker.push({{"car", 10, 20, 40, 60, 0.3}, {"car", 200, 20, 40, 60}});
  EXPECT_EQ(frame["object"][0]["object_id"], -1);
  EXPECT_EQ(frame["object"][0]["tracking_start_time"], "N/A");
  EXPECT_EQ(frame["object"][0]["tracking_ended_time"], "N/A");
  EXPECT_EQ(frame["object"][1]["object_id"], 1);
}

// A track held 4 frames by weak detections gets an id with weak-min-hits=4, never without.
TEST(EmTracker, GivesWeakTracksAnIdAfterWeakMinHitsWhenAsked) {
  const auto ids_of_weak_track = [](const std::string& properties) {
    Tracker tracker(properties);
    std::vector<json> ids;
    for (guint step = 0; step < 5; ++step)
      ids.push_back(tracker.push({{"car", 10 + step, 20, 40, 60, 0.3}})["object"][0]["object_id"]);
    return ids;
  };
  EXPECT_EQ(ids_of_weak_track("weak-min-hits=4"), (std::vector<json>{-1, -1, -1, 1, 1}));
  EXPECT_EQ(ids_of_weak_track(""), (std::vector<json>{-1, -1, -1, -1, -1}));
}

// A tracked car, then a weak box overlapping it better than a confident one: with
// confident-first the car keeps the confident box.
TEST(EmTracker, MatchesConfidentDetectionsFirstWhenAsked) {
  const auto ids_of_weak_and_confident = [](const std::string& properties) {
    Tracker tracker("min-hits=1 " + properties);
    EXPECT_EQ(tracker.push({{"car", 100, 100, 40, 40}})["object"][0]["object_id"], 1);
    const json frame = tracker.push({{"car", 101, 100, 40, 40, 0.2}, {"car", 110, 100, 40, 40, 0.9}});
    return std::vector<json>{frame["object"][0]["object_id"], frame["object"][1]["object_id"]};
  };
  EXPECT_EQ(ids_of_weak_and_confident("confident-first=true"), (std::vector<json>{-1, 1}));
  EXPECT_EQ(ids_of_weak_and_confident(""), (std::vector<json>{1, 2}));
}

TEST(EmTracker, RejectsAMalformedLineAtStart) {
  for (const char* line : {"1,2,3", "0,0,640,abc", "10,10,10,10", "1;2;3;4"}) {
    Watched watched("emtracker");
    g_object_set(watched.element.get(), "line", line, nullptr);
    EXPECT_EQ(gst_element_set_state(watched.element.get(), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << line;
    const std::vector<MessagePtr> errors = watched.take(GST_MESSAGE_ERROR);
    ASSERT_EQ(errors.size(), 1u) << line;
    const MessageText text = text_of(errors[0].get());
    EXPECT_THAT(text.message, HasSubstr("line"));
    EXPECT_THAT(text.message, HasSubstr(std::string("\"") + line + "\""));
  }
}

}  // namespace
}  // namespace emi::test
