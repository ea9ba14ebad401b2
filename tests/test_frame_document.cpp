// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame document meta: reading, writing, copying, and objects from ROI metas.
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <glib/gstdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/gst_ptr.h"
#include "document/document_object.h"
#include "document/frame_document.h"
#include "document/vocabulary.h"

namespace emi {
namespace {

using nlohmann::json;

UniqueBuffer small_buffer() { return UniqueBuffer(gst_buffer_new_allocate(nullptr, 16, nullptr)); }

TEST(FrameDocument, AbsentUntilWritten) {
  UniqueBuffer buffer = small_buffer();
  EXPECT_FALSE(read_document(buffer.get()));
  write_document(buffer.get(), {{"frame", {{{"frame_num", 7}}}}});
  EXPECT_EQ(read_document(buffer.get()).value()["frame"][0]["frame_num"], 7);
  write_document(buffer.get(), {{"frame", {{{"frame_num", 8}}}}});  // replaces, never duplicates
  EXPECT_EQ(read_document(buffer.get()).value()["frame"][0]["frame_num"], 8);
}

TEST(FrameDocument, SurvivesCopiesAndMakeWritable) {
  UniqueBuffer buffer = small_buffer();
  write_document(buffer.get(), {{"frame", {{{"frame_num", 3}}}}});
  UniqueBuffer shallow(gst_buffer_copy(buffer.get()));
  UniqueBuffer deep(gst_buffer_copy_deep(buffer.get()));
  EXPECT_EQ(read_document(shallow.get()).value()["frame"][0]["frame_num"], 3);
  EXPECT_EQ(read_document(deep.get()).value()["frame"][0]["frame_num"], 3);
  GstBuffer* shared = gst_buffer_ref(buffer.get());
  UniqueBuffer writable(gst_buffer_make_writable(shared));
  EXPECT_NE(writable.get(), buffer.get());
  write_document(writable.get(), {{"frame", {{{"frame_num", 4}}}}});
  EXPECT_EQ(read_document(writable.get()).value()["frame"][0]["frame_num"], 4);
  EXPECT_EQ(read_document(buffer.get()).value()["frame"][0]["frame_num"], 3);  // copy-on-write
}

// The JSON text as PyGObject apps read and write it.
std::string public_text(GstBuffer* buffer) {
  GstCustomMeta* meta = gst_buffer_get_custom_meta(buffer, kDocumentMetaName);
  return gst_structure_get_string(gst_custom_meta_get_structure(meta), kDocumentField);
}

void replace_public_text(GstBuffer* buffer, const char* text) {
  GstCustomMeta* meta = gst_buffer_get_custom_meta(buffer, kDocumentMetaName);
  gst_structure_set(gst_custom_meta_get_structure(meta), kDocumentField, G_TYPE_STRING, text, nullptr);
}

TEST(FrameDocument, ParsedFormIsReusedAndEqualsTheText) {
  UniqueBuffer buffer = small_buffer();
  const json written = {{"frame", {{{"frame_num", 5}, {"p", 0.1}, {"label", "black swan"}}}}};
  write_document(buffer.get(), written);
  const std::shared_ptr<const json> first = peek_document(buffer.get());
  const std::shared_ptr<const json> second = peek_document(buffer.get());
  EXPECT_EQ(first.get(), second.get());  // no parse, no copy
  EXPECT_EQ(*first, json::parse(public_text(buffer.get())));
  EXPECT_EQ(*first, written);
}

TEST(FrameDocument, TextReplacedByAnAppWins) {
  UniqueBuffer buffer = small_buffer();
  write_document(buffer.get(), {{"frame", {{{"frame_num", 5}}}}});
  ASSERT_TRUE(peek_document(buffer.get()));
  replace_public_text(buffer.get(), R"({"frame": [{"frame_num": 6}]})");
  EXPECT_EQ(peek_document(buffer.get())->at("frame")[0]["frame_num"], 6);
  EXPECT_EQ(take_document(buffer.get()).value()["frame"][0]["frame_num"], 6);
  replace_public_text(buffer.get(), "not json");
  EXPECT_FALSE(peek_document(buffer.get()));
  EXPECT_FALSE(take_document(buffer.get()));
}

TEST(FrameDocument, TakeLeavesCopiesTheirDocument) {
  UniqueBuffer buffer = small_buffer();
  write_document(buffer.get(), {{"frame", {{{"frame_num", 1}}}}});
  UniqueBuffer copy(gst_buffer_copy(buffer.get()));  // shares the parsed form
  json taken = take_document(buffer.get()).value();
  taken["frame"][0]["frame_num"] = 2;
  write_document(buffer.get(), taken);
  EXPECT_EQ(read_document(copy.get()).value()["frame"][0]["frame_num"], 1);
  EXPECT_EQ(take_document(copy.get()).value()["frame"][0]["frame_num"], 1);
  EXPECT_EQ(read_document(buffer.get()).value()["frame"][0]["frame_num"], 2);
  // Taken without writing back: the text is still there and read again.
  EXPECT_EQ(take_document(buffer.get()).value()["frame"][0]["frame_num"], 2);
  EXPECT_EQ(read_document(buffer.get()).value()["frame"][0]["frame_num"], 2);
}

TEST(FrameDocument, InvalidUtf8IsReplacedAlikeInTextAndParsedForm) {
  UniqueBuffer buffer = small_buffer();
  write_document(buffer.get(), {{"frame", {{{"label", "caf\xe9"}}}}});
  const json parsed_text = json::parse(public_text(buffer.get()));
  EXPECT_EQ(parsed_text["frame"][0]["label"], "caf\xef\xbf\xbd");
  EXPECT_EQ(read_document(buffer.get()).value(), parsed_text);
}

TEST(FrameDocument, NonFiniteNumbersBecomeNull) {
  UniqueBuffer buffer = small_buffer();
  write_document(buffer.get(), {{"frame", {{{"p", std::nan("")}}}}});
  EXPECT_TRUE(read_document(buffer.get()).value()["frame"][0]["p"].is_null());
  EXPECT_TRUE(take_document(buffer.get()).value()["frame"][0]["p"].is_null());
}

TEST(FrameDocument, BuildFillsTheFrameAndAddsForeignRois) {
  UniqueBuffer buffer = small_buffer();
  GST_BUFFER_PTS(buffer.get()) = 5 * GST_SECOND;
  GstVideoRegionOfInterestMeta* roi =
      gst_buffer_add_video_region_of_interest_meta(buffer.get(), "person", 1, 2, 3, 4);
  gst_video_region_of_interest_meta_add_param(
      roi, gst_structure_new("detection", "confidence", G_TYPE_DOUBLE, 0.8, nullptr));
  json document = build_document(buffer.get(), {12, 640, 360});
  const json& frame = document["frame"][0];
  EXPECT_EQ(frame["frame_num"], 12);
  EXPECT_EQ(frame["buf_pts"].get<guint64>(), 5 * GST_SECOND);
  EXPECT_EQ(frame["source_frame_width"], 640);
  ASSERT_EQ(frame["object"].size(), 1u);
  EXPECT_EQ(frame["object"][0]["obj_label"], "person");
  EXPECT_EQ(frame["object"][0]["object_id"], -1);
  EXPECT_DOUBLE_EQ(frame["object"][0]["confidence"].get<double>(), 0.8);
  EXPECT_EQ(frame["object"][0]["rect_params"],
            json({{"left", 1}, {"top", 2}, {"width", 3}, {"height", 4}}));
  // A second emi element reads the written document and does not add the ROI again.
  write_document(buffer.get(), document);
  EXPECT_EQ(build_document(buffer.get(), {13, 640, 360})["frame"][0]["object"].size(), 1u);
}

TEST(FrameDocument, KeepsTheFirstElementsFrameFieldsAndDoesNotReadItsOwnRois) {
  UniqueBuffer buffer = small_buffer();
  json document = build_document(buffer.get(), {1, 32, 32});
  json object = {{"obj_label", "car"}, {"rect_params", {{"left", 1}, {"top", 1}, {"width", 2}, {"height", 2}}}};
  document["frame"][0]["object"].push_back(object);
  write_document(buffer.get(), document);
  attach_object_roi(buffer.get(), object, 0);
  const json again = build_document(buffer.get(), {99, 32, 32});
  EXPECT_EQ(again["frame"][0]["frame_num"], 1);
  EXPECT_EQ(again["frame"][0]["timestamp"], document["frame"][0]["timestamp"]);
  EXPECT_EQ(again["frame"][0]["object"].size(), 1u);
}

TEST(FrameDocument, UsesTheNtpReferenceTimestampWhenPresent) {
  UniqueBuffer buffer = small_buffer();
  UniqueCaps ntp(gst_caps_new_empty_simple("timestamp/x-ntp"));
  // 2020-01-01T00:00:00Z in NTP time (seconds since 1900).
  const guint64 ntp_ns = (1577836800ULL + 2208988800ULL) * GST_SECOND + 250 * GST_MSECOND;
  gst_buffer_add_reference_timestamp_meta(buffer.get(), ntp.get(), ntp_ns, GST_CLOCK_TIME_NONE);
  const json frame = build_document(buffer.get(), {0, 8, 8})["frame"][0];
  EXPECT_EQ(frame["ntp_timestamp"].get<gint64>(), 1577836800LL * GST_SECOND + 250 * GST_MSECOND);
  g_setenv("TZ", "UTC", TRUE);
  tzset();
  EXPECT_EQ(format_iso8601(1577836800LL * GST_SECOND + 250 * GST_MSECOND), "2020-01-01T00:00:00.250+0000");
}

TEST(FrameDocument, FindsTheFrameRecordOnlyWhereThereIsOne) {
  const json document = {{"frame", {{{"frame_num", 3}}}}};
  ASSERT_NE(find_frame_record(document), nullptr);
  EXPECT_EQ(find_frame_record(document)->at("frame_num"), 3);
  for (const json& without : {json(nullptr), json::object(), json{{"frame", 1}}, json{{"frame", json::array()}},
                              json{{"frame", {1}}}, json::array({1})})
    EXPECT_EQ(find_frame_record(without), nullptr) << without;
}

TEST(FrameDocument, OneBuilderForEveryObject) {
  const json object = make_object({2, 7, 0.5, "car", {1, 2.5, 3, 4}});
  EXPECT_EQ(object, json::parse(R"({"class_id": 2, "object_id": 7, "confidence": 0.5, "obj_label": "car",
      "rect_params": {"left": 1, "top": 2.5, "width": 3, "height": 4}, "text_params": {"display_text": "car"}})"));
  EXPECT_TRUE(object["rect_params"]["left"].is_number_integer());  // whole pixels stay integers
  const ObjectDescription read = describe_object(object);
  EXPECT_EQ(read.class_id, 2);
  EXPECT_EQ(read.object_id, 7);
  EXPECT_EQ(read.label, "car");
  EXPECT_DOUBLE_EQ(read.box.top, 2.5);
  // Fields of the wrong type keep their defaults instead of throwing.
  const ObjectDescription odd = describe_object({{"class_id", "car"}, {"obj_label", 3}, {"rect_params", 1}});
  EXPECT_EQ(odd.class_id, kNoId);
  EXPECT_EQ(odd.label, "");
  EXPECT_EQ(pixel_value(2.0), json(2));
  EXPECT_EQ(pixel_value(2.25), json(2.25));
}

// --- The schema (docs/frame_document.schema.json) and what elements really write ---

std::string schema_path() {
  const char* path = std::getenv("EMI_FRAME_DOCUMENT_SCHEMA");
  return path != nullptr ? path : "docs/frame_document.schema.json";
}

json load_schema() {
  std::ifstream file(schema_path());
  EXPECT_TRUE(file) << schema_path();
  return json::parse(file, nullptr, false);
}

TEST(FrameDocumentSchema, ListsTheFrameFactsOfTheVocabulary) {
  const json schema = load_schema();
  const json& facts = schema["$defs"]["frame_facts"];
  std::vector<std::string> listed;
  for (const auto& [name, definition] : facts["properties"].items()) listed.push_back(name);
  std::vector<std::string> vocabulary(kFrameFacts.begin(), kFrameFacts.end());
  std::sort(listed.begin(), listed.end());
  std::sort(vocabulary.begin(), vocabulary.end());
  EXPECT_EQ(listed, vocabulary);
  EXPECT_EQ(facts["required"].size(), kFrameFacts.size());
  const json& object = schema["$defs"]["object"]["required"];
  for (const char* key : {field::kClassId, field::kObjectId, field::kConfidence, field::kLabel, field::kRect, field::kText})
    EXPECT_NE(std::find(object.begin(), object.end(), key), object.end()) << key;
}

struct Validation {
  int exit_status = -1;
  std::string output;
};

// Runs tests/scripts/validate_documents.py (python3-jsonschema) on `documents`, one per line.
Validation validate(const std::vector<std::string>& documents) {
  gchar* folder = g_dir_make_tmp("emi-schema-XXXXXX", nullptr);
  const std::string lines_path = std::string(folder) + "/documents.jsonl";
  {
    std::ofstream lines(lines_path);
    for (const std::string& document : documents) lines << document << "\n";
  }
  const char* scripts = std::getenv("EMI_TEST_SCRIPTS");
  const std::string validator = std::string(scripts != nullptr ? scripts : "tests/scripts") + "/validate_documents.py";
  const std::string schema = schema_path();
  const gchar* argv[] = {EMI_PYTHON_EXECUTABLE, validator.c_str(), schema.c_str(), lines_path.c_str(), nullptr};
  Validation validation;
  gchar* out = nullptr;
  gint status = 0;
  GError* error = nullptr;
  if (g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_STDERR_TO_DEV_NULL, nullptr, nullptr, &out,
                   nullptr, &status, &error)) {
    validation.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    validation.output = out != nullptr ? out : "";
  } else {
    ADD_FAILURE() << error->message;
    g_error_free(error);
  }
  g_free(out);
  g_remove(lines_path.c_str());
  g_rmdir(folder);
  g_free(folder);
  return validation;
}

TEST(FrameDocumentSchema, RejectsADocumentThatBreaksIt) {
  const Validation validation = validate({R"({"frame": [{"frame_num": "seven", "object": []}]})"});
  EXPECT_EQ(validation.exit_status, 1) << validation.output;
  EXPECT_NE(validation.output.find("frame/0"), std::string::npos) << validation.output;
}

// The documents a detector, a classifier with events and the tracker write, end-of-stream
// tracks included, as an application or emaimeta receives them.
TEST(FrameDocumentSchema, ElementsWriteValidDocuments) {
  const char* scripts = std::getenv("EMI_TEST_SCRIPTS");
  const std::string folder = scripts != nullptr ? scripts : "tests/scripts";
  GError* error = nullptr;
  UniqueElement pipeline(gst_parse_launch(
      ("videotestsrc num-buffers=6 ! video/x-raw,format=RGBA,width=160,height=120 ! "
       "empycustom mode=detect module=" + folder + "/detector.py ! "
       "empycustom module=" + folder + "/events.py meta-key=scene ! "
       "emtracker min-hits=1 line=0,60,160,60 ! appsink name=sink sync=false").c_str(), &error));
  ASSERT_EQ(error, nullptr) << error->message;
  UniqueElement sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
  std::vector<std::string> documents;
  // The ended-tracks document travels as a custom event before EOS (on the streaming thread).
  std::vector<std::string> ended;
  std::unique_ptr<GstPad, ReleaseWith<gst_object_unref>> sink_pad(gst_element_get_static_pad(sink.get(), "sink"));
  gst_pad_add_probe(
      sink_pad.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [](GstPad*, GstPadProbeInfo* info, gpointer data) {
        const GstStructure* structure = gst_event_get_structure(GST_PAD_PROBE_INFO_EVENT(info));
        if (structure != nullptr && gst_structure_has_name(structure, kEndedTracksName))
          static_cast<std::vector<std::string>*>(data)->push_back(gst_structure_get_string(structure, kDocumentField));
        return GST_PAD_PROBE_OK;
      },
      &ended, nullptr);
  ASSERT_NE(gst_element_set_state(pipeline.get(), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  for (;;) {
    GstSample* sample = nullptr;
    g_signal_emit_by_name(sink.get(), "pull-sample", &sample);
    if (sample == nullptr) break;  // EOS
    documents.emplace_back(document_json(gst_sample_get_buffer(sample)));
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
  documents.insert(documents.end(), ended.begin(), ended.end());
  ASSERT_EQ(documents.size(), 7u);  // six frames and the tracks that ended with the stream
  const json last_frame = json::parse(documents[5])["frame"][0];
  EXPECT_EQ(last_frame["object"].size(), 2u);
  EXPECT_TRUE(last_frame.contains("counts"));
  EXPECT_TRUE(last_frame.contains("events"));
  const Validation validation = validate(documents);
  EXPECT_EQ(validation.exit_status, 0) << validation.output;
  EXPECT_EQ(validation.output, "7 documents valid\n");
}

}  // namespace
}  // namespace emi
