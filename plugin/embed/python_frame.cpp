// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embed/python_frame.h"

#include <pybind11/eval.h>
#include <pybind11/numpy.h>

#include <array>
#include <stdexcept>
#include <string>

#include "common/gst_ptr.h"
#include "embed/python_host.h"

namespace emi::python {
namespace {

// The buffer's memory, mapped for as long as any NumPy view of it lives.
class MappedFrame {
 public:
  MappedFrame(GstBuffer* buffer, bool writable)
      : pts(GST_BUFFER_PTS(buffer)),
        dts(GST_BUFFER_DTS(buffer)),
        duration(GST_BUFFER_DURATION(buffer)),
        offset(GST_BUFFER_OFFSET(buffer)),
        offset_end(GST_BUFFER_OFFSET_END(buffer)),
        writable_(writable) {
    if (!gst_buffer_map(buffer, &map_, writable ? GST_MAP_READWRITE : GST_MAP_READ))
      throw std::runtime_error("cannot map the buffer");
  }
  ~MappedFrame() {
    // What gst_buffer_unmap does; it needs no buffer, which may be gone by now.
    if (map_.memory != nullptr) {
      gst_memory_unmap(map_.memory, &map_);
      gst_memory_unref(map_.memory);
    }
  }
  MappedFrame(const MappedFrame&) = delete;
  MappedFrame& operator=(const MappedFrame&) = delete;

  void keep_memory_of(GstBuffer* buffer) {
    sharing_buffer_.reset(gst_buffer_copy_region(buffer, GST_BUFFER_COPY_MEMORY, 0, -1));
  }
  guint8* data() const { return map_.data; }
  gsize size() const { return map_.size; }
  bool writable() const { return writable_; }

  // The buffer's, as Gst.Buffer spells them: GST_CLOCK_TIME_NONE / GST_BUFFER_OFFSET_NONE when unset.
  const guint64 pts;
  const guint64 dts;
  const guint64 duration;
  const guint64 offset;
  const guint64 offset_end;

 private:
  GstMapInfo map_{};
  bool writable_;
  UniqueBuffer sharing_buffer_;
};

// Python half of the frame: the classes io_buffer is made of, run once into the host's module.
constexpr const char kFrameSource[] = R"PY(
import numpy

_MAP_WRITE = 2  # Gst.MapFlags.WRITE


class MapInfo:
    """What PyGObject's Gst.Buffer.map() returns, as far as scripts use it."""

    __slots__ = ("data", "size", "maxsize", "flags")

    def __init__(self, data, flags):
        self.data = data
        self.size = self.maxsize = data.nbytes
        self.flags = flags


class _LikeGstBuffer:
    """What scripts written for EDGEMATRIX's EMPyCustom ask of their Gst.Buffer: map()/unmap(),
    the timestamps and offsets (Gst.CLOCK_TIME_NONE, 2**64 - 1, when unset), get_size() and
    extract_dup(). They describe the buffer the frame came in."""

    def _mapped(self):
        raise NotImplementedError

    def map(self, flags=1):
        mapped = self._mapped()
        data = memoryview(mapped) if mapped is not None else memoryview(numpy.ascontiguousarray(self)).cast("B")
        if int(flags) & _MAP_WRITE and data.readonly:
            return False, None
        return True, MapInfo(data, flags)

    def unmap(self, info):
        """Nothing to do: the frame stays mapped while any view of it is alive."""

    pts = property(lambda self: self._mapped().pts)
    dts = property(lambda self: self._mapped().dts)
    duration = property(lambda self: self._mapped().duration)
    offset = property(lambda self: self._mapped().offset)
    offset_end = property(lambda self: self._mapped().offset_end)

    def get_size(self):
        return memoryview(self._mapped()).nbytes

    def extract_dup(self, offset, size):
        """A copy of `size` bytes from `offset` (fewer at the end of the buffer), as bytes."""
        return memoryview(self._mapped())[offset:offset + size].tobytes()


class FrameArray(_LikeGstBuffer, numpy.ndarray):
    """A frame (or one plane of it) viewed as a NumPy array, without a copy."""

    def _mapped(self):
        owner = self
        while isinstance(owner, numpy.ndarray):
            owner = owner.base
        return owner


class FramePlanes(_LikeGstBuffer, tuple):
    """The planes of a planar frame (I420: Y, U, V; NV12: Y, UV), one FrameArray each."""

