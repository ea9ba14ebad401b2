// SPDX-License-Identifier: LGPL-2.1-or-later
// emaimeta: signals out (file, bus), the signal callback off the streaming thread, action rules,
// errors, and the record action end to end.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gst_test_support.h"
#include "embed/python_host.h"

namespace emi::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path scratch_dir(const std::string& name) {
  // Per process: several runs of this test may share the temporary folder.
  const fs::path dir = fs::path(testing::TempDir()) / ("emaimeta_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<json> json_lines(const fs::path& path) {
  std::vector<json> lines;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) lines.push_back(json::parse(line));
  return lines;
}

// A frame carrying a document with one frame-level result, as an empycustom 3DCNN program writes.
GstBuffer* frame_with_result(guint64 index, double probability) {
  GstBuffer* buffer = patterned_frame("RGBA", 32, 32, static_cast<int>(index), index * GST_SECOND / 30);
  json document = build_document(buffer, {index, 32, 32});
  document["frame"][0]["emcustom"] = json::array({{{"predicted_class", "marching"}, {"probability", probability}}});
  write_document(buffer, std::move(document));
  return buffer;
}

fs::path write_stream_config(const fs::path& dir, const json& rules) {
  const fs::path path = dir / "stream.json";
  std::ofstream(path) << json{{"stream_id", "cam1"}, {"stream_type", "file"}, {"action_rules", rules}}.dump();
  return path;
}

const json kRecordOver20 = json::array({{{"rule_name", "3DCNN Classification"},
                                         {"and", {{{"key", "probability"}, {"operator", ">="}, {"value", 20}}}},
                                         {"or", json::array()},
                                         {"action", {{"action_name", "record"}, {"duration_in_seconds", 1},
                                                     {"max_duration_in_seconds", 60}}}}});

std::vector<json> messages_named(Watched& watched, const char* name) {
  std::vector<json> documents;
  for (MessagePtr& message : watched.take(GST_MESSAGE_ELEMENT)) {
    const GstStructure* structure = gst_message_get_structure(message.get());
    if (gst_structure_has_name(structure, name))
      documents.push_back(json::parse(gst_structure_get_string(structure, kDocumentField)));
  }
  return documents;
}

