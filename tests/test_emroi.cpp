// SPDX-License-Identifier: LGPL-2.1-or-later
// emroi and emmediatime through GstHarness: objects dropped by where they stand (document and
// ROI metas), regions drawn, a bad roi passing everything; frame times of a non-live source from
// its date-time tag or start-time, a live source left alone.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "document/frame_document.h"
#include "gst_test_support.h"

namespace emi::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

constexpr int kWidth = 96;
constexpr int kHeight = 72;
// The lower left quarter, as emi.roi gives it.
constexpr char kLowerLeft[] = "[[[0,36],[48,36],[48,72],[0,72]]]";

json object_at(int left, int top, int width, int height) {
  return {{"obj_label", "person"}, {"class_id", 0}, {"confidence", 0.9}, {"object_id", -1},
          {"rect_params", {{"left", left}, {"top", top}, {"width", width}, {"height", height}}}};
}

// A frame whose document holds `objects`, each mirrored as our ROI meta, as a detector leaves it.
GstBuffer* frame_with_objects(const json& objects) {
  GstBuffer* buffer = patterned_frame("RGBA", kWidth, kHeight);
  json document = {{"frame", json::array({{{"frame_num", 0}, {"object", objects}}})}};
  for (std::size_t index = 0; index < objects.size(); ++index)
    attach_object_roi(buffer, objects[index], static_cast<guint>(index));
  write_document(buffer, document);
  return buffer;
}

std::vector<GstVideoRegionOfInterestMeta*> rois_of(GstBuffer* buffer) {
  std::vector<GstVideoRegionOfInterestMeta*> rois;
  gpointer state = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
    rois.push_back(reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta));
  return rois;
}

TEST(EmRoi, DropsTheObjectsThatStandOutsideEveryRegionWithTheirMetas) {
  Watched watched(std::string("emroi roi=") + kLowerLeft);
  HarnessPtr harness = harness_for(watched, "RGBA", kWidth, kHeight);
  const json objects = json::array({object_at(10, 0, 20, 50),    // feet at (20, 50): inside
                                    object_at(50, 40, 40, 20),    // (70, 60): outside
                                    object_at(40, 30, 16, 6),     // (48, 36): on the edge, inside
                                    {{"predicted_class", "crowd"}}});  // no box: stays
  UniqueBuffer out = push_and_pull(harness.get(), frame_with_objects(objects));
  ASSERT_TRUE(out);
  const json frame = frame_of(out.get());
  ASSERT_EQ(frame["object"].size(), 3u);
  EXPECT_EQ(frame["object"][0]["rect_params"]["left"], 10);
  EXPECT_EQ(frame["object"][1]["rect_params"]["left"], 40);
  EXPECT_EQ(frame["object"][2]["predicted_class"], "crowd");
  const std::vector<GstVideoRegionOfInterestMeta*> rois = rois_of(out.get());
  ASSERT_EQ(rois.size(), 2u);
  EXPECT_EQ(rois[0]->x, 10u);
  EXPECT_EQ(rois[1]->x, 40u);
  EXPECT_EQ(rois[1]->id, 1);  // numbered as the kept objects are
  EXPECT_EQ(watched.counter("dropped"), 1u);
}

TEST(EmRoi, DropsOtherElementsRoiMetasOutsideWhenThereIsNoDocument) {
  Watched watched(std::string("emroi roi=") + kLowerLeft);
  HarnessPtr harness = harness_for(watched, "RGBA", kWidth, kHeight);
  GstBuffer* buffer = patterned_frame("RGBA", kWidth, kHeight);
  gst_buffer_add_video_region_of_interest_meta(buffer, "car", 5, 40, 10, 10);   // (10, 50): inside
  gst_buffer_add_video_region_of_interest_meta(buffer, "car", 60, 10, 10, 10);  // (65, 20): outside
  UniqueBuffer out = push_and_pull(harness.get(), buffer);
  ASSERT_TRUE(out);
  const std::vector<GstVideoRegionOfInterestMeta*> rois = rois_of(out.get());
  ASSERT_EQ(rois.size(), 1u);
  EXPECT_EQ(rois[0]->x, 5u);
  EXPECT_FALSE(has_document(out.get()));
}

TEST(EmRoi, DrawsTheRegionsOnPackedRgbFrames) {
  Watched watched(std::string("emroi drop=false draw=true roi=") + kLowerLeft);
  HarnessPtr harness = harness_for(watched, "BGRx", kWidth, kHeight);
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("BGRx", kWidth, kHeight));
  ASSERT_TRUE(out);
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(out.get(), &map, GST_MAP_READ));
  const auto pixel = [&](int x, int y) {
    const guint8* at = map.data + (y * kWidth + x) * 4;
    return std::vector<int>{at[2], at[1], at[0]};  // R, G, B of BGRx
  };
  EXPECT_EQ(pixel(24, 36), (std::vector<int>{255, 191, 0}));  // top edge
  EXPECT_EQ(pixel(0, 54), (std::vector<int>{255, 191, 0}));   // left edge
  const int untouched = ((54 * kWidth + 24) * 4 * 7) % 251;   // patterned_frame's byte
  EXPECT_EQ(map.data[(54 * kWidth + 24) * 4], untouched);     // inside: as it came
  gst_buffer_unmap(out.get(), &map);
}

