// SPDX-License-Identifier: LGPL-2.1-or-later
#include "document/frame_document.h"

#include <gst/video/video.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <mutex>

#include "document/document_log.h"
#include "document/document_object.h"
#include "document/vocabulary.h"

#define GST_CAT_DEFAULT emi::document_debug()

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

// Time of the frame in ns since the Unix epoch: the NTP reference timestamp that
// rtpjitterbuffer/rtspsrc attach when the sender provides one, else the Unix one that
// emmediatime gives the frames of a recorded source (the movie's own time), else now.
gint64 frame_unix_time_ns(GstBuffer* buffer) {
  static GstCaps* const ntp_caps = gst_caps_new_empty_simple("timestamp/x-ntp");
  static GstCaps* const unix_caps = gst_caps_new_empty_simple("timestamp/x-unix");
  GstReferenceTimestampMeta* ntp = gst_buffer_get_reference_timestamp_meta(buffer, ntp_caps);
  if (ntp != nullptr && GST_CLOCK_TIME_IS_VALID(ntp->timestamp))
    return static_cast<gint64>(ntp->timestamp) - kNtpToUnixEpochSeconds * GST_SECOND;
  GstReferenceTimestampMeta* media = gst_buffer_get_reference_timestamp_meta(buffer, unix_caps);
  if (media != nullptr && GST_CLOCK_TIME_IS_VALID(media->timestamp)) return static_cast<gint64>(media->timestamp);
  return g_get_real_time() * 1000;
}

json object_from_roi(const GstVideoRegionOfInterestMeta* roi) {
  ObjectDescription object;
  for (GList* param = roi->params; param != nullptr; param = param->next) {
    const auto* params = static_cast<const GstStructure*>(param->data);
    gst_structure_get_double(params, "confidence", &object.confidence);
    if (!gst_structure_get_int(params, "class-id", &object.class_id))
      gst_structure_get_int(params, "label_id", &object.class_id);
  }
  if (roi->roi_type != 0) object.label = g_quark_to_string(roi->roi_type);
  object.box = {static_cast<double>(roi->x), static_cast<double>(roi->y), static_cast<double>(roi->w),
                static_cast<double>(roi->h)};
  return make_object(object);
}

bool is_ours(const GstVideoRegionOfInterestMeta* roi) {
  for (GList* param = roi->params; param != nullptr; param = param->next) {
    if (gst_structure_has_name(static_cast<const GstStructure*>(param->data), kRoiParamsName))
      return true;
  }
  return false;
}

}  // namespace

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

// The public JSON text of the document, owned by the buffer's custom meta.
const char* document_text(GstBuffer* buffer) {
  GstCustomMeta* meta = find_document_meta(buffer);
  if (meta == nullptr) return nullptr;
  const GValue* value = gst_structure_id_get_value(gst_custom_meta_get_structure(meta), document_field());
  if (value == nullptr || !G_VALUE_HOLDS_STRING(value)) return nullptr;
  return g_value_get_string(value);
}

std::optional<json> parse_document(const char* text) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return std::nullopt;
  return document;
}

// Parsing is the dearest part of reading a document (~300 µs for 100 objects, ten times the
// tracking itself), so write_document keeps the parsed form beside the text, in a private meta
// that buffer copies share. It stands for exactly `text`: anyone may replace the public JSON.
struct ParsedDocument {
  std::string text;
  json document;
};

struct ParsedDocumentMeta {
  GstMeta meta;
  std::shared_ptr<ParsedDocument> parsed;
};

constexpr char kParsedMetaApi[] = "EmiParsedDocumentMetaAPI";
constexpr char kParsedMetaName[] = "EmiParsedDocumentMeta";

GType parsed_meta_api_type() {
  static const GType type = [] {
    if (const GType registered = g_type_from_name(kParsedMetaApi)) return registered;
    static const gchar* no_tags[] = {nullptr};
    return gst_meta_api_type_register(kParsedMetaApi, no_tags);
  }();
  return type;
}

const GstMetaInfo* parsed_meta_info();

ParsedDocumentMeta* find_parsed_meta(GstBuffer* buffer) {
  return reinterpret_cast<ParsedDocumentMeta*>(gst_buffer_get_meta(buffer, parsed_meta_api_type()));
}