TEST(EmAiMeta, SignalsGoToTheFileAndTheBusEveryIntervalFrames) {
  const fs::path dir = scratch_dir("signals");
  Watched watched("emaimeta signal-interval=2 location=" + (dir / "out.jsonl").string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  std::vector<json> sent;
  for (guint64 index = 0; index < 6; ++index) {
    GstBuffer* frame = frame_with_result(index, 10.0 * index);
    if (index % 2 == 0) sent.push_back(read_document(frame).value());
    UniqueBuffer out = push_and_pull(harness.get(), frame);
    ASSERT_TRUE(out);
  }
  const std::vector<json> lines = json_lines(dir / "out.jsonl");
  EXPECT_EQ(lines, sent);  // each line is the frame document as it was attached
  EXPECT_EQ(messages_named(watched, "emi-signal"), sent);
  EXPECT_EQ(watched.counter("signals"), 3u);
}

TEST(EmAiMeta, AFrameWithoutDocumentSignalsItsFrameFields) {
  const fs::path dir = scratch_dir("bare");
  Watched watched("emaimeta location=" + (dir / "out.jsonl").string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  ASSERT_TRUE(push_and_pull(harness.get(), patterned_frame("RGBA", 32, 32, 0, 5 * GST_SECOND)));
  const std::vector<json> lines = json_lines(dir / "out.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["frame"][0]["buf_pts"].get<guint64>(), 5 * GST_SECOND);
  EXPECT_EQ(lines[0]["frame"][0]["source_frame_width"], 32);
  EXPECT_TRUE(lines[0]["frame"][0]["timestamp"].is_string());
}

constexpr char kAccessKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string file_text(const fs::path& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

// An upload rule whose Firehose is unreachable (the discard port): its firings are what is tested.
json unreachable_upload_rule(json conditions) {
  return json::array({{{"rule_name", "Marching"},
                       {"and", std::move(conditions)},
                       {"action", {{"action_name", "upload"}, {"deliveryStreamName", "s"},
                                   {"accessKey", kAccessKey}, {"secretKey", kSecretKey}, {"region", "us-east-1"},
                                   {"endpoint", "http://127.0.0.1:9/"}}}}});
}

// Its spool in the test's folder, and EOS not waiting for deliveries that can't happen.
std::string unreachable_upload_settings(const fs::path& dir) {
  return " spool-dir=" + (dir / "spool").string() + " upload-timeout=0";
}

TEST(EmAiMeta, CallbackEventsFireRulesAndFiringsAreLogged) {
  const fs::path dir = scratch_dir("callback");
  Watched watched("emaimeta location=" + (dir / "out.jsonl").string() + " callback-module=" +
                  script("signal_callback.py") + " stream-config=" +
                  write_stream_config(dir, unreachable_upload_rule({{{"key", "probability"}, {"operator", ">="},
                                                                     {"value", 20}}}))
                      .string() +
                  unreachable_upload_settings(dir));
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  for (guint64 index = 0; index < 4; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 15.0 * index)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());  // drains the callback's queue

  EXPECT_EQ(watched.counter("events"), 4u);
  EXPECT_EQ(watched.counter("firings"), 2u);  // probabilities 30 and 45
  const std::vector<json> fired = messages_named(watched, "emi-action-fired");
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0]["rule_name"], "Marching");
  EXPECT_EQ(fired[0]["event"]["probability"], 30.0);
  EXPECT_EQ(fired[1]["frame_num"], 3);
  int event_lines = 0, firing_lines = 0;
  for (const json& line : json_lines(dir / "out.jsonl")) {
    if (line.contains("events")) {
      ++event_lines;
      EXPECT_EQ(line["debug"], "frame " + std::to_string(line["frame_num"].get<int>()));
    }
    if (line.contains("firing")) ++firing_lines;
  }
  EXPECT_EQ(event_lines, 4);
  EXPECT_EQ(firing_lines, 2);
  // The access key masked, the secret key nowhere: not in the file, not on the bus.
  EXPECT_EQ(fired[0]["action"]["accessKey"], "****MPLE");
  EXPECT_EQ(fired[0]["action"]["secretKey"], "(hidden)");
  const std::string written = file_text(dir / "out.jsonl");
  EXPECT_EQ(written.find("wJalrXUtnFEMI"), std::string::npos);
  EXPECT_EQ(written.find("AKIAIOSFODNN7"), std::string::npos);
  EXPECT_NE(written.find("****MPLE"), std::string::npos);
  // A user-data file: not readable by others.
  EXPECT_EQ(fs::status(dir / "out.jsonl").permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
}

TEST(EmAiMeta, WithoutCallbackTheRecordsAreTheEvents) {
  const fs::path dir = scratch_dir("records");
  Watched watched("emaimeta stream-config=" +
                  write_stream_config(dir, unreachable_upload_rule(
                                               {{{"key", "predicted_class"}, {"operator", "="}, {"value", "marching"}},
                                                {{"key", "probability"}, {"operator", ">"}, {"value", 20}}}))
                      .string() +
                  unreachable_upload_settings(dir));
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  for (guint64 index = 0; index < 3; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 20.0 * index)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("events"), 3u);
  EXPECT_EQ(watched.counter("firings"), 1u);  // 40 > 20; 20 is not
}

TEST(EmAiMeta, AnUploadRuleWithoutKeysFiresAndSaysWhyItSendsNothing) {
  const fs::path dir = scratch_dir("nokeys");
  // No keys anywhere the AWS SDKs look: not the environment, not ~/.aws (a developer's real keys).
  for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                           "AWS_REGION", "AWS_DEFAULT_REGION"})
    g_unsetenv(name);
  for (const char* name : {"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"})
    g_setenv(name, (dir / "no-such-aws-file").c_str(), TRUE);
  // The seed's rule as EDGEMATRIX ships it: the keys are its device agent's business.
  Watched watched("emaimeta spool-dir=" + (dir / "spool").string() + " stream-config=" +
                  write_stream_config(dir, {{{"rule_name", "Upload to AWS Kinesis Firehose"},
                                             {"and", {{{"key", "probability"}, {"operator", ">"}, {"value", 20}}}},
                                             {"action", {{"action_name", "upload"}, {"deliveryStreamName", "trafficStream"},
                                                         {"accessKey", ""}, {"secretKey", ""}, {"region", ""}}}}})
                      .string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(0, 50)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("firings"), 1u);
  const std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  const std::string message = text_of(warnings[0].get()).message;
  EXPECT_EQ(message.rfind("rule \"Upload to AWS Kinesis Firehose\" can't upload: ", 0), 0u) << message;
}

TEST(EmAiMeta, ASlowCallbackNeverStallsTheVideo) {
  const fs::path dir = scratch_dir("slow");
  Watched watched("emaimeta callback-module=" + script("signal_callback.py") +
                  " callback-function=waits_for_release location=" + (dir / "out.jsonl").string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  // The callback blocks on the first signal; every frame still comes out.
  for (guint64 index = 0; index < 20; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 1)));
  EXPECT_EQ(watched.counter("events"), 0u);
  EXPECT_EQ(json_lines(dir / "out.jsonl").size(), 20u);  // the signals are already written
  {
    python::ensure_started();
    python::GilGuard gil;
    for (auto module : pybind11::module_::import("sys").attr("modules").attr("values")()) {
      if (pybind11::hasattr(module, "waits_for_release")) module.attr("release").attr("set")();
    }
  }
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("events"), 20u);  // none lost
  EXPECT_EQ(watched.counter("dropped-signals"), 0u);
  EXPECT_EQ(watched.counter("paced-frames"), 0u);  // pace=auto, a live source, no record rule: never
}

