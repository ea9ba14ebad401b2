// The one embedded CPython of the process: started on first use (or adopted when the process
// already runs Python, e.g. a PyGObject app), never finalised, GIL held only inside calls.
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace emi::python {

namespace py = pybind11;

// A Python failure turned into plain C++ data, so it can cross the GIL boundary.
class PythonError : public std::runtime_error {
 public:
  PythonError(const std::string& summary, std::string traceback)
      : std::runtime_error(summary), traceback_(std::move(traceback)) {}
  // The formatted traceback ("Traceback (most recent call last): ...").
  const std::string& traceback() const noexcept { return traceback_; }

 private:
  std::string traceback_;
};

// Starts the interpreter once per process. Throws PythonError when Python or NumPy can't start.
void ensure_started();

// Holds the GIL for its scope, on any thread. A thread that has no Python thread state gets one
// that lives as long as the thread: creating one per call costs ~45 µs (docs/architecture.md).
class GilGuard {
 public:
  GilGuard();
  ~GilGuard();
  GilGuard(const GilGuard&) = delete;
  GilGuard& operator=(const GilGuard&) = delete;

 private:
  PyGILState_STATE state_;
};

// The host's helper module (FrameArray, MapInfo, module loading, signature inspection).
// GIL held.
py::module_ helpers();

// Turns the pending Python exception into a PythonError; `context` says what was being done
// ("start() of /x/y.py"). GIL held.
PythonError to_error(py::error_already_set& error, const std::string& context);

}  // namespace emi::python
