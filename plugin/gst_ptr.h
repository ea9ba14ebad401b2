// Owning smart pointers for GLib/GStreamer references at C boundaries.
#pragma once

#include <gst/gst.h>

#include <memory>

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

}  // namespace emi