TEST(EmAiMeta, ACallbackThatRaisesIsReportedAndTheStreamGoesOn) {
  Watched watched("emaimeta callback-module=" + script("signal_callback.py") + " callback-function=raises");
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  for (guint64 index = 0; index < 3; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 1)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("callback-errors"), 1u);
  EXPECT_EQ(watched.counter("events"), 2u);
  const std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  const MessageText text = text_of(warnings[0].get());
  EXPECT_NE(text.message.find("raises() of " + script("signal_callback.py")), std::string::npos) << text.message;
  EXPECT_NE(text.message.find("KeyError"), std::string::npos) << text.message;
  EXPECT_NE(text.debug.find("Traceback"), std::string::npos);
}

TEST(EmAiMeta, ACallbackThatReturnsGarbageIsReported) {
  Watched watched("emaimeta callback-module=" + script("signal_callback.py") + " callback-function=wrong_shape");
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(0, 1)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  const std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  const std::string message = text_of(warnings[0].get()).message;
  EXPECT_NE(message.find(script("signal_callback.py")), std::string::npos) << message;
  EXPECT_NE(message.find("events of type int"), std::string::npos) << message;
  EXPECT_EQ(watched.counter("callback-errors"), 1u);
}

TEST(EmAiMeta, AValueErrorEventStopsTheStream) {
  Watched watched("emaimeta callback-module=" + script("signal_callback.py") + " callback-function=stops_the_app");
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(0, 1)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());  // waits for the callback
  const std::vector<MessagePtr> errors = watched.take(GST_MESSAGE_ERROR);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(text_of(errors[0].get()).message.find("camera 3 is not configured"), std::string::npos);
  // Past the EOS (a flush that keeps the segment), the element refuses frames.
  gst_harness_push_event(harness.get(), gst_event_new_flush_start());
  gst_harness_push_event(harness.get(), gst_event_new_flush_stop(FALSE));
  EXPECT_EQ(gst_harness_push(harness.get(), frame_with_result(1, 1)), GST_FLOW_ERROR);
}

// Start fails with an error that names the file and the cause.
std::string start_error(const std::string& description) {
  Watched watched(description);
  EXPECT_EQ(gst_element_set_state(watched.element.get(), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  const std::vector<MessagePtr> errors = watched.take(GST_MESSAGE_ERROR);
  if (errors.empty()) return "";
  return text_of(errors[0].get()).message;
}

TEST(EmAiMeta, BadSettingsFailAtStartNamingFileAndCause) {
  const fs::path dir = scratch_dir("bad");
  json rules = kRecordOver20;
  rules[0]["and"][0]["operator"] = "~";
  const fs::path config = write_stream_config(dir, rules);
  EXPECT_EQ(start_error("emaimeta stream-config=" + config.string()),
            config.string() + ": action_rules[0] (\"3DCNN Classification\"): and[0].operator: unknown operator "
                              "\"~\" (use =, ==, !=, >, >=, < or <=)");
  EXPECT_EQ(start_error("emaimeta stream-config=" + (dir / "none.json").string()),
            (dir / "none.json").string() + ": can't open the stream config");
  EXPECT_EQ(start_error("emaimeta callback-module=" + (dir / "missing.py").string()),
            (dir / "missing.py").string() + ": no such file");
  EXPECT_EQ(start_error("emaimeta callback-module=" + script("signal_callback.py") + " callback-function=nope"),
            script("signal_callback.py") + " has no function nope()");
  EXPECT_NE(start_error("emaimeta callback-module=" + script("syntax_error.py")).find("SyntaxError"), std::string::npos);
  EXPECT_NE(start_error("emaimeta location=" + (dir / "no" / "such" / "dir" / "x.jsonl").string())
                .find("can't open for writing"),
            std::string::npos);
}

TEST(EmAiMeta, TracksEndedAtEosBecomeASignal) {
  Watched watched("emaimeta callback-module=" + script("signal_callback.py"));
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(0, 1)));
  const json ended = {{"frame", {{{"frame_num", 0}, {"timestamp", "T"},
                                  {"object", {{{"object_id", 4}, {"tracking_ended_time", "T"},
                                               {"tracking_duration_in_seconds", 2.0}}}}}}}};
  gst_harness_push_event(harness.get(),
                         gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                              gst_structure_new(kEndedTracksName, kDocumentField, G_TYPE_STRING,
                                                                ended.dump().c_str(), nullptr)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("signals"), 2u);
  EXPECT_EQ(watched.counter("events"), 2u);  // the frame's result and the ended track
}

