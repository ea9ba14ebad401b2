"""emdetect and emclassify against plain torch on the same frames (a classifier, a detector,
TorchScript and pickled model files, a video model), their intervals and object filters, DEFAULT
weights from torch's cache, and the pieces of emi.inference. Models have random weights, saved to
temporary files; the elements run in this process's interpreter, as in a PyGObject app."""

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
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format={pixel_format},width={WIDTH},height={HEIGHT},"
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
    for path in (scripted, pickled):
        records = run(f"emclassify inference-region=full-frame model={path} model-proc={proc_path} "
                      f"labels-file={labels_path}", frames)
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
