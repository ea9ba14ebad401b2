// SPDX-License-Identifier: LGPL-2.1-or-later
#include "document/document_object.h"

#include <cmath>

namespace emi {

using nlohmann::json;

json pixel_value(double value) {
  // Beyond 2^53 a double has no fraction left, and the integer conversion would overflow.
  if (std::nearbyint(value) == value && std::fabs(value) < 1e15) return static_cast<std::int64_t>(value);
  return value;
}

json make_object(const ObjectDescription& description) {
  const PixelBox& box = description.box;
  return json{{field::kClassId, description.class_id},
              {field::kObjectId, description.object_id},
              {field::kConfidence, description.confidence},
              {field::kLabel, description.label},
              {field::kRect,
               {{field::kLeft, pixel_value(box.left)},
                {field::kTop, pixel_value(box.top)},
                {field::kWidth, pixel_value(box.width)},
                {field::kHeight, pixel_value(box.height)}}},
              {field::kText, {{field::kDisplayText, description.label}}}};
}

ObjectDescription describe_object(const json& object) {
  ObjectDescription description;
  if (!object.is_object()) return description;
  const auto number = [](const json& from, const char* key, double fallback) {
    const auto found = from.find(key);
    return found != from.end() && found->is_number() ? found->get<double>() : fallback;
  };
  if (const auto found = object.find(field::kClassId); found != object.end() && found->is_number_integer())
    description.class_id = found->get<int>();
  if (const auto found = object.find(field::kObjectId); found != object.end() && found->is_number_integer())
    description.object_id = found->get<std::int64_t>();
  description.confidence = number(object, field::kConfidence, description.confidence);
  if (const auto found = object.find(field::kLabel); found != object.end() && found->is_string())
    description.label = found->get<std::string>();
  if (const auto rect = object.find(field::kRect); rect != object.end() && rect->is_object()) {
    description.box = {number(*rect, field::kLeft, 0), number(*rect, field::kTop, 0),
                       number(*rect, field::kWidth, 0), number(*rect, field::kHeight, 0)};
  }
  return description;
}

}  // namespace emi