// Runs a whole pipeline (a non-live source: the recorder gets every frame) to EOS.
void run_to_eos(Watched& watched) {
  ASSERT_NE(gst_element_set_state(watched.element.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  // Other messages stay for take(): timed_pop_filtered would drop them.
  for (;;) {
    MessagePtr message(gst_bus_timed_pop(watched.bus.get(), 60 * GST_SECOND));
    ASSERT_TRUE(message) << "no EOS within a minute";
    if (GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_ERROR) FAIL() << text_of(message.get()).message;
    if (GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_EOS) return;
    watched.unread.push_back(std::move(message));
  }
}

TEST(EmAiMeta, RecordRulesWriteClipsAroundEvents) {
  const fs::path dir = scratch_dir("record");
  json rules = kRecordOver20;  // frame_result.py: probability = frame_num, so one event at 1.5 s
  rules[0]["and"] = {{{"key", "probability"}, {"operator", "=="}, {"value", 45}}};
  Watched watched("videotestsrc num-buffers=90 ! video/x-raw,format=RGBA,width=64,height=48,framerate=30/1 ! "
                  "empycustom module=" + script("frame_result.py") + " ! emaimeta name=aimeta record-dir=" +
                  (dir / "clips").string() + " stream-config=" + write_stream_config(dir, rules).string() +
                  " ! fakesink");
  run_to_eos(watched);
  UniqueElement aimeta(gst_bin_get_by_name(GST_BIN(watched.element.get()), "aimeta"));
  guint64 firings = 0;
  g_object_get(aimeta.get(), "firings", &firings, nullptr);
  EXPECT_EQ(firings, 1u);
  std::vector<fs::path> clips;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir / "clips"))
    if (entry.path().extension() == ".mp4") clips.push_back(entry.path());
  ASSERT_EQ(clips.size(), 1u);
  EXPECT_EQ(clips[0].filename().string().rfind("cam1_", 0), 0u) << clips[0];
  EXPECT_EQ(clips[0].filename().string().substr(clips[0].filename().string().size() - 6), "_1.mp4") << clips[0];
  fs::path sidecar = clips[0];
  sidecar.replace_extension(".json");
  ASSERT_TRUE(fs::exists(sidecar));
  const std::vector<json> recorded = messages_named(watched, "emi-clip-recorded");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0]["path"], clips[0].string());
  EXPECT_EQ(recorded[0]["events"], 1);
  // The rule asks for 0.5 s to 2.5 s: the clip starts on a key frame at or before 0.5 s (one a
  // second) and ends with the window.
  EXPECT_LE(recorded[0]["start_pts"].get<guint64>(), GST_SECOND / 2);
  EXPECT_GE(recorded[0]["end_pts"].get<guint64>(), 2 * GST_SECOND + GST_SECOND / 2 - GST_SECOND / 30);
  EXPECT_FALSE(recorded[0]["cut_short"].get<bool>());
  EXPECT_TRUE(watched.take(GST_MESSAGE_WARNING).empty());
  // pace=auto, a file and a record rule: every frame waited for its signal to be handled.
  guint64 paced = 0;
  g_object_get(aimeta.get(), "paced-frames", &paced, nullptr);
  EXPECT_EQ(paced, 90u);
}

// A raw-video pipeline with frame_result.py's results (probability = frame_num) into emaimeta.
std::string pipeline_into(const std::string& source, const std::string& emaimeta) {
  return source + " ! empycustom module=" + script("frame_result.py") + " ! emaimeta name=aimeta " + emaimeta +
         " ! fakesink";
}

guint64 aimeta_counter(Watched& watched, const char* name) {
  UniqueElement aimeta(gst_bin_get_by_name(GST_BIN(watched.element.get()), "aimeta"));
  guint64 value = 0;
  g_object_get(aimeta.get(), name, &value, nullptr);
  return value;
}

TEST(EmAiMeta, ARestartAppendsToWhatTheElementWrote) {
  const fs::path dir = scratch_dir("restart");
  Watched watched(pipeline_into("videotestsrc num-buffers=3 ! video/x-raw,format=RGBA,width=32,height=32",
                                "location=" + (dir / "out.jsonl").string()));
  run_to_eos(watched);
  // What an app does when its camera reconnects: NULL, then PLAYING again.
  ASSERT_EQ(gst_element_set_state(watched.element.get(), GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  run_to_eos(watched);
  const std::vector<json> lines = json_lines(dir / "out.jsonl");
  ASSERT_EQ(lines.size(), 6u);  // was 3: the restart truncated the first run's
  EXPECT_EQ(lines[0]["frame"][0]["frame_num"], 0);
  EXPECT_EQ(lines[3]["frame"][0]["frame_num"], 0);
}

TEST(EmAiMeta, AppendKeepsAnEarlierRunsLinesAndDropsATornLastLine) {
  const fs::path dir = scratch_dir("append");
  const fs::path output = dir / "out.jsonl";
  // An earlier process killed mid-write: two lines, and part of a third.
  std::ofstream(output) << "{\"earlier\": 1}\n{\"earlier\": 2}\n{\"frame\": [{\"frame_n";
  Watched watched(pipeline_into("videotestsrc num-buffers=2 ! video/x-raw,format=RGBA,width=32,height=32",
                                "append=true location=" + output.string()));
  run_to_eos(watched);
  const std::vector<json> lines = json_lines(output);  // each line parses: nothing merged
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1]["earlier"], 2);
  EXPECT_EQ(lines[2]["frame"][0]["frame_num"], 0);
  const std::vector<MessagePtr> warnings = watched.take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(text_of(warnings[0].get()).message.find("last line was incomplete"), std::string::npos)
      << text_of(warnings[0].get()).message;
}

