// SPDX-License-Identifier: LGPL-2.1-or-later
// empycustom through GstHarness: the Python contract, results, errors, lifetime.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <string>

#include "document/frame_document.h"
#include "gst_test_support.h"
#include "embed/python_host.h"
#include "embed/signal_callback.h"

namespace emi::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

std::string module_arg(const std::string& name) { return " module=" + script(name); }

// The frame-level results of one frame (frame["emcustom"]).
json results_of(GstBuffer* buffer, const char* key = "emcustom") {
  json frame = frame_of(buffer);
  return frame.contains(key) ? frame[key] : json();
}

// Runs one frame through a fresh element; returns the frame-level result entry `index`.
json first_result(const std::string& description, GstBuffer* frame, const std::string& format = "RGBA",
                  int width = 8, int height = 8) {
  Watched watched(description);
  HarnessPtr harness = harness_for(watched, format, width, height);
  UniqueBuffer out = push_and_pull(harness.get(), frame);
  EXPECT_TRUE(out) << description;
  return out ? results_of(out.get())[0] : json();
}

json probe_once(const std::string& format, int width, int height, const std::string& extra = "") {
  return first_result("empycustom" + module_arg("probe.py") + extra,
                      patterned_frame(format, width, height), format, width, height);
}

TEST(EmPyCustom, DocumentsItsPropertiesWithDefaults) {
  UniqueElement element = make_element("empycustom");
  auto text_property = [&](const char* name) {
    gchar* value = nullptr;
    g_object_get(element.get(), name, &value, nullptr);
    return std::string(UniqueChars(value).get());
  };
  guint interval = 0;
  gboolean writable = TRUE;
  g_object_get(element.get(), "process-interval", &interval, "writable", &writable, nullptr);
  EXPECT_EQ(text_property("function"), "process_ip");
  EXPECT_EQ(text_property("meta-key"), "emcustom");
  EXPECT_EQ(text_property("options"), "{}");
  EXPECT_EQ(interval, 1u);
  EXPECT_FALSE(writable);
  gdouble call_timeout = 0;
  g_object_get(element.get(), "call-timeout", &call_timeout, nullptr);
  EXPECT_DOUBLE_EQ(call_timeout, 10.0);
  for (const char* name : {"module", "class", "mode", "on-error", "frames", "processed", "errors"})
    EXPECT_NE(g_object_class_find_property(G_OBJECT_GET_CLASS(element.get()), name), nullptr) << name;
}

// GST_DEBUG=emi*:6 covers what happens to a frame: the element, the Python host, the document.
TEST(EmPyCustom, LogsEachFrameToCategoriesUnderEmi) {
  struct Seen {
    std::mutex mutex;
    std::set<std::pair<std::string, GstDebugLevel>> messages;  // category, level
  } seen;
  const GstLogFunction record = [](GstDebugCategory* category, GstDebugLevel level, const gchar*, const gchar*,
                                   gint, GObject*, GstDebugMessage*, gpointer data) {
    auto* into = static_cast<Seen*>(data);
    std::lock_guard<std::mutex> lock(into->mutex);
    into->messages.emplace(gst_debug_category_get_name(category), level);
  };
  gst_debug_remove_log_function(gst_debug_log_default);
  gst_debug_add_log_function(record, &seen, nullptr);
  gst_debug_set_threshold_for_name("emi*", GST_LEVEL_LOG);
  first_result("empycustom mode=detect" + module_arg("detector.py"), patterned_frame("RGBA", 64, 48), "RGBA", 64, 48);
  gst_debug_unset_threshold_for_name("emi*");
  gst_debug_remove_log_function(record);
  gst_debug_add_log_function(gst_debug_log_default, nullptr, nullptr);
  EXPECT_TRUE(seen.messages.count({"emi-empycustom", GST_LEVEL_LOG}));    // the frame, its results, time in Python
  EXPECT_TRUE(seen.messages.count({"emi-empycustom", GST_LEVEL_DEBUG}));  // caps and properties
  EXPECT_TRUE(seen.messages.count({"emi-embed", GST_LEVEL_DEBUG}));       // the script loaded
  EXPECT_TRUE(seen.messages.count({"emi-document", GST_LEVEL_LOG}));      // where the results went
}

