// SPDX-License-Identifier: LGPL-2.1-or-later
// The record action's clip-window policy (EDGEMATRIX's semantics), with no GStreamer in it: which
// encoded frames the pre-roll ring keeps, and what each open clip does with each frame.
//
// An event at t asks for `duration` of video before t and as much after it. A clip starts on the
// last key frame at or before t - duration still in the ring (the oldest kept key frame when the
// stream has less history; the next key frame when none is kept). A further event inside the open
// clip's window extends it (end = its time + its duration), never past `max_duration` from the
// clip's start. The ring keeps the newest key frame at least `pre_roll` older than the newest
// frame and what follows it, and never more than `max_ring_bytes`: past that, whole GOPs are
// dropped from its start, so a clip may then start later than asked (counted in shortened()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace emi::record {

using Nanoseconds = std::uint64_t;

// The longest duration_in_seconds and max_duration_in_seconds a record rule may ask for (so the
// longest pre-roll, and no overflow turning seconds into nanoseconds).
constexpr double kMaxRecordSeconds = 3600;

// What the policy needs to know of an encoded frame.
struct FrameStamp {
  Nanoseconds pts = 0;
  bool key = false;
  std::size_t bytes = 0;
};

// What a clip does with a frame.
enum class ClipStep {
  kWait,   // not started, and this is no key frame to start on: not written
  kStart,  // the clip's first frame: open its file and write it
  kWrite,  // inside the window: write it
  kEnd,    // past the window (or earlier than its start: the stream went back): not written, the clip ends
  kNone,   // the clip has ended (or is unknown): nothing to do
};

class ClipWindows {
 public:
  using ClipId = std::uint64_t;  // from 1, in the order events opened clips

  ClipWindows(Nanoseconds pre_roll, std::size_t max_ring_bytes);

  struct Triggered {
    ClipId clip;
    bool opened;  // a new clip; else the open clip was extended
    // For a new clip: the ring index of the frame it starts on; the frames from there to the
    // ring's end are to be stepped through step(), in order. Empty: it waits for a key frame.
    std::optional<std::size_t> replay_from;
  };
  // An event at `event_pts` asking for `duration` before and after it, its clip capped at
  // `max_duration` from the clip's start.
  Triggered trigger(Nanoseconds event_pts, Nanoseconds duration, Nanoseconds max_duration);

  // What clip `clip` does with `frame` (a new frame, or one of the ring's when replaying).
  ClipStep step(ClipId clip, const FrameStamp& frame);

  // A new frame into the ring (after the clips have stepped it): returns how many of the ring's
  // oldest frames are to be forgotten, so that the caller's ring stays in step with this one.
  std::size_t admit(const FrameStamp& frame);

  // The clip's file could not be opened, or its file is complete: it is forgotten.
  void forget(ClipId clip);
  // The stream ended: started clips end early (cut short), those not started never will.
  struct Ending {
    std::vector<ClipId> cut_short;   // started and still open: to be ended
    std::vector<ClipId> never_started;  // forgotten
  };
  Ending end_of_stream();

  // Open clips, oldest first (ended ones included until forgotten).
  std::vector<ClipId> clips() const;
  bool started(ClipId clip) const;
  std::optional<Nanoseconds> start_of(ClipId clip) const;
  const std::deque<FrameStamp>& ring() const { return ring_; }
  std::size_t ring_bytes() const { return ring_bytes_; }
  // Frames the byte bound took from the ring while the time bound still wanted them.
  std::uint64_t shortened() const { return shortened_; }

 private:
  struct Window {
    ClipId id = 0;
    Nanoseconds wanted_start = 0;
    Nanoseconds end = 0;  // its last frame is the last one at or before
    Nanoseconds max_duration = 0;
    std::optional<Nanoseconds> start;  // the PTS of its first frame, once it has one
    bool ended = false;
  };
  Window* find(ClipId clip);
  const Window* find(ClipId clip) const;
  std::size_t forget_oldest(std::size_t count);

  Nanoseconds pre_roll_;
  std::size_t max_ring_bytes_;
  std::deque<FrameStamp> ring_;
  std::size_t ring_bytes_ = 0;
  std::uint64_t shortened_ = 0;
  std::vector<Window> windows_;  // oldest first; only the last one not ended takes events
  ClipId last_id_ = 0;
};

}  // namespace emi::record
