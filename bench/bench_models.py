"""emdetect and emclassify against a plain torch loop on the same frames.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_models.py [--frames N]

Real architectures with random weights (nothing is downloaded): ssdlite320_mobilenet_v3_large for
detection, mobilenet_v3_large for classification. Each variant runs `--runs` times, alternating
with its torch loop; the table gives medians in ms per frame and the element's fps as a fraction
of the loop's (target: at least 0.95), by wall-clock time and by the process's CPU time (less
disturbed by other work on the machine).

- Elements: an appsrc holding every frame already (640x360 RGBA) feeds the element and a fakesink.
  The pipeline prerolls (which loads the model, makes its dry run and passes the first frame), then
  the clock runs from PLAYING to EOS over the other frames.
- Torch loops: what a user would write around the same model, on the same frames:
  torch.from_numpy, the weights' pre-processing, the model, the same post-processing to Python
  values, per frame; with one warm-up frame.
"""

import argparse
import os
import statistics
import sys
import tempfile
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


def element_ms_per_frame(description, frames, rois=None):
    """Wall and CPU ms per frame of `description` over frames 1..N-1 (frame 0 passes during
    preroll)."""
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time max-bytes=0 caps=video/x-raw,format=RGBA,width={WIDTH},height={HEIGHT},"
        f"framerate=30/1 ! {description} ! fakesink sync=false")
    source = pipeline.get_by_name("src")
    for index, frame in enumerate(frames):
        buffer = Gst.Buffer.new_wrapped(frame.tobytes())
        buffer.pts = index * Gst.SECOND // 30
        for left, top, width, height in rois or []:
            GstVideo.buffer_add_video_region_of_interest_meta(buffer, "person", left, top, width, height)
        source.emit("push-buffer", buffer)
    source.emit("end-of-stream")
    pipeline.set_state(Gst.State.PAUSED)
    changed, _, _ = pipeline.get_state(300 * Gst.SECOND)
    if changed == Gst.StateChangeReturn.FAILURE:
        fail(pipeline)
    start, cpu_start = time.perf_counter(), time.process_time()
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if message is None or message.type == Gst.MessageType.ERROR:
        fail(pipeline, message)
    pipeline.set_state(Gst.State.NULL)
    return 1000.0 * elapsed / (len(frames) - 1), 1000.0 * cpu / (len(frames) - 1)


def fail(pipeline, message=None):
    message = message or pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    detail = message.parse_error()[0].message if message else "no EOS"
    pipeline.set_state(Gst.State.NULL)
    raise SystemExit(f"pipeline failed: {detail}")


def loop_ms_per_frame(step, frames, interval=1):
    """Wall and CPU ms per frame of `step(frame)` on frames 1..N-1, run on every `interval`th
    frame as the elements do (frame 0, the warm-up, counts as the first)."""
    step(frames[0])
    start, cpu_start = time.perf_counter(), time.process_time()
    for index, frame in enumerate(frames[1:], start=1):
        if index % interval == 0:  # between, the last results stand
            step(frame)
    return (1000.0 * (time.perf_counter() - start) / (len(frames) - 1),
            1000.0 * (time.process_time() - cpu_start) / (len(frames) - 1))


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
        crops = [image[:, top:top + height, left:left + width] for left, top, width, height in boxes] if boxes else [image]
        with torch.inference_mode():
            inputs = [transforms(crop) for crop in crops]
            if batched:
                return top(model(torch.stack(inputs)))
            return [top(model(item.unsqueeze(0)))[0] for item in inputs]
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=21, help="frames per run (the first is a warm-up)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant; medians are reported")
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
    # name, element, ROI boxes on the frames, torch loop step, interval of the loop
    variants = [
        ("detect, interval 1", detect, None, detect_step(detector), 1),
        ("detect, interval 5", detect + " inference-interval=5", None, detect_step(detector), 5),
        ("classify frame, interval 1", classify + " inference-region=full-frame", None,
         classify_step(classifier, transforms), 1),
        ("classify frame, interval 5", classify + " inference-region=full-frame inference-interval=5", None,
         classify_step(classifier, transforms), 5),
        ("classify 8 ROIs, batch 8", classify + " batch-size=8", ROIS, classify_step(classifier, transforms, ROIS), 1),
        ("classify 8 ROIs, batch 1", classify + " batch-size=1", ROIS,
         classify_step(classifier, transforms, ROIS, batched=False), 1),
    ]
    print(f"{len(frames) - 1} timed frames of {WIDTH}x{HEIGHT} RGBA, {arguments.runs} runs, "
          f"torch {torch.__version__} with {torch.get_num_threads()} thread(s)\n")
    print(f"{'':28} {'---------- wall ms/frame ----------':>36}  {'---------- cpu ms/frame -----------':>36}")
    print(f"{'variant':28} {'element':>11} {'torch':>11} {'fps ratio':>12}  {'element':>11} {'torch':>11} {'ratio':>12}")
    for name, description, rois, step, interval in variants:
        element_runs, loop_runs = [], []
        for _ in range(arguments.runs):
            element_runs.append(element_ms_per_frame(description, frames, rois))
            loop_runs.append(loop_ms_per_frame(step, frames, interval))
        element_wall, element_cpu = (statistics.median(times) for times in zip(*element_runs))
        loop_wall, loop_cpu = (statistics.median(times) for times in zip(*loop_runs))
        print(f"{name:28} {element_wall:11.2f} {loop_wall:11.2f} {loop_wall / element_wall:12.3f}  "
              f"{element_cpu:11.2f} {loop_cpu:11.2f} {loop_cpu / element_cpu:12.3f}", flush=True)


if __name__ == "__main__":
    main()
