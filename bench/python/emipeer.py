# SPDX-License-Identifier: LGPL-2.1-or-later
"""emipeer: what a user would write with gst-python to do what `empycustom module=noop.py` does.

Loaded by gst-python's plugin loader (libgstpython.so) from the `python/` folder of a
GST_PLUGIN_PATH entry: GST_PLUGIN_PATH=<repo>/build/plugin:<repo>/bench.

Per frame: map the buffer READ, build the (H, W, 4) NumPy view over map_info.data, build a small
in_meta dict, call bench/noop.py's process_ip(io_buffer, in_meta), unmap. In place, never
passthrough. The result string is ignored (empycustom parses and stores it: the peer does less).
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GObject, Gst, GstBase, GstVideo  # noqa: E402

import numpy  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from noop import process_ip  # noqa: E402

Gst.init(None)

CAPS = Gst.Caps.from_string("video/x-raw,format={RGBA,RGBx,BGRA,BGRx}")


class EmiPeer(GstBase.BaseTransform):
    __gstmetadata__ = ("emi gst-python peer", "Filter/Video/Analyzer",
                       "Benchmark peer of empycustom written with gst-python", "emi developers")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, CAPS),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, CAPS),
    )

    work = GObject.Property(type=bool, default=True, nick="Work",
                            blurb="Map, view, build in_meta and call the script; false: return "
                                  "at once (the cost of gst-python's vfunc alone)")

    def __init__(self):
        super().__init__()
        self.set_in_place(True)
        self.set_passthrough(False)
        self.width = 0
        self.height = 0
        self.stride = 0
        self.frame_num = 0
        self.busy = True

    def do_set_caps(self, incaps, outcaps):
        info = GstVideo.VideoInfo.new_from_caps(incaps)
        self.width = info.width
        self.height = info.height
        self.stride = info.stride[0]
        self.busy = self.work  # read once: a GObject property read per frame would cost the peer
        return True

    def do_transform_ip(self, buf):
        if not self.busy:
            return Gst.FlowReturn.OK
        ok, map_info = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            io_buffer = numpy.ndarray((self.height, self.width, 4), dtype=numpy.uint8,
                                      buffer=map_info.data, strides=(self.stride, 4, 1))
            in_meta = {"frame_num": self.frame_num, "buf_pts": buf.pts,
                       "width": self.width, "height": self.height, "object": []}
            self.frame_num += 1
            process_ip(io_buffer, in_meta)
            del io_buffer
        finally:
            buf.unmap(map_info)
        return Gst.FlowReturn.OK


GObject.type_register(EmiPeer)
__gstelementfactory__ = ("emipeer", Gst.Rank.NONE, EmiPeer)
