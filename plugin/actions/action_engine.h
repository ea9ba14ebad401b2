// SPDX-License-Identifier: LGPL-2.1-or-later
// What emaimeta does with each signal, off the streaming thread: the app's signal callback turns
// it into events (or the signal's records are the events), the stream config's rules are
// evaluated on each event, and the actions of the rules that fire are run (record, upload).
// Signals, events and firings are also written as JSON lines to one output.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "actions/action_rules.h"
#include "actions/action_runner.h"

namespace emi {

class SignalCallback;
class JsonLinesOutput;

struct EngineSettings {
  std::string output_location;  // a file, "-" for stdout, empty for none
  // Add to what the file holds (after dropping a torn last line a crash left); else start it empty.
  bool append_output = false;
  std::string callback_path;    // empty: the events are the signal's records
  std::string callback_function;
  rules::StreamConfig stream_config;
  std::size_t max_pending_signals = 1000;
};

struct EngineCounters {
  std::atomic<std::uint64_t> signals{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> firings{0};
  std::atomic<std::uint64_t> callback_errors{0};
  std::atomic<std::uint64_t> dropped_signals{0};
  std::atomic<std::uint64_t> lost_lines{0};  // signal, event and firing lines the output did not take

  void reset() {
    for (std::atomic<std::uint64_t>* counter :
         {&signals, &events, &firings, &callback_errors, &dropped_signals, &lost_lines})
      *counter = 0;
  }
};

class ActionEngine {
 public:
  // Opens the output and loads the callback; throws std::runtime_error (python::PythonError for
  // the callback) with a message naming the file and the cause.
  // `counters` (the element's, read by its properties), `reporter` and `runner` must outlive the
  // engine.
  ActionEngine(EngineSettings settings, EngineCounters& counters, ActionReporter& reporter, ActionRunner& runner);
  ~ActionEngine();  // finishes: every submitted signal is handled first
  ActionEngine(const ActionEngine&) = delete;
  ActionEngine& operator=(const ActionEngine&) = delete;

  // From the streaming thread: writes the signal line (its JSON text as attached to the buffer)
  // and queues the document for the callback and the rules. Never waits for the callback.
  void submit(std::string_view text, std::shared_ptr<const nlohmann::json> document, GstClockTime pts);
  // Whether signals are handled off the streaming thread (a callback or rules): else
  // wait_until_handled() has nothing to wait for.
  bool handles_signals() const { return worker_.joinable(); }
  // Waits until every submitted signal is handled.
  void wait_until_handled();
  // A flush (a seek): signals submitted from now on are of a new segment (Firing::segment), which
  // this returns.
  std::uint64_t flushed();
  // wait_until_handled(), then the output is flushed to disk (EOS).
  void drain();

 private:
  struct Signal {
    std::shared_ptr<const nlohmann::json> document;
    GstClockTime pts;
    std::uint64_t segment;
  };
  void work();
  void handle(const Signal& signal);
  nlohmann::json events_of(const Signal& signal, std::string& debug);
  // Writes a line to the output; one that can't be written is counted and reported (at most one
  // warning every few seconds, saying how many were lost).
  void write_line(std::string_view text);

  EngineSettings settings_;
  ActionReporter& reporter_;
  ActionRunner& runner_;
  std::unique_ptr<JsonLinesOutput> output_;
  std::unique_ptr<SignalCallback> callback_;
  EngineCounters& counters_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Signal> pending_;
  bool busy_ = false;
  bool stopping_ = false;
  bool stopped_by_app_ = false;  // after a fatal event, signals are only written
  std::atomic<std::uint64_t> segment_{0};
  std::mutex write_warning_mutex_;
  std::chrono::steady_clock::time_point last_write_warning_{};
  std::thread worker_;
};

// The events of a signal when the app has no callback: each frame-level `emcustom` entry and
// each object, flattened (rect_params and the object's own `emcustom` keys lifted to the top),
// with the frame's frame_num and timestamp.
nlohmann::json records_of(const nlohmann::json& signal);

}  // namespace emi