TEST(EmRoi, ABadRoiWarnsOnceAndEverythingPasses) {
  Watched watched("emroi roi=\"[[[0,0],[1,1]]]\"");
  HarnessPtr harness = harness_for(watched, "RGBA", kWidth, kHeight);
  const json objects = json::array({object_at(50, 40, 40, 20), object_at(10, 0, 20, 50)});
  for (int frame = 0; frame < 3; ++frame) {
    UniqueBuffer out = push_and_pull(harness.get(), frame_with_objects(objects));
    ASSERT_TRUE(out);
    EXPECT_EQ(frame_of(out.get())["object"].size(), 2u);
  }
  const std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  const MessageText text = text_of(warnings[0].get());
  EXPECT_THAT(text.message, HasSubstr("Invalid roi property \"[[[0,0],[1,1]]]\": polygon 0 is not a list of at least three"));
  EXPECT_EQ(watched.counter("dropped"), 0u);
}

// emmediatime after an appsrc whose liveness the test chooses.
struct MediaTime {
  explicit MediaTime(bool live, const std::string& properties = "") {
    GError* error = nullptr;
    pipeline.reset(gst_parse_launch(
        ("appsrc name=source format=time is-live=" + std::string(live ? "true" : "false") +
         " caps=video/x-raw,format=GRAY8,width=8,height=8,framerate=30/1 ! emmediatime name=media " + properties +
         " ! appsink name=sink sync=false").c_str(), &error));
    EXPECT_EQ(error, nullptr);
    source.reset(gst_bin_get_by_name(GST_BIN(pipeline.get()), "source"));
    sink.reset(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
    media.reset(gst_bin_get_by_name(GST_BIN(pipeline.get()), "media"));
    gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  }
  ~MediaTime() { gst_element_set_state(pipeline.get(), GST_STATE_NULL); }

  // Pushes a tag event with this date-time before the frames.
  void tag(GstDateTime* date_time) {
    GstTagList* tags = gst_tag_list_new(GST_TAG_DATE_TIME, date_time, nullptr);
    gst_date_time_unref(date_time);
    // The source sends it downstream in order, before the next frame.
    EXPECT_TRUE(gst_element_send_event(source.get(), gst_event_new_tag(tags)));
  }

  // The frame's timestamp/x-unix time (-1: none) after pushing a frame with this PTS.
  gint64 push(GstClockTime pts) {
    GstBuffer* buffer = gst_buffer_new_allocate(nullptr, 64, nullptr);
    GST_BUFFER_PTS(buffer) = pts;
    GST_BUFFER_DURATION(buffer) = GST_SECOND / 30;
    g_signal_emit_by_name(source.get(), "push-buffer", buffer, &flow);
    gst_buffer_unref(buffer);
    GstSample* sample = nullptr;
    g_signal_emit_by_name(sink.get(), "pull-sample", &sample);
    if (sample == nullptr) return -2;
    GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-unix");
    GstReferenceTimestampMeta* meta = gst_buffer_get_reference_timestamp_meta(gst_sample_get_buffer(sample), caps);
    const gint64 time = meta != nullptr ? static_cast<gint64>(meta->timestamp) : -1;
    gst_caps_unref(caps);
    gst_sample_unref(sample);
    return time;
  }

  std::string origin() {
    gchar* text = nullptr;
    g_object_get(media.get(), "origin", &text, nullptr);
    UniqueChars owned(text);
    return text != nullptr ? text : "";
  }

  UniqueElement pipeline;
  UniqueElement source;
  UniqueElement sink;
  UniqueElement media;
  GstFlowReturn flow = GST_FLOW_OK;
};

TEST(EmMediaTime, ARecordedSourceIsTimedByItsDateTimeTagPlusRunningTime) {
  MediaTime media(false);
  media.tag(gst_date_time_new(0.0, 2021, 5, 1, 10, 0, 0.0));  // 2021-05-01T10:00:00Z
  const gint64 tag_ns = 1619863200LL * GST_SECOND;
  EXPECT_EQ(media.push(0), tag_ns);
  EXPECT_EQ(media.push(GST_SECOND / 2), tag_ns + GST_SECOND / 2);
  EXPECT_EQ(media.origin(), "tag");
}

TEST(EmMediaTime, ARecordedSourceWithoutATagStartsAtStartTime) {
  MediaTime media(false, "start-time=1000000000000000000");
  EXPECT_EQ(media.push(GST_SECOND), 1000000000000000000LL + GST_SECOND);
  EXPECT_EQ(media.origin(), "start-time");
}

TEST(EmMediaTime, ALiveSourceIsLeftToTheWallClock) {
  MediaTime media(true);
  media.tag(gst_date_time_new(0.0, 2021, 5, 1, 10, 0, 0.0));
  EXPECT_EQ(media.push(0), -1);
  EXPECT_EQ(media.origin(), "wall-clock");
}

}  // namespace
}  // namespace emi::test
