#include "embed/signal_callback.h"

#include <atomic>
#include <filesystem>

#include "embed/python_convert.h"

namespace emi {
namespace {

namespace py = pybind11;
using python::GilGuard;
using python::PythonError;

std::string callback_module_name() {
  static std::atomic<unsigned> instances{0};
  return "emi_signal_callback_" + std::to_string(instances++);
}

}  // namespace

class SignalCallback::Objects {
 public:
  std::string module_name;
  py::object module;
  py::object function;
};

SignalCallback::SignalCallback(const std::string& module_path, const std::string& function_name)
    : path_(module_path), function_name_(function_name) {
  std::error_code error_code;
  if (!std::filesystem::is_regular_file(path_, error_code)) throw PythonError(path_ + ": no such file", "");
  if (function_name_.empty()) throw PythonError(path_ + ": no callback function named", "");
  python::ensure_started();
  GilGuard gil;
  auto objects = std::make_unique<Objects>();
  objects->module_name = callback_module_name();
  py::module_ helpers = python::helpers();
  try {
    objects->module = helpers.attr("load_module")(path_, objects->module_name);
  } catch (py::error_already_set& error) {
    throw python::to_error(error, "loading " + path_);
  }
  if (py::hasattr(objects->module, function_name_.c_str()))
    objects->function = objects->module.attr(function_name_.c_str());
  if (!objects->function || !PyCallable_Check(objects->function.ptr())) {
    helpers.attr("unload_module")(objects->module_name);
    throw PythonError(path_ + " has no function " + function_name_ + "()", "");
  }
  objects_ = std::move(objects);
}

SignalCallback::~SignalCallback() {
  GilGuard gil;
  try {
    python::helpers().attr("unload_module")(objects_->module_name);
  } catch (py::error_already_set&) {
    // A module that can't leave sys.modules is only a name kept alive.
  }
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
  CallbackResult result;
  try {
    py::object returned = objects_->function(python::to_python(signal));
    py::object events = returned;
    if (PyTuple_Check(returned.ptr())) {
      const py::tuple pair = py::reinterpret_borrow<py::tuple>(returned);
      if (pair.size() != 2) throw shape_error("a tuple of " + std::to_string(pair.size()) + " items");
      events = pair[0];
      if (!pair[1].is_none()) result.debug = py::str(pair[1]).cast<std::string>();
    }
    if (events.is_none()) return result;
    if (!PyList_Check(events.ptr()) && !PyTuple_Check(events.ptr()))
      throw shape_error("events of type " + py::str(events.get_type().attr("__name__")).cast<std::string>());
    std::size_t index = 0;
    for (py::handle event : events) {
      if (!PyDict_Check(event.ptr()))
        throw shape_error("events[" + std::to_string(index) + "] of type " +
                          py::str(event.get_type().attr("__name__")).cast<std::string>());
      const py::dict dict = py::reinterpret_borrow<py::dict>(event);
      if (dict.contains(py::handle(PyExc_ValueError))) {
        result.fatal_error = context + ": " + py::str(dict[py::handle(PyExc_ValueError)]).cast<std::string>();
        return result;
      }
      result.events.push_back(python::from_python(event));
      ++index;
    }
  } catch (py::error_already_set& error) {
    throw python::to_error(error, context);
  } catch (const python::UnrepresentableValue& error) {
    throw shape_error(std::string("a value JSON can't hold: ") + error.what());
  }
  return result;
}

}  // namespace emi
