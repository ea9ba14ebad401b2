// SPDX-License-Identifier: LGPL-2.1-or-later
// The seams of the actions layer: what the ActionEngine hands each fired rule to (an ActionRunner:
// RuleActions, or a test's), and how the layer speaks to its element (an ActionReporter, which
// posts on the bus).
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "actions/action_rules.h"

namespace emi {

// A rule that fired on an event of the signal of the frame at `pts`.
struct Firing {
  const rules::Rule& rule;
  const nlohmann::json& event;
  GstClockTime pts;
  // The engine's segment when the signal was submitted: a flush (a seek) starts a new one, and a
  // recording only takes the events of its own segment (their PTS are of its timeline).
  std::uint64_t segment;
};

// Runs the actions of fired rules, on the ActionEngine's worker thread.
class ActionRunner {
 public:
  virtual ~ActionRunner() = default;
  virtual void run(const Firing& firing) = 0;
};

// Called from the engine's worker, the recorder's thread, the uploaders' workers, and the
// streaming thread: implementations are thread-safe. Nothing passed here holds a secret.
class ActionReporter {
 public:
  virtual ~ActionReporter() = default;
  // A rule fired: {"rule_name", "action" (secrets masked), "event", "frame_num", "pts"}.
  virtual void fired(const nlohmann::json& firing) = 0;
  // A clip's MP4 and sidecar are complete (path, sidecar, id, pts range, frames, events).
  virtual void clip_recorded(const nlohmann::json& clip) = 0;
  // A clip asked for was not written whole (no file, a full disk, no video after its event):
  // counted and reported.
  virtual void clip_lost(const std::string& message) = 0;
  // Something else went wrong or was not done (a line not written, an event not uploaded).
  virtual void warning(const std::string& message, const std::string& detail) = 0;
  // The app's callback asked the stream to stop.
  virtual void fatal(const std::string& message, const std::string& detail) = 0;
};

}  // namespace emi