TEST(EmPyCustom, HandsTheMappedFrameWithoutACopy) {
  Watched watched("empycustom" + module_arg("probe.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 64, 48);
  GstBuffer* frame = patterned_frame("RGBA", 64, 48);
  GstMapInfo map;
  gst_buffer_map(frame, &map, GST_MAP_READ);
  const auto frame_address = reinterpret_cast<std::uintptr_t>(map.data);
  gst_buffer_unmap(frame, &map);

  UniqueBuffer out = push_and_pull(harness.get(), frame);
  ASSERT_TRUE(out);
  const json plane = results_of(out.get())[0]["planes"][0];
  EXPECT_EQ(plane["type"], "FrameArray");
  EXPECT_EQ(plane["address"].get<std::uintptr_t>(), frame_address);
  EXPECT_EQ(plane["shape"], json({48, 64, 4}));
  EXPECT_EQ(plane["strides"], json({64 * 4, 4, 1}));
  EXPECT_EQ(plane["dtype"], "uint8");
  EXPECT_FALSE(plane["writeable"].get<bool>());
}

TEST(EmPyCustom, HonoursPaddedStridesFromVideoMeta) {
  Watched watched("empycustom" + module_arg("probe.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 64, 48);
  const gsize stride = 64 * 4 + 48;  // padded rows, as hardware decoders produce
  const gsize offset = 16;
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, offset + stride * 48, nullptr);
  gsize offsets[GST_VIDEO_MAX_PLANES] = {offset};
  gint strides[GST_VIDEO_MAX_PLANES] = {static_cast<gint>(stride)};
  gst_buffer_add_video_meta_full(frame, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_RGBA, 64, 48,
                                 1, offsets, strides);
  GstMapInfo map;
  gst_buffer_map(frame, &map, GST_MAP_READ);
  const auto first_pixel = reinterpret_cast<std::uintptr_t>(map.data) + offset;
  gst_buffer_unmap(frame, &map);

  UniqueBuffer out = push_and_pull(harness.get(), frame);
  ASSERT_TRUE(out);
  const json plane = results_of(out.get())[0]["planes"][0];
  EXPECT_EQ(plane["address"].get<std::uintptr_t>(), first_pixel);
  EXPECT_EQ(plane["strides"], json({stride, 4, 1}));
}

TEST(EmPyCustom, GivesPackedFormatsAChannelAxis) {
  EXPECT_EQ(probe_once("RGB", 30, 20)["planes"][0]["shape"], json({20, 30, 3}));
  EXPECT_EQ(probe_once("BGRx", 30, 20)["planes"][0]["shape"], json({20, 30, 4}));
  const json gray = probe_once("GRAY8", 30, 20)["planes"][0];
  EXPECT_EQ(gray["shape"], json({20, 30, 1}));
  EXPECT_EQ(gray["strides"][2], 1);
}

TEST(EmPyCustom, GivesPlanarFormatsATupleOfPlanes) {
  const json i420 = probe_once("I420", 32, 16)["planes"];
  ASSERT_EQ(i420.size(), 3u);
  EXPECT_EQ(i420[0]["shape"], json({16, 32}));
  EXPECT_EQ(i420[1]["shape"], json({8, 16}));
  EXPECT_EQ(i420[2]["shape"], json({8, 16}));
  const json nv12 = probe_once("NV12", 32, 16)["planes"];
  ASSERT_EQ(nv12.size(), 2u);
  EXPECT_EQ(nv12[1]["shape"], json({8, 16, 2}));
  EXPECT_EQ(nv12[1]["address"].get<std::uintptr_t>() - nv12[0]["address"].get<std::uintptr_t>(),
            32u * 16u);
}

TEST(EmPyCustom, PassesInMetaAndOptions) {
  const json report = probe_once("RGBA", 64, 48, " options={\"threshold\":0.5,\"name\":\"cam1\"}");
  EXPECT_EQ(report["options"], json({{"threshold", 0.5}, {"name", "cam1"}}));
  const json frame = report["in_meta"]["frame"][0];
  EXPECT_EQ(frame["frame_num"], 0);
  EXPECT_EQ(frame["buf_pts"], 0);
  EXPECT_EQ(frame["source_frame_width"], 64);
  EXPECT_EQ(frame["source_frame_height"], 48);
  EXPECT_TRUE(frame["object"].is_array());
  EXPECT_TRUE(std::regex_match(frame["timestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4})")))
      << frame["timestamp"];
  EXPECT_GT(frame["ntp_timestamp"].get<gint64>(), 1600000000LL * GST_SECOND);
}

TEST(EmPyCustom, CountsFramesAndTakesPtsFromTheBuffer) {
  Watched watched("empycustom" + module_arg("counter.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 16, 16);
  for (int i = 0; i < 3; ++i) {
    UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 16, 16, i, i * GST_SECOND));
    ASSERT_TRUE(out);
    const json frame = frame_of(out.get());
    EXPECT_EQ(frame["frame_num"], i);
    EXPECT_EQ(frame["buf_pts"].get<guint64>(), i * GST_SECOND);
    EXPECT_EQ(frame["emcustom"][0]["calls"], i + 1);
  }
  EXPECT_EQ(watched.counter("frames"), 3u);
  EXPECT_EQ(watched.counter("processed"), 3u);
}

TEST(EmPyCustom, RunsTheSeedStyleScriptUnchanged) {
  Watched watched("empycustom" + module_arg("seed_style.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 64, 48);
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, 64 * 48 * 4, nullptr);
  GstMapInfo map;
  gst_buffer_map(frame, &map, GST_MAP_WRITE);
  for (gsize pixel = 0; pixel < 64 * 48; ++pixel) {
    const bool left_half = (pixel % 64) < 32;
    map.data[pixel * 4 + 0] = left_half ? 200 : 10;  // red on the left
    map.data[pixel * 4 + 1] = 0;
    map.data[pixel * 4 + 2] = left_half ? 10 : 220;  // blue on the right
    map.data[pixel * 4 + 3] = 255;
  }
  gst_buffer_unmap(frame, &map);
  gst_buffer_add_video_region_of_interest_meta(frame, "swan", 0, 0, 16, 16);
  gst_buffer_add_video_region_of_interest_meta(frame, "swan", 40, 10, 16, 16);

  UniqueBuffer out = push_and_pull(harness.get(), frame);
  ASSERT_TRUE(out);
  const json result_frame = frame_of(out.get());
  const json objects = result_frame["object"];
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[0]["obj_label"], "swan");
  EXPECT_EQ(objects[0]["emcustom"]["predicted_class"], "reddish");
  EXPECT_NEAR(objects[0]["emcustom"]["probability"].get<double>(), 200.0 / 255 * 100, 1e-6);
  EXPECT_EQ(objects[1]["emcustom"]["predicted_class"], "bluish");
  EXPECT_NEAR(result_frame["emcustom"][0]["frame_mean"].get<double>(), (200 + 10 + 10 + 220) / 6.0, 1e-6);
}

// What scripts ask of a Gst.Buffer, in the buffer's units; unset ones are Gst.CLOCK_TIME_NONE.
TEST(EmPyCustom, AnswersWhatScriptsAskOfAGstBuffer) {
  GstBuffer* frame = patterned_frame("RGBA", 8, 8, 0, 2 * GST_SECOND);
  GST_BUFFER_OFFSET(frame) = 60;
  const json facts = first_result("empycustom" + module_arg("buffer_facts.py"), frame);
  EXPECT_EQ(facts["mapped"], true);
  EXPECT_EQ(facts["size"], 8 * 8 * 4);
  EXPECT_EQ(facts["map_size"], 8 * 8 * 4);
  EXPECT_EQ(facts["pts"].get<guint64>(), 2 * GST_SECOND);
  EXPECT_DOUBLE_EQ(facts["seconds"].get<double>(), 2.0);
  EXPECT_EQ(facts["duration"].get<guint64>(), GST_SECOND / 30);
  EXPECT_EQ(facts["dts"].get<guint64>(), GST_CLOCK_TIME_NONE);
  EXPECT_EQ(facts["dts_unset"], true);
  EXPECT_EQ(facts["pts_unset"], false);
  EXPECT_EQ(facts["offset"], 60);
  EXPECT_EQ(facts["offset_end"].get<guint64>(), GST_BUFFER_OFFSET_NONE);
  EXPECT_EQ(facts["first_bytes"], json({0, 7, 14, 21}));  // byte i holds i * 7 % 251
  EXPECT_EQ(facts["bytes_at_8"], json({56, 63, 70}));
  EXPECT_EQ(facts["past_the_end"], 2);

  // Planar frames too: the tuple of planes answers for the whole buffer.
  GstBuffer* planar = patterned_frame("I420", 16, 8, 0, GST_CLOCK_TIME_NONE);
  const json planar_facts = first_result("empycustom" + module_arg("buffer_facts.py"), planar, "I420", 16, 8);
  EXPECT_EQ(planar_facts["pts_unset"], true);
  EXPECT_EQ(planar_facts["size"], 16 * 8 * 3 / 2);
  EXPECT_EQ(planar_facts["first_bytes"], json({0, 7, 14, 21}));
}

TEST(EmPyCustom, ReadOnlyByDefaultAndDrawsWhenWritable) {
  EXPECT_EQ(first_result("empycustom" + module_arg("readonly.py"), patterned_frame("RGBA", 8, 8))["refused"], true);
  Watched watched("empycustom writable=true" + module_arg("draws.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  ASSERT_TRUE(out);
  GstMapInfo map;
  gst_buffer_map(out.get(), &map, GST_MAP_READ);
  EXPECT_EQ(map.data[0], 1);
  EXPECT_EQ(map.data[3], 4);
  EXPECT_EQ(map.data[8 * 4 + 4 + 2], 3);      // pixel (1, 1)
  EXPECT_EQ(map.data[2 * 8 * 4], (2 * 8 * 4 * 7) % 251);  // row 2 untouched
  gst_buffer_unmap(out.get(), &map);
}

TEST(EmPyCustom, PassesOnlyWhatEachSignatureAccepts) {
  EXPECT_EQ(first_result("empycustom" + module_arg("fewer_args.py"), patterned_frame("RGBA", 8, 8, 3)),
            json({{"started", true}, {"pixel", 3}}));
  EXPECT_EQ(first_result("empycustom function=analyse" + module_arg("zero_args.py"),
                         patterned_frame("RGBA", 8, 8))["called"], true);
}

TEST(EmPyCustom, UsesAClassInstanceWhenAsked) {
  Watched watched("empycustom class=Program options={\"offset\":100}" + module_arg("class_program.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  ASSERT_TRUE(out);
  EXPECT_EQ(results_of(out.get())[0], json({{"started", true}, {"value", 101}}));
}

TEST(EmPyCustom, ParsesEveryReturnForm) {
  auto returned = [](const std::string& kind) {
    Watched watched("empycustom options={\"kind\":\"" + kind + "\"}" + module_arg("returns.py"));
    HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
    UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
    EXPECT_TRUE(out);
    EXPECT_EQ(watched.counter("errors"), 0u) << kind;
    return out ? results_of(out.get()) : json();
  };
  const json expected = {{"label", "it's \"quoted\""}, {"score", 0.5}, {"ok", true},
                         {"none", nullptr}, {"pair", {1, 2}}};
  EXPECT_EQ(returned("str"), json::array({expected}));
  EXPECT_EQ(returned("list"), json::array({expected}));
  EXPECT_EQ(returned("json"), json::array({{{"label", "json"}, {"score", 0.25}}}));
  EXPECT_EQ(returned("dict"), json::array({{{"label", "dict"}}}));
  EXPECT_TRUE(returned("none").is_null());
  EXPECT_EQ(returned("numpy"), json::array({{{"mean", 0.5}, {"values", {0, 1, 2}}}}));
}

TEST(EmPyCustom, WarnsAboutGarbageAndPassesTheFrame) {
  for (const std::string kind : {"garbage", "object"}) {
    Watched watched("empycustom options={\"kind\":\"" + kind + "\"}" + module_arg("returns.py"));
    HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
    UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
    ASSERT_TRUE(out) << kind;
    EXPECT_TRUE(results_of(out.get()).is_null());
    EXPECT_EQ(watched.counter("errors"), 1u);
    std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(GST_MESSAGE_SRC(warnings[0].get()), GST_OBJECT(watched.element.get()));
    const MessageText text = text_of(warnings[0].get());
    EXPECT_THAT(text.message, HasSubstr("returns.py"));
    EXPECT_THAT(text.message, HasSubstr(kind == "garbage" ? "<tensor at 0x7f00" : "<Opaque object>"));
  }
}

TEST(EmPyCustom, PlacesEntriesOnObjectsThenTheFrame) {
  auto run = [](int objects, int entries, const std::string& extra = "") {
    Watched watched("empycustom options={\"kind\":\"entries\",\"count\":" + std::to_string(entries) +
                    "}" + extra + module_arg("returns.py"));
    HarnessPtr harness = harness_for(watched, "RGBA", 64, 64);
    GstBuffer* frame = patterned_frame("RGBA", 64, 64);
    for (int i = 0; i < objects; ++i)
      gst_buffer_add_video_region_of_interest_meta(frame, "car", i * 10, i * 10, 8, 8);
    UniqueBuffer out = push_and_pull(harness.get(), frame);
    EXPECT_TRUE(out);
    return out ? frame_of(out.get()) : json();
  };
  json frame = run(2, 3);
  EXPECT_EQ(frame["object"][0]["emcustom"], json({{"entry", 0}}));
  EXPECT_EQ(frame["object"][1]["emcustom"], json({{"entry", 1}}));
  EXPECT_EQ(frame["emcustom"], json::array({{{"entry", 2}}}));

  frame = run(2, 1);
  EXPECT_EQ(frame["object"][0]["emcustom"], json({{"entry", 0}}));
  EXPECT_FALSE(frame["object"][1].contains("emcustom"));
  EXPECT_FALSE(frame.contains("emcustom"));

  frame = run(0, 1, " meta-key=scene");
  EXPECT_EQ(frame["scene"], json::array({{{"entry", 0}}}));
  EXPECT_EQ(frame["object"].size(), 0u);
}

TEST(EmPyCustom, DetectModeTurnsRectanglesIntoObjects) {
  Watched watched("empycustom mode=detect" + module_arg("detector.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 120, 90);
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 120, 90));
  ASSERT_TRUE(out);
  const json frame = frame_of(out.get());
  ASSERT_EQ(frame["object"].size(), 2u);
  const json car = frame["object"][0];
  EXPECT_EQ(car["obj_label"], "car");
  EXPECT_EQ(car["class_id"], 2);
  EXPECT_EQ(car["object_id"], -1);
  EXPECT_EQ(car["rect_params"], json({{"left", 10}, {"top", 5}, {"width", 20}, {"height", 10}}));
  EXPECT_EQ(car["emcustom"], json({{"color", "red"}}));
  // Clipped to the 120x90 frame.
  EXPECT_EQ(frame["object"][1]["rect_params"], json({{"left", 50}, {"top", 30}, {"width", 70}, {"height", 60}}));
  EXPECT_EQ(frame["emcustom"], json::array({{{"scene", "street"}}}));
  EXPECT_EQ(watched.counter("errors"), 1u);  // the entry with a malformed rect_params

  std::vector<const GstVideoRegionOfInterestMeta*> rois;
  gpointer state = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(out.get(), &state,
                                                          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
    rois.push_back(reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta));
  ASSERT_EQ(rois.size(), 2u);
  EXPECT_STREQ(g_quark_to_string(rois[0]->roi_type), "car");
  EXPECT_EQ(rois[0]->x, 10u);
  EXPECT_EQ(rois[0]->w, 20u);
  EXPECT_EQ(rois[1]->h, 60u);
}

TEST(EmPyCustom, StoresEventsTheScriptAppends) {
  Watched watched("empycustom" + module_arg("events.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  ASSERT_TRUE(out);
  EXPECT_EQ(frame_of(out.get())["events"], json::array({{{"event", "seen"}, {"frame_num", 1}}}));
}

TEST(EmPyCustom, CallsTheScriptEveryNthFrame) {
  Watched watched("empycustom process-interval=3" + module_arg("counter.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  std::vector<int> called_on;
  for (int i = 0; i < 9; ++i) {
    UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
    ASSERT_TRUE(out);
    const json frame = frame_of(out.get());
    EXPECT_EQ(frame["frame_num"], i);
    if (frame.contains("emcustom")) called_on.push_back(i);
  }
  EXPECT_EQ(called_on, (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(watched.counter("processed"), 3u);
  EXPECT_EQ(watched.counter("frames"), 9u);
}

TEST(EmPyCustom, GivesEachInstanceItsOwnModule) {
  Watched first("empycustom" + module_arg("counter.py"));
  Watched second("empycustom" + module_arg("counter.py"));
  HarnessPtr first_harness = harness_for(first, "RGBA", 8, 8);
  HarnessPtr second_harness = harness_for(second, "RGBA", 8, 8);
  for (int i = 0; i < 3; ++i) push_and_pull(first_harness.get(), patterned_frame("RGBA", 8, 8));
  UniqueBuffer out = push_and_pull(second_harness.get(), patterned_frame("RGBA", 8, 8));
  ASSERT_TRUE(out);
  EXPECT_EQ(results_of(out.get())[0]["calls"], 1);
}

TEST(EmPyCustom, PutsTheScriptFolderOnSysPath) {
  EXPECT_EQ(first_result("empycustom" + module_arg("uses_helper.py"), patterned_frame("RGBA", 8, 8))["answer"], 42);
}

TEST(EmPyCustom, RunsTorchInsideThePlugin) {
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, 8 * 8 * 4, nullptr);
  gst_buffer_memset(frame, 0, 2, 8 * 8 * 4);
  const json result = first_result("empycustom" + module_arg("torch_import.py"), frame);
  EXPECT_FALSE(result["torch"].get<std::string>().empty());
  EXPECT_DOUBLE_EQ(result["value"].get<double>(), 3 * 3 * 3 * 2.0);  // 3x3 kernel of ones, 3 channels of 2
}

// Start failures: the state change fails with an error naming the file and the cause.
MessageText start_error(const std::string& description) {
  Watched watched(description);
  EXPECT_EQ(gst_element_set_state(watched.element.get(), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  std::vector<MessagePtr> errors = watched.take(GST_MESSAGE_ERROR);
  EXPECT_EQ(errors.size(), 1u) << description;
  return errors.empty() ? MessageText{} : text_of(errors[0].get());
}

TEST(EmPyCustom, FailsToStartOnAMissingFile) {
  const MessageText text = start_error("empycustom module=/nonexistent/model.py");
  EXPECT_THAT(text.message, HasSubstr("/nonexistent/model.py"));
  EXPECT_THAT(text.message, HasSubstr("not found"));
  EXPECT_THAT(start_error("empycustom").message, HasSubstr("No module"));
}

TEST(EmPyCustom, FailsToStartOnASyntaxErrorWithTheTraceback) {
  const MessageText text = start_error("empycustom" + module_arg("syntax_error.py"));
  EXPECT_THAT(text.message, HasSubstr("syntax_error.py"));
  EXPECT_THAT(text.message, HasSubstr("SyntaxError"));
  EXPECT_THAT(text.debug, HasSubstr("line 1"));
}

TEST(EmPyCustom, FailsToStartWithoutTheFunctionOrClass) {
  const MessageText text = start_error("empycustom" + module_arg("no_function.py"));
  EXPECT_THAT(text.message, HasSubstr("no_function.py"));
  EXPECT_THAT(text.message, HasSubstr("process_ip"));
  const MessageText no_class = start_error("empycustom class=Missing" + module_arg("class_program.py"));
  EXPECT_THAT(no_class.message, HasSubstr("class_program.py has no class Missing"));
}

TEST(EmPyCustom, FailsToStartWhenStartRaises) {
  const MessageText text =
      start_error("empycustom options={\"model\":\"r3d.pth\"}" + module_arg("start_raises.py"));
  EXPECT_THAT(text.message, HasSubstr("start() of"));
  EXPECT_THAT(text.message, HasSubstr("RuntimeError: model file missing: r3d.pth"));
  EXPECT_THAT(text.debug, HasSubstr("Traceback (most recent call last)"));
  EXPECT_THAT(text.debug, HasSubstr("start_raises.py\", line 3"));
}

TEST(EmPyCustom, FailsToStartOnMalformedOptions) {
  const MessageText text = start_error("empycustom options={\"a\":" + module_arg("counter.py"));
  EXPECT_THAT(text.message, HasSubstr("options"));
  EXPECT_THAT(start_error("empycustom options=[1,2]" + module_arg("counter.py")).message,
              HasSubstr("must be a JSON object"));
}

// Frames 1..4 through raises.py, which raises on even calls.
struct ErrorRun {
  std::vector<bool> passed;
  guint64 errors;
  guint64 processed;
  std::size_t warnings;
  std::size_t bus_errors;
};
ErrorRun run_with_errors(const std::string& on_error) {
  Watched watched("empycustom on-error=" + on_error + module_arg("raises.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  ErrorRun run{};
  for (int i = 0; i < 4; ++i) {
    const GstFlowReturn flow = gst_harness_push(harness.get(), patterned_frame("RGBA", 8, 8));
    GstBuffer* out = gst_harness_try_pull(harness.get());
    run.passed.push_back(flow == GST_FLOW_OK && out != nullptr);
    if (out != nullptr) gst_buffer_unref(out);
    if (flow != GST_FLOW_OK) break;
  }
  run.errors = watched.counter("errors");
  run.processed = watched.counter("processed");
  run.warnings = watched.take(GST_MESSAGE_WARNING).size();
  run.bus_errors = watched.take(GST_MESSAGE_ERROR).size();
  return run;
}

TEST(EmPyCustom, OnErrorSkipPassesTheFrameAndCounts) {
  const ErrorRun run = run_with_errors("skip");
  EXPECT_EQ(run.passed, (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(run.errors, 2u);
  EXPECT_EQ(run.processed, 2u);
  EXPECT_EQ(run.warnings, 1u);  // rate-limited: the second error within a second is only logged
}

TEST(EmPyCustom, OnErrorDropDropsTheFrame) {
  const ErrorRun run = run_with_errors("drop");
  EXPECT_EQ(run.passed, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(run.errors, 2u);
}

TEST(EmPyCustom, OnErrorFailStopsTheStream) {
  const ErrorRun run = run_with_errors("fail");
  EXPECT_EQ(run.passed, (std::vector<bool>{true, false}));
  EXPECT_EQ(run.bus_errors, 1u);
}

// One frame through hostile.py with options {"kind": kind}: what came out, and what was said.
struct HostileRun {
  bool passed = false;
  json frame;
  guint64 errors = 0;
  std::vector<MessageText> warnings;
};
HostileRun run_hostile(const std::string& kind, const std::string& extra = "") {
  Watched watched("empycustom options={\"kind\":\"" + kind + "\"}" + extra + module_arg("hostile.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 16, 16);
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 16, 16));
  HostileRun run;
  run.passed = static_cast<bool>(out);
  if (out) run.frame = frame_of(out.get());
  run.errors = watched.counter("errors");
  for (const MessagePtr& message : watched.take(GST_MESSAGE_WARNING)) run.warnings.push_back(text_of(message.get()));
  for (const MessageText& text : run.warnings) {
    EXPECT_TRUE(g_utf8_validate(text.message.c_str(), -1, nullptr)) << kind;
    EXPECT_TRUE(g_utf8_validate(text.debug.c_str(), -1, nullptr)) << kind;
  }
  return run;
}

// These aborted the process (pybind11's cast_error or nlohmann's type_error escaping): text that
// is not UTF-8 is converted with replacement, never thrown.
TEST(EmPyCustom, NeverAbortsOnTextThatIsNotUtf8) {
  HostileRun run = run_hostile("surrogate_exception");
  EXPECT_TRUE(run.passed);
  EXPECT_EQ(run.errors, 1u);
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_THAT(run.warnings[0].message, HasSubstr("hostile.py"));
  EXPECT_THAT(run.warnings[0].message, HasSubstr("FileNotFoundError: no such file: caf\\udce9.jpg"));

  run = run_hostile("surrogate_result");
  EXPECT_EQ(run.errors, 0u);
  EXPECT_EQ(run.frame["emcustom"][0], json({{"file", "caf\\udce9.jpg"}, {"caf\\udce9", 1}}));

  run = run_hostile("surrogate_text");  // the literal's lone surrogate escape: U+FFFD
  EXPECT_EQ(run.frame["emcustom"][0]["file"], "caf\xef\xbf\xbd.jpg");

  run = run_hostile("bytes_result");
  EXPECT_EQ(run.frame["emcustom"][0]["data"], "\xef\xbf\xbd\xef\xbf\xbd ok");

  run = run_hostile("bytes_text");
  EXPECT_EQ(run.frame["emcustom"][0]["label"], "\xef\xbf\xbd ok");

  run = run_hostile("odd_repr");  // not a result: reported with its repr
  EXPECT_EQ(run.errors, 1u);
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_THAT(run.warnings[0].message, HasSubstr("odd caf\\udce9"));

  run = run_hostile("surrogate_event");
  EXPECT_EQ(run.frame["events"], json::array({{{"file", "caf\\udce9.jpg"}, {"\xef\xbf\xbd", "\xef\xbf\xbd"}}}));
}

// In detect mode, entries with fields of the wrong type are skipped, each named with its value in
// a rate-limited warning and counted; the frame then goes on as on-error says.
TEST(EmPyCustom, SkipsDetectionsWithFieldsOfTheWrongType) {
  HostileRun run = run_hostile("wrong_types", " mode=detect");
  ASSERT_TRUE(run.passed);
  EXPECT_EQ(run.errors, 3u);
  ASSERT_EQ(run.frame["object"].size(), 1u);
  EXPECT_EQ(run.frame["object"][0]["obj_label"], "fine");
  ASSERT_EQ(run.warnings.size(), 1u);  // one a second
  EXPECT_THAT(run.warnings[0].message, HasSubstr("hostile.py: entry 0: label must be a string, got 3"));

  EXPECT_FALSE(run_hostile("wrong_types", " mode=detect on-error=drop").passed);
  run = run_hostile("wrong_types", " mode=detect on-error=fail");
  EXPECT_FALSE(run.passed);
}

// The signal callback's events, debug text and exceptions take the same path (emaimeta's worker
// thread): replaced, or a PythonError for the engine to report, never an abort.
TEST(SignalCallback, NeverAbortsOnTextThatIsNotUtf8) {
  SignalCallback callback(script("hostile_callback.py"), "on_signal");
  const CallbackResult events = callback.call({{"kind", "surrogate_event"}});
  EXPECT_EQ(events.events,
            json::array({{{"file", "caf\\udce9.jpg"}, {"caf\\udce9", 1}, {"raw", "\xef\xbf\xbd ok"}}}));
  EXPECT_EQ(callback.call({{"kind", "surrogate_debug"}}).debug, "debug caf\\udce9");
  EXPECT_EQ(callback.call({{"kind", "surrogate_fatal"}}).fatal_error.value_or(""),
            "on_signal() of " + script("hostile_callback.py") + ": stop: caf\\udce9");
  for (const char* kind : {"surrogate_exception", "raising_debug"}) {
    try {
      callback.call({{"kind", kind}});
      ADD_FAILURE() << kind << " did not fail";
    } catch (const python::PythonError& error) {
      EXPECT_TRUE(g_utf8_validate(error.what(), -1, nullptr)) << kind;
      EXPECT_THAT(error.what(), HasSubstr("hostile_callback.py")) << kind;
      if (std::string(kind) == "surrogate_exception")
        EXPECT_THAT(error.what(), HasSubstr("FileNotFoundError: no such file: caf\\udce9.jpg"));
      else
        EXPECT_THAT(error.what(), HasSubstr("RuntimeError: no text for you"));
    }
  }
}

// A call that runs longer than call-timeout is named on the bus (script, line, frame), and a
// script that never returns doesn't keep set_state(NULL) from returning.
TEST(EmPyCustom, WarnsAboutABlockedCallAndStopsIt) {
  UniqueElement pipeline = make_element(
      "videotestsrc num-buffers=5 ! video/x-raw,format=RGBA,width=32,height=24 ! "
      "empycustom name=custom call-timeout=0.2" + module_arg("blocks.py") + " ! fakesink");
  BusPtr bus(gst_element_get_bus(pipeline.get()));
  ASSERT_NE(gst_element_set_state(pipeline.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  MessagePtr warning(gst_bus_timed_pop_filtered(bus.get(), 60 * GST_SECOND, GST_MESSAGE_WARNING));
  ASSERT_TRUE(warning) << "no warning about the blocked call";
  const MessageText text = text_of(warning.get());
  EXPECT_THAT(text.message, HasSubstr(script("blocks.py") + ": process_ip() has run for"));
  EXPECT_THAT(text.message, HasSubstr("on frame 1 and still runs"));
  EXPECT_THAT(text.message, HasSubstr(script("blocks.py") + ":14 in process_ip()"));  // the sleep
  // The script still loops: stopping interrupts it.
  EXPECT_EQ(gst_element_set_state(pipeline.get(), GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  UniqueElement custom(gst_bin_get_by_name(GST_BIN(pipeline.get()), "custom"));
  guint64 errors = 0;
  g_object_get(custom.get(), "errors", &errors, nullptr);
  EXPECT_EQ(errors, 0u);  // stopped, not the script's failure
  EXPECT_EQ(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR), nullptr);
}

TEST(EmPyCustom, SysExitInAScriptDoesNotEndTheProcess) {
  Watched watched("empycustom" + module_arg("sys_exit.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  UniqueBuffer out = push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8));
  ASSERT_TRUE(out);  // we are still here, and the frame passed
  EXPECT_EQ(watched.counter("errors"), 1u);
  std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(text_of(warnings[0].get()).message, HasSubstr("SystemExit: 3"));
}

TEST(EmPyCustom, KeptViewsStayValidAfterTheBufferIsGone) {
  Watched watched("empycustom" + module_arg("kept_view.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 16, 16);
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, 16, 16);
  // Frames from a pool: once released, a frame's memory is reused unless someone still holds it.
  std::unique_ptr<GstBufferPool, ReleaseWith<gst_object_unref>> pool(gst_buffer_pool_new());
  GstStructure* config = gst_buffer_pool_get_config(pool.get());
  UniqueCaps caps(gst_video_info_to_caps(&info));
  gst_buffer_pool_config_set_params(config, caps.get(), GST_VIDEO_INFO_SIZE(&info), 1, 1);
  ASSERT_TRUE(gst_buffer_pool_set_config(pool.get(), config));
  ASSERT_TRUE(gst_buffer_pool_set_active(pool.get(), TRUE));

  auto pooled_frame = [&](guint8 value) {
    GstBuffer* frame = nullptr;
    EXPECT_EQ(gst_buffer_pool_acquire_buffer(pool.get(), &frame, nullptr), GST_FLOW_OK);
    gst_buffer_memset(frame, 0, value, GST_VIDEO_INFO_SIZE(&info));
    return frame;
  };
  UniqueBuffer first = push_and_pull(harness.get(), pooled_frame(5));
  ASSERT_TRUE(first);
  first.reset();  // upstream and downstream are done with frame 1
  UniqueBuffer second = push_and_pull(harness.get(), pooled_frame(9));
  ASSERT_TRUE(second);
  const json result = results_of(second.get())[0];
  const int bytes = 16 * 16 * 4;
  EXPECT_EQ(result["first_sum"], 5 * bytes);
  EXPECT_EQ(result["slice_sum"], 5 * 4);
  EXPECT_EQ(result["raw_sum"], 5 * bytes);
  EXPECT_EQ(result["current_sum"], 9 * bytes);
  second.reset();
  gst_buffer_pool_set_active(pool.get(), FALSE);
}

TEST(EmPyCustom, HoldsTheGilOnlyInsideCalls) {
  Watched watched("empycustom" + module_arg("counter.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 8, 8);
  ASSERT_TRUE(push_and_pull(harness.get(), patterned_frame("RGBA", 8, 8)));
  EXPECT_FALSE(PyGILState_Check());
  // Another thread can take the GIL while the element is playing.
  std::atomic<bool> took_gil{false};
  GThread* thread = g_thread_new("gil-taker", [](gpointer data) -> gpointer {
    emi::python::GilGuard gil;
    static_cast<std::atomic<bool>*>(data)->store(PyGILState_Check() != 0);
    return nullptr;
  }, &took_gil);
  g_thread_join(thread);
  EXPECT_TRUE(took_gil.load());
}

#if defined(__SANITIZE_ADDRESS__)
extern "C" void __sanitizer_purge_allocator();
#endif

long resident_kib() {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed blocks in a quarantine of up to 256 MiB before reusing them: that
  // is the sanitizer's memory, not the element's, and it made the RSS grow or not with test order.
  __sanitizer_purge_allocator();
#endif
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(EmPyCustom, KeepsMemoryFlatOverTenThousandFrames) {
  Watched watched("empycustom" + module_arg("seed_style.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 64, 48);
  auto run_frames = [&](int count) {
    for (int i = 0; i < count; ++i) {
      GstBuffer* frame = patterned_frame("RGBA", 64, 48, i);
      gst_buffer_add_video_region_of_interest_meta(frame, "swan", 4, 4, 16, 16);
      UniqueBuffer out = push_and_pull(harness.get(), frame);
      ASSERT_TRUE(out);
    }
  };
  // seed_style.py prints on every frame: keep that out of the test log.
  const int saved_stdout = dup(STDOUT_FILENO);
  FILE* devnull = fopen("/dev/null", "w");
  dup2(fileno(devnull), STDOUT_FILENO);
  run_frames(2000);  // warm-up: caches, allocator pools, Python's free lists
  const long after_warm_up = resident_kib();
  run_frames(8000);
  const long after_all = resident_kib();
  dup2(saved_stdout, STDOUT_FILENO);
  fclose(devnull);
  close(saved_stdout);
  EXPECT_EQ(watched.counter("processed"), 10000u);
  EXPECT_EQ(watched.counter("errors"), 0u);
  // A leak of one 12 KiB frame, or of the document, per frame would add 8000 * that.
  EXPECT_LT(after_all - after_warm_up, 2048) << "RSS grew from " << after_warm_up << " KiB to "
                                             << after_all << " KiB";
}

TEST(EmPyCustom, SurvivesAHundredStateCycles) {
  const std::string log = std::string(g_get_tmp_dir()) + "/emi-lifecycle-" +
                          std::to_string(g_random_int()) + ".log";
  UniqueElement pipeline = make_element(
      "videotestsrc num-buffers=2 ! video/x-raw,format=RGBA,width=32,height=24 ! "
      "empycustom name=custom options={\"log\":\"" + log + "\"}" + module_arg("lifecycle.py") +
      " ! fakesink");
  for (int cycle = 0; cycle < 100; ++cycle) {
    ASSERT_NE(gst_element_set_state(pipeline.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    GstState state;
    ASSERT_EQ(gst_element_get_state(pipeline.get(), &state, nullptr, 5 * GST_SECOND),
              GST_STATE_CHANGE_SUCCESS);
    ASSERT_EQ(gst_element_set_state(pipeline.get(), GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  }
  std::ifstream lines(log);
  int starts = 0;
  int stops = 0;
  for (std::string word; std::getline(lines, word);) {
    starts += word == "start";
    stops += word == "stop";
  }
  EXPECT_EQ(starts, 100);
  EXPECT_EQ(stops, 100);
  std::remove(log.c_str());
}

TEST(EmPyCustom, DocumentSurvivesTeeQueueAndCopies) {
  UniqueElement pipeline = make_element(
      "videotestsrc num-buffers=3 ! video/x-raw,format=RGBA,width=32,height=24 ! "
      "empycustom" + module_arg("counter.py") + " ! tee name=t "
      "t. ! queue ! videoconvert ! video/x-raw,format=BGRA ! appsink name=a sync=false "
      "t. ! queue ! appsink name=b sync=false");
  ASSERT_NE(gst_element_set_state(pipeline.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  for (const char* sink_name : {"a", "b"}) {
    UniqueElement sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), sink_name));
    for (int i = 0; i < 3; ++i) {
      GstSample* sample = nullptr;
      g_signal_emit_by_name(sink.get(), "pull-sample", &sample);
      ASSERT_NE(sample, nullptr) << sink_name;
      // A deep copy made writable, as an element that draws would do.
      UniqueBuffer copy(gst_buffer_copy_deep(gst_sample_get_buffer(sample)));
      gst_sample_unref(sample);
      const json frame = frame_of(copy.get());
      EXPECT_EQ(frame["frame_num"], i) << sink_name;
      EXPECT_EQ(frame["emcustom"][0]["calls"], i + 1) << sink_name;
    }
  }
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
}

}  // namespace
}  // namespace emi::test
