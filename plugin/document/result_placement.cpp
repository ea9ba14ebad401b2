#include "document/result_placement.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace emi {
namespace {

using nlohmann::json;

json as_entries(const json& results) {
  if (results.is_null()) return json::array();
  if (results.is_array()) return results;
  return json::array({results});
}

void append_frame_entry(json& frame, const std::string& key, const json& entry) {
  json& list = frame[key];
  if (list.is_null()) list = json::array();
  if (!list.is_array()) list = json::array({list});
  list.push_back(entry);
}

// Integral coordinates stay integers in the document; fractional ones stay as they are.
json coordinate(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return static_cast<long long>(value);
  return value;
}

// A detector's box, clipped to the frame. Empty when it is not four numbers or lies outside.
std::optional<json> clipped_rect(const json& rect, int frame_width, int frame_height) {
  if (!rect.is_object()) return std::nullopt;
  double box[4];
  const char* names[4] = {"left", "top", "width", "height"};
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
  return json{{"left", coordinate(left)},
              {"top", coordinate(top)},
              {"width", coordinate(right - left)},
              {"height", coordinate(bottom - top)}};
}

// A detection entry as a document object: the standard fields, and what else the script said
// under `key`.
json object_from_detection(const json& entry, json rect, const std::string& key) {
  std::string label = entry.value("obj_label", std::string());
  if (label.empty()) label = entry.value("label", std::string());
  json object{{"class_id", entry.value("class_id", -1)},
              {"object_id", -1},
              {"confidence", entry.value("confidence", 1.0)},
              {"obj_label", label},
              {"rect_params", std::move(rect)},
              {"text_params", {{"display_text", label}}}};
  json rest = json::object();
  for (const auto& [name, value] : entry.items()) {
    if (!object.contains(name) && name != "label") rest[name] = value;
  }
  if (!rest.empty()) object[key] = std::move(rest);
  return object;
}

}  // namespace

PlacementOutcome place_results(json& frame, const json& results, PlacementMode mode,
                               const std::string& key, int frame_width, int frame_height) {
  PlacementOutcome outcome;
  const json entries = as_entries(results);
  json& objects = frame["object"];
  if (!objects.is_array()) objects = json::array();

  if (mode == PlacementMode::kDetect) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const json& entry = entries[i];
      if (!entry.is_object() || !entry.contains("rect_params")) {
        append_frame_entry(frame, key, entry);
        continue;
      }
      std::optional<json> rect = clipped_rect(entry["rect_params"], frame_width, frame_height);
      if (!rect) {
        outcome.problems.push_back("entry " + std::to_string(i) +
                                   ": rect_params needs numeric left, top, width and height "
                                   "inside the frame, got " + entry["rect_params"].dump());
        continue;
      }
      objects.push_back(object_from_detection(entry, std::move(*rect), key));
      outcome.new_objects.push_back(objects.size() - 1);
    }
    return outcome;
  }

  const std::size_t object_count = objects.size();
  const std::size_t for_objects = std::min(object_count, entries.size());
  for (std::size_t i = 0; i < for_objects; ++i) objects[i][key] = entries[i];
  if (entries.size() > for_objects) append_frame_entry(frame, key, entries[for_objects]);
  if (entries.size() > for_objects + 1) {
    outcome.problems.push_back(std::to_string(entries.size()) + " entries for " +
                               std::to_string(object_count) + " objects: entries after " +
                               std::to_string(for_objects) + " were ignored");
  }
  return outcome;
}

}  // namespace emi
