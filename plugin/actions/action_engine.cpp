// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/action_engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "actions/actions_log.h"
#include "common/posix_io.h"
#include "document/frame_document.h"
#include "document/vocabulary.h"
#include "embed/python_host.h"
#include "embed/signal_callback.h"

#define GST_CAT_DEFAULT emi::actions_debug()

namespace emi {

using nlohmann::json;

// JSON lines, each written whole with one write(2) where the file takes it, so that a process
// that dies mid-run leaves every line but possibly the last one complete, and nothing sits in a
// user-space buffer. A line the file takes only in part (a full disk) is cut off again, so that
// the next line never merges with it.
class JsonLinesOutput {
 public:
  // `append`: keep what the file holds, but a torn last line (a crash mid-write) is dropped and
  // said in `repaired`. Else the file starts empty. A file created is 0600.
  JsonLinesOutput(const std::string& location, bool append, std::string& repaired) : location_(location) {
    if (location == "-") {
      fd_ = STDOUT_FILENO;
      return;
    }
    try {
      // Read too when appending: the last line is checked.
      file_ = posix::open_private(location, (append ? O_RDWR : O_WRONLY | O_TRUNC) | O_CREAT | O_APPEND);
    } catch (const std::system_error& error) {
      throw std::runtime_error(location + ": can't open for writing: " + error.code().message());
    }
    fd_ = file_.get();
    if (append) repaired = drop_torn_line();
  }
  JsonLinesOutput(const JsonLinesOutput&) = delete;
  JsonLinesOutput& operator=(const JsonLinesOutput&) = delete;

  // Returns an error message, empty on success.
  std::string write_line(std::string_view text) {
    std::lock_guard<std::mutex> lock(mutex_);
    line_.clear();
    // After a line that could not be cut off again, a newline first ends it.
    if (torn_) line_.push_back('\n');
    line_.append(text).push_back('\n');
    std::size_t written = 0;
    int error = 0;
    while (written < line_.size()) {
      const ssize_t count = ::write(fd_, line_.data() + written, line_.size() - written);
      if (count < 0 && errno == EINTR) continue;
      if (count <= 0) {
        error = count < 0 ? errno : EIO;
        break;
      }
      written += static_cast<std::size_t>(count);
    }
    if (error == 0) {
      torn_ = false;
      return {};
    }
    if (written > 0) torn_ = !cut_off(written);
    return location_ + ": write failed: " + std::strerror(error);
  }

  void sync() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (file_) ::fdatasync(fd_);
  }

 private:
  // Takes back the last `count` bytes written (O_APPEND: they end the file). False for a pipe.
  bool cut_off(std::size_t count) {
    const off_t end = ::lseek(fd_, 0, SEEK_CUR);
    return end >= static_cast<off_t>(count) && ::ftruncate(fd_, end - static_cast<off_t>(count)) == 0;
  }

  // Truncates the file after its last newline; what this dropped, for a warning (empty: nothing).
  std::string drop_torn_line() {
    struct stat status {};
    if (::fstat(fd_, &status) != 0 || !S_ISREG(status.st_mode) || status.st_size == 0) return {};
    char chunk[4096];
    off_t end = status.st_size;
    while (end > 0) {
      const off_t begin = std::max<off_t>(0, end - static_cast<off_t>(sizeof chunk));
      const ssize_t count = ::pread(fd_, chunk, static_cast<std::size_t>(end - begin), begin);
      if (count <= 0) return {};
      const char* last_newline = static_cast<const char*>(memrchr(chunk, '\n', static_cast<std::size_t>(count)));
      if (last_newline != nullptr) {
        end = begin + (last_newline - chunk) + 1;
        break;
      }
      end = begin;
    }
    if (end == status.st_size) return {};
    if (::ftruncate(fd_, end) != 0) {
      torn_ = true;  // the next line starts on a line of its own
      return location_ + ": its last line is incomplete (a crash mid-write?) and could not be cut off: " +
             std::strerror(errno) + "; a newline ends it";
    }
    return location_ + ": its last line was incomplete (a crash mid-write?): " +
           std::to_string(status.st_size - end) + " bytes dropped before appending";
  }

  std::string location_;
  posix::FileDescriptor file_;
  int fd_ = -1;
  std::mutex mutex_;
  std::string line_;   // the line being written, kept for its buffer
  bool torn_ = false;  // the file ends with part of a line
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

ActionEngine::ActionEngine(EngineSettings settings, EngineCounters& counters, ActionReporter& reporter,
                           ActionRunner& runner)
    : settings_(std::move(settings)), reporter_(reporter), runner_(runner), counters_(counters) {
  if (!settings_.output_location.empty()) {
    std::string repaired;
    output_ = std::make_unique<JsonLinesOutput>(settings_.output_location, settings_.append_output, repaired);
    if (!repaired.empty()) reporter_.warning(repaired, "");
    GST_DEBUG("signals to %s (%s)", settings_.output_location.c_str(), settings_.append_output ? "appended" : "from empty");
  }
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

void ActionEngine::write_line(std::string_view text) {
  if (!output_) return;
  const std::string problem = output_->write_line(text);
  if (problem.empty()) return;
  const std::uint64_t lost = ++counters_.lost_lines;
  // A full disk fails every line: one warning every few seconds says how many.
  constexpr auto kWarningInterval = std::chrono::seconds(5);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(write_warning_mutex_);
    if (lost > 1 && now - last_write_warning_ < kWarningInterval) return;
    last_write_warning_ = now;
  }
  reporter_.warning(problem + " (" + std::to_string(lost) + " lines lost so far, counted in lost-signals)", "");
}

void ActionEngine::submit(std::string_view text, std::shared_ptr<const json> document, GstClockTime pts) {
  counters_.signals++;
  write_line(text);
  if (!worker_.joinable()) return;
  bool dropped = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.size() >= settings_.max_pending_signals) {
      dropped = true;
    } else {
      pending_.push_back({std::move(document), pts, segment_.load()});
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

std::uint64_t ActionEngine::flushed() { return ++segment_; }

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
  const json* frame = find_frame_record(*signal.document);
  const json frame_num = frame != nullptr ? frame->value(field::kFrameNum, json()) : json();
  GST_LOG("signal of frame %s at %" GST_TIME_FORMAT ": %zu events", frame_num.dump().c_str(),
          GST_TIME_ARGS(signal.pts), events.size());
  if (events.empty() && debug.empty()) return;
  counters_.events += events.size();
  if (output_) {
    json line = {{"events", events}, {"frame_num", frame_num}, {"pts", signal.pts}};
    if (!debug.empty()) line["debug"] = debug;
    write_line(line.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  rules::EventValues values;
  for (const json& event : events) {
    rules::look_up(settings_.stream_config, event, values);
    for (const rules::Rule& rule : settings_.stream_config.rules) {
      if (!rules::fires(rule, values)) continue;
      counters_.firings++;
      // The action as the config has it, its secrets masked (action_rules.h).
      json firing = {{"rule_name", rule.name}, {"action", rule.action_json}, {"event", event},
                     {"frame_num", frame_num}, {"pts", signal.pts}};
      GST_LOG("rule \"%s\" fired on frame %s", rule.name.c_str(), frame_num.dump().c_str());
      // The action first: an upload's record is spooled (synced) before the firing is written
      // or posted, so a process killed in between never leaves a firing whose event is lost.
      runner_.run(Firing{rule, event, signal.pts, signal.segment});
      write_line(json{{"firing", firing}}.dump(-1, ' ', false, json::error_handler_t::replace));
      reporter_.fired(firing);
    }
  }
}

}  // namespace emi
