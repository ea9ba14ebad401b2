// SPDX-License-Identifier: LGPL-2.1-or-later
// An object of the frame document, built the same way by every element that adds one: the ROI
// metas of other elements (build_document), a detector's entries (empycustom mode=detect) and
// the tracks emtracker ends.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "document/vocabulary.h"

namespace emi {

// A rectangle in pixels of the frame.
struct PixelBox {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};

struct ObjectDescription {
  int class_id = kNoId;
  std::int64_t object_id = kNoId;
  double confidence = 1.0;
  std::string label;
  PixelBox box;
};

// A pixel coordinate as the document writes it: whole pixels as integers (as detectors write
// them), fractions as they are.
nlohmann::json pixel_value(double value);

// class_id, object_id, confidence, obj_label, rect_params and text_params (the label shown).
nlohmann::json make_object(const ObjectDescription& description);

// The standard fields of a document object; a field that is missing or not of its type keeps its
// default.
ObjectDescription describe_object(const nlohmann::json& object);

}  // namespace emi
