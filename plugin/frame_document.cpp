#include "frame_document.h"

#include <gst/video/video.h>

#include <ctime>
#include <mutex>


namespace emi {
namespace {

using nlohmann::json;

const GstMetaInfo* document_meta_info() {
  static const GstMetaInfo* info = []() -> const GstMetaInfo* {
    // Another copy of this code (a second emi build, a test program linking it) may have
    // registered it already: GStreamer keeps one registration per name.
    if (const GstMetaInfo* registered = gst_meta_get_info(kDocumentMetaName)) return registered;
    // No tags: the document describes the whole frame, so scaling or converting it keeps it valid
    // at the level of the frame; object rectangles are mirrored in ROI metas, which do get scaled.
    // A NULL transform function makes GStreamer copy the structure on buffer copies.
    static const gchar* no_tags[] = {nullptr};
    return gst_meta_register_custom(kDocumentMetaName, no_tags, nullptr, nullptr, nullptr);
  }();
  return info;
}

constexpr gint64 kNtpToUnixEpochSeconds = 2208988800LL;

// Wall-clock time of the frame in ns since the Unix epoch: the NTP reference timestamp that
// rtpjitterbuffer/rtspsrc attach when the sender provides one, else now.
gint64 frame_unix_time_ns(GstBuffer* buffer) {
  static GstCaps* const ntp_caps = gst_caps_new_empty_simple("timestamp/x-ntp");
  GstReferenceTimestampMeta* ntp = gst_buffer_get_reference_timestamp_meta(buffer, ntp_caps);
  if (ntp != nullptr && GST_CLOCK_TIME_IS_VALID(ntp->timestamp))
    return static_cast<gint64>(ntp->timestamp) - kNtpToUnixEpochSeconds * GST_SECOND;
  return g_get_real_time() * 1000;
}

json object_from_roi(const GstVideoRegionOfInterestMeta* roi) {
  double confidence = 1.0;
  int class_id = -1;
  for (GList* param = roi->params; param != nullptr; param = param->next) {
    const auto* params = static_cast<const GstStructure*>(param->data);
    gst_structure_get_double(params, "confidence", &confidence);
    if (!gst_structure_get_int(params, "class-id", &class_id))
      gst_structure_get_int(params, "label_id", &class_id);
  }
  const char* label = roi->roi_type != 0 ? g_quark_to_string(roi->roi_type) : "";
  return json{{"class_id", class_id},
              {"object_id", -1},
              {"confidence", confidence},
              {"obj_label", label},
              {"rect_params",
               {{"left", roi->x}, {"top", roi->y}, {"width", roi->w}, {"height", roi->h}}},
              {"text_params", {{"display_text", label}}}};
}

bool is_ours(const GstVideoRegionOfInterestMeta* roi) {
  for (GList* param = roi->params; param != nullptr; param = param->next) {
    if (gst_structure_has_name(static_cast<const GstStructure*>(param->data), kRoiParamsName))
      return true;
  }
  return false;
}

}  // namespace

void register_document_meta() { document_meta_info(); }

std::optional<json> read_document(GstBuffer* buffer) {
  register_document_meta();
  GstCustomMeta* meta = gst_buffer_get_custom_meta(buffer, kDocumentMetaName);
  if (meta == nullptr) return std::nullopt;
  const char* text = gst_structure_get_string(gst_custom_meta_get_structure(meta), kDocumentField);
  if (text == nullptr) return std::nullopt;
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return std::nullopt;
  return document;
}

void write_document(GstBuffer* buffer, const json& document) {
  register_document_meta();
  GstCustomMeta* meta = gst_buffer_get_custom_meta(buffer, kDocumentMetaName);
  if (meta == nullptr) meta = gst_buffer_add_custom_meta(buffer, kDocumentMetaName);
  // NaN and infinity have no JSON spelling; they become null rather than an invalid document.
  const std::string text = document.dump(-1, ' ', false, json::error_handler_t::replace);
  gst_structure_set(gst_custom_meta_get_structure(meta), kDocumentField, G_TYPE_STRING,
                    text.c_str(), nullptr);
}

json& frame_record(json& document) {
  json& frames = document["frame"];
  if (!frames.is_array()) frames = json::array();
  if (frames.empty() || !frames[0].is_object()) frames.insert(frames.begin(), json::object());
  return frames[0];
}

json build_document(GstBuffer* buffer, const FrameFacts& facts) {
  json document = read_document(buffer).value_or(json::object());
  json& frame = frame_record(document);
  if (!frame.contains("frame_num")) {
    const gint64 unix_ns = frame_unix_time_ns(buffer);
    frame["frame_num"] = facts.frame_num;
    frame["buf_pts"] = GST_BUFFER_PTS_IS_VALID(buffer) ? json(GST_BUFFER_PTS(buffer)) : json(-1);
    frame["ntp_timestamp"] = unix_ns;
    frame["timestamp"] = format_iso8601(unix_ns);
  }
  frame["source_frame_width"] = facts.width;
  frame["source_frame_height"] = facts.height;

  json& objects = frame["object"];
  if (!objects.is_array()) objects = json::array();
  gpointer state = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(
             buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    const auto* roi = reinterpret_cast<const GstVideoRegionOfInterestMeta*>(meta);
    if (!is_ours(roi)) objects.push_back(object_from_roi(roi));
  }
  return document;
}

void attach_object_roi(GstBuffer* buffer, const json& object, guint object_index) {
  const json& rect = object.at("rect_params");
  const std::string label = object.value("obj_label", std::string());
  GstVideoRegionOfInterestMeta* roi = gst_buffer_add_video_region_of_interest_meta(
      buffer, label.c_str(), rect.value("left", 0u), rect.value("top", 0u),
      rect.value("width", 0u), rect.value("height", 0u));
  roi->id = static_cast<gint>(object_index);
  GstStructure* params = gst_structure_new(
      kRoiParamsName, "index", G_TYPE_UINT, object_index, "class-id", G_TYPE_INT,
      object.value("class_id", -1), "confidence", G_TYPE_DOUBLE, object.value("confidence", 1.0),
      nullptr);
  gst_video_region_of_interest_meta_add_param(roi, params);  // takes ownership
}

std::string format_iso8601(gint64 unix_time_ns) {
  const time_t seconds = static_cast<time_t>(unix_time_ns / GST_SECOND);
  const int millis = static_cast<int>((unix_time_ns / GST_MSECOND) % 1000);
  struct tm local {};
  localtime_r(&seconds, &local);
  char date[32];
  char offset[8];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
  strftime(offset, sizeof offset, "%z", &local);
  char text[48];
  g_snprintf(text, sizeof text, "%s.%03d%s", date, millis, offset);
  return text;
}

}  // namespace emi
