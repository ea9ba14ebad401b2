// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/python_host.h"

#include <dlfcn.h>
#include <gst/gst.h>
#include <malloc.h>
#include <pybind11/eval.h>

#include <cstdlib>
#include <mutex>

#include "embed/embed_log.h"

#define GST_CAT_DEFAULT emi::embed_debug()

namespace emi::python {
namespace {

// Python half of the host, run once into the private module `_emi_host`.
constexpr const char kHelperSource[] = R"PY(
import builtins
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading
import traceback

try:
    # Scripts written for EMPyCustom do a bare `from gi.repository import Gst`: pin the version
    # of the GStreamer we run in, as their host did.
    import gi

    gi.require_version("Gst", "1.0")
except (ImportError, ValueError):
    pass


class _FolderScope:
    """The modules a program's folder provides, private to that folder: a program's
    `import model_weights` finds the model_weights.py beside it, and two apps that each ship one
    import their own. They live in sys.modules under a package of the folder's own
    (`_emi_app_<n>.model_weights`); the folder is not put on sys.path."""

    _count = 0

    def __init__(self, folder):
        _FolderScope._count += 1
        self.folder = folder
        self.package = f"_emi_app_{_FolderScope._count}"
        self.users = 0
        self.provides = {}  # top-level name -> whether the folder has a module or package of it
        package = importlib.util.module_from_spec(
            importlib.machinery.ModuleSpec(self.package, None, is_package=True))
        package.__path__ = [folder]
        sys.modules[self.package] = package
        self.builtins = dict(builtins.__dict__, __import__=self.import_)

    def _own(self, top):
        known = self.provides.get(top)
        if known is None:
            spec = importlib.machinery.PathFinder.find_spec(top, [self.folder])
            shared = getattr(sys.modules.get(top), "__file__", None)
            # A namespace folder (resource/, streams/) never hides a real module; a module the
            # application imported from this very folder stays shared with it (a PyGObject app
            # and its element exchanging state through a module).
            known = spec is not None and spec.has_location and not (
                shared and os.path.realpath(shared) == os.path.realpath(spec.origin))
            self.provides[top] = known
        return known

    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or not self._own(name.partition(".")[0]):
            return builtins.__import__(name, globals, locals, fromlist, level)
        private = builtins.__import__(f"{self.package}.{name}", globals, locals, fromlist, 0)
        return private if fromlist else sys.modules[f"{self.package}.{name.partition('.')[0]}"]

    def drop(self):
        prefix = self.package + "."
        for name in [name for name in sys.modules if name == self.package or name.startswith(prefix)]:
            del sys.modules[name]


class _ScopedLoader(importlib.machinery.SourceFileLoader):
    """Runs a folder's module with the folder's __import__, so its own imports stay private."""

    def __init__(self, fullname, path, scope):
        super().__init__(fullname, path)
        self.scope = scope

    def exec_module(self, module):
        module.__builtins__ = self.scope.builtins
        super().exec_module(module)


class _ScopeFinder:
    """Finds `_emi_app_<n>.<name>` in its folder, loaded with the folder's __import__."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        scope = _scopes_by_package.get(fullname.partition(".")[0])
        if scope is None or "." not in fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _ScopedLoader(fullname, spec.origin, scope)
        return spec


_scopes = {}             # folder -> _FolderScope
_scopes_by_package = {}  # its package name -> the same
_module_scopes = {}      # a loaded program's module name -> its folder
_scopes_lock = threading.Lock()
sys.meta_path.insert(0, _ScopeFinder)


def load_module(path, name):
    folder = os.path.dirname(os.path.realpath(path))
    with _scopes_lock:
        scope = _scopes.get(folder)
        if scope is None:
            scope = _scopes[folder] = _FolderScope(folder)
            _scopes_by_package[scope.package] = scope
        scope.users += 1
        _module_scopes[name] = folder
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    module.__builtins__ = scope.builtins
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        unload_module(name)
        raise
    return module


def unload_module(name):
    """Forgets a program's module, and its folder's modules when no program of it is left (an
    edited helper is read again on the next start)."""
    sys.modules.pop(name, None)
    with _scopes_lock:
        folder = _module_scopes.pop(name, None)
        scope = _scopes.get(folder)
        if scope is None:
            return
        scope.users -= 1
        if scope.users == 0:
            scope.drop()
            del _scopes[folder], _scopes_by_package[scope.package]


def positional_arity(function, most):
    """How many positional arguments `function` accepts, at most `most`."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return most
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind == parameter.VAR_POSITIONAL:
            return most
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, most)


def format_exception(kind, error, trace):
    return "".join(traceback.format_exception(kind, error, trace))


def describe_exception(error):
    return "".join(traceback.format_exception_only(error)).strip()
)PY";

// Deliberately never released: the interpreter is never finalised, and a static py::object
// would be decref'd after a Python host process has finalised it.
PyObject* helper_module = nullptr;

PyObject* new_helper_module() {
  return py::module_::import("types").attr("ModuleType")("_emi_host").release().ptr();
}

