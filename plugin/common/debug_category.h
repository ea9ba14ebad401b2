// SPDX-License-Identifier: LGPL-2.1-or-later
// One GStreamer debug category per layer, all named "emi-...", so that GST_DEBUG=emi*:5 shows
// what every layer did to a frame. Each layer declares its own with EMI_DEBUG_CATEGORY in a small
// header of its own and, in its .cpp files, logs to it:
//   #define GST_CAT_DEFAULT emi::embed_debug()
#pragma once

#include <gst/gst.h>

// Defines `GstDebugCategory* function()`, registering the category on first use (layers below
// the elements have no plugin_init of their own to do it).
#define EMI_DEBUG_CATEGORY(function, name, description)                    \
  inline GstDebugCategory* function() {                                    \
    static GstDebugCategory* const category =                              \
        _gst_debug_category_new(name, 0, description);                     \
    return category;                                                       \
  }
