// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame document crosses into Python as dicts and lists, and results come back as JSON.
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace emi::python {

namespace py = pybind11;

// A Python value that has no place in a JSON document (a module, an open file, ...).
class UnrepresentableValue : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// GIL held for both.
py::object to_python(const nlohmann::json& value);
// Accepts None, bool, int, float, str, bytes (UTF-8), lists, tuples, dicts, NumPy scalars and
// arrays and torch tensors (through .item()/.tolist()). Text is made valid UTF-8 (utf8_text).
// Throws UnrepresentableValue; py::error_already_set when the value's own conversion raises.
nlohmann::json from_python(py::handle value);

}  // namespace emi::python
