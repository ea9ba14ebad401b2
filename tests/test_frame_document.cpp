// The frame document meta: reading, writing, copying, and objects from ROI metas.
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include "document/frame_document.h"
#include "common/gst_ptr.h"

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

}  // namespace
}  // namespace emi
