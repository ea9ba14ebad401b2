// SPDX-License-Identifier: LGPL-2.1-or-later
// Where a script's results go in the frame document (EDGEMATRIX's placement rule), and the merge
// of one call's results and events into a buffer's document.
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "document/document_object.h"

namespace emi {

enum class PlacementMode {
  // With N objects, entries 0..N-1 belong to objects 0..N-1 (a secondary classifier) and an
  // optional entry N to the frame; with no objects, the first entry belongs to the frame.
  kAuto,
  // Entries with rect_params become new objects (a detector as `primary`); the others belong to
  // the frame.
  kDetect,
};

// An object a detector's entry added, at `index` in frame["object"].
struct PlacedObject {
  std::size_t index;
  ObjectDescription description;
};

struct PlacementOutcome {
  std::vector<PlacedObject> new_objects;
  std::vector<std::string> problems;  // entries that were not placed, and why (field and value)
};

// `results`: what the script returned (a list; a single dict or value counts as a one-entry list,
// None as none). Object entries go under object[key]; frame entries are appended to frame[key].
// Never throws on what a script returned: an entry of the wrong shape or type is a problem.
PlacementOutcome place_results(nlohmann::json& frame, const nlohmann::json& results,
                               PlacementMode mode, const std::string& key, int frame_width,
                               int frame_height);

struct Placement {
  PlacementMode mode = PlacementMode::kAuto;
  std::string key;
  int frame_width = 0;
  int frame_height = 0;
};

// The merge of one script call into the frame: places `results`, appends `events` (a list) to
// frame["events"], mirrors new objects as GstVideoRegionOfInterestMeta and writes the document
// to `buffer` (writable). Returns the problems, for the caller to report.
std::vector<std::string> store_results(GstBuffer* buffer, nlohmann::json document,
                                       const nlohmann::json& results, nlohmann::json events,
                                       const Placement& placement);

// A value as a message quotes it: compact JSON, invalid UTF-8 replaced, cut after `most` bytes.
std::string json_excerpt(const nlohmann::json& value, std::size_t most = 120);

}  // namespace emi
