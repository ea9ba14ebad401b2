// What emaimeta does with each signal, off the streaming thread: the app's signal callback turns
// it into events (or the signal's records are the events), the stream config's rules are
// evaluated on each event, and the actions of the rules that fire are run (record, upload).
// Signals, events and firings are also written as JSON lines to one output.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "actions/action_rules.h"

namespace emi {

class SignalCallback;
class JsonLinesOutput;

struct EngineSettings {
  std::string output_location;  // a file, "-" for stdout, empty for none
  std::string callback_path;    // empty: the events are the signal's records
  std::string callback_function;
  rules::StreamConfig stream_config;
  std::size_t max_pending_signals = 1000;
};

// How the engine speaks to the element (and so to the bus): from the worker thread, and
// `warning` also from the thread that submits.
struct EngineReporter {
  std::function<void(const nlohmann::json& firing)> fired;
  std::function<void(const std::string& message, const std::string& detail)> warning;
  std::function<void(const std::string& message, const std::string& detail)> fatal;
};

// Runs a fired rule's action; record and upload live beside the engine.
using ActionRunner = std::function<void(const rules::Rule& rule, const nlohmann::json& event, GstClockTime pts)>;

struct EngineCounters {
  std::atomic<std::uint64_t> signals{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> firings{0};
  std::atomic<std::uint64_t> callback_errors{0};
  std::atomic<std::uint64_t> dropped_signals{0};

  void reset() {
    for (std::atomic<std::uint64_t>* counter : {&signals, &events, &firings, &callback_errors, &dropped_signals})
      *counter = 0;
  }
};

class ActionEngine {
 public:
  // Opens the output and loads the callback; throws std::runtime_error (python::PythonError for
  // the callback) with a message naming the file and the cause.
  // `counters` (the element's, read by its properties) must outlive the engine.
  ActionEngine(EngineSettings settings, EngineCounters& counters, EngineReporter reporter, ActionRunner run_action);
  ~ActionEngine();  // finishes: every submitted signal is handled first
  ActionEngine(const ActionEngine&) = delete;
  ActionEngine& operator=(const ActionEngine&) = delete;

  // From the streaming thread: writes the signal line (its JSON text as attached to the buffer)
  // and queues the document for the callback and the rules. Never waits for the callback.
  void submit(std::string_view text, std::shared_ptr<const nlohmann::json> document, GstClockTime pts);
  // Waits until every submitted signal is handled.
  void wait_until_handled();
  // wait_until_handled(), then the output is flushed to disk (EOS).
  void drain();

 private:
  struct Signal {
    std::shared_ptr<const nlohmann::json> document;
    GstClockTime pts;
  };
  void work();
  void handle(const Signal& signal);
  nlohmann::json events_of(const Signal& signal, std::string& debug);

  EngineSettings settings_;
  EngineReporter reporter_;
  ActionRunner run_action_;
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
  std::thread worker_;
};

// The events of a signal when the app has no callback: each frame-level `emcustom` entry and
// each object, flattened (rect_params and the object's own `emcustom` keys lifted to the top),
// with the frame's frame_num and timestamp.
nlohmann::json records_of(const nlohmann::json& signal);

}  // namespace emi
