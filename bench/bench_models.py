# SPDX-License-Identifier: LGPL-2.1-or-later
"""emdetect and emclassify against a plain torch loop on the same frames.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_models.py [--frames N]

Real architectures with random weights (nothing is downloaded): ssdlite320_mobilenet_v3_large for
detection, mobilenet_v3_large for classification, 640x360 RGBA frames. And the real YOLOX-Nano
(resource/models/yolox_nano.onnx, OpenCV's DNN) on real 1920x1080 frames of
../shared/media/street_1080p.mp4 (left out, saying so, when the clip is absent), against a plain
OpenCV loop: letterbox, forward, YOLOX decoding, person filter, NMS, boxes back to frame pixels.

Frame by frame, interleaved (interleaved.py: both sides see the same drift of the machine's speed).

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

import cv2
import gi
import numpy
import torch
import torchvision
from torchvision.transforms import functional

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
import model_fixtures as fixtures  # noqa: E402

import interleaved  # noqa: E402
import plain_yolox  # noqa: E402

WIDTH, HEIGHT = 640, 360
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
YOLOX = os.path.join(ROOT, "resource", "models", "yolox_nano.onnx")
COCO_LABELS = os.path.join(ROOT, "resource", "models", "coco_80cl.txt")
STREET = os.path.join(os.environ.get("EMI_SHARED", os.path.join(ROOT, "..", "shared")), "media", "street_1080p.mp4")
YOLOX_SIZE = 416
THRESHOLD = 0.04  # random weights score low: about ten detections a frame pass it
ROIS = [(x, y, 96, 128) for x in range(20, 620 - 96, 150) for y in (20, 200)]  # 8 boxes


def make_frames(count):
    generator = numpy.random.default_rng(0)
    return [generator.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=numpy.uint8) for _ in range(count)]


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


def street_frames(count):
    """RGBA frames of the real street clip, or None when it is absent."""
    if not os.path.exists(STREET):
        return None
    capture = cv2.VideoCapture(STREET)
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA))
    return frames


def yolox_step(threshold=0.3, nms_threshold=0.45):
    """YOLOX-Nano as one would write it with OpenCV: the person boxes of an RGBA frame."""
    net = cv2.dnn.readNetFromONNX(YOLOX)
    grid, stride = plain_yolox.anchor_grid(YOLOX_SIZE)

    def step(frame):
        height, width = frame.shape[:2]
        scale = min(YOLOX_SIZE / width, YOLOX_SIZE / height)
        resized = cv2.resize(frame, (round(width * scale), round(height * scale)))
        canvas = numpy.full((YOLOX_SIZE, YOLOX_SIZE, 3), 114, numpy.uint8)
        canvas[:resized.shape[0], :resized.shape[1]] = resized[:, :, 2::-1]  # RGBA -> BGR
        net.setInput(canvas.transpose(2, 0, 1)[numpy.newaxis].astype(numpy.float32))
        boxes, scores = plain_yolox.people(net.forward()[0], grid, stride, threshold, nms_threshold)
        return [((box / scale).tolist(), float(score)) for box, score in zip(boxes, scores)]
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=31, help="frames per variant (the first is a warm-up)")
    parser.add_argument("--only", help="only the variants whose name starts with this (e.g. YOLOX)")
    arguments = parser.parse_args()
    cpu = interleaved.pin_to_one_cpu()
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
          f"torch {torch.__version__} with {torch.get_num_threads()} thread(s), on CPU {cpu}\n")
    print(f"{'':28} {'---------- wall ms/frame ----------':>36}  {'---------- cpu ms/frame -----------':>36}")
    print(f"{'variant':28} {'element':>11} {'torch':>11} {'fps ratio':>12}  "
          f"{'element':>11} {'torch':>11} {'ratio':>12}")
    street = street_frames(arguments.frames)
    yolox = (f"emdetect model={YOLOX} labels-file={COCO_LABELS} object-class=person threshold=0.3 "
             "backend=opencv")
    if street is None:
        print(f"(YOLOX-Nano on the street clip left out: {STREET} is absent)\n")
    else:
        variants += [("YOLOX-Nano 1080p, interval 1", yolox, 1, None, yolox_step()),
                     ("YOLOX-Nano 1080p, interval 2", yolox + " inference-interval=2", 2, None, yolox_step())]
    if arguments.only:
        variants = [variant for variant in variants if variant[0].startswith(arguments.only)]
    for name, description, interval, rois, step in variants:
        clip = street if name.startswith("YOLOX") else frames
        (element_wall, element_cpu), (loop_wall, loop_cpu) = interleaved.compare(
            [Gst.parse_launch(description)], step, clip, warmup=1, interval=interval, rois=rois)
        print(f"{name:28} {element_wall:11.2f} {loop_wall:11.2f} {loop_wall / element_wall:12.3f}  "
              f"{element_cpu:11.2f} {loop_cpu:11.2f} {loop_cpu / element_cpu:12.3f}", flush=True)


if __name__ == "__main__":
    main()
