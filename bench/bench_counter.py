# SPDX-License-Identifier: LGPL-2.1-or-later
"""The "EMI Torch Imagenet Yolo IOU Counter" app end to end on a real clip, against a plain loop
doing the same work.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_counter.py [--runs N]

The clip: ../shared/media/street_1080p.mp4 (1920x1080 H.264, 303 frames; EMI_SHARED names another
shared folder). The app: a copy of the template with YOLOX-Nano installed (models/detector.onnx)
and SqueezeNet 1.1 with seeded random weights (no network here: the classes mean nothing, the
work is the same), run by emi's runner as `emi run` runs it but without the annotated video and
without action rules (no clip encoding, no uploads): decode, scale to 360x360 RGBA, detect
(object_detector.py: YOLOX-Nano through emi.inference), track (emtracker), classify each track
when confirmed and every 30 frames (image_classification.py), overlay, signals. Detection on every
frame, then on every 2nd (the primary's inference_interval: 2).

The plain loop, as one would write it in Python with the same models: OpenCV decodes and scales
to 360x360, YOLOX-Nano by OpenCV's DNN (letterbox, decode, NMS), a greedy IoU tracker (IoU 0.3,
3 hits to confirm, 15 frames of age, the app's settings), SqueezeNet on the crops of newly
confirmed tracks and every 30 frames, the counts. No overlay, no signals.

frames/s = frames / wall seconds of the whole run (model loading included on both sides); app and
loop alternate, `--runs` times each, and the best run of each is shown. Both use both CPUs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import gi
import numpy
import torch
from torchvision.models import squeezenet1_1

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from emi import app as emi_app  # noqa: E402
from emi import runner  # noqa: E402

import plain_yolox  # noqa: E402  (beside this script)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATE = os.path.join(ROOT, "templates", "EMI Torch Imagenet Yolo IOU Counter")
YOLOX = os.path.join(ROOT, "resource", "models", "yolox_nano.onnx")
COCO_LABELS = os.path.join(ROOT, "resource", "models", "coco_80cl.txt")
CLIP = os.path.join(os.environ.get("EMI_SHARED", os.path.join(ROOT, "..", "shared")), "media", "street_1080p.mp4")
SIZE = 360  # the app's input
YOLOX_SIZE = 416
RECLASSIFY_INTERVAL = 30


def make_app(folder, interval):
    """A copy of the template, models installed, detection every `interval` frames, no rules."""
    app = shutil.copytree(TEMPLATE, os.path.join(folder, f"app-{interval}"),
                          ignore=shutil.ignore_patterns("models", "__pycache__"))
    models = os.path.join(app, "resource", "models")
    os.makedirs(models)
    shutil.copy(YOLOX, os.path.join(models, "detector.onnx"))
    shutil.copy(COCO_LABELS, os.path.join(models, "coco_80cl.txt"))
    subprocess.run([sys.executable, os.path.join(app, "resource", "image_classification.py"), "--random-weights"],
                   check=True, stdout=subprocess.DEVNULL)
    config_path = os.path.join(app, "emi_stream_config.json")
    with open(config_path) as file:
        config = json.load(file)
    config["pipeline_configuration"]["primary"]["empycustom"]["options"]["inference_interval"] = interval
    with open(config_path, "w") as file:
        json.dump(config, file)
    stream = os.path.join(folder, f"stream-{interval}.json")
    with open(os.path.join(app, "streams", "torch_imagenet_stream.json")) as file:
        stream_config = json.load(file)
    stream_config["action_rules"] = []
    with open(stream, "w") as file:
        json.dump(stream_config, file)
    return app, stream


def run_app(app, stream, folder):
    output = tempfile.mkdtemp(dir=folder)
    started = time.perf_counter()
    summary = runner.run_app(emi_app.load_app(app), stream, CLIP, output, annotated=False,
                             out=open(os.devnull, "w"))
    seconds = time.perf_counter() - started
    signals = [json.loads(line) for line in open(summary["signals_file"]) if line.startswith('{"frame"')]
    total = signals[-1]["frame"][0].get("counts", {}).get("total", 0) if signals else 0
    return summary["frames"], seconds, total


def iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


class Track:
    def __init__(self, track_id, box):
        self.id, self.box, self.hits, self.age, self.classified_at = track_id, box, 1, 0, None


def plain_loop(interval):
    """The same work in plain Python: (frames, seconds, tracks confirmed)."""
    started = time.perf_counter()
    net = cv2.dnn.readNetFromONNX(YOLOX)
    torch.manual_seed(0)
    classifier = squeezenet1_1(weights=None).eval()
    mean = numpy.array([0.485, 0.456, 0.406], numpy.float32)
    std = numpy.array([0.229, 0.224, 0.225], numpy.float32)
    grid, stride = plain_yolox.anchor_grid(YOLOX_SIZE)
    scale = YOLOX_SIZE / SIZE

    def detect(frame):
        canvas = cv2.resize(frame, (YOLOX_SIZE, YOLOX_SIZE))  # square into square: no padding
        net.setInput(canvas.transpose(2, 0, 1)[numpy.newaxis].astype(numpy.float32))
        boxes, _ = plain_yolox.people(net.forward()[0], grid, stride, 0.3)
        return [(x, y, x + w, y + h) for x, y, w, h in (boxes / scale).tolist()]

    capture = cv2.VideoCapture(CLIP)
    tracks, next_id, confirmed, frames, boxes = [], 1, 0, 0, []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frame = cv2.resize(frame, (SIZE, SIZE))
        if frames % interval == 0:
            boxes = detect(frame)
        unmatched = list(boxes)
        for track in tracks:
            best = max(unmatched, key=lambda box: iou(track.box, box), default=None)
            if best is not None and iou(track.box, best) >= 0.3:
                track.box, track.hits, track.age = best, track.hits + 1, 0
                unmatched.remove(best)
            else:
                track.age += 1
        tracks = [track for track in tracks if track.age <= 15]
        for box in unmatched:
            tracks.append(Track(next_id, box))
            next_id += 1
        due = [track for track in tracks if track.hits >= 3 and track.age == 0 and (
            track.classified_at is None or frames - track.classified_at >= RECLASSIFY_INTERVAL)]
        if due:
            crops = []
            for track in due:
                confirmed += track.classified_at is None
                left, top, right, bottom = (int(max(0, value)) for value in track.box)
                crop = frame[top:max(bottom, top + 1), left:max(right, left + 1), ::-1]
                crop = cv2.resize(numpy.ascontiguousarray(crop), (224, 224)).astype(numpy.float32) / 255.0
                crops.append(((crop - mean) / std).transpose(2, 0, 1))
                track.classified_at = frames
            with torch.inference_mode():
                classifier(torch.from_numpy(numpy.stack(crops))).softmax(1).max(1)
        frames += 1
    return frames, time.perf_counter() - started, confirmed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each side (the best is shown)")
    arguments = parser.parse_args()
    if not os.path.exists(CLIP):
        print(f"bench_counter: {CLIP} is absent (the shared media folder holds the real clips)")
        return 0
    Gst.init(None)
    folder = tempfile.mkdtemp(prefix="emi-bench-counter-")
    print(f"{CLIP}: the counter app (360x360) against a plain loop, best of {arguments.runs} run(s), "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} thread(s), "
          f"OpenCV {cv2.__version__} with {cv2.getNumThreads()} thread(s)\n")
    print(f"{'detection':24} {'app fps':>9} {'loop fps':>9} {'ratio':>7} {'app tracks':>11} {'loop tracks':>12}")
    for interval in (1, 2):
        app, stream = make_app(folder, interval)
        best_app, best_loop = None, None
        for _ in range(arguments.runs):
            frames, seconds, total = run_app(app, stream, folder)
            if best_app is None or frames / seconds > best_app[0]:
                best_app = (frames / seconds, total)
            frames, seconds, confirmed = plain_loop(interval)
            if best_loop is None or frames / seconds > best_loop[0]:
                best_loop = (frames / seconds, confirmed)
        label = "every frame" if interval == 1 else f"every {interval}nd frame"
        print(f"{label:24} {best_app[0]:9.2f} {best_loop[0]:9.2f} {best_app[0] / best_loop[0]:7.3f} "
              f"{best_app[1]:11} {best_loop[1]:12}", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
