// SPDX-License-Identifier: LGPL-2.1-or-later
#include "tracking/motion_filter.h"

#include <algorithm>

namespace emi::tracking {
namespace {

// DeepSORT's noise, as fractions of the box's size: a detection's position is good to 1/20 of
// it; the velocity (per frame) drifts by 1/160 of it a frame.
constexpr double kPositionNoise = 1.0 / 20;
constexpr double kVelocityNoise = 1.0 / 160;
constexpr double kSmallestSide = 1.0;  // pixels

double squared(double value) { return value * value; }

}  // namespace

MotionFilter::MotionFilter(const Box& box) {
  axes_[kCentreX].position = box.left + box.width / 2;
  axes_[kCentreY].position = box.top + box.height / 2;
  axes_[kWidth].position = box.width;
  axes_[kHeight].position = box.height;
  for (int axis = 0; axis < 4; ++axis) {
    const double scale = scale_of(axis);
    axes_[axis].pp = squared(2 * kPositionNoise * scale);
    axes_[axis].vv = squared(10 * kVelocityNoise * scale);
  }
}

double MotionFilter::scale_of(int axis) const {
  const int size = axis == kCentreX || axis == kWidth ? kWidth : kHeight;
  return std::max(kSmallestSide, axes_[size].position);
}

Box MotionFilter::predict() {
  for (int axis = 0; axis < 4; ++axis) {
    Axis& a = axes_[axis];
    const double scale = scale_of(axis);
    // x' = F x with F = [[1, 1], [0, 1]]; P' = F P Fᵀ + Q.
    a.position += a.velocity;
    a.pp += 2 * a.pv + a.vv + squared(kPositionNoise * scale);
    a.pv += a.vv;
    a.vv += squared(kVelocityNoise * scale);
  }
  return box();
}

void MotionFilter::update(const Box& box) {
  const double measured[4] = {box.left + box.width / 2, box.top + box.height / 2, box.width, box.height};
  for (int axis = 0; axis < 4; ++axis) {
    Axis& a = axes_[axis];
    // The position is measured: H = [1, 0], R = (noise x size)²; K = P Hᵀ / (H P Hᵀ + R).
    const double innovation_variance = a.pp + squared(kPositionNoise * scale_of(axis));
    const double gain_position = a.pp / innovation_variance;
    const double gain_velocity = a.pv / innovation_variance;
    const double innovation = measured[axis] - a.position;
    a.position += gain_position * innovation;
    a.velocity += gain_velocity * innovation;
    // P' = (I - K H) P, written out for the symmetric 2x2 case.
    a.vv -= gain_velocity * a.pv;
    a.pv *= 1 - gain_position;
    a.pp *= 1 - gain_position;
  }
}

Box MotionFilter::box() const {
  const double width = std::max(kSmallestSide, axes_[kWidth].position);
  const double height = std::max(kSmallestSide, axes_[kHeight].position);
  return {axes_[kCentreX].position - width / 2, axes_[kCentreY].position - height / 2, width, height};
}

}  // namespace emi::tracking
