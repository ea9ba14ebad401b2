// SPDX-License-Identifier: LGPL-2.1-or-later
// An app's signal callback (EDGEMATRIX's emi_signal_callback.py): turns a signal (the frame
// document, as a dict) into events.  fn(signal) -> (events, debug_string), events a list of
// flat dicts; a bare list of events is accepted too.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "embed/python_host.h"

namespace emi {

struct CallbackResult {
  nlohmann::json events = nlohmann::json::array();  // JSON objects
  std::string debug;
  // Set when an event is {ValueError: "message"}: EDGEMATRIX's way for an app to stop the stream.
  std::optional<std::string> fatal_error;
};

// Every method takes the GIL itself; failures (load, raise, wrong shape) are python::PythonError
// naming the file.
class SignalCallback {
 public:
  SignalCallback(const std::string& module_path, const std::string& function_name);
  ~SignalCallback();
  SignalCallback(const SignalCallback&) = delete;
  SignalCallback& operator=(const SignalCallback&) = delete;

  CallbackResult call(const nlohmann::json& signal);

 private:
  class Objects;  // Python references, released under the GIL
  std::string path_;
  std::string function_name_;
  std::unique_ptr<Objects> objects_;
};

}  // namespace emi