// What a recorded clip decodes to: its frames, or -1 when it does not play.
int decoded_frames(const std::string& path) {
  Watched decode("filesrc location=\"" + path + "\" ! qtdemux ! h264parse ! openh264dec ! fakesink name=out");
  int frames = 0;
  UniqueElement sink(gst_bin_get_by_name(GST_BIN(decode.element.get()), "out"));
  GstPad* pad = gst_element_get_static_pad(sink.get(), "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad*, GstPadProbeInfo*, gpointer count) {
                      ++*static_cast<int*>(count);
                      return GST_PAD_PROBE_OK;
                    },
                    &frames, nullptr);
  gst_object_unref(pad);
  gst_element_set_state(decode.element.get(), GST_STATE_PLAYING);
  MessagePtr end(gst_bus_timed_pop_filtered(decode.bus.get(), 30 * GST_SECOND,
                                            static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
  gst_element_set_state(decode.element.get(), GST_STATE_NULL);
  if (!end || GST_MESSAGE_TYPE(end.get()) == GST_MESSAGE_ERROR) {
    if (end) ADD_FAILURE() << path << ": " << text_of(end.get()).message << " " << text_of(end.get()).debug;
    return -1;
  }
  return frames;
}

GstBuffer* frame_at(guint64 index, double probability, int width = 32, int height = 32) {
  GstBuffer* buffer = patterned_frame("RGBA", width, height, static_cast<int>(index), index * GST_SECOND / 30);
  json document = build_document(buffer, {index, width, height});
  document["frame"][0]["emcustom"] = json::array({{{"predicted_class", "marching"}, {"probability", probability}}});
  write_document(buffer, std::move(document));
  return buffer;
}

TEST(EmAiMeta, AFlushResetsTheClipStateForABackwardSeek) {
  const fs::path dir = scratch_dir("seek");
  json rules = kRecordOver20;  // 1 s before and after
  rules[0]["and"] = {{{"key", "probability"}, {"operator", "=="}, {"value", 30}}};
  Watched watched("emaimeta pace=always record-dir=" + (dir / "clips").string() +
                  " stream-config=" + write_stream_config(dir, rules).string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  for (guint64 index = 0; index < 45; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_at(index, index)));
  // A seek back to the start: the same PTS again, with the clip of the first event still open.
  gst_harness_push_event(harness.get(), gst_event_new_flush_start());
  gst_harness_push_event(harness.get(), gst_event_new_flush_stop(TRUE));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(harness.get(), gst_event_new_segment(&segment));
  for (guint64 index = 0; index < 45; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_at(index, index)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());

  const std::vector<json> clips = messages_named(watched, "emi-clip-recorded");
  ASSERT_EQ(clips.size(), 2u);
  for (const json& clip : clips) {
    SCOPED_TRACE(clip.dump());
    EXPECT_TRUE(clip["cut_short"].get<bool>());  // by the seek, then by the end of the stream
    EXPECT_LE(clip["start_pts"].get<guint64>(), clip["end_pts"].get<guint64>());
    EXPECT_LE(clip["end_pts"].get<guint64>(), 44 * GST_SECOND / 30);
    EXPECT_EQ(decoded_frames(clip["path"]), clip["frames"].get<int>());
  }
  EXPECT_TRUE(watched.take(GST_MESSAGE_WARNING).empty());
  EXPECT_EQ(watched.counter("lost-clips"), 0u);
}

TEST(EmAiMeta, CapsRenegotiatedWhileARecordRuleFiresIsSafe) {
  const fs::path dir = scratch_dir("renegotiate");
  json rules = kRecordOver20;
  rules[0]["and"] = {{{"key", "probability"}, {"operator", ">="}, {"value", 0}}};  // every frame
  // A live source: frames never wait, so the engine's worker fires while the caps change.
  Watched watched("emaimeta pace=never record-dir=" + (dir / "clips").string() +
                  " stream-config=" + write_stream_config(dir, rules).string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  guint64 index = 0;
  for (int change = 0; change < 12; ++change) {
    const int size = change % 2 == 0 ? 32 : 48;
    gst_harness_set_src_caps_str(harness.get(), ("video/x-raw,format=RGBA,width=" + std::to_string(size) +
                                                 ",height=" + std::to_string(size) + ",framerate=30/1").c_str());
    for (int frame = 0; frame < 4; ++frame, ++index)
      ASSERT_TRUE(push_and_pull(harness.get(), frame_at(index, 50, size, size)));
  }
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("firings"), index);
  const std::vector<json> clips = messages_named(watched, "emi-clip-recorded");
  EXPECT_FALSE(clips.empty());
  for (const json& clip : clips) EXPECT_TRUE(fs::exists(clip["path"].get<std::string>()));
}

// pace=always: a frame comes back only once the callback and the rules have handled its signal.
TEST(EmAiMeta, PaceAlwaysHoldsEachFrameUntilItsSignalIsHandled) {
  const fs::path dir = scratch_dir("pace");
  Watched watched("emaimeta pace=always callback-module=" + script("paced_callback.py") +
                  " callback-function=sees_pushes location=" + (dir / "out.jsonl").string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  python::ensure_started();
  for (guint64 index = 0; index < 5; ++index) {
    ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 1)));
    python::GilGuard gil;
    for (auto module : pybind11::module_::import("sys").attr("modules").attr("values")()) {
      if (pybind11::hasattr(module, "sees_pushes")) module.attr("returned") = index + 1;
    }
  }
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  EXPECT_EQ(watched.counter("paced-frames"), 5u);
  // The callback of frame n ran before frame n came back: it saw n frames returned.
  int checked = 0;
  for (const json& line : json_lines(dir / "out.jsonl")) {
    if (!line.contains("events")) continue;
    EXPECT_EQ(line["events"][0]["returned"], line["events"][0]["frame_num"]) << line;
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// Calls `function` on each loaded copy of paced_callback.py.
void on_paced_callback(const std::function<void(pybind11::handle module)>& function) {
  python::ensure_started();
  python::GilGuard gil;
  for (auto module : pybind11::module_::import("sys").attr("modules").attr("values")()) {
    if (pybind11::hasattr(module, "waits_until_released")) function(module);
  }
}

// Events of frames before a seek, handled after it, are of the old timeline: they make no clip.
TEST(EmAiMeta, EventsFromBeforeASeekMakeNoClipAfterIt) {
  const fs::path dir = scratch_dir("stale");
  json rules = kRecordOver20;
  rules[0]["and"] = {{{"key", "frame_num"}, {"operator", ">="}, {"value", 0}}};
  Watched watched("emaimeta pace=never callback-module=" + script("paced_callback.py") +
                  " callback-function=waits_until_released record-dir=" + (dir / "clips").string() +
                  " stream-config=" + write_stream_config(dir, rules).string());
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  on_paced_callback([](pybind11::handle module) { module.attr("held").attr("clear")(); });
  for (guint64 index = 0; index < 10; ++index) ASSERT_TRUE(push_and_pull(harness.get(), frame_at(index, 1)));
  gst_harness_push_event(harness.get(), gst_event_new_flush_start());
  gst_harness_push_event(harness.get(), gst_event_new_flush_stop(TRUE));
  on_paced_callback([](pybind11::handle module) { module.attr("held").attr("set")(); });
  gst_harness_push_event(harness.get(), gst_event_new_eos());  // the 10 signals are handled now
  EXPECT_EQ(watched.counter("firings"), 10u);
  EXPECT_TRUE(messages_named(watched, "emi-clip-recorded").empty());
  EXPECT_EQ(watched.counter("lost-clips"), 0u);
  EXPECT_TRUE(watched.take(GST_MESSAGE_WARNING).empty());
}

// Record rule: a clip from the event at frame `frame` on, `seconds` before and after it.
json record_at_frame(int frame, double seconds) {
  json rules = kRecordOver20;
  rules[0]["and"] = {{{"key", "probability"}, {"operator", "=="}, {"value", frame}}};
  rules[0]["action"]["duration_in_seconds"] = seconds;
  rules[0]["action"]["max_duration_in_seconds"] = seconds;
  return rules;
}

std::vector<fs::path> files_with_extension(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error))
    if (entry.path().extension() == extension) found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  return found;
}

