// SPDX-License-Identifier: LGPL-2.1-or-later
// Hands a video frame to a script without copying it: a NumPy view over the mapped buffer.
#pragma once

#include <gst/video/video.h>
#include <pybind11/pybind11.h>

namespace emi::python {

namespace py = pybind11;

// Adds the frame's types (FrameArray, MapInfo, MappedFrame) to the host's helper module, once.
// GIL held; throws py::error_already_set when NumPy can't be imported.
void ensure_frame_types();

// One frame mapped for one script call. GIL held for construction, io_buffer() and finish().
class FrameForScript {
 public:
  // Maps `buffer` (read-only, or read-write when `writable`). Throws std::runtime_error when the
  // buffer can't be mapped or is smaller than the caps say.
  FrameForScript(GstBuffer* buffer, const GstVideoInfo& info, bool writable);

  // A FrameArray of shape (height, width, bytes per pixel) with the buffer's real strides for
  // packed formats; a tuple of per-plane arrays for planar ones (I420, NV12).
  const py::object& io_buffer() const { return io_buffer_; }

  // Ends the call. Views the script kept stay valid: the mapping then also holds a buffer that
  // shares the frame's memory, so a buffer pool can't reuse it and writers downstream copy it.
  void finish(GstBuffer* buffer);

 private:
  py::object owner_;
  py::object io_buffer_;
};

}  // namespace emi::python