    def _mapped(self):
        return self[0]._mapped()
)PY";

PyTypeObject* frame_array_type = nullptr;  // _emi_host.FrameArray, kept for the process's life

py::object make_frame_array(py::handle owner, guint8* data, int dimensions,
                            const std::array<Py_intptr_t, 3>& shape,
                            const std::array<Py_intptr_t, 3>& strides, bool writable) {
  auto& numpy = py::detail::npy_api::get();
  PyObject* array = numpy.PyArray_NewFromDescr_(
      frame_array_type, numpy.PyArray_DescrFromType_(py::detail::npy_api::NPY_UBYTE_), dimensions,
      shape.data(), strides.data(), data,
      writable ? py::detail::npy_api::NPY_ARRAY_WRITEABLE_ : 0, nullptr);
  if (array == nullptr) throw py::error_already_set();
  auto result = py::reinterpret_steal<py::object>(array);
  if (numpy.PyArray_SetBaseObject_(array, owner.inc_ref().ptr()) != 0)
    throw py::error_already_set();
  return result;
}

// The first component stored in `plane`: its size and pixel stride describe the plane.
guint first_component_of_plane(const GstVideoInfo& info, guint plane) {
  for (guint component = 0; component < GST_VIDEO_INFO_N_COMPONENTS(&info); ++component) {
    if (GST_VIDEO_FORMAT_INFO_PLANE(info.finfo, component) == plane) return component;
  }
  return 0;
}

}  // namespace

void ensure_frame_types() {
  if (frame_array_type != nullptr) return;  // the GIL guards it
  py::module_ helpers = python::helpers();
  py::exec(kFrameSource, helpers.attr("__dict__"));
  py::class_<MappedFrame>(helpers, "MappedFrame", py::buffer_protocol())
      .def_buffer([](MappedFrame& frame) {
        return py::buffer_info(frame.data(), 1, py::format_descriptor<guint8>::format(), 1,
                               {static_cast<py::ssize_t>(frame.size())}, {1}, !frame.writable());
      })
      .def_readonly("pts", &MappedFrame::pts)
      .def_readonly("dts", &MappedFrame::dts)
      .def_readonly("duration", &MappedFrame::duration)
      .def_readonly("offset", &MappedFrame::offset)
      .def_readonly("offset_end", &MappedFrame::offset_end);
  frame_array_type =
      reinterpret_cast<PyTypeObject*>(py::object(helpers.attr("FrameArray")).release().ptr());
}

FrameForScript::FrameForScript(GstBuffer* buffer, const GstVideoInfo& info, bool writable) {
  ensure_frame_types();
  auto mapped = std::make_unique<MappedFrame>(buffer, writable);
  const GstVideoMeta* layout = gst_buffer_get_video_meta(buffer);
  guint8* const base = mapped->data();
  const gsize size = mapped->size();
  owner_ = py::cast(std::move(mapped));

  const guint planes = GST_VIDEO_INFO_N_PLANES(&info);
  py::tuple plane_arrays(planes);
  for (guint plane = 0; plane < planes; ++plane) {
    const guint component = first_component_of_plane(info, plane);
    const gsize offset = layout != nullptr ? layout->offset[plane] : GST_VIDEO_INFO_PLANE_OFFSET(&info, plane);
    const gint stride = layout != nullptr ? layout->stride[plane] : GST_VIDEO_INFO_PLANE_STRIDE(&info, plane);
    const gint width = GST_VIDEO_INFO_COMP_WIDTH(&info, component);
    const gint height = GST_VIDEO_INFO_COMP_HEIGHT(&info, component);
    const gint pixel_stride = GST_VIDEO_INFO_COMP_PSTRIDE(&info, component);
    const gsize last_byte = offset + static_cast<gsize>(stride) * (height - 1) +
                            static_cast<gsize>(width) * pixel_stride;
    if (stride <= 0 || last_byte > size) {
      throw std::runtime_error("buffer of " + std::to_string(size) +
                               " bytes is smaller than its caps say (plane " +
                               std::to_string(plane) + " needs " + std::to_string(last_byte) + ")");
    }
    // Packed formats keep a channel axis even for GRAY8: the contract is (H, W, C).
    const bool channel_axis = planes == 1 || pixel_stride > 1;
    plane_arrays[plane] = make_frame_array(
        owner_, base + offset, channel_axis ? 3 : 2, {height, width, pixel_stride},
        {stride, pixel_stride, 1}, writable);
  }
  io_buffer_ = planes == 1 ? py::object(plane_arrays[0]) : python::helpers().attr("FramePlanes")(plane_arrays);
}

void FrameForScript::finish(GstBuffer* buffer) {
  io_buffer_ = py::object();
  // Only our reference left: no view escaped the call.
  if (Py_REFCNT(owner_.ptr()) > 1) owner_.cast<MappedFrame&>().keep_memory_of(buffer);
  owner_ = py::object();
}

}  // namespace emi::python
