// SPDX-License-Identifier: LGPL-2.1-or-later
// Constant-velocity prediction of a box from frame to frame (SORT's idea): a Kalman filter on the
// centre, width and height, each with its own velocity. The four coordinates move independently,
// so the filter is four 2-state filters (position, velocity per frame) instead of one 8-state one.
// Noise is proportional to the box's size, as in DeepSORT and BoT-SORT: a near, large box moves
// more pixels per frame than a far, small one.
#pragma once

#include <array>

#include "tracking/box.h"

namespace emi::tracking {

class MotionFilter {
 public:
  // A filter at rest on `box`: its velocity is unknown (a wide prior) until a second box comes.
  explicit MotionFilter(const Box& box);

  // Advances one frame; returns the predicted box, never narrower or lower than one pixel.
  Box predict();
  // Corrects the prediction with the box detected in this frame.
  void update(const Box& box);
  // The current estimate (after predict() or update()).
  Box box() const;

 private:
  // One coordinate: position and velocity, and their covariance [[pp, pv], [pv, vv]].
  struct Axis {
    double position = 0;
    double velocity = 0;
    double pp = 0, pv = 0, vv = 0;
  };
  enum { kCentreX, kCentreY, kWidth, kHeight };

  // Noise scale of each axis: horizontal ones follow the width, vertical ones the height.
  double scale_of(int axis) const;

  std::array<Axis, 4> axes_;
};

}  // namespace emi::tracking
