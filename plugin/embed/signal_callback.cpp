// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/signal_callback.h"

#include "embed/python_convert.h"
#include "embed/embed_log.h"
#include "embed/script_module.h"

#define GST_CAT_DEFAULT emi::embed_debug()

namespace emi {
namespace {

namespace py = pybind11;
using python::GilGuard;
using python::PythonError;

}  // namespace

class SignalCallback::Objects {
 public:
  std::optional<python::ScriptModule> script;  // first in, last out
  python::ScriptFunction function;
};

SignalCallback::SignalCallback(const std::string& module_path, const std::string& function_name)
    : path_(module_path), function_name_(function_name) {
  if (function_name_.empty()) throw PythonError(path_ + ": no callback function named", "");
  python::ensure_started();
  GilGuard gil;
  auto objects = std::make_unique<Objects>();
  try {
    objects->function = objects->script.emplace(path_, "signal_callback").resolve(function_name_, 1);
  } catch (py::error_already_set& error) {
    throw python::to_error(error, "loading " + path_);
  }
  if (!objects->function) throw PythonError(path_ + " has no function " + function_name_ + "()", "");
  GST_DEBUG("signal callback %s() of %s", function_name_.c_str(), path_.c_str());
  objects_ = std::move(objects);
}

SignalCallback::~SignalCallback() {
  GilGuard gil;
  objects_.reset();
}

CallbackResult SignalCallback::call(const nlohmann::json& signal) {
  GilGuard gil;
  const std::string context = function_name_ + "() of " + path_;
  auto shape_error = [&](const std::string& problem) {
    return PythonError(context + " returned " + problem +
                           "; it must return (events, debug_string), events a list of dicts",
                       "");
  };
  auto type_name = [](py::handle value) { return std::string(Py_TYPE(value.ptr())->tp_name); };
  CallbackResult result;
  const gint64 started = g_get_monotonic_time();
  python::guarded(context, [&] {
    py::object returned = objects_->function.function(python::to_python(signal));
    py::object events = returned;
    if (PyTuple_Check(returned.ptr())) {
      const py::tuple pair = py::reinterpret_borrow<py::tuple>(returned);
      if (pair.size() != 2) throw shape_error("a tuple of " + std::to_string(pair.size()) + " items");
      events = pair[0];
      if (!pair[1].is_none()) result.debug = python::utf8_text(pair[1]);
    }
    if (events.is_none()) return;
    if (!PyList_Check(events.ptr()) && !PyTuple_Check(events.ptr()))
      throw shape_error("events of type " + type_name(events));
    std::size_t index = 0;
    for (py::handle event : events) {
      if (!PyDict_Check(event.ptr()))
        throw shape_error("events[" + std::to_string(index) + "] of type " + type_name(event));
      const py::dict dict = py::reinterpret_borrow<py::dict>(event);
      if (dict.contains(py::handle(PyExc_ValueError))) {
        result.fatal_error = context + ": " + python::utf8_text(dict[py::handle(PyExc_ValueError)]);
        return;
      }
      try {
        result.events.push_back(python::from_python(event));
      } catch (const python::UnrepresentableValue& error) {
        throw shape_error("events[" + std::to_string(index) + "] with a value JSON can't hold: " + error.what());
      }
      ++index;
    }
  });
  GST_LOG("%s: %zu events, %zu bytes of debug text, %" G_GINT64_FORMAT " µs", context.c_str(), result.events.size(),
          result.debug.size(), g_get_monotonic_time() - started);
  return result;
}

}  // namespace emi