ParsedDocumentMeta* ensure_parsed_meta(GstBuffer* buffer) {
  if (ParsedDocumentMeta* meta = find_parsed_meta(buffer)) return meta;
  return reinterpret_cast<ParsedDocumentMeta*>(gst_buffer_add_meta(buffer, parsed_meta_info(), nullptr));
}

const GstMetaInfo* parsed_meta_info() {
  static const GstMetaInfo* info = []() -> const GstMetaInfo* {
    if (const GstMetaInfo* registered = gst_meta_get_info(kParsedMetaName)) return registered;
    const auto init = [](GstMeta* meta, gpointer, GstBuffer*) -> gboolean {
      new (&reinterpret_cast<ParsedDocumentMeta*>(meta)->parsed) std::shared_ptr<ParsedDocument>();
      return TRUE;
    };
    const auto free = [](GstMeta* meta, GstBuffer*) {
      using Shared = std::shared_ptr<ParsedDocument>;
      reinterpret_cast<ParsedDocumentMeta*>(meta)->parsed.~Shared();
    };
    // Every transform shares the parsed document, as the custom meta's structure is copied.
    const auto transform = [](GstBuffer* destination, GstMeta* meta, GstBuffer*, GQuark, gpointer) -> gboolean {
      ParsedDocumentMeta* copy = ensure_parsed_meta(destination);
      if (copy == nullptr) return FALSE;
      copy->parsed = reinterpret_cast<ParsedDocumentMeta*>(meta)->parsed;
      return TRUE;
    };
    return gst_meta_register(parsed_meta_api_type(), kParsedMetaName, sizeof(ParsedDocumentMeta), init,
                             free, transform);
  }();
  return info;
}

// The cache entry of `buffer` when it stands for `text`, else null.
std::shared_ptr<ParsedDocument>* cached_document(GstBuffer* buffer, const char* text) {
  ParsedDocumentMeta* meta = find_parsed_meta(buffer);
  if (meta == nullptr || !meta->parsed || meta->parsed->text != text) return nullptr;
  return &meta->parsed;
}

// Whether parsing the dump of `value` gives `value` back: NaN and infinity are written as null.
bool all_numbers_finite(const json& value) {
  switch (value.type()) {
    case json::value_t::number_float: return std::isfinite(value.get<double>());
    case json::value_t::object:
    case json::value_t::array:
      for (const json& item : value) {
        if (!all_numbers_finite(item)) return false;
      }
      return true;
    default: return true;
  }
}

}  // namespace

void register_document_meta() {
  document_meta_info();
  parsed_meta_info();
}

std::shared_ptr<const json> peek_document(GstBuffer* buffer) {
  const char* text = document_text(buffer);
  if (text == nullptr) return nullptr;
  if (std::shared_ptr<ParsedDocument>* cached = cached_document(buffer, text))
    return std::shared_ptr<const json>(*cached, &(*cached)->document);
  std::optional<json> parsed = parse_document(text);
  if (!parsed) return nullptr;
  auto entry = std::make_shared<ParsedDocument>(ParsedDocument{text, std::move(*parsed)});
  // Kept for the next reader only where changing the buffer's metas is allowed.
  if (gst_buffer_is_writable(buffer)) ensure_parsed_meta(buffer)->parsed = entry;
  return std::shared_ptr<const json>(entry, &entry->document);
}

std::string_view document_json(GstBuffer* buffer) {
  const char* text = document_text(buffer);
  return text != nullptr ? std::string_view(text) : std::string_view();
}

std::optional<json> read_document(GstBuffer* buffer) {
  std::shared_ptr<const json> document = peek_document(buffer);
  if (document == nullptr) return std::nullopt;
  return *document;
}

std::optional<json> take_document(GstBuffer* buffer) {
  const char* text = document_text(buffer);
  if (text == nullptr) return std::nullopt;
  if (std::shared_ptr<ParsedDocument>* cached = cached_document(buffer, text)) {
    // Out of the cache: the caller is about to change the document.
    std::shared_ptr<ParsedDocument> entry = std::move(*cached);
    if (entry.use_count() == 1) return std::move(entry->document);
    return entry->document;
  }
  return parse_document(text);
}

