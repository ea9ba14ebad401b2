#include "actions/action_engine.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "embed/python_host.h"
#include "embed/signal_callback.h"

namespace emi {

using nlohmann::json;

// JSON lines written whole with one writev(2) each, so that a process that dies mid-run leaves
// every line but possibly the last one complete, and nothing sits in a user-space buffer.
class JsonLinesOutput {
 public:
  explicit JsonLinesOutput(const std::string& location) : location_(location) {
    if (location == "-") {
      fd_ = STDOUT_FILENO;
      return;
    }
    fd_ = ::open(location.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(location + ": can't open for writing: " + std::strerror(errno));
    owned_ = true;
  }
  ~JsonLinesOutput() {
    if (owned_) ::close(fd_);
  }
  JsonLinesOutput(const JsonLinesOutput&) = delete;
  JsonLinesOutput& operator=(const JsonLinesOutput&) = delete;

  // Returns an error message, empty on success.
  std::string write_line(std::string_view text) {
    static const char newline = '\n';
    std::lock_guard<std::mutex> lock(mutex_);
    iovec parts[2] = {{const_cast<char*>(text.data()), text.size()}, {const_cast<char*>(&newline), 1}};
    std::size_t remaining = text.size() + 1;
    int first = 0;
    while (remaining > 0) {
      const ssize_t count = ::writev(fd_, parts + first, 2 - first);
      if (count < 0 && errno == EINTR) continue;
      if (count <= 0) return location_ + ": write failed: " + std::strerror(errno);
      remaining -= static_cast<std::size_t>(count);
      // A short write (a full disk, a pipe): go on from where it stopped.
      std::size_t done = static_cast<std::size_t>(count);
      while (first < 2 && done >= parts[first].iov_len) done -= parts[first++].iov_len;
      if (first < 2) {
        parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + done;
        parts[first].iov_len -= done;
      }
    }
    return {};
  }

  void sync() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (owned_) ::fdatasync(fd_);
  }

 private:
  std::string location_;
  int fd_ = -1;
  bool owned_ = false;
  std::mutex mutex_;
};

namespace {

// Lifts the scalar keys of `from` into `event`; nested objects one level down too.
void lift(const json& from, json& event, bool nested) {
  for (const auto& [key, value] : from.items()) {
    if (value.is_primitive()) event[key] = value;
    else if (nested && value.is_object()) lift(value, event, false);
  }
}

json with_frame_context(const json& frame) {
  json event = json::object();
  for (const char* key : {"frame_num", "timestamp"}) {
    if (const auto found = frame.find(key); found != frame.end()) event[key] = *found;
  }
  return event;
}

}  // namespace

json records_of(const json& signal) {
  json events = json::array();
  const auto frames = signal.find("frame");
  if (frames == signal.end() || !frames->is_array()) return events;
  for (const json& frame : *frames) {
    if (!frame.is_object()) continue;
    const json context = with_frame_context(frame);
    if (const auto results = frame.find("emcustom"); results != frame.end()) {
      const json entries = results->is_array() ? *results : json::array({*results});
      for (const json& entry : entries) {
        if (!entry.is_object()) continue;
        json event = context;
        lift(entry, event, true);
        events.push_back(std::move(event));
      }
    }
    if (const auto objects = frame.find("object"); objects != frame.end() && objects->is_array()) {
      for (const json& object : *objects) {
        if (!object.is_object()) continue;
        json event = context;
        lift(object, event, true);
        // An object's own results may be a list of dicts (one per program).
        if (const auto results = object.find("emcustom"); results != object.end() && results->is_array()) {
          for (const json& entry : *results) {
            if (entry.is_object()) lift(entry, event, false);
          }
        }
        events.push_back(std::move(event));
      }
    }
  }
  return events;
}

ActionEngine::ActionEngine(EngineSettings settings, EngineCounters& counters, EngineReporter reporter,
                           ActionRunner run_action)
    : settings_(std::move(settings)),
      reporter_(std::move(reporter)),
      run_action_(std::move(run_action)),
      counters_(counters) {
  if (!settings_.output_location.empty()) output_ = std::make_unique<JsonLinesOutput>(settings_.output_location);
  if (!settings_.callback_path.empty())
    callback_ = std::make_unique<SignalCallback>(settings_.callback_path, settings_.callback_function);
  if (callback_ || !settings_.stream_config.rules.empty()) worker_ = std::thread(&ActionEngine::work, this);
}

ActionEngine::~ActionEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (output_) output_->sync();
}

