// SPDX-License-Identifier: LGPL-2.1-or-later
// A user's script loaded as a module of its own: what the user program (empycustom) and the
// signal callback (emaimeta) share. Loading, finding its functions, unloading.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace emi::python {

namespace py = pybind11;

// A function of a script with the number of positional arguments it accepts.
struct ScriptFunction {
  py::object function;
  int arity = 0;

  explicit operator bool() const { return static_cast<bool>(function); }
};

// Every method, the constructor and the destructor run with the GIL held.
class ScriptModule {
 public:
  // Loads the script at `path` as a new module named "emi_<kind>_<n>_<file stem>", so that two
  // elements running the same file each have their own globals; the modules of its folder are
  // private to the scripts of that folder. Throws PythonError naming the file.
  ScriptModule(const std::string& path, const std::string& kind);
  // Removes it from sys.modules (and its folder's modules when no other script of the folder is
  // loaded), so that an edited script is read again on the next start.
  ~ScriptModule();
  ScriptModule(const ScriptModule&) = delete;
  ScriptModule& operator=(const ScriptModule&) = delete;

  const std::string& path() const { return path_; }
  const py::object& module() const { return module_; }

  // `owner`'s attribute `name` (owner: the module, or an instance of one of its classes) when it
  // is callable, with how many positional arguments it takes, at most `most`; else empty.
  ScriptFunction resolve(py::handle owner, const std::string& name, int most) const;
  ScriptFunction resolve(const std::string& name, int most) const { return resolve(module_, name, most); }

 private:
  std::string path_;
  std::string name_;
  py::object module_;
};

}  // namespace emi::python
