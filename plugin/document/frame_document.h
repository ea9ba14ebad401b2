// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame document (EDGEMATRIX's "signal"): one JSON document per buffer, carried in a
// registered GstCustomMeta so it survives tee, queue, buffer copies and make_writable.
// Objects are mirrored as GstVideoRegionOfInterestMeta for other GStreamer elements.
#pragma once

#include <gst/gst.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "document/document_object.h"

namespace emi {

// Name of the GstCustomMeta; its structure holds the document as a JSON string in kDocumentField.
// From PyGObject: buffer.get_custom_meta("EmiFrameDocumentMeta").get_structure().get_string("json")
inline constexpr char kDocumentMetaName[] = "EmiFrameDocumentMeta";
inline constexpr char kDocumentField[] = "json";
// Tracks still alive at EOS end in a serialized custom downstream event (and an element message)
// of this name, whose kDocumentField holds a frame document with them as objects.
inline constexpr char kEndedTracksName[] = "emi/ended-tracks";
// Parameter structure on the ROI metas we attach, so we don't read our own objects twice.
inline constexpr char kRoiParamsName[] = "emi-object";

// Idempotent; called from plugin_init and by every function below.
void register_document_meta();

// Whether an element attached a document to `buffer` (without parsing it).
bool has_document(GstBuffer* buffer);
// The document attached to `buffer`, if any element put one there, shared read-only: no copy
// when the element that wrote it was an emi element and nobody changed the JSON since.
std::shared_ptr<const nlohmann::json> peek_document(GstBuffer* buffer);
// The attached document's JSON text, owned by the buffer: valid while its metas don't change.
std::string_view document_json(GstBuffer* buffer);
// A copy of the attached document, if any.
std::optional<nlohmann::json> read_document(GstBuffer* buffer);
// The attached document for changing and writing back: moved out of the parsed cache when this
// buffer holds it alone, else a copy. `buffer` must be writable.
std::optional<nlohmann::json> take_document(GstBuffer* buffer);
// Attaches the document, replacing a previous one. `buffer` must be writable. The JSON text goes
// in the public GstCustomMeta; the parsed document is kept beside it so that the next emi element
// doesn't parse it again.
void write_document(GstBuffer* buffer, nlohmann::json document);

// document["frame"][0], created when missing.
nlohmann::json& frame_record(nlohmann::json& document);
// document["frame"][0] when the document has one (an object), else null.
const nlohmann::json* find_frame_record(const nlohmann::json& document);

struct FrameFacts {
  guint64 frame_num;  // used only when the document has none yet
  int width;
  int height;
};

// The document as a script sees it (`in_meta`): the attached one, or a new one, with the frame
// fields filled and GstVideoRegionOfInterestMeta of other elements added as objects.
// Those ROI metas are tagged as read, so `buffer` must be writable and the document written back.
nlohmann::json build_document(GstBuffer* buffer, const FrameFacts& facts);

// Mirrors `object`, at `object_index` in frame["object"], as a GstVideoRegionOfInterestMeta on a
// writable buffer.
void attach_object_roi(GstBuffer* buffer, const ObjectDescription& object, guint object_index);
// The same for an object of the document.
void attach_object_roi(GstBuffer* buffer, const nlohmann::json& object, guint object_index);

// "2026-11-23T08:24:36.748+0000": local time, milliseconds, numeric offset.
std::string format_iso8601(gint64 unix_time_ns);

}  // namespace emi
