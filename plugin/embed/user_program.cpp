// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/user_program.h"

#include "document/literal_parser.h"
#include "embed/python_convert.h"
#include "embed/python_frame.h"
#include "embed/embed_log.h"
#include "embed/script_module.h"

#define GST_CAT_DEFAULT emi::embed_debug()

namespace emi {
namespace {

namespace py = pybind11;
using python::GilGuard;
using python::PythonError;

constexpr int kMostProcessArguments = 4;  // io_buffer, in_meta, options, events

// The seed's contract: process_ip returns str(list), a Python literal (or JSON) of the results.
void parse_returned_text(const std::string& text, ProgramOutput& output) {
  try {
    output.results = parse_literal(text);
  } catch (const LiteralParseError& error) {
    output.unusable = text;
    output.unusable_details = std::string(error.what()) + " at offset " + std::to_string(error.offset());
  }
}

}  // namespace

class UserProgram::Objects {
 public:
  std::optional<python::ScriptModule> script;  // first in, last out: the others are its objects
  py::object instance;
  py::object options;
  python::ScriptFunction start;
  python::ScriptFunction stop;
  python::ScriptFunction process;
};

UserProgram::UserProgram(const ProgramSpec& spec)
    : path_(spec.module_path), function_name_(spec.function_name) {
  if (path_.empty()) throw PythonError("no module set: the `module` property names the script", "");
  python::ensure_started();
  watchdog_ = std::make_unique<python::CallWatchdog>(path_, spec.call_timeout, spec.on_stall);
  GilGuard gil;
  auto objects = std::make_unique<Objects>();
  python::guarded("loading " + path_, [&] {
    python::ensure_frame_types();  // a missing NumPy fails the start, not the first frame
    objects->options = python::to_python(spec.options);
    const python::ScriptModule& script = objects->script.emplace(path_, "user");
    py::handle owner = script.module();
    if (!spec.class_name.empty()) {
      const python::ScriptFunction type = script.resolve(spec.class_name, 1);
      if (!type) throw PythonError(path_ + " has no class " + spec.class_name, "");
      objects->instance = type.arity > 0 ? type.function(objects->options) : type.function();
      owner = objects->instance;
    }
    objects->start = script.resolve(owner, "start", 1);
    objects->stop = script.resolve(owner, "stop", 1);
    objects->process = script.resolve(owner, function_name_, kMostProcessArguments);
  });
  if (!objects->process) {
    const std::string where = spec.class_name.empty() ? path_ : path_ + " class " + spec.class_name;
    throw PythonError(where + " has no function " + function_name_ + "()", "");
  }
  GST_DEBUG("%s: %s%s() takes %d arguments; start() %s, stop() %s", path_.c_str(),
            spec.class_name.empty() ? "" : (spec.class_name + ".").c_str(), function_name_.c_str(),
            objects->process.arity, objects->start ? "found" : "none", objects->stop ? "found" : "none");
  objects_ = std::move(objects);
}

UserProgram::~UserProgram() {
  watchdog_.reset();  // its thread may be waiting for the GIL
  GilGuard gil;
  objects_.reset();
}

void UserProgram::interrupt_running_call(std::chrono::milliseconds grace) {
  watchdog_->interrupt_running_call(grace);
}

void UserProgram::start() { call_optional(objects_->start, "start"); }

void UserProgram::stop() { call_optional(objects_->stop, "stop"); }

void UserProgram::call_optional(const python::ScriptFunction& callable, const char* name) {
  GilGuard gil;
  if (!callable) return;
  GST_DEBUG("%s() of %s", name, path_.c_str());
  python::guarded(std::string(name) + "() of " + path_, [&] {
    if (callable.arity > 0) callable.function(objects_->options);
    else callable.function();
  });
}

ProgramOutput UserProgram::process(GstBuffer* buffer, const GstVideoInfo& info, bool writable,
                                   const nlohmann::json& in_meta, guint64 frame_number) {
  ProgramOutput output;
  std::optional<std::string> returned_text;  // parsed once the GIL is released
  {
    GilGuard gil;
    const gint64 started = g_get_monotonic_time();
    struct TimeOnExit {
      gint64 started;
      gint64& elapsed;
      ~TimeOnExit() { elapsed = g_get_monotonic_time() - started; }
    } time_on_exit{started, output.python_us};
    std::optional<python::FrameForScript> frame;
    python::guarded("mapping a frame for " + path_, [&] { frame.emplace(buffer, info, writable); });
    // Ends the call on every path, so that views the script kept stay valid.
    struct FinishOnExit {
      python::FrameForScript& frame;
      GstBuffer* buffer;
      ~FinishOnExit() { frame.finish(buffer); }
    } finish_on_exit{*frame, buffer};

    const python::ScriptFunction& process = objects_->process;
    auto call_script = [&] {
      const py::object& io_buffer = frame->io_buffer();
      py::object result;
      switch (process.arity) {
        case 0: result = process.function(); break;
        case 1: result = process.function(io_buffer); break;
        case 2: result = process.function(io_buffer, python::to_python(in_meta)); break;
        case 3:
          result = process.function(io_buffer, python::to_python(in_meta), objects_->options);
          break;
        default: {
          py::list events;
          result = process.function(io_buffer, python::to_python(in_meta), objects_->options, events);
          if (!events.empty()) output.events = python::from_python(events);
        }
      }
      if (PyUnicode_Check(result.ptr()) || PyBytes_Check(result.ptr())) {
        returned_text = python::utf8_text(result);
      } else {
        try {
          output.results = python::from_python(result);
        } catch (const python::UnrepresentableValue& error) {
          output.unusable = python::utf8_text(py::repr(result));
          output.unusable_details = error.what();
        }
      }
    };
    python::CallWatchdog::Watch watch(*watchdog_, frame_number);
    try {
      python::guarded(function_name_ + "() of " + path_, call_script);
    } catch (const PythonError& error) {
      if (watch.interrupted()) throw CallStopped(error.what(), error.traceback());
      throw;
    }
  }
  if (returned_text) parse_returned_text(*returned_text, output);
  return output;
}

}  // namespace emi
