# SPDX-License-Identifier: LGPL-2.1-or-later
"""emdetect and emclassify against plain torch on the same frames (a classifier, a detector,
TorchScript and pickled model files, a video model), their intervals and object filters, DEFAULT
weights from torch's cache, and the pieces of emi.inference. Models have random weights, saved to
temporary files; the elements run in this process's interpreter, as in a PyGObject app.

ONNX detectors: YOLOX-Nano (../shared/models, or the project's resource/models copy) on real frames
of ../shared/media (skipped when absent), its decoding against a NumPy reference, the YOLOv5/v8
and torchvision layouts on synthetic tensors of their real shapes and through small exported ONNX
models, and bad model files; untrusted pickles refused."""

import json
import os
import sys

import gi
import numpy
import pytest
import torch
import torchvision
from torchvision.transforms import functional

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

import emi  # noqa: E402
from emi.inference import ModelSetupError  # noqa: E402
from emi.inference.config import read_labels, read_model_proc  # noqa: E402
from emi.inference.preprocess import Preprocess, frame_tensor  # noqa: E402

sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
import model_fixtures as fixtures  # noqa: E402
from media_frames import media_frames  # noqa: E402
from pipeline_end import wait_for_end  # noqa: E402

Gst.init(None)

WIDTH, HEIGHT = 96, 72
PROBABILITY_TOLERANCE = 1e-4  # percent
BOX_TOLERANCE = 1e-3  # pixels


def random_frames(count, seed, channels=4):
    generator = numpy.random.default_rng(seed)
    return [generator.integers(0, 256, (HEIGHT, WIDTH, channels), dtype=numpy.uint8) for _ in range(count)]


def run(elements, frames, pixel_format="RGBA", rois=None):
    """Pushes `frames` (H, W, C uint8 arrays) through `elements`, each frame with its boxes of
    `rois` ((label, left, top, width, height), as another element's ROI metas); the frame records
    that came out."""
    height, width = frames[0].shape[:2]
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format={pixel_format},width={width},height={height},"
        f"framerate=30/1 ! {elements} ! fakesink name=sink")
    records = []

    def on_buffer(pad, info):
        document = emi.frame_document(info.get_buffer())
        records.append(document["frame"][0] if document else None)
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    source = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    for index, frame in enumerate(frames):
        buffer = Gst.Buffer.new_wrapped(frame.tobytes())
        buffer.pts = index * Gst.SECOND // 30
        buffer.duration = Gst.SECOND // 30
        for label, left, top, width, height in (rois[index] if rois else []):
            GstVideo.buffer_add_video_region_of_interest_meta(buffer, label, left, top, width, height)
        source.emit("push-buffer", buffer)
    source.emit("end-of-stream")
    wait_for_end(pipeline, 120)
    assert len(records) == len(frames)
    return records


def chw(frame):
    """The frame's RGB channels as torch takes an image: (3, H, W) uint8."""
    return torch.from_numpy(numpy.ascontiguousarray(frame[:, :, :3])).permute(2, 0, 1)


def top_class(scores):
    probabilities = scores.softmax(dim=1)[0]
    return int(probabilities.argmax()), 100.0 * float(probabilities.max())


