// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/python_convert.h"

#include <string>
#include <unordered_map>

#include "embed/python_host.h"

namespace emi::python {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 256;  // deeper is a cycle or a mistake, and would blow the stack

std::string type_name(py::handle value) { return Py_TYPE(value.ptr())->tp_name; }

json integer_from_python(py::handle value) {
  int overflow = 0;
  const long long signed_value = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow == 0) return signed_value;
  if (overflow > 0) {
    const unsigned long long unsigned_value = PyLong_AsUnsignedLongLong(value.ptr());
    if (!PyErr_Occurred()) return unsigned_value;
    PyErr_Clear();
  }
  return PyLong_AsDouble(value.ptr());  // beyond 64 bits: keep the magnitude
}

// str keys as they are, bytes decoded, others in Python's own spelling: 1 -> "1", None -> "None".
std::string key_from_python(py::handle key) { return utf8_text(key); }

json convert(py::handle value, int depth) {
  if (depth > kMaxDepth) throw UnrepresentableValue("value nested deeper than 256 levels");
  PyObject* object = value.ptr();
  if (object == Py_None) return nullptr;
  if (PyBool_Check(object)) return object == Py_True;
  if (PyLong_Check(object)) return integer_from_python(value);
  if (PyFloat_Check(object)) return PyFloat_AS_DOUBLE(object);
  if (PyUnicode_Check(object) || PyBytes_Check(object)) return utf8_text(value);
  if (PyDict_Check(object)) {
    json result = json::object();
    for (auto [key, item] : py::reinterpret_borrow<py::dict>(value))
      result[key_from_python(key)] = convert(item, depth + 1);
    return result;
  }
  if (PyList_Check(object) || PyTuple_Check(object)) {
    json result = json::array();
    for (py::handle item : value) result.push_back(convert(item, depth + 1));
    return result;
  }
  // NumPy scalars and arrays, torch tensors: their own conversion to Python values.
  if (py::hasattr(value, "tolist") && py::hasattr(value, "dtype"))
    return convert(value.attr("tolist")(), depth + 1);
  if (py::hasattr(value, "item") && py::hasattr(value, "dtype"))
    return convert(value.attr("item")(), depth + 1);
  throw UnrepresentableValue("a " + type_name(value) + " can't go into the frame document");
}

}  // namespace

namespace {

// Dict keys repeat on every frame ("frame", "object", "rect_params", ...): one str object each,
// made once. Used with the GIL held, which also guards the cache.
PyObject* key_object(const std::string& key) {
  static std::unordered_map<std::string, PyObject*> cache;
  constexpr std::size_t kMaxCachedKeys = 4096;  // scripts that invent keys don't grow it forever
  auto found = cache.find(key);
  if (found != cache.end()) {
    Py_INCREF(found->second);
    return found->second;
  }
  PyObject* object = PyUnicode_FromStringAndSize(key.data(), static_cast<Py_ssize_t>(key.size()));
  if (object != nullptr && cache.size() < kMaxCachedKeys) {
    PyUnicode_InternInPlace(&object);
    Py_INCREF(object);
    cache.emplace(key, object);
  }
  return object;
}

// Raw C API: this runs for every frame's in_meta, and pybind11's accessors cost twice as much.
PyObject* new_python_value(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      Py_RETURN_NONE;
    case json::value_t::boolean:
      return PyBool_FromLong(value.get<bool>());
    case json::value_t::number_integer:
      return PyLong_FromLongLong(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return PyLong_FromUnsignedLongLong(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return PyFloat_FromDouble(value.get<double>());
    case json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      return PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
    }
    case json::value_t::binary: {
      const auto& bytes = value.get_binary();
      return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(bytes.data()),
                                       static_cast<Py_ssize_t>(bytes.size()));
    }
    case json::value_t::array: {
      PyObject* list = PyList_New(static_cast<Py_ssize_t>(value.size()));
      if (list == nullptr) return nullptr;
      Py_ssize_t index = 0;
      for (const json& item : value) {
        PyObject* element = new_python_value(item);
        if (element == nullptr) {
          Py_DECREF(list);
          return nullptr;
        }
        PyList_SET_ITEM(list, index++, element);  // steals the reference
      }
      return list;
    }
    case json::value_t::object: {
      PyObject* dict = PyDict_New();
      if (dict == nullptr) return nullptr;
      for (const auto& [key, item] : value.items()) {
        PyObject* key_string = key_object(key);
        PyObject* element = key_string != nullptr ? new_python_value(item) : nullptr;
        const bool failed = element == nullptr || PyDict_SetItem(dict, key_string, element) != 0;
        Py_XDECREF(key_string);
        Py_XDECREF(element);
        if (failed) {
          Py_DECREF(dict);
          return nullptr;
        }
      }
      return dict;
    }
  }
  Py_RETURN_NONE;
}

}  // namespace

py::object to_python(const json& value) {
  PyObject* object = new_python_value(value);
  if (object == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

json from_python(py::handle value) { return convert(value, 0); }

}  // namespace emi::python
