// SPDX-License-Identifier: LGPL-2.1-or-later
// The record action's clip-window policy on its own, without GStreamer: which ring frame a clip
// starts on, extension and its cap, what each clip does with each frame, the ring's time and byte
// bounds, a stream that goes back, and the end of the stream.
#include <gtest/gtest.h>

#include <vector>

#include "actions/record/clip_window.h"

namespace emi::record {
namespace {

constexpr Nanoseconds kSecond = 1'000'000'000;
constexpr Nanoseconds kFrame = kSecond / 10;  // 10 frames a second
constexpr int kGopFrames = 10;                // a key frame a second

FrameStamp frame_stamp(int index, std::size_t bytes = 1000) {
  return {static_cast<Nanoseconds>(index) * kFrame, index % kGopFrames == 0, bytes};
}

// Frames [from, to] through the policy as the recorder sends them: each clip steps it, then the
// ring admits it. Returns each clip's steps.
struct Stream {
  ClipWindows windows{2 * kSecond, 1 << 20};
  std::vector<std::pair<ClipWindows::ClipId, ClipStep>> steps;

  void play(int from, int to, std::size_t bytes = 1000) {
    for (int index = from; index <= to; ++index) {
      const FrameStamp stamp = frame_stamp(index, bytes);
      for (ClipWindows::ClipId clip : windows.clips()) steps.emplace_back(clip, windows.step(clip, stamp));
      windows.admit(stamp);
    }
  }
  // The clip's frames written (its start included) and whether it ended.
  int written(ClipWindows::ClipId clip) const {
    int count = 0;
    for (const auto& [id, step] : steps)
      if (id == clip && (step == ClipStep::kStart || step == ClipStep::kWrite)) ++count;
    return count;
  }
  bool ended(ClipWindows::ClipId clip) const {
    for (const auto& [id, step] : steps)
      if (id == clip && step == ClipStep::kEnd) return true;
    return false;
  }
  // Replays the ring for a new clip, as the recorder does.
  void replay(const ClipWindows::Triggered& triggered) {
    if (!triggered.replay_from) return;
    for (std::size_t index = *triggered.replay_from; index < windows.ring().size(); ++index)
      steps.emplace_back(triggered.clip, windows.step(triggered.clip, windows.ring()[index]));
  }
};

TEST(ClipWindows, ANewClipStartsOnTheLastKeyFrameBeforeItsWantedStart) {
  Stream run;
  run.play(0, 45);  // the ring keeps from the key frame at 2.0 s (2 s before 4.5 s)
  const ClipWindows::Triggered triggered = run.windows.trigger(45 * kFrame, kSecond, 60 * kSecond);
  EXPECT_TRUE(triggered.opened);
  ASSERT_TRUE(triggered.replay_from.has_value());
  // Wanted from 3.5 s: the key frame at 3.0 s.
  EXPECT_EQ(run.windows.ring()[*triggered.replay_from].pts, 30 * kFrame);
  run.replay(triggered);
  EXPECT_EQ(run.windows.start_of(triggered.clip), 30 * kFrame);
  run.play(46, 60);
  // From 3.0 s to 5.5 s included; the frame at 5.6 s ends it.
  EXPECT_EQ(run.written(triggered.clip), 26);
  EXPECT_TRUE(run.ended(triggered.clip));
}

TEST(ClipWindows, WithLessHistoryTheClipStartsOnTheOldestKeyFrame) {
  Stream run;
  run.play(0, 5);
  const ClipWindows::Triggered triggered = run.windows.trigger(5 * kFrame, 3 * kSecond, 60 * kSecond);
  ASSERT_TRUE(triggered.replay_from.has_value());
  EXPECT_EQ(*triggered.replay_from, 0u);
}

TEST(ClipWindows, WithNoKeyFrameKeptTheClipWaitsForTheNextOne) {
  Stream run;
  const ClipWindows::Triggered triggered = run.windows.trigger(0, kSecond, 60 * kSecond);
  EXPECT_FALSE(triggered.replay_from.has_value());
  EXPECT_EQ(run.windows.step(triggered.clip, frame_stamp(3)), ClipStep::kWait);
  EXPECT_FALSE(run.windows.started(triggered.clip));
  EXPECT_EQ(run.windows.step(triggered.clip, frame_stamp(10)), ClipStep::kStart);
  EXPECT_EQ(run.windows.step(triggered.clip, frame_stamp(11)), ClipStep::kEnd);  // the window ended at 1.0 s
}

TEST(ClipWindows, AnEventInsideTheWindowExtendsItAndOneAfterOpensAnother) {
  Stream run;
  run.play(0, 20);
  const ClipWindows::Triggered first = run.windows.trigger(20 * kFrame, kSecond, 60 * kSecond);  // to 3.0 s
  run.replay(first);
  run.play(21, 25);
  const ClipWindows::Triggered inside = run.windows.trigger(25 * kFrame, kSecond, 60 * kSecond);  // to 3.5 s
  EXPECT_FALSE(inside.opened);
  EXPECT_EQ(inside.clip, first.clip);
  run.play(26, 50);
  EXPECT_TRUE(run.ended(first.clip));
  EXPECT_EQ(run.written(first.clip), 26);  // 1.0 s to 3.5 s
  const ClipWindows::Triggered after = run.windows.trigger(50 * kFrame, kSecond, 60 * kSecond);
  EXPECT_TRUE(after.opened);
  EXPECT_NE(after.clip, first.clip);
}

TEST(ClipWindows, ExtensionStopsAtMaxDurationFromTheClipsStart) {
  Stream run;
  run.play(0, 20);
  const ClipWindows::Triggered clip = run.windows.trigger(20 * kFrame, kSecond, 3 * kSecond);  // starts at 1.0 s
  run.replay(clip);
  for (int index = 21; index <= 80; ++index) {
    run.play(index, index);
    if (index % 5 == 0) run.windows.trigger(index * kFrame, kSecond, 3 * kSecond);  // would go on forever
  }
  EXPECT_TRUE(run.ended(clip.clip));
  EXPECT_EQ(run.written(clip.clip), 31);  // 1.0 s to 4.0 s: 3 s from its start
}

TEST(ClipWindows, TheRingKeepsThePreRollFromAKeyFrameAndNoMoreThanItsBytes) {
  ClipWindows windows(2 * kSecond, 1 << 20);
  for (int index = 0; index <= 100; ++index) windows.admit(frame_stamp(index));
  // 2 s before 10.0 s is 8.0 s, a key frame: from there.
  EXPECT_EQ(windows.ring().front().pts, 80 * kFrame);
  EXPECT_TRUE(windows.ring().front().key);
  EXPECT_EQ(windows.ring().size(), 21u);
  EXPECT_EQ(windows.ring_bytes(), 21u * 1000);
  EXPECT_EQ(windows.shortened(), 0u);

  // An hour of pre-roll at 100 kB a frame would be 36 GB: the bound keeps 2.5 MB, whole GOPs.
  ClipWindows bounded(3600 * kSecond, 2'500'000);
  for (int index = 0; index <= 100; ++index) {
    bounded.admit(frame_stamp(index, 100'000));
    EXPECT_LE(bounded.ring_bytes(), 2'500'000u);
  }
  EXPECT_TRUE(bounded.ring().front().key);
  EXPECT_EQ(bounded.ring().size(), 21u);  // two GOPs and the frame that began a third
  EXPECT_EQ(bounded.shortened(), 80u);
}

TEST(ClipWindows, OneGopOverTheByteBoundIsKept) {
  ClipWindows windows(10 * kSecond, 1000);
  for (int index = 0; index < 10; ++index) windows.admit(frame_stamp(index));
  EXPECT_EQ(windows.ring().size(), 10u);  // no second key frame to cut at
}

TEST(ClipWindows, AStreamThatGoesBackEndsTheClipsAndEmptiesTheRing) {
  Stream run;
  run.play(0, 30);
  const ClipWindows::Triggered clip = run.windows.trigger(30 * kFrame, 5 * kSecond, 60 * kSecond);
  run.replay(clip);
  // A seek back to 0.5 s, not flushed: the PTS before the clip's start end it.
  EXPECT_EQ(run.windows.step(clip.clip, frame_stamp(5)), ClipStep::kEnd);
  const std::size_t kept = run.windows.ring().size();
  EXPECT_EQ(run.windows.admit(frame_stamp(5)), kept);
  EXPECT_EQ(run.windows.ring().size(), 1u);
}

TEST(ClipWindows, EndOfStreamCutsStartedClipsShortAndForgetsTheOthers) {
  Stream run;
  run.play(0, 12);
  const ClipWindows::Triggered started = run.windows.trigger(12 * kFrame, 5 * kSecond, 60 * kSecond);
  run.replay(started);
  run.play(13, 14);
  ClipWindows waiting_only(kSecond, 1 << 20);
  const ClipWindows::Triggered waiting = waiting_only.trigger(0, kSecond, 60 * kSecond);

  const ClipWindows::Ending ending = run.windows.end_of_stream();
  EXPECT_EQ(ending.cut_short, std::vector<ClipWindows::ClipId>{started.clip});
  EXPECT_TRUE(ending.never_started.empty());
  const ClipWindows::Ending nothing_encoded = waiting_only.end_of_stream();
  EXPECT_EQ(nothing_encoded.never_started, std::vector<ClipWindows::ClipId>{waiting.clip});
  EXPECT_TRUE(waiting_only.clips().empty());
}

TEST(ClipWindows, HugeDurationsSaturateInsteadOfWrapping) {
  ClipWindows windows(kSecond, 1 << 20);
  const Nanoseconds almost_the_end = ~Nanoseconds{0} - kSecond;
  const ClipWindows::Triggered clip = windows.trigger(almost_the_end, 3600 * kSecond, 3600 * kSecond);
  EXPECT_EQ(windows.step(clip.clip, {almost_the_end - 1, true, 1}), ClipStep::kStart);
  EXPECT_EQ(windows.step(clip.clip, {almost_the_end + kFrame, false, 1}), ClipStep::kWrite);
}

}  // namespace
}  // namespace emi::record