std::size_t occurrences(const std::string& text, const std::string& word) {
  std::size_t count = 0;
  for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++count;
  return count;
}

// The process AClipOfAProcessKilledMidClipPlays kills: records a live source until killed.
TEST(EmAiMeta, DISABLED_RecordsUntilKilled) {
  const char* dir_text = std::getenv("EMI_KILLED_DIR");
  if (dir_text == nullptr) GTEST_SKIP() << "run by AClipOfAProcessKilledMidClipPlays";
  const fs::path dir = dir_text;
  Watched watched(pipeline_into("videotestsrc is-live=true pattern=ball ! "
                                "video/x-raw,format=RGBA,width=160,height=120,framerate=30/1",
                                "location=" + (dir / "out.jsonl").string() + " record-dir=" + (dir / "clips").string() +
                                    " stream-config=" + (dir / "stream.json").string()));
  ASSERT_NE(gst_element_set_state(watched.element.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  MessagePtr error(gst_bus_timed_pop_filtered(watched.bus.get(), GST_CLOCK_TIME_NONE, GST_MESSAGE_ERROR));
  FAIL() << text_of(error.get()).message;
}

TEST(EmAiMeta, AClipOfAProcessKilledMidClipPlays) {
  const fs::path dir = scratch_dir("killed");
  write_stream_config(dir, record_at_frame(10, 60));  // a clip from 0 s to 60 s: killed long before
  gchar** environment = g_environ_setenv(g_get_environ(), "EMI_KILLED_DIR", dir.c_str(), TRUE);
  const gchar* arguments[] = {"/proc/self/exe", "--gtest_filter=EmAiMeta.DISABLED_RecordsUntilKilled",
                              "--gtest_also_run_disabled_tests", nullptr};
  GPid child = 0;
  GError* error = nullptr;
  const gboolean spawned = g_spawn_async(nullptr, const_cast<gchar**>(arguments), environment,
                                         G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &child, &error);
  g_strfreev(environment);
  ASSERT_TRUE(spawned) << error->message;

  // Until the clip being written has two complete fragments on disk (a fragment a second).
  fs::path clip;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::vector<fs::path> clips = files_with_extension(dir / "clips", ".mp4");
    if (!clips.empty() && occurrences(file_text(clips[0]), "moof") >= 2) {
      clip = clips[0];
      break;
    }
    g_usleep(20'000);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  g_spawn_close_pid(child);
  ASSERT_FALSE(clip.empty()) << "no clip with two fragments within a minute";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the recorder ended before it was killed";

  // The clip plays: at least the frames of its two complete fragments decode.
  EXPECT_GE(decoded_frames(clip.string()), 30) << clip;
  // Its sidecar, written when it started, lists its event.
  fs::path sidecar = clip;
  sidecar.replace_extension(".json");
  const json partial = json::parse(file_text(sidecar));
  EXPECT_EQ(partial["complete"], false);
  EXPECT_EQ(partial["events"].size(), 1u);

  // A second run appends to the signals (the killed run's torn last line, if any, dropped) and
  // names its clip after the killed run's: nothing is overwritten.
  Watched again(pipeline_into("videotestsrc num-buffers=20 ! video/x-raw,format=RGBA,width=160,height=120",
                              "append=true location=" + (dir / "out.jsonl").string() + " record-dir=" +
                                  (dir / "clips").string() + " stream-config=" + (dir / "stream.json").string()));
  run_to_eos(again);
  const std::vector<json> lines = json_lines(dir / "out.jsonl");  // every line parses
  EXPECT_GT(lines.size(), 20u);
  const std::vector<fs::path> clips = files_with_extension(dir / "clips", ".mp4");
  ASSERT_EQ(clips.size(), 2u);
  const std::vector<json> recorded = messages_named(again, "emi-clip-recorded");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0]["id"], 2);
  EXPECT_NE(recorded[0]["path"], clip.string());
  EXPECT_GE(decoded_frames(clip.string()), 30) << "the killed run's clip was overwritten";
}

TEST(EmAiMeta, AFullDiskIsCountedAndReportedNotACrash) {
  const fs::path dir = scratch_dir("full");
  write_stream_config(dir, record_at_frame(5, 2));
  // Files may not grow past 16 KiB (the signals reach it after ~40 frames, the clip with its first
  // fragment): writes fail with EFBIG as they would with ENOSPC.
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const struct rlimit small { 16 * 1024, saved.rlim_max };
  void (*saved_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Watched watched(pipeline_into("videotestsrc num-buffers=90 pattern=snow ! "
                                "video/x-raw,format=RGBA,width=320,height=240,framerate=30/1",
                                "location=" + (dir / "out.jsonl").string() + " record-dir=" + (dir / "clips").string() +
                                    " stream-config=" + (dir / "stream.json").string()));
  run_to_eos(watched);
  const guint64 lost_signals = aimeta_counter(watched, "lost-signals");
  const guint64 lost_clips = aimeta_counter(watched, "lost-clips");
  gst_element_set_state(watched.element.get(), GST_STATE_NULL);
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);

  EXPECT_GT(lost_signals, 0u);
  EXPECT_EQ(lost_clips, 1u);
  const std::vector<json> lines = json_lines(dir / "out.jsonl");  // each line whole: none cut
  EXPECT_EQ(lines.size() + lost_signals, 90u + 90 + 1);  // each signal, its events' line, and the firing
  int write_warnings = 0;
  int clip_warnings = 0;
  for (const MessagePtr& warning : watched.take(GST_MESSAGE_WARNING)) {
    const std::string message = text_of(warning.get()).message;
    if (message.find("out.jsonl: write failed") != std::string::npos) ++write_warnings;
    if (message.find("record: could not write") != std::string::npos) ++clip_warnings;
  }
  EXPECT_EQ(write_warnings, 1);  // rate-limited: one for the whole burst
  EXPECT_EQ(clip_warnings, 1);
}

// Every batch file of a spool (all its writers' folders), as bytes: the records are in them whole.
std::string spool_bytes(const fs::path& root) {
  std::string bytes;
  std::error_code error;
  for (fs::recursive_directory_iterator entry(root, error), end; !error && entry != end; entry.increment(error))
    if (entry->path().extension() == ".batch") bytes += file_text(entry->path());
  return bytes;
}

struct FiringsSeen {
  fs::path spool;
  int firings = 0;
  int spooled_when_fired = 0;
};

// On the thread that posts it: is the fired event's record in the spool already?
GstBusSyncReply check_spooled_when_fired(GstBus* /*bus*/, GstMessage* message, gpointer data) {
  auto* seen = static_cast<FiringsSeen*>(data);
  const GstStructure* structure = gst_message_get_structure(message);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ELEMENT && gst_structure_has_name(structure, "emi-action-fired")) {
    const json firing = json::parse(gst_structure_get_string(structure, kDocumentField));
    ++seen->firings;
    if (spool_bytes(seen->spool).find(firing["event"].dump()) != std::string::npos) ++seen->spooled_when_fired;
  }
  return GST_BUS_PASS;
}

