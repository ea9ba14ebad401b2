# SPDX-License-Identifier: LGPL-2.1-or-later
"""The two template apps' programs, callbacks, configs and prepare_resource.sh, and the seed's
snippets in the templates' pipelines.

Models run with random weights saved to temporary files (there is no network). Results are compared
with torch computed here on the same frames and the same weights: probabilities within
PROBABILITY_TOLERANCE percentage points (the seed's raw scores within SCORE_TOLERANCE), same class.
"""

import filecmp
import importlib.util
import json
import operator
import os
import shutil
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.models import squeezenet1_1
from torchvision.models.video import r3d_18

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import emi  # noqa: E402
from emi import app as emi_app  # noqa: E402
from emi import runner  # noqa: E402

sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
import model_fixtures as fixtures  # noqa: E402
from media_frames import media_frames  # noqa: E402
from pipeline_end import wait_for_end  # noqa: E402
from local_firehose import LocalFirehose  # noqa: E402

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(SOURCE_ROOT, "templates")
VIDEO_APP = os.path.join(TEMPLATES, "EMI Torch 3DCNN")
COUNTER_APP = os.path.join(TEMPLATES, "EMI Torch Imagenet Yolo IOU Counter")
VIDEO_RESOURCE = os.path.join(VIDEO_APP, "resource")
COUNTER_RESOURCE = os.path.join(COUNTER_APP, "resource")
SEED_SNIPPETS = os.path.join(SOURCE_ROOT, "tests", "seed_snippets")

PROBABILITY_TOLERANCE = 1e-3   # percentage points
SCORE_TOLERANCE = 1e-4         # the seed's raw scores
VIDEO_MEAN = torch.tensor([0.43216, 0.394666, 0.37645]).view(3, 1, 1)
VIDEO_STD = torch.tensor([0.22803, 0.22145, 0.216989]).view(3, 1, 1)
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

Gst.init(None)


# ---------------------------------------------------------------------------------------------
# Helpers

def load_program(path):
    """A fresh module object of a template program (its folder on sys.path, as empycustom does)."""
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = "program_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_labels(path):
    with open(path, encoding="utf-8") as labels_file:
        return [line.rstrip("\n") for line in labels_file]


def run_frames(frames, stages, fps=30):
    """Pushes RGBA frames through appsrc ! stages ! fakesink; returns each frame's document.
    stages: (factory, {property: value}) in order; values are set as gst-launch would."""
    height, width = frames[0].shape[:2]
    pipeline = Gst.Pipeline.new()
    source = Gst.ElementFactory.make("appsrc")
    source.set_property("caps", Gst.Caps.from_string(
        f"video/x-raw,format=RGBA,width={width},height={height},framerate={fps}/1"))
    source.set_property("format", Gst.Format.TIME)
    chain = [source]
    for factory, properties in stages:
        element = Gst.ElementFactory.make(factory)
        assert element is not None, f"no element {factory}"
        for key, value in properties.items():
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            Gst.util_set_object_arg(element, key, text)
        chain.append(element)
    sink = Gst.ElementFactory.make("fakesink")
    chain.append(sink)
    for element in chain:
        pipeline.add(element)
    for upstream, downstream in zip(chain, chain[1:]):
        assert upstream.link(downstream)
    documents = []

    def on_buffer(pad, info):
        documents.append(emi.frame_document(info.get_buffer()))
        return Gst.PadProbeReturn.OK

    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    pipeline.set_state(Gst.State.PLAYING)
    for index, frame in enumerate(frames):
        buffer = Gst.Buffer.new_wrapped(np.ascontiguousarray(frame).tobytes())
        buffer.pts = index * Gst.SECOND // fps
        buffer.duration = Gst.SECOND // fps
        assert source.emit("push-buffer", buffer) == Gst.FlowReturn.OK
    source.emit("end-of-stream")
    wait_for_end(pipeline, 300)
    assert len(documents) == len(frames)
    return [document["frame"][0] for document in documents]


def noise_frames(count, width, height, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 4), dtype=np.uint8) for _ in range(count)]


