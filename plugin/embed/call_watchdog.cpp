// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/call_watchdog.h"

#include <pybind11/eval.h>

#include <algorithm>

#include "embed/embed_log.h"
#include "embed/python_host.h"

#define GST_CAT_DEFAULT emi::embed_debug()

namespace emi::python {
namespace {

// Python half: where a thread is, and the exception that stops a script.
constexpr const char kWatchdogSource[] = R"PY(
class ScriptStopped(BaseException):
    """Raised in a script that still runs when its element stops."""


def where_is(thread_id, script):
    """file:line of `script`'s frame in the thread's stack, and of the innermost frame when that
    is deeper (a library the script called)."""
    innermost = sys._current_frames().get(thread_id)
    if innermost is None:
        return "outside Python code"
    script = os.path.realpath(script)
    frame = innermost
    while frame is not None and os.path.realpath(frame.f_code.co_filename) != script:
        frame = frame.f_back

    def spell(f):
        return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}()"

    if frame is None or frame is innermost:
        return spell(innermost)
    return f"{spell(frame)}, now at {spell(innermost)}"
)PY";

// The host module with the watchdog's helpers in it. GIL held.
py::module_ watchdog_helpers() {
  static bool added = false;  // the GIL guards it
  py::module_ helpers = python::helpers();
  if (!added) {
    py::exec("import os\nimport sys\n", helpers.attr("__dict__"));
    py::exec(kWatchdogSource, helpers.attr("__dict__"));
    added = true;
  }
  return helpers;
}

}  // namespace

CallWatchdog::CallWatchdog(std::string script_path, std::chrono::milliseconds timeout, StallHandler on_stall)
    : script_path_(std::move(script_path)), timeout_(timeout), on_stall_(std::move(on_stall)) {
  {
    GilGuard gil;
    watchdog_helpers();  // the exception type exists before any call may need it
  }
  thread_ = std::thread(&CallWatchdog::run, this);
}

CallWatchdog::~CallWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

CallWatchdog::Watch::Watch(CallWatchdog& watchdog, guint64 frame) : watchdog_(watchdog) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(watchdog_.mutex_);
    // A watchdog already waiting for a deadline finds the new call when it wakes: waking it on
    // every call would cost two thread switches a frame.
    wake = watchdog_.idle_ && watchdog_.timeout_.count() > 0;
    watchdog_.call_ = ++watchdog_.calls_;
    watchdog_.thread_id_ = PyThread_get_thread_ident();
    watchdog_.frame_ = frame;
    watchdog_.started_ = Clock::now();
    watchdog_.reported_ = false;
    watchdog_.interrupting_ = false;
    watchdog_.interrupted_ = false;
  }
  if (wake) watchdog_.changed_.notify_all();
}

CallWatchdog::Watch::~Watch() {
  std::lock_guard<std::mutex> lock(watchdog_.mutex_);
  // An exception raised but not yet delivered must not hit the thread's next call.
  if (watchdog_.interrupted_) PyThreadState_SetAsyncExc(watchdog_.thread_id_, nullptr);
  watchdog_.call_ = 0;
}

bool CallWatchdog::Watch::interrupted() const {
  std::lock_guard<std::mutex> lock(watchdog_.mutex_);
  return watchdog_.interrupted_;
}

void CallWatchdog::interrupt_running_call(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (call_ == 0 || interrupting_) return;
    interrupting_ = true;
    grace_ = grace;
    interrupt_at_ = Clock::now() + grace;
  }
  changed_.notify_all();
}

void CallWatchdog::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!quit_) {
    if (call_ == 0 || ((reported_ || timeout_.count() == 0) && !interrupting_)) {
      idle_ = true;
      changed_.wait(lock);
      idle_ = false;
      continue;
    }
    Clock::time_point wake = Clock::time_point::max();
    if (!reported_ && timeout_.count() > 0) wake = started_ + timeout_;
    if (interrupting_) wake = std::min(wake, interrupt_at_);
    const guint64 call = call_;
    if (changed_.wait_until(lock, wake) == std::cv_status::no_timeout || call_ != call) continue;
    const Clock::time_point now = Clock::now();
    const bool stalled = !reported_ && timeout_.count() > 0 && now >= started_ + timeout_;
    const bool stop = interrupting_ && now >= interrupt_at_;
    // The GIL first, then the mutex: the order every thread keeps.
    lock.unlock();
    if (stalled) report_stall(call);
    if (stop) interrupt(call);
    lock.lock();
  }
}

void CallWatchdog::report_stall(guint64 call) {
  Stall stall{};
  {
    GilGuard gil;  // the running script lets it go at its next switch interval or blocking call
    std::lock_guard<std::mutex> lock(mutex_);
    if (call_ != call || reported_) return;
    reported_ = true;
    stall.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    stall.frame = frame_;
    try {
      stall.where = utf8_text(watchdog_helpers().attr("where_is")(thread_id_, script_path_));
    } catch (const std::exception& error) {
      PyErr_Clear();
      stall.where = std::string("an unknown line (") + error.what() + ")";
    }
  }
  GST_INFO("%s: a call has run for %.1f s on frame %" G_GUINT64_FORMAT ", at %s", script_path_.c_str(),
           stall.seconds, stall.frame, stall.where.c_str());
  on_stall_(stall);
}

void CallWatchdog::interrupt(guint64 call) {
  GilGuard gil;
  std::lock_guard<std::mutex> lock(mutex_);
  if (call_ != call) return;
  try {
    py::object stopped = watchdog_helpers().attr("ScriptStopped");
    if (PyThreadState_SetAsyncExc(thread_id_, stopped.ptr()) == 1) interrupted_ = true;
  } catch (const std::exception&) {
    PyErr_Clear();
  }
  GST_INFO("%s: the call on frame %" G_GUINT64_FORMAT " still runs; raised ScriptStopped in it",
           script_path_.c_str(), frame_);
  interrupt_at_ = Clock::now() + grace_;  // again, should the script catch it
}

}  // namespace emi::python