// A firing in the output (or on the bus) promises its event to Firehose: a kill -9 right after it
// must not lose the event, so the upload's record is spooled (and synced) before the firing is
// written or posted. It was the other way round: a kill between the two lost a fired event.
TEST(EmAiMeta, AnUploadedEventIsSpooledBeforeItsFiringIsReported) {
  const fs::path dir = scratch_dir("order");
  Watched watched("emaimeta location=" + (dir / "out.jsonl").string() + " stream-config=" +
                  write_stream_config(dir, unreachable_upload_rule({{{"key", "probability"}, {"operator", ">="},
                                                                     {"value", 20}}}))
                      .string() +
                  unreachable_upload_settings(dir));
  FiringsSeen seen{dir / "spool" / "s"};
  gst_bus_set_sync_handler(watched.bus.get(), check_spooled_when_fired, &seen, nullptr);
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  for (guint64 index = 0; index < 3; ++index)
    ASSERT_TRUE(push_and_pull(harness.get(), frame_with_result(index, 30.0 + index)));
  gst_harness_push_event(harness.get(), gst_event_new_eos());  // every signal handled
  gst_bus_set_sync_handler(watched.bus.get(), nullptr, nullptr, nullptr);
  EXPECT_EQ(seen.firings, 3);
  EXPECT_EQ(seen.spooled_when_fired, 3);
}