class MovingShapes:
    """A 360×360 scene: a static textured background, then striped rectangles moving in straight
    lines. SHAPES: first frame, last frame, left, top, dx, dy, width, height, colour."""
    SIZE = 360
    SHAPES = [(3, 99, 20, 40, 7, 2, 48, 40, (220, 40, 40)),
              (3, 99, 280, 200, -6, -3, 44, 56, (40, 200, 60)),
              (3, 6, 120, 280, 5, -4, 36, 36, (240, 220, 50))]

    def __init__(self):
        rng = np.random.default_rng(7)
        rows, columns = np.mgrid[0:self.SIZE, 0:self.SIZE]
        self.background = np.empty((self.SIZE, self.SIZE, 4), np.uint8)
        self.background[..., 0] = 40 + columns * 60 // self.SIZE
        self.background[..., 1] = 60 + rows * 60 // self.SIZE
        self.background[..., 2] = 90
        self.background[..., 3] = 255
        self.background[..., :3] += rng.integers(0, 6, (self.SIZE, self.SIZE, 3), dtype=np.uint8)

    def frame(self, number):
        """(RGBA frame, boxes (left, top, width, height) of the shapes in it)."""
        frame = self.background.copy()
        boxes = []
        for first, last, left, top, dx, dy, width, height, colour in self.SHAPES:
            if first <= number <= last:
                x, y = left + dx * (number - first), top + dy * (number - first)
                # The visible part only: a negative index would wrap to the other side.
                x0, y0 = max(x, 0), max(y, 0)
                x1, y1 = min(x + width, self.SIZE), min(y + height, self.SIZE)
                if x0 >= x1 or y0 >= y1:
                    continue
                frame[y0:y1, x0:x1, :3] = colour
                frame[y0 + (y0 - y) % 4:y1:4, x0:x1, :3] //= 2
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return frame, sorted(boxes)

    def frames(self, count):
        return [self.frame(number)[0] for number in range(count)]


def seed_square_crop(frame, rect):
    """The seed's crop rule, written out again here for the reference."""
    left, top, width, height = (int(rect[key]) for key in ("left", "top", "width", "height"))
    h, w = frame.shape[:2]
    if width <= height:
        diff = int((height - width) / 2)
        return frame[top:top + height, max(0, left - diff):min(w, left + width + diff), 0:3]
    diff = int((width - height) / 2)
    return frame[max(0, top - diff):min(h, top + height + diff), left:left + width, 0:3]


def box_of(obj):
    rect = obj["rect_params"]
    return tuple(int(rect[key]) for key in ("left", "top", "width", "height"))


def is_ended(obj):
    return obj.get("tracking_ended_time", "N/A") != "N/A"


_OPERATORS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
              ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def rule_fires(rule, event):
    """EDGEMATRIX's rule semantics as emaimeta implements them (README, "Action rules")."""
    def holds(condition):
        if condition["key"] not in event:
            return False
        value, wanted = event[condition["key"]], condition["value"]
        if isinstance(value, str) != isinstance(wanted, str):
            return condition["operator"] == "!="
        return _OPERATORS[condition["operator"]](value, wanted)
    return all(map(holds, rule["and"])) and (not rule["or"] or any(map(holds, rule["or"])))


def load_json(path):
    with open(path, encoding="utf-8") as json_file:
        return json.load(json_file)


# ---------------------------------------------------------------------------------------------
# Weights: random, saved to files, loaded here as references

@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def r3d_weights(weights_dir):
    model = fixtures.eval_model(r3d_18, seed=1)
    return fixtures.save_state_dict(str(weights_dir / "r3d_18_random.pth"), model), model


@pytest.fixture(scope="module")
def squeezenet_weights(weights_dir):
    model = fixtures.eval_model(squeezenet1_1, seed=2)
    return fixtures.save_state_dict(str(weights_dir / "squeezenet1_1_random.pth"), model), model


@pytest.fixture(scope="module")
def kinetics_labels():
    return read_labels(os.path.join(VIDEO_RESOURCE, "kinetics_400_labels.txt"))


@pytest.fixture(scope="module")
def imagenet_labels():
    return read_labels(os.path.join(COUNTER_RESOURCE, "imagenet_labels.txt"))


# ---------------------------------------------------------------------------------------------
# EMI Torch 3DCNN: video_classification.py

def reference_clip(model, frames, size, labels):
    """(class, probability in percent) of r3d_18 on frames, preprocessed with torch here."""
    planes = []
    for frame in frames:
        pixels = torch.from_numpy(np.ascontiguousarray(frame[:, :, :3])).permute(2, 0, 1)
        scaled = pixels.float().div(255).unsqueeze(0)
        small = F.interpolate(scaled, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)[0]
        planes.append((small - VIDEO_MEAN) / VIDEO_STD)
    with torch.no_grad():
        probabilities = model(torch.stack(planes, dim=1).unsqueeze(0)).softmax(1)[0]
    probability, index = probabilities.max(0)
    return labels[int(index)], 100.0 * probability.item()


def assert_same_result(result, expected_class, expected_probability, tolerance=PROBABILITY_TOLERANCE):
    assert result["predicted_class"] == expected_class
    assert result["probability"] == pytest.approx(expected_probability, abs=tolerance)


def test_3dcnn_in_empycustom_equals_torch_on_the_same_16_frames(r3d_weights, kinetics_labels):
    path, model = r3d_weights
    frames = noise_frames(16, 320, 180, seed=3)
    records = run_frames(frames, [("empycustom", {
        "module": os.path.join(VIDEO_RESOURCE, "video_classification.py"),
        "options": {"weights": path}, "on-error": "fail"})])
    assert all("emcustom" not in record for record in records[:15])  # the clip is not full yet
    [result] = records[15]["emcustom"]
    assert_same_result(result, *reference_clip(model, frames, 112, kinetics_labels))


