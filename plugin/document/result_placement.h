// Where a script's results go in the frame document: EDGEMATRIX's placement rule.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace emi {

enum class PlacementMode {
  // With N objects, entries 0..N-1 belong to objects 0..N-1 (a secondary classifier) and an
  // optional entry N to the frame; with no objects, the first entry belongs to the frame.
  kAuto,
  // Entries with rect_params become new objects (a detector as `primary`); the others belong to
  // the frame.
  kDetect,
};

struct PlacementOutcome {
  std::vector<std::size_t> new_objects;  // indices into frame["object"]
  std::vector<std::string> problems;     // entries that were not placed, and why
};

// `results`: what the script returned (a list; a single dict or value counts as a one-entry list,
// None as none). Object entries go under object[key]; frame entries are appended to frame[key].
PlacementOutcome place_results(nlohmann::json& frame, const nlohmann::json& results,
                               PlacementMode mode, const std::string& key, int frame_width,
                               int frame_height);

}  // namespace emi