// Records the disk refused wait in memory; those still there when the uploader is destroyed (the
// element stopping) are lost. They are counted in `dropped`, read after the stop as `emi run`
// does; they were only warned about (the count was taken before the uploader was destroyed).
TEST(EmAiMeta, RecordsLostAsTheUploaderStopsAreCountedInDropped) {
  const fs::path dir = scratch_dir("dropped");
  json rules = unreachable_upload_rule({{{"key", "probability"}, {"operator", ">="}, {"value", 20}}});
  rules[0]["action"]["deliveryStreamName"] = "emi-dropped-" + std::to_string(getpid());
  Watched watched("emaimeta stream-config=" + write_stream_config(dir, rules).string() +
                  unreachable_upload_settings(dir));
  HarnessPtr harness = harness_for(watched, "RGBA", 32, 32);
  // Files may not grow past 4 bytes (a batch file's magic is 8): the disk refuses every record.
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const struct rlimit tiny { 4, saved.rlim_max };
  void (*saved_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
  for (guint64 index = 0; index < 3; ++index)
    push_and_pull(harness.get(), frame_with_result(index, 50.0 + index));
  gst_harness_push_event(harness.get(), gst_event_new_eos());
  const guint64 while_running = watched.counter("dropped");
  gst_element_set_state(watched.element.get(), GST_STATE_NULL);  // the uploader is destroyed
  const guint64 after_stop = watched.counter("dropped");
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);

  EXPECT_EQ(while_running, 0u);  // held in memory: not lost yet
  EXPECT_EQ(after_stop, 3u);
  EXPECT_EQ(watched.counter("rejected"), 0u);
  int lost_warnings = 0;
  for (const MessagePtr& warning : watched.take(GST_MESSAGE_WARNING))
    if (text_of(warning.get()).message.find("3 records the disk refused were held in memory and are lost") !=
        std::string::npos)
      ++lost_warnings;
  EXPECT_EQ(lost_warnings, 1);
}

}  // namespace
}  // namespace emi::test
