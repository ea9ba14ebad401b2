// SPDX-License-Identifier: LGPL-2.1-or-later
// A box in pixels, as detectors give them.
#pragma once

namespace emi::tracking {

struct Box {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};

}  // namespace emi::tracking