def test_3dcnn_ring_slides_and_infers_every_nth_frame(r3d_weights, kinetics_labels):
    path, model = r3d_weights
    frames = noise_frames(9, 96, 64, seed=4)
    records = run_frames(frames, [("empycustom", {
        "module": os.path.join(VIDEO_RESOURCE, "video_classification.py"),
        "options": {"weights": path, "device": "cpu", "clip_length": 4, "frame_size": 32,
                    "infer_interval": 2}, "on-error": "fail"})])
    assert all("emcustom" not in record for record in records[:3])
    for last in (3, 5, 7):  # classified: the 4 frames up to this one, oldest first
        [result] = records[last]["emcustom"]
        assert_same_result(result, *reference_clip(model, frames[last - 3:last + 1], 32, kinetics_labels))
        assert records[last + 1]["emcustom"] == records[last]["emcustom"]  # repeated in between


def test_3dcnn_preprocessing_matches_the_seeds_pil_recipe():
    program = load_program(os.path.join(VIDEO_RESOURCE, "video_classification.py"))
    classifier = program.ClipClassifier(None, [], torch.device("cpu"))
    seed_transform = transforms.Compose([
        transforms.Resize((112, 112)), transforms.ToTensor(),
        transforms.Normalize(mean=VIDEO_MEAN.flatten().tolist(), std=VIDEO_STD.flatten().tolist())])
    scene = MovingShapes()
    frame = np.ascontiguousarray(np.concatenate([scene.frame(5)[0], scene.frame(8)[0]], axis=1)[:, :640])
    ours = classifier.preprocess(frame)
    seeds = seed_transform(Image.fromarray(np.ascontiguousarray(frame[:, :, :3]), mode="RGB"))
    assert ours.shape == seeds.shape == (3, 112, 112)
    # Both resize with a bilinear antialiasing filter; PIL rounds to uint8 on the way: ~1/255 apart.
    difference = (ours - seeds).abs()
    assert difference.mean().item() < 0.02
    assert difference.max().item() < 0.1


def test_3dcnn_without_weights_tries_the_download_then_says_what_to_run(tmp_path, monkeypatch):
    program = load_program(os.path.join(VIDEO_RESOURCE, "video_classification.py"))
    attempts = []

    def unreachable(url, destination, *args, **kwargs):
        attempts.append((url, destination))
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    models_dir = str(tmp_path / "models")
    with pytest.raises(program.model_weights.WeightsUnavailable) as error:
        program.start({"models_dir": models_dir})
    assert attempts == [("https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
                         os.path.join(models_dir, "checkpoints", "r3d_18-b3b3357e.pth"))]
    message = str(error.value)
    assert "URLError" in message and "network unreachable (test)" in message
    assert "prepare_resource.sh --weights FILE" in message
    assert "prepare_resource.sh --random-weights" in message
    assert os.path.join(models_dir, "r3d_18.pth") in message


def test_3dcnn_refuses_unknown_options_and_bad_values():
    program = load_program(os.path.join(VIDEO_RESOURCE, "video_classification.py"))
    with pytest.raises(ValueError, match="unknown option.*'clip_lenght'"):
        program.start({"clip_lenght": 8})
    with pytest.raises(ValueError, match="option 'infer_interval': 0"):
        program.start({"infer_interval": 0})
    with pytest.raises(program.model_weights.WeightsUnavailable, match="no such checkpoint"):
        program.start({"weights": "missing.pth"})


# ---------------------------------------------------------------------------------------------
# EMI Torch Imagenet Yolo IOU Counter: motion_detector.py, object_detector.py, image_classification.py

@pytest.mark.parametrize("algorithm, settled_from", [("mog2", 3), ("knn", 11)])
def test_motion_detector_finds_the_moving_shapes(algorithm, settled_from):
    program = load_program(os.path.join(COUNTER_RESOURCE, "motion_detector.py"))
    detector = program.MotionDetector({"algorithm": algorithm})
    scene = MovingShapes()
    for number in range(16):
        frame, boxes = scene.frame(number)
        objects = detector.detect(frame)
        if number < 3:
            assert objects == []  # the background alone
        elif number >= settled_from:  # KNN needs a few frames more to settle
            found = sorted(box_of(obj) for obj in objects)
            assert len(found) == len(boxes), (number, found, boxes)
            for box, truth in zip(found, boxes):
                assert np.abs(np.subtract(box, truth)).max() <= 2, (number, found, boxes)
            assert all(obj["obj_label"] == "moving object" and 0.8 <= obj["confidence"] <= 1
                       for obj in objects)