def assert_result(result, labels, class_id, probability):
    assert result["class_id"] == class_id
    assert result["predicted_class"] == labels[class_id]
    assert result["probability"] == pytest.approx(probability, abs=PROBABILITY_TOLERANCE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def squeezenet(folder):
    """A squeezenet1_1 of 5 classes: its state_dict file, labels file, and the model itself."""
    model = fixtures.eval_model(torchvision.models.squeezenet1_1, num_classes=5)
    labels = fixtures.numbered_labels(5, "kind")
    weights = fixtures.save_state_dict(folder / "sq.pth", model)
    return {"model": model, "labels": labels,
            "settings": f"model=torchvision.models.squeezenet1_1 model-weights={weights} "
                        f"labels-file={fixtures.write_labels(folder / 'kinds.txt', labels)}",
            "transforms": torchvision.models.SqueezeNet1_1_Weights.DEFAULT.transforms()}


def test_a_classifier_matches_torch_on_the_whole_frame(squeezenet):
    frames = random_frames(3, seed=1)
    records = run(f"emclassify inference-region=full-frame {squeezenet['settings']}", frames)
    for frame, record in zip(frames, records):
        with torch.no_grad():
            expected = top_class(squeezenet["model"](squeezenet["transforms"](chw(frame)).unsqueeze(0)))
        [result] = record["emclassify"]
        assert_result(result, squeezenet["labels"], *expected)


def test_objects_are_classified_in_batches_as_torch_classifies_each(squeezenet):
    frames = random_frames(2, seed=2)
    # The last box crosses the frame's edge.
    boxes = [("car", 0, 0, 40, 30), ("person", 30, 20, 50, 52), ("car", 70, 40, 60, 60)]
    for batch_size in (1, 2, 8):
        records = run(f"emclassify batch-size={batch_size} {squeezenet['settings']}", frames,
                      rois=[boxes] * 2)
        for frame, record in zip(frames, records):
            assert len(record["object"]) == 3
            for (_, left, top, width, height), item in zip(boxes, record["object"]):
                crop = chw(frame)[:, top:min(top + height, HEIGHT), left:min(left + width, WIDTH)]
                with torch.no_grad():
                    expected = top_class(squeezenet["model"](squeezenet["transforms"](crop).unsqueeze(0)))
                assert_result(item["emclassify"], squeezenet["labels"], *expected)


def test_only_objects_of_the_object_classes_are_classified(squeezenet):
    boxes = [("car", 0, 0, 40, 30), ("person", 30, 20, 50, 40), ("dog", 10, 10, 20, 20)]
    [record] = run(f"emclassify object-class=person,dog meta-key=kind {squeezenet['settings']}",
                   random_frames(1, seed=3), rois=[boxes])
    assert record["object"][0]["kind"] is None  # not classified
    assert record["object"][1]["kind"]["predicted_class"] in squeezenet["labels"]
    assert record["object"][2]["kind"]["predicted_class"] in squeezenet["labels"]


def test_the_model_runs_every_nth_frame_and_its_results_are_reused_between(squeezenet):
    records = run(f"emclassify inference-region=full-frame inference-interval=3 {squeezenet['settings']}",
                  random_frames(5, seed=4))
    results = [record["emclassify"][0] for record in records]
    assert results[0] == results[1] == results[2]
    assert results[3] == results[4]
    assert results[3]["probability"] != results[0]["probability"]


def test_a_tracked_object_is_classified_again_every_reclassify_interval_frames(squeezenet):
    frames = random_frames(6, seed=5)
    boxes = [[("person", 10, 10, 50, 50), ("car", 60, 30, 30, 30)]] * 6
    records = run(f"emtracker min-hits=1 ! emclassify reclassify-interval=3 {squeezenet['settings']}", frames,
                  rois=boxes)
    for position in (0, 1):
        assert [record["object"][position]["object_id"] for record in records] == [position + 1] * 6
        results = [record["object"][position]["emclassify"] for record in records]
        assert results[0] == results[1] == results[2]
        assert results[3] == results[4] == results[5]
        left, top, width, height = boxes[0][position][1:]
        crop = chw(frames[3])[:, top:top + height, left:left + width]
        with torch.no_grad():
            expected = top_class(squeezenet["model"](squeezenet["transforms"](crop).unsqueeze(0)))
        assert_result(results[3], squeezenet["labels"], *expected)


def test_a_detector_matches_torch_and_its_boxes_are_in_frame_pixels(folder):
    model = fixtures.varied_detector(num_classes=4)
    labels = ["__background__", "cat", "dog", "bird"]
    settings = (f"model=torchvision.models.detection.ssdlite320_mobilenet_v3_large "
                f"model-weights={fixtures.save_state_dict(folder / 'ssd.pth', model)} "
                f"labels-file={fixtures.write_labels(folder / 'animals.txt', labels)} threshold=0.5")
    frames = random_frames(2, seed=6)
    for pixel_format, channel_order in (("RGBx", [0, 1, 2, 3]), ("BGRx", [2, 1, 0, 3])):
        records = run(f"emdetect {settings}", [frame[:, :, channel_order].copy() for frame in frames],
                      pixel_format)
        for frame, record in zip(frames, records):
            with torch.no_grad():
                [detections] = model([functional.convert_image_dtype(chw(frame), torch.float)])
            keep = detections["scores"] >= 0.5
            assert int(keep.sum()) > 0
            objects = record["object"]
            assert len(objects) == int(keep.sum())
            for item, box, class_id, score in zip(objects, detections["boxes"][keep].tolist(),
                                                  detections["labels"][keep].tolist(),
                                                  detections["scores"][keep].tolist()):
                left, top = item["rect_params"]["left"], item["rect_params"]["top"]
                right, bottom = left + item["rect_params"]["width"], top + item["rect_params"]["height"]
                assert [left, top, right, bottom] == pytest.approx(box, abs=BOX_TOLERANCE)
                assert item["class_id"] == class_id
                assert (item["obj_label"], item["object_id"]) == (labels[class_id], -1)
                assert item["confidence"] == pytest.approx(score, abs=1e-6)


def test_model_files_match_torch_with_the_model_proc_pre_processing(folder):
    torch.manual_seed(7)
    model = torchvision.models.mobilenet_v3_small(num_classes=3).eval()
    scripted = folder / "mobilenet.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 64, 64)).save(str(scripted))
    pickled = folder / "mobilenet_pickled.pt"
    torch.save(model, pickled)
    model_proc = {"resize": [64, 64], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "color_space": "BGR"}
    proc_path = folder / "mobilenet.json"
    proc_path.write_text(json.dumps(model_proc))
    labels = ["a", "b", "c"]
    labels_path = fixtures.write_labels(folder / "abc.txt", labels)
    frames = random_frames(2, seed=8)
    # A whole pickled model runs code from the file as it loads: only when trusted.
    for path, trust in ((scripted, ""), (pickled, "trust-model-file=true")):
        records = run(f"emclassify inference-region=full-frame model={path} model-proc={proc_path} "
                      f"labels-file={labels_path} {trust}", frames)
        for frame, record in zip(frames, records):
            image = functional.resize(chw(frame), [64, 64]).flip(0)  # the model takes BGR
            image = functional.normalize(functional.convert_image_dtype(image, torch.float),
                                         model_proc["mean"], model_proc["std"])
            with torch.no_grad():
                expected = top_class(model(image.unsqueeze(0)))
            assert_result(record["emclassify"][0], labels, *expected)


def test_a_video_model_classifies_clips_of_the_last_frames(folder):
    model = fixtures.eval_model(torchvision.models.video.r3d_18, num_classes=4)
    proc_path = folder / "clip.json"
    proc_path.write_text(json.dumps({"clip_length": 3, "resize": [32, 32], "crop": 32}))
    labels = fixtures.numbered_labels(4, "action")
    frames = random_frames(5, seed=9)
    weights = fixtures.save_state_dict(folder / "r3d.pth", model)
    records = run(f"emclassify inference-region=full-frame model=torchvision.models.video.r3d_18 "
                  f"model-weights={weights} model-proc={proc_path} "
                  f"labels-file={fixtures.write_labels(folder / 'actions.txt', labels)}", frames)
    assert all("emclassify" not in record for record in records[:2])  # the clip fills first
    transforms = torchvision.models.video.R3D_18_Weights.DEFAULT.transforms()
    transforms.resize_size, transforms.crop_size = [32, 32], [32, 32]
    for last in (2, 3, 4):
        clip = torch.stack([chw(frame) for frame in frames[last - 2:last + 1]])  # (T, C, H, W)
        with torch.no_grad():
            expected = top_class(model(transforms(clip).unsqueeze(0)))
        assert_result(records[last]["emclassify"][0], labels, *expected)


def test_default_weights_come_from_torchs_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    settings = "emclassify inference-region=full-frame model=torchvision.models.squeezenet1_1"
    with pytest.raises(AssertionError, match="squeezenet1_1-b8a52dc0.pth"):
        run(settings, random_frames(1, seed=10))

    model = fixtures.eval_model(torchvision.models.squeezenet1_1)
    fixtures.cache_as_default_weights(str(tmp_path), torchvision.models.squeezenet1_1, model)
    frames = random_frames(1, seed=10)
    [record] = run(settings, frames)
    weights = torchvision.models.SqueezeNet1_1_Weights.DEFAULT
    with torch.no_grad():
        expected = top_class(model(weights.transforms()(chw(frames[0])).unsqueeze(0)))
    assert_result(record["emclassify"][0], weights.meta["categories"], *expected)


def test_frames_reach_torch_without_a_copy():
    frame = numpy.arange(HEIGHT * WIDTH * 4, dtype=numpy.uint32).astype(numpy.uint8).reshape(HEIGHT, WIDTH, 4)
    frame.setflags(write=False)  # frames are mapped read-only
    image = frame_tensor(frame, "cpu")
    assert image.data_ptr() == frame.ctypes.data
    assert image.shape == (3, HEIGHT, WIDTH)
    assert torch.equal(image, chw(frame))


def test_the_weights_transforms_are_followed_exactly():
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    image = chw(random_frames(1, seed=11)[0])
    steps = Preprocess.for_model(weights.transforms(), read_model_proc(""))
    assert (steps.resize, steps.crop) == ([232], [224])
    assert torch.equal(steps(image, "RGB"), weights.transforms()(image))


def test_labels_and_model_proc_files_are_checked(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("__background__\r\nperson\n\n car \n\n")
    assert read_labels(str(labels)) == ["__background__", "person", "", "car"]
    cases = {'{"range": [1, 0]}': "low < high", '{"mean": [0.5, 0.5]}': "list of 3 numbers",
             '{"method": "argmax"}': "softmax, sigmoid, none", '{"clip_length": 0}': "whole number of frames",
             '{"crop": [1, 2, 3]}': "[height, width]", "[]": "must be a JSON object"}
    for text, problem in cases.items():
        path = tmp_path / "proc.json"
        path.write_text(text)
        with pytest.raises(ModelSetupError, match=problem) as raised:
            read_model_proc(str(path))
        assert raised.value.reason == ModelSetupError.INVALID
        assert str(path) in str(raised.value)


# --- ONNX detectors ---

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YOLOX = os.path.join(ROOT, "resource", "models", "yolox_nano.onnx")
COCO_LABELS = os.path.join(ROOT, "resource", "models", "coco_80cl.txt")
YOLOX_SIZE = 416
NMS_THRESHOLD = 0.45


def corners_of(item):
    rect = item["rect_params"]
    return [rect["left"], rect["top"], rect["left"] + rect["width"], rect["top"] + rect["height"]]


def iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


# People marked by hand on these frames (frame pixels, x1, y1, x2, y2): each must be found.
MARKED_PEOPLE = {
    ("street_1080p.mp4", 225): [(276, 394, 380, 606),  # the man reading, left
                                (1208, 390, 1312, 586),  # the woman pushing a bicycle
                                (1632, 792, 1752, 1080)],  # the man at the bottom right
    ("entrance_360p.mp4", 330): [(480, 232, 532, 358),  # the woman in a fur hood, bottom right
                                 (84, 264, 144, 358),  # the man at the bottom
                                 (558, 48, 582, 124)],  # the man outside, right of the doors
}
# People a frame shows, counted by eye on frames 0, 75, 150, 225 (street) and 0, 110, 220, 330
# (entrance), and the least YOLOX-Nano must find. The street is seen from above the first floor
# at 1920×1080, which YOLOX-Nano sees shrunk 4.6× to 416: the 3-5 people at the far end are 10-20
# pixels tall there and it misses them, and it misses some of the ones cut by the frame's edge; it
# finds 8-18. At the entrance (640×360, shrunk 1.5×) the people behind the revolving door's glass
# and those overlapping in the crowd are missed; it finds 15-17 of 19-23. Lower bounds: about half
# of those in view; upper bounds: those in view (a person found twice would pass it).
PEOPLE_IN_VIEW = {"street_1080p.mp4": (6, 20, [0, 75, 150, 225]),
                  "entrance_360p.mp4": (10, 23, [0, 110, 220, 330])}


@pytest.mark.parametrize("clip", sorted(PEOPLE_IN_VIEW))
def test_yolox_finds_the_people_of_real_frames(clip):
    least, most, numbers = PEOPLE_IN_VIEW[clip]
    frames = media_frames(clip, numbers)
    records = run(f"emdetect model={YOLOX} labels-file={COCO_LABELS} object-class=person threshold=0.3",
                  frames, "BGR")
    height, width = frames[0].shape[:2]
    for number, record in zip(numbers, records):
        people = record.get("object", [])
        assert least <= len(people) <= most, f"{clip} frame {number}: {len(people)} people"
        assert {item["obj_label"] for item in people} == {"person"}
        for item in people:
            left, top, right, bottom = corners_of(item)
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
        for marked in MARKED_PEOPLE.get((clip, number), []):
            assert max(iou(marked, corners_of(item)) for item in people) > 0.6, f"{clip} {number}: {marked}"
        # People stand: the boxes are mostly taller than wide.
        ratios = sorted(item["rect_params"]["height"] / item["rect_params"]["width"] for item in people)
        assert ratios[len(ratios) // 2] > 1.5


def reference_yolox(output, size, threshold, class_ids):
    """YOLOX's decoding and per-class NMS written out plainly, anchor by anchor."""
    rows = []
    index = 0
    for stride in (8, 16, 32):
        for y in range(size // stride):
            for x in range(size // stride):
                cx, cy, w, h, objectness = output[index, :5]
                scores = output[index, 5:]
                best = int(numpy.argmax(scores))
                score = objectness * scores[best]
                if score >= threshold and best in class_ids:
                    cx, cy = (cx + x) * stride, (cy + y) * stride
                    w, h = numpy.exp(w) * stride, numpy.exp(h) * stride
                    rows.append((float(score), best, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
                index += 1
    rows.sort(key=lambda row: -row[0])
    kept = []
    for score, class_id, box in rows:
        if all(other_class != class_id or iou(box, other) <= NMS_THRESHOLD for _, other_class, other in kept):
            kept.append((score, class_id, box))
    return kept


def test_the_yolox_decoder_agrees_with_a_numpy_reference():
    from emi.inference import decoders
    from emi.inference.onnx_models import load_onnx

    [frame] = media_frames("street_1080p.mp4", [150])
    model = load_onnx(YOLOX, "opencv", "cpu")
    blob, placement = decoders.make_input(frame, "BGR", decoders.DEFAULT_PREPROCESSING["yolox"], YOLOX_SIZE,
                                          YOLOX_SIZE, numpy.float32)
    [output] = model.run(blob)
    assert output.shape == (1, decoders.grid_cells(YOLOX_SIZE, YOLOX_SIZE), 85)
    for threshold, class_ids in ((0.3, {0}), (0.1, set(range(80)))):
        boxes = decoders.decode("yolox", [output], YOLOX_SIZE, YOLOX_SIZE, threshold)
        boxes = decoders.non_maximum_suppression(boxes.take(numpy.isin(boxes.class_ids, list(class_ids))),
                                                 NMS_THRESHOLD)
        expected = reference_yolox(output[0], YOLOX_SIZE, threshold, class_ids)
        assert len(expected) >= 8
        assert boxes.class_ids.tolist() == [class_id for _, class_id, _ in expected]
        assert boxes.scores == pytest.approx([score for score, _, _ in expected], abs=1e-6)
        assert boxes.corners == pytest.approx(numpy.array([box for _, _, box in expected]), abs=1e-3)
    # The letterbox: the frame scaled by 416/1920 at the top left; boxes map back to frame pixels.
    scale = YOLOX_SIZE / 1920
    assert (placement.scale_x, placement.offset_x, placement.offset_y) == (pytest.approx(scale, abs=1e-3), 0, 0)
    assert placement.to_frame(numpy.array([[0.0, 0.0, 416.0, 234.0]]))[0] == pytest.approx([0, 0, 1920, 1080],
                                                                                           abs=3)


def synthetic_outputs(converter, size, classes, boxes, seed):
    """An output tensor of `converter`'s real shape for a size×size input: low random scores
    everywhere and `boxes` ((cx, cy, w, h, class id, score) in input pixels) at random anchors."""
    from emi.inference import decoders

    generator = numpy.random.default_rng(seed)
    cells = decoders.grid_cells(size, size)
    if converter == "yolov5":
        output = generator.uniform(0, 0.2, (1, 3 * cells, 5 + classes)).astype(numpy.float32)
        output[0, :, :4] = generator.uniform(0, size, (3 * cells, 4))
        rows = generator.choice(3 * cells, len(boxes), replace=False)
        for row, (cx, cy, w, h, class_id, score) in zip(rows, boxes):
            output[0, row, :5] = [cx, cy, w, h, 1.0]
            output[0, row, 5:] = 0.0
            output[0, row, 5 + class_id] = score
        return output
    output = generator.uniform(0, 0.2, (1, 4 + classes, cells)).astype(numpy.float32)
    output[0, :4] = generator.uniform(0, size, (4, cells))
    columns = generator.choice(cells, len(boxes), replace=False)
    for column, (cx, cy, w, h, class_id, score) in zip(columns, boxes):
        output[0, :4, column] = [cx, cy, w, h]
        output[0, 4:, column] = 0.0
        output[0, 4 + class_id, column] = score
    return output


@pytest.mark.parametrize("converter, shape", [("yolov5", (1, 25200, 85)), ("yolov8", (1, 84, 8400))])
def test_yolov5_and_yolov8_layouts_are_decoded_and_guessed_from_their_real_shapes(converter, shape):
    from emi.inference import decoders

    # Two people overlapping (one suppressed), a car on the first person (another class: kept).
    boxes = [(100, 200, 40, 120, 0, 0.9), (104, 204, 40, 120, 0, 0.8), (300, 300, 80, 60, 2, 0.7),
             (100, 200, 40, 120, 2, 0.6), (500, 100, 30, 90, 0, 0.5)]
    output = synthetic_outputs(converter, 640, 80, boxes, seed=12)
    assert output.shape == shape
    assert decoders.guess_converter([output], 640, 640) == converter
    found = decoders.non_maximum_suppression(decoders.decode(converter, [output], 640, 640, 0.45), NMS_THRESHOLD)
    kept = [boxes[0], boxes[2], boxes[3], boxes[4]]
    assert found.class_ids.tolist() == [box[4] for box in kept]
    assert found.scores == pytest.approx([box[5] for box in kept], abs=1e-6)
    assert found.corners == pytest.approx(
        numpy.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cx, cy, w, h, _, _ in kept]), abs=1e-3)


def test_an_output_no_layout_fits_is_a_clear_error():
    from emi.inference import decoders

    with pytest.raises(ModelSetupError, match=r"can't tell its output layout from the shapes \(1, 100, 7\).*"
                                              r"\"converter\""):
        decoders.guess_converter([numpy.zeros((1, 100, 7), numpy.float32)], 416, 416)
    with pytest.raises(ModelSetupError, match=r"converter yolov8 takes one output \(1, 4 \+ classes, 3549\)"):
        decoders.decode("yolov8", [numpy.zeros((1, 3549, 85), numpy.float32)], 416, 416, 0.5)


class ConstantHead(torch.nn.Module):
    """An ONNX-exportable model whose output is a constant tensor of `values`' shape (OpenCV's DNN
    runs conv, pool and reshape)."""

    def __init__(self, values):
        super().__init__()
        self.shape = values.shape
        self.conv = torch.nn.Conv2d(3, values.size, 1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.from_numpy(values.ravel()))

    def forward(self, images):
        return self.pool(self.conv(images)).reshape(self.shape)


def export_onnx(module, path, size):
    torch.onnx.export(module.eval(), torch.zeros(1, 3, *size), str(path), input_names=["images"],
                      output_names=["output0"], opset_version=11)
    return path


def test_a_yolov8_onnx_model_through_emdetect_letterboxes_and_maps_back_to_frame_pixels(folder):
    # A 96×72 frame in a 64×64 input: scale 2/3, centred (yolov8's letterbox): 16 rows above.
    size = 64
    boxes = [(20, 30, 10, 20, 1, 0.9), (44, 36, 12, 12, 2, 0.8)]
    output = synthetic_outputs("yolov8", size, 3, boxes, seed=13)
    model = export_onnx(ConstantHead(output), folder / "v8.onnx", (size, size))
    labels = fixtures.write_labels(folder / "v8.txt", ["person", "cat", "dog"])
    [record] = run(f"emdetect model={model} labels-file={labels} threshold=0.5", random_frames(1, seed=14))
    scale, offset_y = size / WIDTH, (size - round(HEIGHT * size / WIDTH)) // 2
    found = sorted(record["object"], key=lambda item: -item["confidence"])
    assert [(item["obj_label"], item["class_id"]) for item in found] == [("cat", 1), ("dog", 2)]
    for item, (cx, cy, w, h, _, score) in zip(found, boxes):
        expected = [(cx - w / 2) / scale, (cy - h / 2 - offset_y) / scale, (cx + w / 2) / scale,
                    (cy + h / 2 - offset_y) / scale]
        assert corners_of(item) == pytest.approx(expected, abs=0.05)
        assert item["confidence"] == pytest.approx(score, abs=1e-4)  # the head averages 64×64 pixels
    # object-class keeps dogs; a roi on the right half keeps what lies there, clipped to it.
    [record] = run(f"emdetect model={model} labels-file={labels} object-class=dog", random_frames(1, seed=14))
    assert [item["obj_label"] for item in record["object"]] == ["dog"]
    [record] = run(f"emdetect model={model} labels-file={labels} threshold=0.5 roi=48,0,48,72",
                   random_frames(1, seed=14))
    assert len(record["object"]) == 2  # the model sees the rectangle alone: its boxes land in it
    for item in record["object"]:
        left, top, right, bottom = corners_of(item)
        assert 48 <= left < right <= WIDTH and 0 <= top < bottom <= HEIGHT


def test_an_onnx_classifier_in_emclassify_matches_torch(folder):
    torch.manual_seed(15)
    # Layers OpenCV 4.6's ONNX importer takes (it can't read torchvision's mobilenet exports).
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3)).eval()
    path = export_onnx(model, folder / "small_classifier.onnx", (64, 64))
    proc = folder / "mobilenet_onnx.json"
    proc.write_text(json.dumps({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}))
    labels = ["a", "b", "c"]
    frames = random_frames(2, seed=16)
    records = run(f"emclassify inference-region=full-frame model={path} model-proc={proc} "
                  f"labels-file={fixtures.write_labels(folder / 'abc.txt', labels)}", frames)
    for frame, record in zip(frames, records):
        image = functional.resize(chw(frame), [64, 64])
        image = functional.normalize(functional.convert_image_dtype(image, torch.float),
                                     [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        with torch.no_grad():
            expected = top_class(model(image.unsqueeze(0)))
        assert_result(record["emclassify"][0], labels, *expected)


def open_session(settings):
    from emi.inference import sessions

    return sessions.Session({"task": "detect", **settings})


def test_bad_onnx_files_and_backends_are_clear_errors(tmp_path):
    with open(YOLOX, "rb") as file:
        head = file.read(4000)
    cases = {"empty.onnx": (b"", "is not an ONNX model"),
             "truncated.onnx": (head, "is not an ONNX model"),
             "text.onnx": (b"this is not a model\n" * 20, "is not an ONNX model"),
             "missing.onnx": (None, "no such file")}
    for name, (content, problem) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ModelSetupError, match=problem) as raised:
            open_session({"model": str(path)})
        assert str(path) in str(raised.value)
    with pytest.raises(AssertionError, match="truncated.onnx is not an ONNX model"):
        run(f"emdetect model={tmp_path / 'truncated.onnx'}", random_frames(1, seed=17))
    # The onnxruntime path, up to its import: absent here (Debian 12 has no package of it).
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        with pytest.raises(ModelSetupError, match="backend onnxruntime: its Python module can't be imported"):
            open_session({"model": YOLOX, "backend": "onnxruntime"})
        assert open_session({"model": YOLOX, "backend": "auto"}).backend == "opencv"
    with pytest.raises(ModelSetupError, match="backend torch: model .* is an ONNX file"):
        open_session({"model": YOLOX, "backend": "torch"})
    with pytest.raises(ModelSetupError, match="backend opencv runs ONNX files"):
        open_session({"model": "torchvision.models.detection.ssdlite320_mobilenet_v3_large", "backend": "opencv"})
    with pytest.raises(ModelSetupError, match="object-class person,giraffe-ish: no class named giraffe-ish"):
        open_session({"model": YOLOX, "labels_file": COCO_LABELS, "object_class": "person,giraffe-ish"})
    with pytest.raises(ModelSetupError, match=r"roi 0,0,10: \"0,0,10\" is not left,top,width,height"):
        open_session({"model": YOLOX, "roi": "0,0,10"})


def test_a_classifier_given_to_emdetect_says_its_output_fits_no_detector(folder):
    classifier = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                     torch.nn.Linear(8, 3))
    path = export_onnx(classifier, folder / "classifier.onnx", (64, 64))
    with pytest.raises(AssertionError, match=r"can't tell its output layout from the shapes \(1, 3\)"):
        run(f"emdetect model={path}", random_frames(1, seed=18))


def test_dlstreamer_model_procs_are_read_for_the_fields_that_mean_the_same(tmp_path):
    path = tmp_path / "yolo.json"
    path.write_text(json.dumps({
        "json_schema_version": "2.2.0",
        "input_preproc": [{"format": "image", "layer_name": "images",
                           "params": {"resize": "aspect-ratio", "color_space": "RGB", "range": [0.0, 1.0]}}],
        "output_postproc": [{"converter": "yolo_v8", "iou_threshold": 0.6, "labels": ["person", "car"],
                             "layer_name": "output0"}]}))
    proc = read_model_proc(str(path))
    assert (proc.converter, proc.resize_mode, proc.color_space, proc.range) == ("yolov8", "letterbox", "RGB",
                                                                                 [0.0, 1.0])
    assert (proc.nms_threshold, proc.labels) == (0.6, ["person", "car"])
    # A converter that does not fit the model's output says so.
    with pytest.raises(ModelSetupError, match=r"converter yolov8 takes one output \(1, 4 \+ classes, 3549\)"):
        open_session({"model": YOLOX, "model_proc": str(path)}).prepare(64, 48, "RGBA")
    # Its labels stand for a labels file, and are checked as one: YOLOX-Nano has 80 classes.
    path.write_text(json.dumps({"output_postproc": [{"converter": "yolo_x", "labels": ["person", "car"]}]}))
    session = open_session({"model": YOLOX, "model_proc": str(path)})
    assert session.labels == ["person", "car"]
    with pytest.raises(ModelSetupError, match=f"model-proc {path}'s \"labels\" has 2 labels, but model .* has 80"):
        session.prepare(64, 48, "RGBA")
    path.write_text(json.dumps({"converter": "ssd"}))
    with pytest.raises(ModelSetupError, match='"converter" must be one of yolox, yolov5, yolov8, torchvision'):
        read_model_proc(str(path))


# --- Model files are loaded the safe way ---

class RunsCodeOnLoad:
    """Unpickling this calls os.system: what a crafted .pth does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pth_that_runs_code_on_load_is_refused(folder, tmp_path):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.pth"
    torch.save({"weight": torch.zeros(2), "payload": RunsCodeOnLoad(marker)}, crafted)
    with pytest.raises(AssertionError, match="holds more than tensors"):
        run(f"emclassify inference-region=full-frame model=torchvision.models.squeezenet1_1 "
            f"model-weights={crafted}", random_frames(1, seed=19))
    with pytest.raises(AssertionError, match="is a whole pickled model .* trust-model-file=true"):
        run(f"emclassify inference-region=full-frame model={crafted}", random_frames(1, seed=19))
    assert not marker.exists()


def test_a_trusted_pickle_loads_with_a_warning(folder):
    from emi.inference import sessions

    torch.manual_seed(20)
    pickled = folder / "trusted.pt"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=3).eval(), pickled)
    sessions.open_session("trusted", {"task": "classify", "model": str(pickled), "trust_model_file": True})
    [warning] = sessions.session_warnings("trusted")
    assert str(pickled) in warning and "trust-model-file=true" in warning
    assert sessions.session_warnings("trusted") == []  # each once
    sessions.close_session("trusted")


def test_the_counter_templates_detector_programs_of_two_streams_share_one_yolox_net(tmp_path):
    """The counter template's object_detector.py, loaded once per stream as empycustom loads a
    program (a module object each), opens YOLOX through emi.inference: one net for both, called
    through one shared model, each program detecting on its own frames."""
    import importlib.util
    import shutil

    from emi import shared_models

    template = os.path.join(ROOT, "templates", "EMI Torch Imagenet Yolo IOU Counter", "resource")
    model = shutil.copyfile(YOLOX, tmp_path / "detector.onnx")  # a file of its own: a load of its own
    identity = shared_models.file_identity(str(model))
    sys.path.insert(0, template)
    try:
        programs = []
        for stream in ("a", "b"):
            spec = importlib.util.spec_from_file_location(f"object_detector_{stream}",
                                                          os.path.join(template, "object_detector.py"))
            program = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(program)
            program.start({"model": str(model), "labels": COCO_LABELS, "backend": "opencv"})
            programs.append(program)
    finally:
        sys.path.remove(template)
    key = next(key for key in shared_models._loaded if key[0] == "emi.inference.onnx" and key[1] == identity)
    assert shared_models.load_count(key) == 1
    first, second = (program.primary.detector.session.task.model for program in programs)
    assert first.batched is second.batched and first.model is second.model
    frames = media_frames("entrance_360p.mp4", [330, 0])
    found = [program.process_ip(numpy.ascontiguousarray(frame[:, :, ::-1]), {}, {})  # RGB
             for program, frame in zip(programs, frames)]
    assert len(found[0]) >= 3 and [item["obj_label"] for item in found[0]] == ["person"] * len(found[0])
    assert found[0] != found[1]
    assert first.batched.calls == 2 + 2  # a dry run each, a frame each


def test_a_model_compiled_for_inference_gives_the_models_outputs_for_any_batch():
    """emi.inference.for_inference: SqueezeNet scripted, frozen and optimized by torch gives the
    eager model's outputs for the example's batch size and others (its oneDNN buffers resized)."""
    from emi.inference import for_inference

    torch.manual_seed(5)
    model = torchvision.models.squeezenet1_1(num_classes=7).eval()
    compiled, why = for_inference(model, torch.zeros(1, 3, 64, 64))
    assert why is None and isinstance(compiled, torch.jit.ScriptModule)
    with torch.no_grad():
        for batch in (1, 5, 2):
            inputs = torch.rand(batch, 3, 64, 64)
            assert torch.allclose(compiled(inputs), model(inputs), rtol=1e-3, atol=1e-5)


def test_a_model_torch_cannot_compile_or_that_compiles_wrong_runs_as_it_is(monkeypatch):
    from emi.inference import compiled, for_inference

    class Unscriptable(torch.nn.Module):
        def forward(self, inputs):
            return torch.from_numpy(numpy.asarray(inputs) * 2)  # numpy: not TorchScript

    module = Unscriptable()
    model, why = for_inference(module, torch.ones(1, 3))
    assert model is module and why.split(":")[0].endswith("Error"), why  # torch's reason, named

    linear = torch.nn.Linear(3, 2)
    monkeypatch.setattr(compiled.torch.jit, "optimize_for_inference",
                        lambda scripted: (lambda inputs: scripted(inputs) + 1))
    model, why = for_inference(linear, torch.ones(1, 3))
    assert model is linear and why == "the compiled model's outputs differ from the model's"


def test_an_emclassify_classifier_runs_compiled_from_its_dry_run_on(tmp_path):
    """A torch classifier's session compiles the model on its dry run (an input of the frames'
    size) and calls the compiled model for every frame after."""
    from emi.inference import sessions

    labels = fixtures.write_labels(tmp_path / "kinds.txt", fixtures.numbered_labels(5, "kind"))
    session = sessions.Session({"task": "classify", "model": "torchvision.models.squeezenet1_1",
                                "random_weights": True, "labels_file": str(labels),
                                "inference_region": "full-frame"})
    model = session.task.model
    assert isinstance(model, sessions.CompiledOnFirstCall) and model.model is None
    session.prepare(64, 48, "RGBA")
    assert isinstance(model.model, torch.jit.ScriptModule) and model.not_compiled is None
