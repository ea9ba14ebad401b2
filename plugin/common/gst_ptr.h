// SPDX-License-Identifier: LGPL-2.1-or-later
// Owning smart pointers for GLib/GStreamer references at C boundaries, and the string of a
// GValue as C++ wants it.
#pragma once

#include <gst/gst.h>

#include <memory>
#include <string>

namespace emi {

template <auto Release>
struct ReleaseWith {
  template <typename T>
  void operator()(T* pointer) const {
    Release(pointer);
  }
};

using UniqueBuffer = std::unique_ptr<GstBuffer, ReleaseWith<gst_buffer_unref>>;
using UniqueCaps = std::unique_ptr<GstCaps, ReleaseWith<gst_caps_unref>>;
using UniqueElement = std::unique_ptr<GstElement, ReleaseWith<gst_object_unref>>;
using UniqueChars = std::unique_ptr<gchar, ReleaseWith<g_free>>;

// A string property's value; NULL (an unset string) is empty.
inline std::string string_of(const GValue* value) {
  const gchar* string = g_value_get_string(value);
  return string != nullptr ? string : "";
}

}  // namespace emi