def counter_stages(classifier_module, classifier_options, max_age=1):
    return [
        ("empycustom", {"module": os.path.join(COUNTER_RESOURCE, "motion_detector.py"),
                        "mode": "detect", "on-error": "fail"}),
        ("emtracker", {"min-hits": 2, "max-age": max_age, "high-confidence": 0.3}),
        ("empycustom", {"module": classifier_module, "options": classifier_options, "on-error": "fail"}),
    ]


# The shapes' crops are 36-56 px: 112 enlarges every crop, 32 shrinks every crop.
@pytest.mark.parametrize("input_size", [112, 32])
def test_image_classification_equals_torch_on_each_objects_crop(squeezenet_weights, imagenet_labels, input_size):
    """The seed's way (classify_every_object): every object of every frame, tracked or not."""
    path, model = squeezenet_weights
    scene = MovingShapes()
    frames = scene.frames(10)
    records = run_frames(frames, counter_stages(
        os.path.join(COUNTER_RESOURCE, "image_classification.py"),
        {"weights": path, "device": "cpu", "input_size": input_size, "classify_every_object": True}))
    last_results = {}
    classified = ended = 0
    for number, record in enumerate(records):
        live = [obj for obj in record.get("object", []) if not is_ended(obj)]
        assert sorted(box_of(obj) for obj in live) == scene.frame(number)[1]
        for obj in record.get("object", []):
            if is_ended(obj):  # the track's last result, not classified again
                assert obj["emcustom"] == last_results[obj["object_id"]]
                ended += 1
                continue
            crop = seed_square_crop(frames[number], obj["rect_params"])
            pixels = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div(255)
            resized = F.interpolate(pixels.unsqueeze(0), size=(input_size, input_size), mode="bilinear",
                                    align_corners=False, antialias=True)
            with torch.no_grad():
                probabilities = model((resized - IMAGENET_MEAN) / IMAGENET_STD).softmax(1)[0]
            probability, index = probabilities.max(0)
            assert_same_result(obj["emcustom"], imagenet_labels[int(index)], 100.0 * probability.item())
            if obj["object_id"] >= 0:
                last_results[obj["object_id"]] = obj["emcustom"]
            classified += 1
    assert classified == 3 * 4 + 2 * 3  # three shapes in frames 3-6, two in 7-9
    assert ended == 1                   # the third shape's track, once
    assert records[-1]["counts"]["total"] == 3


def test_image_classification_classifies_tracks_when_confirmed_and_every_reclassify_interval(squeezenet_weights):
    path, _ = squeezenet_weights
    program = load_program(os.path.join(COUNTER_RESOURCE, "image_classification.py"))
    scene = MovingShapes()
    frames = scene.frames(16)
    records = run_frames(frames, counter_stages(
        os.path.join(COUNTER_RESOURCE, "image_classification.py"),
        {"weights": path, "device": "cpu", "input_size": 32, "reclassify_interval": 5}, max_age=3))
    first_classified = {}
    for number, record in enumerate(records):
        for obj in record.get("object", []):
            if is_ended(obj):
                continue
            if obj["object_id"] < 0:  # not confirmed yet: not classified
                assert obj.get("emcustom") in (None, {})
                continue
            first_classified.setdefault(obj["object_id"], number)
            assert "predicted_class" in obj["emcustom"]
    assert len(first_classified) == 3
    # Counting the calls: what the program classifies on each frame, by the same rule.
    classifier = program.ObjectClassifier(None, [], torch.device("cpu"), input_size=32, reclassify_interval=5)
    due = []
    for number in range(12):
        objects = [{"object_id": 1, "rect_params": {}}, {"object_id": -1, "rect_params": {}}]
        due.append([classifier.is_due(obj, number) for obj in objects])
        if due[-1][0]:
            classifier.track_results[1] = program.TrackResult({"predicted_class": "x"}, number)
    assert [frame[0] for frame in due] == [number % 5 == 0 for number in range(12)]
    assert not any(frame[1] for frame in due)
    with pytest.raises(ValueError, match="option 'reclassify_interval'"):
        program.settings_of({"reclassify_interval": -1})


def test_image_classification_resizes_alike_with_opencv_and_with_torch():
    """The CPU's OpenCV resize and the torch resize used on CUDA give the same batch."""
    program = load_program(os.path.join(COUNTER_RESOURCE, "image_classification.py"))
    classifier = program.ObjectClassifier(None, [], torch.device("cpu"), input_size=64)
    frame = np.random.default_rng(3).integers(0, 256, (120, 160, 4), dtype=np.uint8)
    objects = [{"rect_params": {"left": 10, "top": 5, "width": 21, "height": 33}},   # enlarged
               {"rect_params": {"left": 40, "top": 30, "width": 100, "height": 70}},  # shrunk
               {"rect_params": {"left": 150, "top": 100, "width": 9, "height": 20}}]  # at the edges
    pixels = classifier.pixels_of(frame)
    assert classifier.resize_with_opencv
    with_opencv, slots = classifier.inputs_of(pixels, objects)
    classifier.resize_with_opencv = False
    with_torch, _ = classifier.inputs_of(pixels, objects)
    assert slots == [0, 1, 2]
    assert with_opencv.shape == (3, 3, 64, 64)
    assert torch.allclose(with_opencv, with_torch, atol=1e-4)


