// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/record/clip_window.h"

#include <algorithm>
#include <limits>

namespace emi::record {
namespace {

Nanoseconds saturating_add(Nanoseconds a, Nanoseconds b) {
  return a > std::numeric_limits<Nanoseconds>::max() - b ? std::numeric_limits<Nanoseconds>::max() : a + b;
}

}  // namespace

ClipWindows::ClipWindows(Nanoseconds pre_roll, std::size_t max_ring_bytes)
    : pre_roll_(pre_roll), max_ring_bytes_(max_ring_bytes) {}

ClipWindows::Triggered ClipWindows::trigger(Nanoseconds event_pts, Nanoseconds duration, Nanoseconds max_duration) {
  if (!windows_.empty() && !windows_.back().ended && event_pts <= windows_.back().end) {
    Window& open = windows_.back();
    open.max_duration = std::max(open.max_duration, max_duration);
    Nanoseconds end = saturating_add(event_pts, duration);
    if (open.start) end = std::min(end, saturating_add(*open.start, open.max_duration));
    open.end = std::max(open.end, end);
    return {open.id, false, std::nullopt};
  }

  Window window;
  window.id = ++last_id_;
  window.wanted_start = event_pts > duration ? event_pts - duration : 0;
  window.end = saturating_add(event_pts, duration);
  window.max_duration = max_duration;
  windows_.push_back(window);

  // The last key frame at or before the wanted start; the oldest kept when there is less history.
  std::optional<std::size_t> first;
  for (std::size_t index = 0; index < ring_.size(); ++index) {
    if (first && ring_[index].pts > window.wanted_start) break;
    if (ring_[index].key) first = index;
  }
  return {window.id, true, first};
}

ClipStep ClipWindows::step(ClipId clip, const FrameStamp& frame) {
  Window* window = find(clip);
  if (window == nullptr || window->ended) return ClipStep::kNone;
  if (!window->start) {
    if (!frame.key) return ClipStep::kWait;
    window->start = frame.pts;
    window->end = std::min(window->end, saturating_add(frame.pts, window->max_duration));
    return ClipStep::kStart;
  }
  if (frame.pts > window->end || frame.pts < *window->start) {
    window->ended = true;
    return ClipStep::kEnd;
  }
  return ClipStep::kWrite;
}

std::size_t ClipWindows::admit(const FrameStamp& frame) {
  std::size_t forgotten = 0;
  // The stream went back (a seek that was not flushed): the history no longer precedes it.
  if (!ring_.empty() && frame.pts < ring_.back().pts) forgotten += forget_oldest(ring_.size());
  ring_.push_back(frame);
  ring_bytes_ += frame.bytes;

  if (frame.pts >= pre_roll_) {
    const Nanoseconds cutoff = frame.pts - pre_roll_;
    std::size_t keep_from = 0;
    for (std::size_t index = 1; index < ring_.size(); ++index) {
      if (ring_[index].pts > cutoff) break;
      if (ring_[index].key) keep_from = index;
    }
    forgotten += forget_oldest(keep_from);
  }
  while (ring_bytes_ > max_ring_bytes_) {
    const auto next_key = std::find_if(ring_.begin() + 1, ring_.end(), [](const FrameStamp& kept) { return kept.key; });
    if (next_key == ring_.end()) break;  // one GOP is the least a clip can start from
    const auto count = static_cast<std::size_t>(next_key - ring_.begin());
    shortened_ += count;
    forgotten += forget_oldest(count);
  }
  return forgotten;
}

std::size_t ClipWindows::forget_oldest(std::size_t count) {
  for (std::size_t index = 0; index < count; ++index) ring_bytes_ -= ring_[index].bytes;
  ring_.erase(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(count));
  return count;
}

void ClipWindows::forget(ClipId clip) {
  windows_.erase(std::remove_if(windows_.begin(), windows_.end(), [clip](const Window& window) { return window.id == clip; }),
                 windows_.end());
}

ClipWindows::Ending ClipWindows::end_of_stream() {
  Ending ending;
  for (Window& window : windows_) {
    if (window.ended) continue;
    if (window.start) {
      window.ended = true;
      ending.cut_short.push_back(window.id);
    } else {
      ending.never_started.push_back(window.id);
    }
  }
  for (ClipId clip : ending.never_started) forget(clip);
  return ending;
}

std::vector<ClipWindows::ClipId> ClipWindows::clips() const {
  std::vector<ClipId> ids;
  for (const Window& window : windows_) ids.push_back(window.id);
  return ids;
}

bool ClipWindows::started(ClipId clip) const {
  const Window* window = find(clip);
  return window != nullptr && window->start.has_value();
}

std::optional<Nanoseconds> ClipWindows::start_of(ClipId clip) const {
  const Window* window = find(clip);
  return window != nullptr ? window->start : std::nullopt;
}

ClipWindows::Window* ClipWindows::find(ClipId clip) {
  const auto found = std::find_if(windows_.begin(), windows_.end(), [clip](const Window& window) { return window.id == clip; });
  return found != windows_.end() ? &*found : nullptr;
}

const ClipWindows::Window* ClipWindows::find(ClipId clip) const {
  const auto found = std::find_if(windows_.begin(), windows_.end(), [clip](const Window& window) { return window.id == clip; });
  return found != windows_.end() ? &*found : nullptr;
}

}  // namespace emi::record
