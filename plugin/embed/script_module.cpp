// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/script_module.h"

#include <atomic>
#include <filesystem>

#include "embed/embed_log.h"
#include "embed/python_host.h"

#define GST_CAT_DEFAULT emi::embed_debug()

namespace emi::python {
namespace {

std::string unique_module_name(const std::string& path, const std::string& kind) {
  static std::atomic<unsigned> instances{0};
  std::string stem = std::filesystem::path(path).stem().string();
  for (char& c : stem) {
    if (!g_ascii_isalnum(c)) c = '_';
  }
  return "emi_" + kind + "_" + std::to_string(instances++) + "_" + stem;
}

}  // namespace

ScriptModule::ScriptModule(const std::string& path, const std::string& kind)
    : path_(path), name_(unique_module_name(path, kind)) {
  std::error_code error_code;
  if (!std::filesystem::is_regular_file(path_, error_code)) throw PythonError(path_ + ": no such file", "");
  try {
    module_ = helpers().attr("load_module")(path_, name_);
  } catch (py::error_already_set& error) {
    throw to_error(error, "loading " + path_);
  }
  GST_DEBUG("loaded %s as module %s", path_.c_str(), name_.c_str());
}

ScriptModule::~ScriptModule() {
  module_ = py::object();
  try {
    helpers().attr("unload_module")(name_);
  } catch (py::error_already_set& error) {
    // A module that can't leave sys.modules is only a name kept alive.
    GST_WARNING("unloading %s: %s", path_.c_str(), to_error(error, "unload_module").what());
  }
  GST_DEBUG("unloaded %s (module %s)", path_.c_str(), name_.c_str());
}

ScriptFunction ScriptModule::resolve(py::handle owner, const std::string& name, int most) const {
  ScriptFunction resolved;
  if (!py::hasattr(owner, name.c_str())) return resolved;
  py::object function = owner.attr(name.c_str());
  if (!PyCallable_Check(function.ptr())) return resolved;
  resolved.arity = helpers().attr("positional_arity")(function, most).cast<int>();
  resolved.function = std::move(function);
  return resolved;
}

}  // namespace emi::python