YOLOX = os.path.join(SOURCE_ROOT, "resource", "models", "yolox_nano.onnx")
COCO_LABELS = os.path.join(SOURCE_ROOT, "resource", "models", "coco_80cl.txt")


def entrance_frames(numbers, size=360):
    """Frames of the real shop-entrance clip as the app gets them (360×360 RGBA); skips the test
    when ../shared/media is absent."""
    import cv2

    return [cv2.cvtColor(cv2.resize(frame, (size, size)), cv2.COLOR_BGR2RGBA)
            for frame in media_frames("entrance_360p.mp4", numbers)]


def test_object_detector_finds_people_as_emdetect_does():
    frames = entrance_frames([0, 165, 330])
    program = run_frames(frames, [("empycustom", {
        "module": os.path.join(COUNTER_RESOURCE, "object_detector.py"), "mode": "detect",
        "options": {"model": YOLOX, "labels": COCO_LABELS}, "on-error": "fail"})])
    element = run_frames(frames, [("emdetect", {"model": YOLOX, "labels-file": COCO_LABELS,
                                                "object-class": "person", "threshold": 0.3})])
    for from_program, from_element in zip(program, element):
        people = from_program["object"]
        # 18-23 people are in view at the entrance. The app's input (the seed's 360×360) squeezes the
        # 640×360 clip to 56% of its width, and YOLOX-Nano finds 6-11 of these narrowed people
        # (15-17 at 640×360): at least 4, never more than are in view.
        assert 4 <= len(people) <= 23
        assert {obj["obj_label"] for obj in people} == {"person"}
        assert [box_of(obj) for obj in people] == [box_of(obj) for obj in from_element["object"]]


def test_object_detector_without_a_model_detects_motion(tmp_path):
    program = load_program(os.path.join(COUNTER_RESOURCE, "object_detector.py"))
    missing = str(tmp_path / "missing.onnx")
    program.start({"model": missing})
    assert isinstance(program.primary.motion, program.MotionDetector)
    with pytest.raises(FileNotFoundError, match=f"no model {missing} .*prepare_resource.sh"):
        program.start({"model": missing, "fallback": "none"})
    with pytest.raises(ValueError, match="option 'object_class'"):
        program.start({"model": missing, "object_class": "person"})


def test_object_detector_installs_yolox_or_a_detector_that_works(tmp_path):
    app_copy = shutil.copytree(COUNTER_APP, str(tmp_path / "counter"),
                               ignore=shutil.ignore_patterns("models", "__pycache__"))
    script = os.path.join(app_copy, "resource", "object_detector.py")
    models = os.path.join(app_copy, "resource", "models")
    env = {**os.environ, "PYTHONPATH": os.path.join(SOURCE_ROOT, "python")}
    installed = subprocess.run([sys.executable, script, "--install-model"], capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stderr
    assert filecmp.cmp(os.path.join(models, "detector.onnx"), YOLOX, shallow=False)
    assert filecmp.cmp(os.path.join(models, "coco_80cl.txt"), COCO_LABELS, shallow=False)
    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_text("not a detector\n")
    refused = subprocess.run([sys.executable, script, "--install-model", str(not_a_model)], capture_output=True,
                             text=True, env=env)
    assert refused.returncode == 1
    assert f"model {not_a_model} is not an ONNX model" in refused.stderr
    assert filecmp.cmp(os.path.join(models, "detector.onnx"), YOLOX, shallow=False)  # kept


# ---------------------------------------------------------------------------------------------
# The seed's snippets, unchanged, in the templates' pipelines

def test_seed_3dcnn_snippets_run_unchanged(r3d_weights, kinetics_labels):
    path, model = r3d_weights
    frames = noise_frames(16, 640, 360, seed=5)  # the snippet's w, h
    records = run_frames(frames, [("empycustom", {
        "module": os.path.join(SEED_SNIPPETS, "seed_3dcnn.py"),
        "options": {"weights": path, "labels": os.path.join(VIDEO_RESOURCE, "kinetics_400_labels.txt")},
        "on-error": "fail"})])
    assert all("emcustom" not in record for record in records[:15])
    [result] = records[15]["emcustom"]
    seed_transform = transforms.Compose([
        transforms.Resize((112, 112)), transforms.ToTensor(),
        transforms.Normalize(mean=VIDEO_MEAN.flatten().tolist(), std=VIDEO_STD.flatten().tolist())])
    clip = torch.stack([seed_transform(Image.fromarray(np.ascontiguousarray(frame[:, :, :3]), mode="RGB"))
                        for frame in frames], dim=1).unsqueeze(0)
    with torch.no_grad():
        score, index = model(clip)[0].max(0)
    assert result["predicted_class"] == kinetics_labels[int(index)]
    assert result["probability"] == pytest.approx(score.item(), abs=SCORE_TOLERANCE)


def test_seed_imagenet_snippets_run_unchanged(squeezenet_weights, imagenet_labels):
    path, model = squeezenet_weights
    scene = MovingShapes()
    frames = scene.frames(6)
    records = run_frames(frames, counter_stages(
        os.path.join(SEED_SNIPPETS, "seed_imagenet.py"),
        {"weights": path, "labels": os.path.join(COUNTER_RESOURCE, "imagenet_labels.txt")}))
    seed_transform = transforms.Compose([
        transforms.Resize((224, 224)), transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN.flatten().tolist(), std=IMAGENET_STD.flatten().tolist())])
    classified = 0
    for number, record in enumerate(records):
        for obj in record.get("object", []):
            crop = seed_square_crop(frames[number], obj["rect_params"])
            with torch.no_grad():
                scores = model(seed_transform(Image.fromarray(np.ascontiguousarray(crop), mode="RGB")).unsqueeze(0))[0]
            score, index = scores.max(0)
            assert obj["emcustom"]["predicted_class"] == imagenet_labels[int(index)]
            assert obj["emcustom"]["probability"] == pytest.approx(score.item(), abs=SCORE_TOLERANCE)
            classified += 1
    assert classified == 3 * 3  # three shapes in frames 3-5


