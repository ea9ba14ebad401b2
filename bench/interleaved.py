# SPDX-License-Identifier: LGPL-2.1-or-later
"""GStreamer elements against a plain loop doing the same work, frame by frame, interleaved; shared
by bench_models.py and bench_templates.py.

Frame i goes through the elements (an appsrc pushes it, the main thread waits until it has left
them), then the same frame through the loop, then frame i+1. Interleaving matters on the shared
machines this was measured on, where the speed of the same code drifts by up to 2x over tens of
seconds: both sides see the same drift. Each side is timed by the wall clock and by the CPU time
of the thread doing the work: the streaming thread's, read in pad probes, and the main thread's.

The process runs on one CPU (pin_to_one_cpu()): the two sides take turns and never run at once,
and on these virtual machines two vCPUs can differ in speed by up to 1.7x for a whole run, so the
streaming thread and the main thread, left on different vCPUs, made single runs of the same code
give ratios anywhere between 0.55 and 1.7.
"""

import os
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402


def pin_to_one_cpu():
    """Pins this process (and the threads it starts from now on) to one of its CPUs; returns it.
    Call it before anything starts threads."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


class TimedElements:
    """appsrc ! elements ! fakesink for RGBA frames of one size, timed between the first element's
    sink pad and the last one's src pad."""

    def __init__(self, elements, width, height):
        self.pipeline = Gst.Pipeline.new()
        self.source = Gst.ElementFactory.make("appsrc")
        self.source.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=RGBA,width={width},height={height},framerate=30/1"))
        self.source.set_property("format", Gst.Format.TIME)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        chain = [self.source, *elements, sink]
        for element in chain:
            self.pipeline.add(element)
        for upstream, downstream in zip(chain, chain[1:]):
            if not upstream.link(downstream):
                raise SystemExit(f"can't link {upstream.get_name()} to {downstream.get_name()}")
        elements[0].get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_enter)
        elements[-1].get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_leave)
        self.left = threading.Event()
        self.entered = (0.0, 0.0)
        self.spent = (0.0, 0.0)
        self.pipeline.set_state(Gst.State.PLAYING)

    def on_enter(self, pad, info):
        self.entered = (time.perf_counter(), time.thread_time())
        return Gst.PadProbeReturn.OK

    def on_leave(self, pad, info):
        self.spent = (time.perf_counter() - self.entered[0], time.thread_time() - self.entered[1])
        self.left.set()
        return Gst.PadProbeReturn.OK

    def run(self, index, frame, rois=None):
        """(wall, CPU) seconds the elements spent on `frame`; `rois`: (left, top, width, height)
        boxes attached as GstVideoRegionOfInterestMeta."""
        buffer = Gst.Buffer.new_wrapped(frame.tobytes())
        buffer.pts = index * Gst.SECOND // 30
        for left, top, width, height in rois or []:
            GstVideo.buffer_add_video_region_of_interest_meta(buffer, "person", left, top, width, height)
        self.left.clear()
        self.source.emit("push-buffer", buffer)
        if not self.left.wait(600):
            message = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            detail = message.parse_error()[0].message if message else "stalled"
            raise SystemExit(f"no frame came out: {detail}")
        return self.spent

    def close(self):
        self.pipeline.set_state(Gst.State.NULL)


def timed(step, frame):
    """(wall, CPU) seconds of step(frame) on this thread."""
    wall, cpu = time.perf_counter(), time.thread_time()
    step(frame)
    return time.perf_counter() - wall, time.thread_time() - cpu


def compare(elements, step, frames, warmup=1, interval=1, rois=None):
    """ms per frame over frames warmup..N-1, interleaved: (elements' wall, CPU), (loop's wall, CPU).
    Frames before `warmup` go through both untimed; the loop runs its step on every `interval`th
    frame (as an element with that inference interval runs its model)."""
    height, width = frames[0].shape[:2]
    under_test = TimedElements(elements, width, height)
    elements_total, loop_total = [0.0, 0.0], [0.0, 0.0]
    try:
        for index, frame in enumerate(frames):
            spent_elements = under_test.run(index, frame, rois)
            spent_loop = timed(step, frame) if index % interval == 0 else (0.0, 0.0)
            if index < warmup:
                continue
            for total, spent in ((elements_total, spent_elements), (loop_total, spent_loop)):
                total[0] += spent[0]
                total[1] += spent[1]
    finally:
        under_test.close()
    per_frame = 1000.0 / (len(frames) - warmup)
    return [value * per_frame for value in elements_total], [value * per_frame for value in loop_total]