void ActionEngine::submit(std::string_view text, std::shared_ptr<const json> document, GstClockTime pts) {
  counters_.signals++;
  if (output_) {
    const std::string problem = output_->write_line(text);
    if (!problem.empty()) reporter_.warning(problem, "");
  }
  if (!worker_.joinable()) return;
  bool dropped = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.size() >= settings_.max_pending_signals) {
      dropped = true;
    } else {
      pending_.push_back({std::move(document), pts});
    }
  }
  if (dropped) {
    const std::uint64_t count = ++counters_.dropped_signals;
    reporter_.warning("the signal callback is too slow: " + std::to_string(settings_.max_pending_signals) +
                          " signals wait, this one is not handled (" + std::to_string(count) + " so far)",
                      "raise max-pending-signals or signal-interval");
    return;
  }
  wake_.notify_one();
}

void ActionEngine::wait_until_handled() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return pending_.empty() && !busy_; });
}

void ActionEngine::drain() {
  wait_until_handled();
  if (output_) output_->sync();
}

void ActionEngine::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) break;  // stopping, and everything submitted was handled
    Signal signal = std::move(pending_.front());
    pending_.pop_front();
    busy_ = true;
    lock.unlock();
    handle(signal);
    signal.document.reset();  // its Python and JSON trees are freed outside the lock
    lock.lock();
    busy_ = false;
    if (pending_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

json ActionEngine::events_of(const Signal& signal, std::string& debug) {
  if (!callback_) return records_of(*signal.document);
  try {
    CallbackResult result = callback_->call(*signal.document);
    debug = std::move(result.debug);
    if (result.fatal_error) {
      stopped_by_app_ = true;
      reporter_.fatal(*result.fatal_error, debug);
      return json::array();
    }
    return std::move(result.events);
  } catch (const python::PythonError& error) {
    counters_.callback_errors++;
    reporter_.warning(std::string(error.what()) + " (no events for this signal)", error.traceback());
    return json::array();
  }
}

void ActionEngine::handle(const Signal& signal) {
  if (stopped_by_app_) return;
  std::string debug;
  const json events = events_of(signal, debug);
  if (events.empty() && debug.empty()) return;
  counters_.events += events.size();
  const json frame_num = [&]() -> json {
    const json* frames = signal.document->contains("frame") ? &(*signal.document)["frame"] : nullptr;
    if (frames && frames->is_array() && !frames->empty() && (*frames)[0].is_object())
      return (*frames)[0].value("frame_num", json());
    return json();
  }();
  if (output_) {
    json line = {{"events", events}, {"frame_num", frame_num}, {"pts", signal.pts}};
    if (!debug.empty()) line["debug"] = debug;
    const std::string problem = output_->write_line(line.dump(-1, ' ', false, json::error_handler_t::replace));
    if (!problem.empty()) reporter_.warning(problem, "");
  }
  rules::EventValues values;
  for (const json& event : events) {
    rules::look_up(settings_.stream_config, event, values);
    for (const rules::Rule& rule : settings_.stream_config.rules) {
      if (!rules::fires(rule, values)) continue;
      counters_.firings++;
      json firing = {{"rule_name", rule.name}, {"action", rule.action_json}, {"event", event},
                     {"frame_num", frame_num}, {"pts", signal.pts}};
      if (output_) {
        const std::string problem =
            output_->write_line(json{{"firing", firing}}.dump(-1, ' ', false, json::error_handler_t::replace));
        if (!problem.empty()) reporter_.warning(problem, "");
      }
      reporter_.fired(firing);
      run_action_(rule, event, signal.pts);
    }
  }
}

}  // namespace emi