void start_interpreter() {
  if (Py_IsInitialized()) {
    GilGuard gil;  // a PyGObject (or other Python) process: share its interpreter
    helper_module = new_helper_module();
    GST_INFO("sharing the process's Python %s", Py_GetVersion());
  } else {
    // GStreamer opens plugins with local symbol binding; C extensions (NumPy, torch) need
    // libpython's symbols global, as gst-python's loader does.
    if (dlopen(EMI_PYTHON_SONAME, RTLD_NOW | RTLD_GLOBAL) == nullptr)
      GST_WARNING("cannot make %s global (%s): NumPy and torch may fail to import",
                  EMI_PYTHON_SONAME, dlerror());
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;  // the host keeps its own SIGINT/SIGPIPE handling
    config.parse_argv = 0;
    // Never finalised, so never flushed at exit: what scripts print must not sit in a buffer.
    config.buffered_stdio = 0;
    // Paths as if Debian's python3 ran: that finds dist-packages (numpy, torch).
    PyConfig_SetBytesString(&config, &config.program_name, EMI_PYTHON_EXECUTABLE);
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
      throw PythonError(std::string("cannot start Python: ") +
                            (status.err_msg != nullptr ? status.err_msg : "unknown error"),
                        "");
    }
    helper_module = new_helper_module();
    PyEval_SaveThread();  // the GIL is taken only inside calls from now on
    GST_INFO("started Python %s", Py_GetVersion());
  }

  GilGuard gil;
  try {
    py::module_ module = helpers();
    py::exec(kHelperSource, module.attr("__dict__"));
    py::module_::import("sys").attr("modules")["_emi_host"] = module;
  } catch (py::error_already_set& error) {
    throw to_error(error, "starting emi's Python host");
  }
}

// A thread state made by us for a thread Python doesn't know, kept for the thread's life.
class OwnedThreadState {
 public:
  void ensure() {
    if (state_ == nullptr && PyGILState_GetThisThreadState() == nullptr)
      state_ = PyThreadState_New(PyInterpreterState_Main());
  }
  ~OwnedThreadState() {
    if (state_ == nullptr || !Py_IsInitialized() || _Py_IsFinalizing()) return;
    PyEval_RestoreThread(state_);
    PyThreadState_Clear(state_);
    PyThreadState_DeleteCurrent();
  }

 private:
  PyThreadState* state_ = nullptr;
};

thread_local OwnedThreadState owned_thread_state;

// Programs run in streaming threads, whose glibc arenas are made of 64 MiB heaps: a frame whose
// tensors outgrow one heap gets a new one that is unmapped again when they are freed, and the next
// frame faults every page back in (+25% a frame for ssdlite320 at 640x360, +5% for the counter
// app, against the same loop in the main thread). A top pad of one heap keeps that memory mapped.
// Setting it also freezes glibc's dynamic mmap threshold where it stands (128 KiB in a fresh
// process), after which every larger tensor is mapped and unmapped per call (the 3DCNN's frame
// preprocessing 10x slower), so the threshold is fixed at the dynamic one's ceiling.
// Process-wide, so settings the user chose (MALLOC_TOP_PAD_, MALLOC_MMAP_THRESHOLD_) are left alone.
constexpr int kHeapTopPad = 64 << 20;
constexpr int kMmapThreshold = 32 << 20;

void keep_freed_heaps_mapped() {
  if (std::getenv("MALLOC_TOP_PAD_") != nullptr || std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return;
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TOP_PAD, kHeapTopPad) == 1)
    GST_INFO("glibc's M_TOP_PAD set to %d, M_MMAP_THRESHOLD to %d", kHeapTopPad, kMmapThreshold);
}

}  // namespace

void ensure_started() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    keep_freed_heaps_mapped();
    try {
      start_interpreter();
    } catch (const PythonError& error) {
      failure = std::string(error.what()) + "\n" + error.traceback();
    }
  });
  if (!failure.empty()) throw PythonError(failure, "");
}

GilGuard::GilGuard() {
  // PyThreadState_New registers the state as this thread's, with a use count of one, so
  // PyGILState_Ensure/Release below reuse it instead of creating and deleting one per call.
  owned_thread_state.ensure();
  state_ = PyGILState_Ensure();
}

GilGuard::~GilGuard() { PyGILState_Release(state_); }

py::module_ helpers() { return py::reinterpret_borrow<py::module_>(helper_module); }

std::string utf8_text(py::handle text) {
  PyObject* object = text.ptr();
  if (PyBytes_Check(object)) {
    py::object decoded = py::reinterpret_steal<py::object>(
        PyUnicode_DecodeUTF8(PyBytes_AS_STRING(object), PyBytes_GET_SIZE(object), "replace"));
    if (!decoded) throw py::error_already_set();
    return utf8_text(decoded);
  }
  if (!PyUnicode_Check(object)) return utf8_text(py::str(text));
  Py_ssize_t size = 0;
  if (const char* utf8 = PyUnicode_AsUTF8AndSize(object, &size)) return std::string(utf8, size);
  PyErr_Clear();  // lone surrogates: no UTF-8 spelling
  py::object encoded =
      py::reinterpret_steal<py::object>(PyUnicode_AsEncodedString(object, "utf-8", "backslashreplace"));
  if (!encoded) throw py::error_already_set();
  return std::string(PyBytes_AS_STRING(encoded.ptr()), PyBytes_GET_SIZE(encoded.ptr()));
}

PythonError to_error(py::error_already_set& error, const std::string& context) noexcept {
  std::string summary;
  std::string traceback;
  try {
    summary = utf8_text(helpers().attr("describe_exception")(error.value()));
    traceback = utf8_text(helpers().attr("format_exception")(error.type(), error.value(), error.trace()));
  } catch (const std::exception&) {  // the exception's own __str__ raising, say
    PyErr_Clear();
    summary = std::string(reinterpret_cast<PyTypeObject*>(error.type().ptr())->tp_name) +
              " (its message could not be read)";
  }
  return PythonError(context + ": " + summary, traceback);
}

}  // namespace emi::python
