"""emdetect and emclassify against a plain torch loop on the same frames.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_models.py [--frames N]

Real architectures with random weights (nothing is downloaded): ssdlite320_mobilenet_v3_large for
detection, mobilenet_v3_large for classification, 640x360 RGBA frames.

Frame by frame, interleaved: frame i goes through the element (an appsrc pushes it, the main
thread waits until it has left the element), then the same frame through the torch loop, then
frame i+1. Interleaving matters on the shared machines this was measured on, where the speed of
the same code drifts by up to 2x over tens of seconds: both sides see the same drift.

- Element time: from the frame entering the element's sink pad to it leaving its src pad (pad
  probes), wall clock and the streaming thread's CPU time.
- Torch loop: what a user would write around the same model: torch.from_numpy, the weights'
  pre-processing, the model, the same post-processing to Python values; on every
  `inference-interval`th frame, as the element runs its model (between, the last results stand);
  wall clock and the main thread's CPU time.

Frame 0 warms both up (the element's model load and dry run happen before it). The table gives ms
per frame over frames 1..N-1 and the element's fps as a fraction of the loop's (target: at least
0.95).
"""

import argparse
import os
import sys
import tempfile
import threading
import time

import gi
import numpy
import torch
import torchvision
from torchvision.transforms import functional

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
import model_fixtures as fixtures  # noqa: E402

WIDTH, HEIGHT = 640, 360
THRESHOLD = 0.04  # random weights score low: about ten detections a frame pass it
ROIS = [(x, y, 96, 128) for x in range(20, 620 - 96, 150) for y in (20, 200)]  # 8 boxes


def make_frames(count):
    generator = numpy.random.default_rng(0)
    return [generator.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=numpy.uint8) for _ in range(count)]


class ElementUnderTest:
    """`description` between an appsrc and a fakesink, timed between its pads."""

    def __init__(self, description):
        self.pipeline = Gst.parse_launch(
            f"appsrc name=src format=time caps=video/x-raw,format=RGBA,width={WIDTH},height={HEIGHT},"
            f"framerate=30/1 ! {description} name=under ! fakesink sync=false")
        self.source = self.pipeline.get_by_name("src")
        under = self.pipeline.get_by_name("under")
        under.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_enter)
        under.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_leave)
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

    def run(self, index, frame, rois):
        """Wall and CPU seconds the element spent on `frame`."""
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
    wall, cpu = time.perf_counter(), time.thread_time()
    step(frame)
    return time.perf_counter() - wall, time.thread_time() - cpu


def compare(description, step, interval, frames, rois):
    """ms per frame over frames 1..N-1: element (wall, cpu), loop (wall, cpu)."""
    element = ElementUnderTest(description)
    element.run(0, frames[0], rois)
    step(frames[0])
    element_total, loop_total = [0.0, 0.0], [0.0, 0.0]
    for index, frame in enumerate(frames[1:], start=1):
        for total, spent in ((element_total, element.run(index, frame, rois)),
                             (loop_total, timed(step, frame) if index % interval == 0 else (0.0, 0.0))):
            total[0] += spent[0]
            total[1] += spent[1]
    element.close()
    per_frame = 1000.0 / (len(frames) - 1)
    return [value * per_frame for value in element_total], [value * per_frame for value in loop_total]


def rgb(frame):
    return torch.from_numpy(frame[:, :, :3]).permute(2, 0, 1)


def detect_step(model):
    def step(frame):
        with torch.inference_mode():
            [detections] = model([functional.convert_image_dtype(rgb(frame), torch.float)])
            keep = detections["scores"] >= THRESHOLD
            return list(zip(detections["boxes"][keep].tolist(), detections["labels"][keep].tolist(),
                            detections["scores"][keep].tolist()))
    return step


def classify_step(model, transforms, boxes=None, batched=True):
    def top(scores):
        probabilities, classes = scores.softmax(dim=1).max(dim=1)
        return list(zip(classes.tolist(), probabilities.tolist()))

    def step(frame):
        image = rgb(frame)
        crops = [image[:, top:top + height, left:left + width] for left, top, width, height in boxes or []]
        with torch.inference_mode():
            inputs = [transforms(crop) for crop in crops or [image]]
            if batched:
                return top(model(torch.stack(inputs)))
            return [top(model(item.unsqueeze(0)))[0] for item in inputs]
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=31, help="frames per variant (the first is a warm-up)")
    arguments = parser.parse_args()
    Gst.init(None)
    frames = make_frames(arguments.frames)
    folder = tempfile.mkdtemp(prefix="emi-bench-models-")
    detector = fixtures.varied_detector(num_classes=91)
    detector_weights = fixtures.save_state_dict(os.path.join(folder, "ssdlite.pth"), detector)
    classifier = fixtures.eval_model(torchvision.models.mobilenet_v3_large)
    classifier_weights = fixtures.save_state_dict(os.path.join(folder, "mobilenet.pth"), classifier)
    transforms = torchvision.models.MobileNet_V3_Large_Weights.DEFAULT.transforms()

    detect = (f"emdetect model=torchvision.models.detection.ssdlite320_mobilenet_v3_large "
              f"model-weights={detector_weights} threshold={THRESHOLD}")
    classify = f"emclassify model=torchvision.models.mobilenet_v3_large model-weights={classifier_weights}"
    # name, element, its inference interval, ROI boxes on the frames, torch loop step
    variants = [
        ("detect, interval 1", detect, 1, None, detect_step(detector)),
        ("detect, interval 5", detect + " inference-interval=5", 5, None, detect_step(detector)),
        ("classify frame, interval 1", classify + " inference-region=full-frame", 1, None,
         classify_step(classifier, transforms)),
        ("classify frame, interval 5", classify + " inference-region=full-frame inference-interval=5", 5,
         None, classify_step(classifier, transforms)),
        ("classify 8 ROIs, batch 8", classify + " batch-size=8", 1, ROIS,
         classify_step(classifier, transforms, ROIS)),
        ("classify 8 ROIs, batch 1", classify + " batch-size=1", 1, ROIS,
         classify_step(classifier, transforms, ROIS, batched=False)),
    ]
    print(f"{len(frames) - 1} timed frames of {WIDTH}x{HEIGHT} RGBA, interleaved; "
          f"torch {torch.__version__} with {torch.get_num_threads()} thread(s)\n")
    print(f"{'':28} {'---------- wall ms/frame ----------':>36}  {'---------- cpu ms/frame -----------':>36}")
    print(f"{'variant':28} {'element':>11} {'torch':>11} {'fps ratio':>12}  "
          f"{'element':>11} {'torch':>11} {'ratio':>12}")
    for name, description, interval, rois, step in variants:
        (element_wall, element_cpu), (loop_wall, loop_cpu) = compare(description, step, interval, frames,
                                                                     rois)
        print(f"{name:28} {element_wall:11.2f} {loop_wall:11.2f} {loop_wall / element_wall:12.3f}  "
              f"{element_cpu:11.2f} {loop_cpu:11.2f} {loop_cpu / element_cpu:12.3f}", flush=True)


if __name__ == "__main__":
    main()
