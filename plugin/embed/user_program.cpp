#include "embed/user_program.h"

#include <atomic>
#include <filesystem>

#include "document/literal_parser.h"
#include "embed/python_convert.h"
#include "embed/python_frame.h"

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

std::string unique_module_name(const std::string& path) {
  static std::atomic<unsigned> instances{0};
  std::string stem = std::filesystem::path(path).stem().string();
  for (char& c : stem) {
    if (!g_ascii_isalnum(c)) c = '_';
  }
  return "emi_user_" + std::to_string(instances++) + "_" + stem;
}

}  // namespace

// A script function with the number of positional arguments it accepts.
struct UserProgram::Callable {
  py::object function;
  int arity = 0;

  explicit operator bool() const { return static_cast<bool>(function); }
};

class UserProgram::Objects {
 public:
  std::string module_name;
  py::object module;
  py::object instance;
  py::object options;
  Callable start;
  Callable stop;
  Callable process;
};

UserProgram::UserProgram(const ProgramSpec& spec)
    : path_(spec.module_path), function_name_(spec.function_name) {
  if (path_.empty()) throw PythonError("no module set: the `module` property names the script", "");
  std::error_code error_code;
  if (!std::filesystem::is_regular_file(path_, error_code))
    throw PythonError(path_ + ": no such file", "");

  python::ensure_started();
  GilGuard gil;
  objects_ = std::make_unique<Objects>();
  Objects& objects = *objects_;
  objects.module_name = unique_module_name(path_);
  py::module_ helpers = python::helpers();
  try {
    objects.options = python::to_python(spec.options);
    objects.module = helpers.attr("load_module")(path_, objects.module_name);
    py::object owner = objects.module;
    if (!spec.class_name.empty()) {
      if (!py::hasattr(objects.module, spec.class_name.c_str()))
        throw PythonError(path_ + " has no class " + spec.class_name, "");
      py::object type = objects.module.attr(spec.class_name.c_str());
      const int arity = helpers.attr("positional_arity")(type, 1).cast<int>();
      objects.instance = arity > 0 ? type(objects.options) : type();
      owner = objects.instance;
    }
    auto resolve = [&](const std::string& name, int most) {
      Callable callable;
      if (py::hasattr(owner, name.c_str())) {
        callable.function = owner.attr(name.c_str());
        callable.arity = helpers.attr("positional_arity")(callable.function, most).cast<int>();
      }
      return callable;
    };
    objects.start = resolve("start", 1);
    objects.stop = resolve("stop", 1);
    objects.process = resolve(function_name_, kMostProcessArguments);
  } catch (py::error_already_set& error) {
    PythonError failure = python::to_error(error, "loading " + path_);
    release_objects();
    throw failure;
  } catch (...) {
    release_objects();
    throw;
  }
  if (!objects.process || !PyCallable_Check(objects.process.function.ptr())) {
    const std::string where = spec.class_name.empty() ? path_ : path_ + " class " + spec.class_name;
    release_objects();
    throw PythonError(where + " has no function " + function_name_ + "()", "");
  }
}

UserProgram::~UserProgram() {
  if (!objects_) return;
  GilGuard gil;
  release_objects();
}

void UserProgram::release_objects() noexcept {
  try {
    python::helpers().attr("unload_module")(objects_->module_name);
  } catch (py::error_already_set&) {
    // Nothing left to do for a module that can't be removed from sys.modules.
  }
  objects_.reset();
}

void UserProgram::start() { call_optional(objects_->start, "start"); }

void UserProgram::stop() { call_optional(objects_->stop, "stop"); }

void UserProgram::call_optional(const Callable& callable, const char* name) {
  GilGuard gil;
  if (!callable) return;
  try {
    if (callable.arity > 0) callable.function(objects_->options);
    else callable.function();
  } catch (py::error_already_set& error) {
    throw python::to_error(error, std::string(name) + "() of " + path_);
  }
}

ProgramOutput UserProgram::process(GstBuffer* buffer, const GstVideoInfo& info, bool writable,
                                   const nlohmann::json& in_meta) {
  ProgramOutput output;
  std::optional<std::string> returned_text;  // parsed once the GIL is released
  {
    GilGuard gil;
    std::optional<python::FrameForScript> frame;
    try {
      frame.emplace(buffer, info, writable);
    } catch (py::error_already_set& error) {
      throw python::to_error(error, "mapping a frame for " + path_);
    } catch (const std::runtime_error& error) {
      throw PythonError(std::string("mapping a frame for ") + path_ + ": " + error.what(), "");
    }
    // Ends the call on every path, so that views the script kept stay valid.
    struct FinishOnExit {
      python::FrameForScript& frame;
      GstBuffer* buffer;
      ~FinishOnExit() { frame.finish(buffer); }
    } finish_on_exit{*frame, buffer};

    auto context = [this] { return function_name_ + "() of " + path_; };
    const Callable& process = objects_->process;
    try {
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
      if (PyUnicode_Check(result.ptr())) {
        returned_text = result.cast<std::string>();
      } else if (PyBytes_Check(result.ptr())) {
        returned_text = std::string(PyBytes_AS_STRING(result.ptr()), PyBytes_GET_SIZE(result.ptr()));
      } else {
        try {
          output.results = python::from_python(result);
        } catch (const python::UnrepresentableValue& error) {
          output.unusable = py::repr(result).cast<std::string>();
          output.unusable_details = error.what();
        }
      }
    } catch (py::error_already_set& error) {
      throw python::to_error(error, context());
    } catch (const std::exception& error) {  // events that have no JSON form, undecodable text
      throw PythonError(context() + ": " + error.what(), "");
    }
  }
  if (returned_text) parse_returned_text(*returned_text, output);
  return output;
}

}  // namespace emi
