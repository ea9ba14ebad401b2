// SPDX-License-Identifier: LGPL-2.1-or-later
#include "document/result_placement.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "document/document_log.h"
#include "document/frame_document.h"
#include "document/vocabulary.h"

#define GST_CAT_DEFAULT emi::document_debug()

namespace emi {
namespace {

using nlohmann::json;

json as_entries(const json& results) {
  if (results.is_null()) return json::array();
  if (results.is_array()) return results;
  return json::array({results});
}

void append_to_list(json& frame, const std::string& key, json entry) {
  json& list = frame[key];
  if (list.is_null()) list = json::array();
  if (!list.is_array()) list = json::array({list});
  list.push_back(std::move(entry));
}

// A detector's box, clipped to the frame. Empty when it is not four numbers or lies outside.
std::optional<PixelBox> clipped_box(const json& rect, int frame_width, int frame_height) {
  if (!rect.is_object()) return std::nullopt;
  double box[4];
  const char* names[4] = {field::kLeft, field::kTop, field::kWidth, field::kHeight};
  for (int i = 0; i < 4; ++i) {
    auto found = rect.find(names[i]);
    if (found == rect.end() || !found->is_number()) return std::nullopt;
    box[i] = found->get<double>();
    if (!std::isfinite(box[i])) return std::nullopt;
  }
  const double left = std::clamp(box[0], 0.0, static_cast<double>(frame_width));
  const double top = std::clamp(box[1], 0.0, static_cast<double>(frame_height));
  const double right = std::clamp(box[0] + box[2], 0.0, static_cast<double>(frame_width));
  const double bottom = std::clamp(box[1] + box[3], 0.0, static_cast<double>(frame_height));
  if (right <= left || bottom <= top) return std::nullopt;
  return PixelBox{left, top, right - left, bottom - top};
}

// The fields of a detection entry, checked for their types; `problem` says which one is wrong.
struct EntryFields {
  ObjectDescription object;
  std::string problem;
};

EntryFields detection_fields(const json& entry, PixelBox box) {
  EntryFields fields;
  fields.object.box = box;
  auto wrong = [&](const char* name, const char* expected, const json& value) {
    fields.problem = std::string(name) + " must be " + expected + ", got " + json_excerpt(value);
  };
  if (const auto found = entry.find(field::kClassId); found != entry.end()) {
    const bool integral = found->is_number() && std::nearbyint(found->get<double>()) == found->get<double>() &&
                          std::fabs(found->get<double>()) <= std::numeric_limits<int>::max();
    if (!integral) {
      wrong(field::kClassId, "an integer", *found);
      return fields;
    }
    fields.object.class_id = static_cast<int>(found->get<double>());
  }
  if (const auto found = entry.find(field::kConfidence); found != entry.end()) {
    if (!found->is_number() || !std::isfinite(found->get<double>())) {
      wrong(field::kConfidence, "a number", *found);
      return fields;
    }
    fields.object.confidence = found->get<double>();
  }
  for (const char* name : {field::kLabel, field::kShortLabel}) {
    const auto found = entry.find(name);
    if (found == entry.end()) continue;
    if (!found->is_string()) {
      wrong(name, "a string", *found);
      return fields;
    }
    if (fields.object.label.empty()) fields.object.label = found->get<std::string>();
  }
  return fields;
}

// A detection entry as a document object: the standard fields, and what else the script said
// under `key`.
json object_from_detection(const json& entry, const ObjectDescription& description, const std::string& key) {
  json object = make_object(description);
  json rest = json::object();
  for (const auto& [name, value] : entry.items()) {
    if (!object.contains(name) && name != field::kShortLabel) rest[name] = value;
  }
  if (!rest.empty()) object[key] = std::move(rest);
  return object;
}

void place_detections(json& frame, const json& entries, const std::string& key, int frame_width,
                      int frame_height, PlacementOutcome& outcome) {
  json& objects = frame[field::kObjects];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const json& entry = entries[i];
    if (!entry.is_object() || !entry.contains(field::kRect)) {
      append_to_list(frame, key, entry);
      continue;
    }
    const std::string where = "entry " + std::to_string(i) + ": ";
    const std::optional<PixelBox> box = clipped_box(entry[field::kRect], frame_width, frame_height);
    if (!box) {
      outcome.problems.push_back(where + "rect_params needs numeric left, top, width and height "
                                 "inside the frame, got " + json_excerpt(entry[field::kRect]));
      continue;
    }
    EntryFields fields = detection_fields(entry, *box);
    if (!fields.problem.empty()) {
      outcome.problems.push_back(where + fields.problem);
      continue;
    }
    objects.push_back(object_from_detection(entry, fields.object, key));
    outcome.new_objects.push_back({objects.size() - 1, std::move(fields.object)});
  }
}

}  // namespace

std::string json_excerpt(const json& value, std::size_t most) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() <= most) return text;
  std::size_t cut = most;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole characters
  return text.substr(0, cut) + "…";
}

PlacementOutcome place_results(json& frame, const json& results, PlacementMode mode,
                               const std::string& key, int frame_width, int frame_height) {
  PlacementOutcome outcome;
  const json entries = as_entries(results);
  json& objects = frame[field::kObjects];
  if (!objects.is_array()) objects = json::array();

  if (mode == PlacementMode::kDetect) {
    place_detections(frame, entries, key, frame_width, frame_height, outcome);
    return outcome;
  }

  const std::size_t object_count = objects.size();
  const std::size_t for_objects = std::min(object_count, entries.size());
  for (std::size_t i = 0; i < for_objects; ++i) {
    if (objects[i].is_object()) {
      objects[i][key] = entries[i];
    } else {
      outcome.problems.push_back("entry " + std::to_string(i) + ": object " + std::to_string(i) +
                                 " of the document is not an object, got " + json_excerpt(objects[i]));
    }
  }
  if (entries.size() > for_objects) append_to_list(frame, key, entries[for_objects]);
  if (entries.size() > for_objects + 1) {
    outcome.problems.push_back(std::to_string(entries.size()) + " entries for " +
                               std::to_string(object_count) + " objects: entries after " +
                               std::to_string(for_objects) + " were ignored");
  }
  return outcome;
}

std::vector<std::string> store_results(GstBuffer* buffer, json document, const json& results,
                                       json events, const Placement& placement) {
  json& frame = frame_record(document);
  PlacementOutcome placed = place_results(frame, results, placement.mode, placement.key,
                                          placement.frame_width, placement.frame_height);
  if (events.is_array() && !events.empty()) {
    json& frame_events = frame[field::kEvents];
    if (!frame_events.is_array()) frame_events = json::array();
    for (json& event : events) frame_events.push_back(std::move(event));
  }
  for (const PlacedObject& object : placed.new_objects)
    attach_object_roi(buffer, object.description, static_cast<guint>(object.index));
  GST_LOG("%zu results under \"%s\", %zu new objects, %zu events, %zu problems",
          results.is_array() ? results.size() : static_cast<std::size_t>(!results.is_null()),
          placement.key.c_str(), placed.new_objects.size(), events.is_array() ? events.size() : 0,
          placed.problems.size());
  write_document(buffer, std::move(document));
  return std::move(placed.problems);
}

}  // namespace emi
