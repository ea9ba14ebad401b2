// SPDX-License-Identifier: LGPL-2.1-or-later
// When the uploader tries again, and which record to give up on: no I/O, no clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <random>
#include <string>

namespace emi::aws {

// Exponential back-off, capped, with "equal jitter": half fixed, half random, so that devices
// that failed together don't retry together.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds first_delay, std::chrono::milliseconds max_delay);
  // One more failure in a row: how long to wait before the next attempt.
  std::chrono::milliseconds after_failure();
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }

 private:
  std::chrono::milliseconds first_delay_;
  std::chrono::milliseconds max_delay_;
  unsigned failures_ = 0;
  std::mt19937 random_{std::random_device{}()};
};

// The search for a record Firehose refuses a whole request for (what it holds is invalid):
// requests are halved until the record is alone. A record refused alone is given up on (the
// dead-letter file) only when other records went through meanwhile; else the stream itself may
// refuse everything (its type, its settings). When the record refused alone is the oldest and
// nothing went yet, it becomes the suspect and the next record is tried alone: if that one goes,
// the suspect is given up on; if it is refused too, the stream is.
class RefusalSearch {
 public:
  explicit RefusalSearch(std::size_t max_records) : max_records_(max_records), limit_(max_records) {}

  // Records per request now.
  std::size_t request_limit() const { return limit_; }
  // Whether the oldest record is the suspect, left out of requests; why it was refused.
  const std::optional<std::string>& suspect() const { return suspect_; }

  // Records of a request went through.
  void delivered() { delivered_ = true; }
  // A request of `records` (more than one) was refused for its content.
  void refused(std::size_t records);
  enum class Verdict { kGiveUpOnIt, kTryTheNextAlone, kTheStreamRefuses };
  // A request of one record (the oldest, or not) was refused for its content.
  Verdict refused_alone(bool oldest, const std::string& problem);
  // Found (or given up): requests are whole again.
  void end();

 private:
  std::size_t max_records_;
  std::size_t limit_;
  bool delivered_ = false;
  std::optional<std::string> suspect_;
};

}  // namespace emi::aws
