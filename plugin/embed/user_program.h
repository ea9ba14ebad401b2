// SPDX-License-Identifier: LGPL-2.1-or-later
// A user's Python program as empycustom runs it: EDGEMATRIX's EMPyCustom contract.
//   start(options)                                once, before the first frame
//   process_ip(io_buffer, in_meta, options, events)   per frame (any prefix of these parameters)
//   stop(options)                                 once, at the end
// as module functions, or as methods of an instance of `class_name`.
#pragma once

#include <gst/video/video.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "embed/call_watchdog.h"
#include "embed/python_host.h"

namespace emi::python {
struct ScriptFunction;
}  // namespace emi::python

namespace emi {

struct ProgramSpec {
  std::string module_path;
  std::string class_name;  // empty: module-level functions
  std::string function_name = "process_ip";
  nlohmann::json options = nlohmann::json::object();
  // A process call running longer is reported to on_stall (from the watchdog's thread); zero: never.
  std::chrono::milliseconds call_timeout{10000};
  python::CallWatchdog::StallHandler on_stall = [](const python::CallWatchdog::Stall&) {};
};

// A process call that interrupt_running_call() ended: not the script's failure.
class CallStopped : public python::PythonError {
 public:
  using PythonError::PythonError;
};

// What one process_ip call gave back, parsed: the seed's str(list) (a Python literal or JSON, as
// text or bytes) and Python values alike end here as JSON.
struct ProgramOutput {
  nlohmann::json results;  // null when the script returned None or nothing usable
  nlohmann::json events = nlohmann::json::array();  // what the script appended to `events`
  // Set when the returned value could not be used: what it was, and why.
  std::optional<std::string> unusable;
  std::string unusable_details;
  gint64 python_us = 0;  // time the call held the GIL: the frame mapped, the script, conversions
};

// Every method takes the GIL itself and throws python::PythonError with the traceback.
class UserProgram {
 public:
  // Loads the module as a module object of its own, instantiates the class if one is named, and
  // checks that the process function exists.
  explicit UserProgram(const ProgramSpec& spec);
  ~UserProgram();
  UserProgram(const UserProgram&) = delete;
  UserProgram& operator=(const UserProgram&) = delete;

  void start();
  void stop();
  // `frame_number` names the frame when the call is reported as stalled. Throws CallStopped when
  // interrupt_running_call() ended it.
  ProgramOutput process(GstBuffer* buffer, const GstVideoInfo& info, bool writable,
                        const nlohmann::json& in_meta, guint64 frame_number);
  // From any thread: a process call still running after `grace` gets ScriptStopped raised in it
  // (see CallWatchdog), so that a stopping element doesn't wait forever for a blocked script.
  void interrupt_running_call(std::chrono::milliseconds grace);

 private:
  class Objects;  // the script and every Python reference, released under the GIL
  // start()/stop(): skipped when the script has none; given the options when it takes them.
  void call_optional(const python::ScriptFunction& callable, const char* name);
  std::string path_;
  std::string function_name_;
  std::unique_ptr<python::CallWatchdog> watchdog_;  // made and destroyed without the GIL
  std::unique_ptr<Objects> objects_;
};

}  // namespace emi
