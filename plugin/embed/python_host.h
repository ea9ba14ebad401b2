// SPDX-License-Identifier: LGPL-2.1-or-later
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
// ("start() of /x/y.py"). GIL held. Never throws: an exception that can't even be described
// still becomes an error.
PythonError to_error(py::error_already_set& error, const std::string& context) noexcept;

// Text from a script as UTF-8, never throwing on what it holds: a str's lone surrogates (a file
// name decoded with surrogateescape) are written as \udcXX escapes, bytes that are not UTF-8
// become U+FFFD; anything else is its str(). GIL held; throws py::error_already_set only when
// str() itself raises.
std::string utf8_text(py::handle text);

// The exception boundary of every call into a script and every conversion of what it gave:
// runs `call` (GIL held) and turns whatever it throws into a PythonError whose message begins
// with `context` (what was being done, naming the file): a Python exception (with its
// traceback), a value pybind11 could not convert, or any other C++ exception.
template <typename Call>
auto guarded(const std::string& context, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (py::error_already_set& error) {
    throw to_error(error, context);
  } catch (const PythonError&) {
    throw;
  } catch (const std::exception& error) {
    throw PythonError(context + ": " + error.what(), "");
  }
}

}  // namespace emi::python
