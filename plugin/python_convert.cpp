#include "python_convert.h"

#include <string>

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

std::string key_from_python(py::handle key) {
  if (PyUnicode_Check(key.ptr())) return key.cast<std::string>();
  return py::str(key).cast<std::string>();  // Python's own spelling: 1 -> "1", None -> "None"
}

json convert(py::handle value, int depth) {
  if (depth > kMaxDepth) throw UnrepresentableValue("value nested deeper than 256 levels");
  PyObject* object = value.ptr();
  if (object == Py_None) return nullptr;
  if (PyBool_Check(object)) return object == Py_True;
  if (PyLong_Check(object)) return integer_from_python(value);
  if (PyFloat_Check(object)) return PyFloat_AS_DOUBLE(object);
  if (PyUnicode_Check(object)) return value.cast<std::string>();
  if (PyBytes_Check(object)) return std::string(PyBytes_AS_STRING(object), PyBytes_GET_SIZE(object));
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

py::object to_python(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case json::value_t::number_integer:
      return py::int_(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return py::float_(value.get<double>());
    case json::value_t::string:
      return py::str(value.get_ref<const std::string&>());
    case json::value_t::binary:
      return py::bytes(std::string(value.get_binary().begin(), value.get_binary().end()));
    case json::value_t::array: {
      py::list list(value.size());
      std::size_t index = 0;
      for (const json& item : value) list[index++] = to_python(item);
      return std::move(list);
    }
    case json::value_t::object: {
      py::dict dict;
      for (const auto& [key, item] : value.items()) dict[py::str(key)] = to_python(item);
      return std::move(dict);
    }
  }
  return py::none();
}

json from_python(py::handle value) { return convert(value, 0); }

}  // namespace emi::python