# ---------------------------------------------------------------------------------------------
# Signal callbacks against the stream rules

def load_callback(app_folder):
    spec = importlib.util.spec_from_file_location("callback_" + os.path.basename(app_folder).replace(" ", "_"),
                                                  os.path.join(app_folder, "emi_signal_callback.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.emi_signal_callback


def test_3dcnn_callback_gives_the_events_the_record_rule_needs():
    callback = load_callback(VIDEO_APP)
    config = load_json(os.path.join(VIDEO_APP, "emi_stream_config.json"))
    [record_rule] = load_json(os.path.join(VIDEO_APP, "streams", "torch_3dcnn_stream.json"))["action_rules"]
    assert callback({"frame": [{"timestamp": "2026-11-23T08:24:36.748+0000"}]})[0] == []  # the default signal
    events, debug = callback({"frame": [{"frame_num": 7, "timestamp": "2026-11-23T08:24:36.748+0000",
                                         "emcustom": [{"predicted_class": "marching", "probability": 63.0}]}]})
    assert events == [{"predicted_class": "marching", "probability": 63.0,
                       "timestamp": "2026-11-23T08:24:36.748+0000"}]
    assert isinstance(debug, str)
    assert emi_app.check_event(events[0], config["event_item_keys"]) == []
    assert rule_fires(record_rule, events[0])
    quiet, _ = callback({"frame": [{"timestamp": "t", "emcustom": [{"predicted_class": "x", "probability": 19.9}]}]})
    assert not rule_fires(record_rule, quiet[0])


def test_counter_callback_uploads_once_per_track_that_lasted_long_enough():
    callback = load_callback(COUNTER_APP)
    config = load_json(os.path.join(COUNTER_APP, "emi_stream_config.json"))
    record_rule, upload_rule = load_json(
        os.path.join(COUNTER_APP, "streams", "torch_imagenet_stream.json"))["action_rules"]

    def live(object_id, probability, duration):
        return {"object_id": object_id, "obj_label": "moving object", "tracking_ended_time": "N/A",
                "tracking_duration_in_seconds": duration,
                "rect_params": {"left": 1, "top": 2, "width": 3, "height": 4},
                "emcustom": {"predicted_class": "black swan", "probability": probability}}

    def ended(object_id, duration, result=None):
        record = {"object_id": object_id, "obj_label": "moving object",
                  "tracking_ended_time": "2026-11-23T08:24:40.000+0000",
                  "tracking_duration_in_seconds": duration}
        return {**record, "emcustom": result} if result is not None else record

    signals = [
        {"frame": [{"timestamp": "t0"}]},
        {"frame": [{"timestamp": "t1", "object": [live(1, 97.0, 0.5), live(2, 12.0, 0.2), live(4, 50.0, 0.1),
                                                  {"object_id": -1, "obj_label": "moving object"}]}]},
        {"frame": [{"timestamp": "t2", "object": [live(1, 96.0, 1.9),
                                                  ended(2, 0.6, {"predicted_class": "goose", "probability": 12.0})]}]},
        {"frame": [{"timestamp": "t3", "object": [ended(1, 2.0, {"predicted_class": "black swan", "probability": 96.0}),
                                                  ended(3, 1.3, {})]}]},
        {"frame": [{"timestamp": "t4", "object": [ended(4, 1.5)]}]},  # ended at EOS: never classified
    ]
    events = [event for signal in signals for event in callback(signal)[0]]
    for event in events:
        assert emi_app.check_event(event, config["event_item_keys"]) == [], event
    uploads = [event for event in events if rule_fires(upload_rule, event)]
    assert [(event["object_id"], event["tracking_duration_in_seconds"]) for event in uploads] == [
        (1, 2.0), (3, 1.3), (4, 1.5)]
    assert uploads[0]["predicted_class"] == "black swan"
    assert uploads[1]["predicted_class"] == "N/A" and uploads[1]["probability"] == 0.0  # never classified
    assert (uploads[2]["predicted_class"], uploads[2]["probability"]) == ("black swan", 50.0)  # remembered
    records = [(event["object_id"], event["tracking_ended_time"]) for event in events if rule_fires(record_rule, event)]
    ended_time = "2026-11-23T08:24:40.000+0000"
    assert records == [(1, "N/A"), (4, "N/A"), (1, "N/A"), (1, ended_time), (4, ended_time)]


# ---------------------------------------------------------------------------------------------
# The app folders

def test_the_templates_are_valid_apps_with_the_seeds_pipelines():
    video = emi_app.load_app(VIDEO_APP)
    assert (video.width, video.height, video.format) == (640, 360, "RGBA")
    assert [stage.factory for stage in video.stages] == ["empycustom", "emoverlay"]
    assert video.stages[0].properties["module"] == os.path.join(VIDEO_RESOURCE, "video_classification.py")
    assert video.callback_function == "emi_signal_callback" and video.ignored == []
    counter = emi_app.load_app(COUNTER_APP)
    assert (counter.width, counter.height) == (360, 360)
    assert [(stage.role, stage.factory) for stage in counter.stages] == [
        ("primary", "empycustom"), ("tracker", "emtracker"), ("secondary[0]", "empycustom"),
        ("overlay", "emoverlay")]
    assert counter.stages[0].properties["mode"] == "detect"
    assert counter.callback_function == "emi_signal_callback" and counter.ignored == []
    # One weights helper for both templates, each copy standing alone.
    assert filecmp.cmp(os.path.join(VIDEO_RESOURCE, "model_weights.py"),
                       os.path.join(COUNTER_RESOURCE, "model_weights.py"), shallow=False)
    assert len(read_labels(os.path.join(VIDEO_RESOURCE, "kinetics_400_labels.txt"))) == 400
    assert len(read_labels(os.path.join(COUNTER_RESOURCE, "imagenet_labels.txt"))) == 1000
    counter_primary = counter.stages[0].properties
    assert '"object_class": ["person"]' in counter_primary["options"]


def test_the_stream_configs_hold_the_seeds_rules():
    record = {"action_name": "record", "duration_in_seconds": 5, "max_duration_in_seconds": 60}
    video = load_json(os.path.join(VIDEO_APP, "streams", "torch_3dcnn_stream.json"))
    assert video["action_rules"] == [{"rule_name": "3DCNN Classification",
                                      "and": [{"key": "probability", "operator": ">=", "value": 20}],
                                      "or": [], "action": record}]
    counter = load_json(os.path.join(COUNTER_APP, "streams", "torch_imagenet_stream.json"))
    assert counter["action_rules"] == [
        {"rule_name": "Recording", "and": [{"key": "probability", "operator": ">", "value": 20}],
         "or": [], "action": record},
        {"rule_name": "Upload to AWS Kinesis Firehose",
         "and": [{"key": "tracking_ended_time", "operator": "!=", "value": "N/A"},
                 {"key": "tracking_duration_in_seconds", "operator": ">=", "value": 1.3}],
         "or": [], "action": {"action_name": "upload", "deliveryStreamName": "trafficStream",
                              "accessKey": "", "secretKey": "", "region": ""}}]


# ---------------------------------------------------------------------------------------------
# prepare_resource.sh

def offline_environment():
    """The test's environment with an unreachable proxy: the download fails at once, network or not."""
    environment = dict(os.environ)
    environment.update(https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", no_proxy="")
    return environment


def prepare(app_copy, *arguments):
    script = os.path.join(app_copy, "resource", "prepare_resource.sh")
    return subprocess.run([script, *arguments], capture_output=True, text=True, timeout=240,
                          env=offline_environment())


@pytest.fixture
def video_app_copy(tmp_path):
    return shutil.copytree(VIDEO_APP, str(tmp_path / "EMI Torch 3DCNN"),
                           ignore=shutil.ignore_patterns("models", "__pycache__"))


def test_prepare_resource_says_plainly_when_the_download_fails(video_app_copy):
    finished = prepare(video_app_copy)
    assert finished.returncode == 1
    assert "could not be downloaded from https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in finished.stderr
    assert "--weights FILE" in finished.stderr and "--random-weights" in finished.stderr
    assert not os.path.exists(os.path.join(video_app_copy, "resource", "models", "r3d_18.pth"))


def test_prepare_resource_installs_weights_and_keeps_them(video_app_copy, r3d_weights, tmp_path):
    path, _ = r3d_weights
    installed = os.path.join(video_app_copy, "resource", "models", "r3d_18.pth")
    finished = prepare(video_app_copy, "--weights", path)
    assert finished.returncode == 0, finished.stderr
    assert filecmp.cmp(path, installed, shallow=False)
    first = os.stat(installed)
    kept = prepare(video_app_copy, "--random-weights")  # idempotent: installed weights are kept
    assert kept.returncode == 0, kept.stderr
    assert os.stat(installed).st_mtime_ns == first.st_mtime_ns
    not_weights = tmp_path / "notes.pth"
    not_weights.write_text("not a checkpoint")
    refused = prepare(video_app_copy, "--weights", str(not_weights))
    assert refused.returncode != 0
    assert f"{not_weights}: not a checkpoint of tensors saved with torch.save" in refused.stderr
    assert filecmp.cmp(path, installed, shallow=False)


def test_prepare_resource_of_the_counter(tmp_path):
    app_copy = shutil.copytree(COUNTER_APP, str(tmp_path / "counter"),
                               ignore=shutil.ignore_patterns("models", "__pycache__"))
    models = os.path.join(app_copy, "resource", "models")
    failed = prepare(app_copy)
    assert failed.returncode == 1
    assert "squeezenet1_1 could not be loaded" in failed.stderr
    # YOLOX-Nano comes from emi's own copy: no network needed.
    assert filecmp.cmp(os.path.join(models, "detector.onnx"), YOLOX, shallow=False)
    finished = prepare(app_copy, "--random-weights")
    assert finished.returncode == 0, finished.stderr
    state = torch.load(os.path.join(models, "squeezenet1_1.pth"), weights_only=True)
    seeded = fixtures.eval_model(squeezenet1_1, seed=0)  # the script's seed: the same weights every time
    assert all(torch.equal(state[key], value) for key, value in seeded.state_dict().items())


# ---------------------------------------------------------------------------------------------
# The counter app end to end, as a user runs it: emi run on a movie of the scene, with the seed's
# stream config pointed at a local Firehose.

def encode_movie(frames, path, fps=30):
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=RGBA,width={frames[0].shape[1]},"
        f"height={frames[0].shape[0]},framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420 ! "
        f"x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! mp4mux ! filesink location={path}")
    source = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    for number, frame in enumerate(frames):
        buffer = Gst.Buffer.new_wrapped(frame.tobytes())
        buffer.pts = number * Gst.SECOND // fps
        buffer.duration = Gst.SECOND // fps
        source.emit("push-buffer", buffer)
    source.emit("end-of-stream")
    wait_for_end(pipeline, 60)


def test_the_counter_app_counts_the_shapes_and_uploads_each_long_track_once(tmp_path, squeezenet_weights):

    app = shutil.copytree(COUNTER_APP, str(tmp_path / "counter"),
                          ignore=shutil.ignore_patterns("models", "__pycache__"))
    os.makedirs(os.path.join(app, "resource", "models"))
    shutil.copy(squeezenet_weights[0], os.path.join(app, "resource", "models", "squeezenet1_1.pth"))
    movie = str(tmp_path / "scene.mp4")
    encode_movie(MovingShapes().frames(48), movie)  # two shapes cross the frame in 1.5 s, one is brief

    with LocalFirehose(str(tmp_path), "trafficStream", "us-east-1") as firehose:
        stream = load_json(os.path.join(app, "streams", "torch_imagenet_stream.json"))
        for rule in stream["action_rules"]:
            if rule["action"]["action_name"] == "upload":
                rule["action"].update(firehose.action())
        stream_path = tmp_path / "stream.json"
        stream_path.write_text(json.dumps(stream))
        summary = runner.run_app(emi_app.load_app(app), str(stream_path), movie, str(tmp_path / "out"),
                                 annotated=False, out=open(os.devnull, "w"))
        uploaded = [json.loads(data) for data in firehose.delivered()]
    assert summary["frames"] == 48 and summary["callback_errors"] == 0
    signals = [json.loads(line) for line in open(summary["signals_file"]) if line.startswith('{"frame"')]
    assert signals[-1]["frame"][0]["counts"]["total"] == len(MovingShapes.SHAPES)
    # Two tracks last ~1.4 s (ended at EOS), one 0.13 s: the seed's rule (ended, >= 1.3 s) uploads
    # the two, once each.
    assert len(uploaded) == 2
    assert len({event["object_id"] for event in uploaded}) == 2
    assert all(event["tracking_duration_in_seconds"] >= 1.3 for event in uploaded)
