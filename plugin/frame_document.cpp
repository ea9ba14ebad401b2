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

bool has_document(GstBuffer* buffer) {
  return gst_buffer_get_meta(buffer, document_meta_info()->api) != nullptr;
}

namespace {

// By API type and field quark: the by-name calls take GStreamer's global registry lock.
GstCustomMeta* find_document_meta(GstBuffer* buffer) {
  return reinterpret_cast<GstCustomMeta*>(gst_buffer_get_meta(buffer, document_meta_info()->api));
}

GQuark document_field() {
  static const GQuark field = g_quark_from_static_string(kDocumentField);
  return field;
}

}  // namespace

std::optional<json> read_document(GstBuffer* buffer) {
  GstCustomMeta* meta = find_document_meta(buffer);
  if (meta == nullptr) return std::nullopt;
  const GValue* value = gst_structure_id_get_value(gst_custom_meta_get_structure(meta), document_field());
  if (value == nullptr || !G_VALUE_HOLDS_STRING(value) || g_value_get_string(value) == nullptr)
    return std::nullopt;
  json document = json::parse(g_value_get_string(value), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return std::nullopt;
  return document;
}

void write_document(GstBuffer* buffer, const json& document) {
  GstCustomMeta* meta = find_document_meta(buffer);
  if (meta == nullptr) {
    meta = reinterpret_cast<GstCustomMeta*>(gst_buffer_add_meta(buffer, document_meta_info(), nullptr));
  }
  // NaN and infinity have no JSON spelling; they become null rather than an invalid document.
  const std::string text = document.dump(-1, ' ', false, json::error_handler_t::replace);
  GValue value = G_VALUE_INIT;
  g_value_init(&value, G_TYPE_STRING);
  g_value_take_string(&value, g_strndup(text.data(), text.size()));
  gst_structure_id_take_value(gst_custom_meta_get_structure(meta), document_field(), &value);
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
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    if (is_ours(roi)) continue;
    objects.push_back(object_from_roi(roi));
    // Now in the document: tagged like our own ROI metas, so the next emi element doesn't add it
    // a second time.
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new(kRoiParamsName, "index", G_TYPE_UINT,
                               static_cast<guint>(objects.size() - 1), nullptr));
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
  // localtime_r and strftime cost ~0.4 µs; frames of the same second share the date and offset.
  thread_local time_t cached_second = -1;
  thread_local std::string date;    // "2026-11-23T08:24:36."
  thread_local std::string offset;  // "+0000"
  if (seconds != cached_second) {
    struct tm local {};
    localtime_r(&seconds, &local);
    char text[32];
    date.assign(text, strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.", &local));
    offset.assign(text, strftime(text, sizeof text, "%z", &local));
    cached_second = seconds;
  }
  std::string text = date;
  text += static_cast<char>('0' + millis / 100);
  text += static_cast<char>('0' + millis / 10 % 10);
  text += static_cast<char>('0' + millis % 10);
  text += offset;
  return text;
}

}  // namespace emi