void write_document(GstBuffer* buffer, json document) {
  GstCustomMeta* meta = find_document_meta(buffer);
  if (meta == nullptr) {
    meta = reinterpret_cast<GstCustomMeta*>(gst_buffer_add_meta(buffer, document_meta_info(), nullptr));
  }
  auto entry = std::make_shared<ParsedDocument>();
  // Invalid UTF-8 is replaced and NaN and infinity become null rather than an invalid document;
  // the parsed form is then no longer what the text says, so it isn't kept.
  bool text_is_exact = document.is_object() && all_numbers_finite(document);
  try {
    entry->text = document.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::type_error&) {
    entry->text = document.dump(-1, ' ', false, json::error_handler_t::replace);
    text_is_exact = false;
  }
  GValue value = G_VALUE_INIT;
  g_value_init(&value, G_TYPE_STRING);
  g_value_take_string(&value, g_strndup(entry->text.data(), entry->text.size()));
  gst_structure_id_take_value(gst_custom_meta_get_structure(meta), document_field(), &value);
  ParsedDocumentMeta* parsed = ensure_parsed_meta(buffer);
  if (text_is_exact) {
    entry->document = std::move(document);
    parsed->parsed = std::move(entry);
  } else {
    GST_DEBUG("document written with invalid UTF-8 replaced or NaN/infinity as null");
    parsed->parsed.reset();
  }
}

json& frame_record(json& document) {
  json& frames = document[field::kFrames];
  if (!frames.is_array()) frames = json::array();
  if (frames.empty() || !frames[0].is_object()) frames.insert(frames.begin(), json::object());
  return frames[0];
}

const json* find_frame_record(const json& document) {
  if (!document.is_object()) return nullptr;
  const auto frames = document.find(field::kFrames);
  if (frames == document.end() || !frames->is_array() || frames->empty() || !frames->front().is_object())
    return nullptr;
  return &frames->front();
}

json build_document(GstBuffer* buffer, const FrameFacts& facts) {
  json document = take_document(buffer).value_or(json::object());
  json& frame = frame_record(document);
  if (!frame.contains(field::kFrameNum)) {
    const gint64 unix_ns = frame_unix_time_ns(buffer);
    frame[field::kFrameNum] = facts.frame_num;
    frame[field::kBufferPts] = GST_BUFFER_PTS_IS_VALID(buffer) ? json(GST_BUFFER_PTS(buffer)) : json(kNoPts);
    frame[field::kNtpTimestamp] = unix_ns;
    frame[field::kTimestamp] = format_iso8601(unix_ns);
  }
  frame[field::kSourceWidth] = facts.width;
  frame[field::kSourceHeight] = facts.height;

  json& objects = frame[field::kObjects];
  if (!objects.is_array()) objects = json::array();
  gpointer state = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(
             buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    if (is_ours(roi)) continue;
    objects.push_back(object_from_roi(roi));
    GST_LOG("object %zu from a %s ROI meta of another element", objects.size() - 1,
            g_quark_to_string(roi->roi_type));
    // Now in the document: tagged like our own ROI metas, so the next emi element doesn't add it
    // a second time.
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new(kRoiParamsName, "index", G_TYPE_UINT,
                               static_cast<guint>(objects.size() - 1), nullptr));
  }
  return document;
}

void attach_object_roi(GstBuffer* buffer, const ObjectDescription& object, guint object_index) {
  const auto pixels = [](double value) { return static_cast<guint>(std::max(0L, std::lround(value))); };
  const PixelBox& box = object.box;
  GstVideoRegionOfInterestMeta* roi = gst_buffer_add_video_region_of_interest_meta(
      buffer, object.label.c_str(), pixels(box.left), pixels(box.top), pixels(box.width), pixels(box.height));
  roi->id = static_cast<gint>(object_index);
  GstStructure* params = gst_structure_new(
      kRoiParamsName, "index", G_TYPE_UINT, object_index, "class-id", G_TYPE_INT, object.class_id,
      "confidence", G_TYPE_DOUBLE, object.confidence, nullptr);
  gst_video_region_of_interest_meta_add_param(roi, params);  // takes ownership
}

void attach_object_roi(GstBuffer* buffer, const json& object, guint object_index) {
  attach_object_roi(buffer, describe_object(object), object_index);
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
