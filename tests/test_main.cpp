// SPDX-License-Identifier: LGPL-2.1-or-later
// GoogleTest main for tests that need GStreamer: gst_init once per process.
#include <gst/gst.h>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
