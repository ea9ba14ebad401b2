// SPDX-License-Identifier: LGPL-2.1-or-later
// Watches the calls into one script from a thread of its own: a call that runs longer than its
// timeout is reported once, with where the script is (file:line of its running Python frame), and
// a call that must end (the element is stopping) is interrupted with an exception raised in it.
#pragma once

#include <glib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace emi::python {

class CallWatchdog {
 public:
  struct Stall {
    double seconds;      // how long the call has run
    guint64 frame;       // the frame it was given
    std::string where;   // "/path/script.py:12 in process_ip()", and where Python is now if deeper
  };
  using StallHandler = std::function<void(const Stall&)>;

  // `timeout` zero: calls are never reported, only interrupted when asked.
  CallWatchdog(std::string script_path, std::chrono::milliseconds timeout, StallHandler on_stall);
  // Joins the watchdog thread, which may be waiting for the GIL: never destroy with the GIL held.
  ~CallWatchdog();
  CallWatchdog(const CallWatchdog&) = delete;
  CallWatchdog& operator=(const CallWatchdog&) = delete;

  // The call this thread runs while it lives. Made and destroyed with the GIL held.
  class Watch {
   public:
    Watch(CallWatchdog& watchdog, guint64 frame);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    // Whether interrupt_running_call() stopped this call.
    bool interrupted() const;

   private:
    CallWatchdog& watchdog_;
  };

  // Ends the call running now, if it still runs after `grace`: ScriptStopped (a BaseException, so
  // `except Exception` doesn't swallow it) is raised in its thread, again each `grace` until the
  // call returns. Python delivers it when the script next runs Python code (a loop of short
  // sleeps stops; one C call that never returns cannot be stopped).
  void interrupt_running_call(std::chrono::milliseconds grace);

 private:
  using Clock = std::chrono::steady_clock;
  void run();
  void report_stall(guint64 call);
  void interrupt(guint64 call);

  const std::string script_path_;
  const std::chrono::milliseconds timeout_;
  const StallHandler on_stall_;

  std::mutex mutex_;  // taken after the GIL, never before
  std::condition_variable changed_;
  bool quit_ = false;
  bool idle_ = false;         // the watchdog thread waits for a call to watch, with no deadline
  guint64 call_ = 0;          // number of the running call; 0 when none runs
  guint64 calls_ = 0;         // calls so far
  unsigned long thread_id_ = 0;  // Python's id of the thread running it
  guint64 frame_ = 0;
  Clock::time_point started_;
  bool reported_ = false;
  bool interrupting_ = false;  // interrupt_running_call() was asked for this call
  bool interrupted_ = false;   // an exception was raised in it
  Clock::time_point interrupt_at_;
  std::chrono::milliseconds grace_{0};
  std::thread thread_;
};

}  // namespace emi::python
