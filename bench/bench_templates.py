# SPDX-License-Identifier: LGPL-2.1-or-later
"""The template apps' programs in empycustom against a plain torch loop, and their preprocessing
against the seed's PIL + torchvision-transforms recipe. Prints figures; not a test.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_templates.py \
        [--movie IN.mp4] [--clip-frames 22] [--counter-frames 90] [--detector-frames 8] [--program-loop]

Frames are decoded once (a movie, or a clip of resource/make_sample_clip.sh) into memory. Frame by
frame, interleaved (interleaved.py), each goes through the program in empycustom (the app's chain:
appsrc ! stages ! fakesink) and then through a plain torch loop doing the same tensor work, with
the same model, weights (random, seeded: no network here) and device, in the same process. Figures
are ms per frame from the first frame after `warm-up` to the last, by the wall clock and by the CPU
time of the thread doing the work.
"""

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import interleaved  # noqa: E402

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO_RESOURCE = os.path.join(SOURCE_ROOT, "templates", "EMI Torch 3DCNN", "resource")
COUNTER_RESOURCE = os.path.join(SOURCE_ROOT, "templates", "EMI Torch Imagenet Yolo IOU Counter", "resource")


def load_program(path):
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("bench_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decode(movie, width, height, limit):
    """Up to `limit` RGBA frames of the movie at width×height, as arrays."""
    uri = urllib.parse.urljoin("file:", urllib.parse.quote(os.path.abspath(movie)))
    pipeline = Gst.parse_launch(
        f'uridecodebin uri="{uri}" ! videoconvert ! videoscale ! '
        f"video/x-raw,format=RGBA,width={width},height={height} ! appsink name=sink sync=false")
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    frames = []
    while len(frames) < limit:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buffer = sample.get_buffer()
        frames.append(np.frombuffer(buffer.extract_dup(0, buffer.get_size()), np.uint8)
                      .reshape(height, width, 4).copy())
    pipeline.set_state(Gst.State.NULL)
    if not frames:
        raise SystemExit(f"{movie}: no frames decoded")
    return frames


def per_call_ms(function, items, repeat):
    function(items[0])
    started = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            function(item)
    return 1000.0 * (time.perf_counter() - started) / (repeat * len(items))


def stages_of(stages):
    """Elements for (factory, {property: value}) pairs."""
    elements = []
    for factory, properties in stages:
        element = Gst.ElementFactory.make(factory)
        if element is None:
            raise SystemExit(f"no element {factory}: set GST_PLUGIN_PATH to the build's plugin folder")
        for key, value in properties.items():
            Gst.util_set_object_arg(element, key, str(value))
        elements.append(element)
    return elements


def report(title, frames, warmup, stages, step, loop_name="plain torch loop"):
    (pipeline_wall, pipeline_cpu), (loop_wall, loop_cpu) = interleaved.compare(
        stages_of(stages), step, frames, warmup=warmup)
    print(f"  {title}, {len(frames) - warmup} timed frames")
    print(f"    {'':22} {'wall ms/frame':>14} {'fps':>8} {'cpu ms/frame':>14}")
    print(f"    {'empycustom pipeline':22} {pipeline_wall:14.2f} {1000 / pipeline_wall:8.2f} {pipeline_cpu:14.2f}")
    print(f"    {loop_name:22} {loop_wall:14.2f} {1000 / loop_wall:8.2f} {loop_cpu:14.2f}")
    print(f"    pipeline/loop fps {loop_wall / pipeline_wall:.3f} (cpu {loop_cpu / pipeline_cpu:.3f})   "
          f"(target >= 0.95)", flush=True)


def report_preprocessing(what, ours_ms, seeds_ms):
    print(f"  preprocessing, {what}: ours {ours_ms:.3f} ms, the seed's PIL + transforms "
          f"{seeds_ms:.3f} ms: {seeds_ms / ours_ms:.2f}x faster (target >= 2x)")


def bench_video_classification(frames, device, weights_dir, program_loop):
    program = load_program(os.path.join(VIDEO_RESOURCE, "video_classification.py"))
    spec = program.MODEL
    program.model_weights.write_random_weights(spec, weights_dir, seed=0)
    weights = spec.installed_path(weights_dir)
    model, _ = program.model_weights.load_model(spec, weights_dir, device)
    clip_length, size = 16, 112
    height, width = frames[0].shape[:2]
    print(f"EMI Torch 3DCNN: r3d_18, {clip_length}x{size}x{size} clip, {device}, "
          f"{len(frames)} frames {width}x{height}, torch threads {torch.get_num_threads()}")

    mean = torch.tensor(program.MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(program.STD, device=device).view(3, 1, 1)
    clip = collections.deque(maxlen=clip_length)

    def plain_step(frame):
        with torch.no_grad():
            pixels = torch.from_numpy(frame[:, :, :3]).to(device).permute(2, 0, 1).float().div(255)
            small = F.interpolate(pixels.unsqueeze(0), size=(size, size), mode="bilinear",
                                  align_corners=False, antialias=True)[0]
            clip.append((small - mean) / std)
            if len(clip) == clip_length:
                scores = model(torch.stack(list(clip), dim=1).unsqueeze(0))
                scores.softmax(1).max(1)[1].item()

    # Timed from the first frame that classifies.
    stages = [("empycustom", {"module": os.path.join(VIDEO_RESOURCE, "video_classification.py"),
                              "options": f'{{"weights": "{weights}", "device": "{device}"}}'})]
    report("every frame classified (a 16-frame clip each)", frames, clip_length - 1, stages, plain_step)
    if program_loop:  # what empycustom adds to the program itself
        program_classifier = program.ClipClassifier(model, [], device, clip_length, size)
        report("the same, against the program in a loop", frames, clip_length - 1, stages,
               program_classifier.push, loop_name="the program in a loop")

    classifier = program.ClipClassifier(None, [], device, clip_length, size)
    seed_transform = transforms.Compose([
        transforms.Resize((size, size)), transforms.ToTensor(),
        transforms.Normalize(mean=list(program.MEAN), std=list(program.STD))])
    sample = frames[:32]
    ours_ms = per_call_ms(classifier.preprocess, sample, repeat=5)
    seeds_ms = per_call_ms(lambda frame: seed_transform(Image.fromarray(frame[:, :, 0:3], mode="RGB"))
                           .unsqueeze(0).to(device), sample, repeat=5)
    report_preprocessing(f"one {width}x{height} frame", ours_ms, seeds_ms)


def bench_counter(frames, device, weights_dir):
    classification = load_program(os.path.join(COUNTER_RESOURCE, "image_classification.py"))
    motion = load_program(os.path.join(COUNTER_RESOURCE, "motion_detector.py"))
    spec = classification.MODEL
    classification.model_weights.write_random_weights(spec, weights_dir, seed=0)
    weights = spec.installed_path(weights_dir)
    model, _ = classification.model_weights.load_model(spec, weights_dir, device)
    size = 224

    # The objects of each frame, found once, for the preprocessing comparison.
    detector = motion.MotionDetector()
    objects = [detector.detect(frame) for frame in frames]
    found = sum(map(len, objects))
    height, width = frames[0].shape[:2]
    print(f"EMI Torch Imagenet Yolo IOU Counter: motion detection + squeezenet1_1 at {size}x{size}, "
          f"{device}, {len(frames)} frames {width}x{height}, {found} objects "
          f"({found / len(frames):.2f} a frame)")

    mean = torch.tensor(classification.MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(classification.STD, device=device).view(3, 1, 1)
    loop_detector = motion.MotionDetector()

    def plain_step(frame):
        with torch.no_grad():
            crops = []
            for obj in loop_detector.detect(frame):
                crop = classification.square_crop(frame, obj["rect_params"])[:, :, :3]
                pixels = torch.from_numpy(crop).to(device).permute(2, 0, 1).float().div(255)
                resized = F.interpolate(pixels.unsqueeze(0), size=(size, size), mode="bilinear",
                                        align_corners=False, antialias=True)[0]
                crops.append((resized - mean) / std)
            if crops:
                probabilities, indices = model(torch.stack(crops)).softmax(1).max(1)
                indices.tolist()

    report("motion detector, tracker (pipeline only) and classifier", frames, 5, [
        ("empycustom", {"module": os.path.join(COUNTER_RESOURCE, "motion_detector.py"), "mode": "detect"}),
        ("emtracker", {"min-hits": 3, "max-age": 15, "high-confidence": 0.3}),
        ("empycustom", {"module": os.path.join(COUNTER_RESOURCE, "image_classification.py"),
                        "options": f'{{"weights": "{weights}", "device": "{device}"}}'}),
    ], plain_step)

    classifier = classification.ObjectClassifier(model, [], device, size)
    seed_transform = transforms.Compose([
        transforms.Resize((size, size)), transforms.ToTensor(),
        transforms.Normalize(mean=list(classification.MEAN), std=list(classification.STD))])
    frames_with_objects = [(frame, found_objects) for frame, found_objects in zip(frames, objects) if found_objects]
    if not frames_with_objects:
        print("  (no objects found: no preprocessing figures)")
        return

    def ours(item):
        frame, found_objects = item
        return classifier.inputs_of(classifier.pixels_of(frame), found_objects)[0]

    def seeds(item):
        frame, found_objects = item
        crops = [seed_transform(Image.fromarray(
                     np.asarray(classification.square_crop(frame, obj["rect_params"]))[:, :, 0:3], mode="RGB"))
                 .unsqueeze(0).to(device) for obj in found_objects]
        return torch.cat(crops)

    sample = frames_with_objects[:32]
    report_preprocessing(f"the crops of one frame ({sum(len(o) for _, o in sample) / len(sample):.2f} objects)",
                         per_call_ms(ours, sample, repeat=5), per_call_ms(seeds, sample, repeat=5))


def bench_detector(frames, device, weights_dir):
    """The counter's primary (YOLOX-Nano through emi.inference, OpenCV's DNN) against the same model
    in a plain OpenCV loop (bench_models.yolox_step: letterbox, forward, decode, NMS)."""
    from bench_models import YOLOX, COCO_LABELS, yolox_step

    height, width = frames[0].shape[:2]
    print(f"Detector (the counter's primary): YOLOX-Nano, OpenCV DNN, {len(frames)} frames {width}x{height}")
    options = json.dumps({"model": YOLOX, "labels": COCO_LABELS, "fallback": "none", "device": str(device)})
    report("detection (YOLOX-Nano, people)", frames, 1, [("empycustom", {
        "module": os.path.join(COUNTER_RESOURCE, "object_detector.py"), "mode": "detect", "options": options})],
        yolox_step())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movie", help="a movie to decode (default: resource/make_sample_clip.sh's)")
    parser.add_argument("--clip-frames", type=int, default=22, help="frames for the 3DCNN (22)")
    parser.add_argument("--counter-frames", type=int, default=90, help="frames for the counter (90)")
    parser.add_argument("--detector-frames", type=int, default=8, help="frames for the detector (8)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (auto)")
    parser.add_argument("--program-loop", action="store_true",
                        help="also time the 3DCNN program itself in a main-thread loop")
    parser.add_argument("--only", choices=["3dcnn", "counter", "detector"], help="one of the three")
    args = parser.parse_args()
    print(f"on CPU {interleaved.pin_to_one_cpu()} (interleaved.py says why)")
    Gst.init(None)
    with tempfile.TemporaryDirectory() as scratch:
        movie = args.movie
        if movie is None:
            movie = os.path.join(scratch, "sample.mp4")
            subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), movie,
                            str(max(args.clip_frames, args.counter_frames, args.detector_frames)), "640x360"],
                           check=True)
        program = load_program(os.path.join(VIDEO_RESOURCE, "model_weights.py"))
        device = program.pick_device(args.device)
        if args.only in (None, "3dcnn"):
            bench_video_classification(decode(movie, 640, 360, args.clip_frames), device,
                                       os.path.join(scratch, "video_models"), args.program_loop)
        if args.only in (None, "counter"):
            bench_counter(decode(movie, 360, 360, args.counter_frames), device,
                          os.path.join(scratch, "counter_models"))
        if args.only in (None, "detector"):
            bench_detector(decode(movie, 360, 360, args.detector_frames), device,
                           os.path.join(scratch, "detector_models"))


if __name__ == "__main__":
    main()
