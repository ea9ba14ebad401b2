# SPDX-License-Identifier: LGPL-2.1-or-later
"""emi.shared_model: one load per key in the process, batches gathered from several callers
(until max_batch_size items or max_batch_delay_ms), each caller's outputs handed back in order."""

import os
import sys
import threading
import time

import pytest
import torch

import emi
from emi import shared_models


class RecordingModel:
    """Multiplies by 10 and records the batches it was called with; `gate`, when given, holds the
    first call until it is set (so that other callers queue behind a busy model)."""

    def __init__(self, gate=None):
        self.batches = []
        self.gate = gate

    def __call__(self, inputs):
        self.batches.append(inputs.clone() if isinstance(inputs, torch.Tensor) else list(inputs))
        if self.gate is not None and len(self.batches) == 1:
            assert self.gate.wait(60)
        if isinstance(inputs, list):
            return [{"boxes": item * 10, "count": int(item.numel())} for item in inputs]
        if (inputs < 0).any():
            raise ValueError("negative input")
        return inputs * 10


def in_threads(functions):
    """Runs each function in a thread of its own; returns their results (or exceptions) in order."""
    results = [None] * len(functions)

    def run(index):
        try:
            results[index] = functions[index]()
        except Exception as error:  # noqa: BLE001 - the test looks at it
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def wait_until(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the callers never queued"
        time.sleep(0.001)


def test_the_loader_runs_once_per_key_whoever_asks_first():
    loads = []
    barrier = threading.Barrier(6)

    def loader():
        loads.append(1)
        time.sleep(0.05)  # a slow load: the other callers arrive while it runs
        return RecordingModel()

    def ask():
        barrier.wait()
        return emi.shared_model(("once", 1), loader)

    models = in_threads([ask] * 6)
    assert len(loads) == 1 and shared_models.load_count(("once", 1)) == 1
    assert all(model is models[0] for model in models)
    emi.shared_model(("once", 2), loader)
    assert shared_models.load_count(("once", 2)) == 1 and len(loads) == 2
    shared_models.forget(("once", 1))
    emi.shared_model(("once", 1), loader)
    assert shared_models.load_count(("once", 1)) == 2


def test_callers_that_come_while_the_model_is_busy_share_the_next_batch():
    gate = threading.Event()
    recording = RecordingModel(gate)
    model = shared_models.SharedModel(recording, max_batch_size=8)
    first = threading.Thread(target=lambda: model(torch.tensor([[1.0]])))
    first.start()
    wait_until(lambda: len(recording.batches) == 1)  # the first call is in the model, held
    later = []
    threads = [threading.Thread(target=lambda value=value: later.append((value, model(torch.tensor([[value]])))))
               for value in (2.0, 3.0, 4.0)]
    for thread in threads:
        thread.start()
    wait_until(lambda: model._queued_items == 3)
    gate.set()
    first.join(60)
    for thread in threads:
        thread.join(60)
    assert [batch.shape[0] for batch in recording.batches] == [1, 3]
    assert sorted(recording.batches[1].flatten().tolist()) == [2.0, 3.0, 4.0]
    assert all(output.flatten().tolist() == [value * 10] for value, output in later)
    assert (model.calls, model.batches, model.items, model.largest_batch) == (4, 2, 4, 3)


def test_a_full_batch_runs_before_the_delay_and_a_lone_request_after_it():
    recording = RecordingModel()
    model = shared_models.SharedModel(recording, max_batch_size=4, max_batch_delay_ms=600_000)
    barrier = threading.Barrier(4)

    def call(value):
        barrier.wait()
        return model(torch.full((1, 2), value))

    outputs = in_threads([lambda value=value: call(float(value)) for value in range(4)])
    # Ten minutes of delay, yet it ran: four items fill the batch.
    assert [batch.shape[0] for batch in recording.batches] == [4]
    assert [output.tolist() for output in outputs] == [[[value * 10.0] * 2] for value in range(4)]
    lone = shared_models.SharedModel(RecordingModel(), max_batch_size=4, max_batch_delay_ms=20)
    assert lone(torch.ones(1, 2)).tolist() == [[10.0, 10.0]]  # nobody came: it runs at the deadline


def test_each_caller_gets_its_own_outputs_in_its_own_order_under_a_queue_delay():
    recording = RecordingModel()
    model = shared_models.SharedModel(recording, max_batch_size=5, max_batch_delay_ms=2)

    def stream(stream_id):
        received = []
        for frame in range(25):
            items = 1 + (frame + stream_id) % 3  # crops per frame: 1..3
            inputs = torch.tensor([[stream_id, frame, item] for item in range(items)], dtype=torch.float32)
            received.append((inputs, model(inputs)))
        return received

    results = in_threads([lambda stream_id=stream_id: stream(stream_id) for stream_id in range(4)])
    for received in results:
        assert not isinstance(received, Exception), received
        for inputs, output in received:
            assert torch.equal(output, inputs * 10)
    assert model.calls == 100 and model.items == sum(1 + (f + s) % 3 for s in range(4) for f in range(25))
    assert all(batch.shape[0] <= 5 for batch in recording.batches)
    assert 1 < model.largest_batch <= 5 and model.batches < model.calls
    # Within a batch, each stream's frames keep their order.
    for batch in recording.batches:
        for stream_id in range(4):
            frames = [row[1] for row in batch.tolist() if row[0] == stream_id]
            assert frames == sorted(frames)


def test_lists_of_images_and_dict_outputs_are_split_per_caller_and_shapes_do_not_mix():
    gate = threading.Event()
    recording = RecordingModel(gate)
    model = shared_models.SharedModel(recording, max_batch_size=8)
    results = {}
    first = threading.Thread(target=lambda: results.update(first=model([torch.ones(3, 2, 2)])))
    first.start()
    wait_until(lambda: len(recording.batches) == 1)
    calls = {"small": [torch.full((3, 2, 2), 2.0), torch.full((3, 4, 4), 3.0)],  # images of any size
             "tensor_a": torch.ones(2, 3, 4, 4), "tensor_b": torch.ones(1, 3, 8, 8)}
    threads = [threading.Thread(target=lambda name=name, value=value: results.update({name: model(value)}))
               for name, value in calls.items()]
    for thread in threads:
        thread.start()
    wait_until(lambda: model._queued_items == 5)
    gate.set()
    for thread in [first] + threads:
        thread.join(60)
    assert [output["count"] for output in results["small"]] == [12, 48]
    assert torch.equal(results["small"][1]["boxes"], torch.full((3, 4, 4), 30.0))
    assert results["tensor_a"].shape == (2, 3, 4, 4) and results["tensor_b"].shape == (1, 3, 8, 8)
    # The list and the two tensor shapes went in three batches after the first.
    assert len(recording.batches) == 4


def test_a_bad_input_fails_its_own_caller_only():
    gate = threading.Event()
    recording = RecordingModel(gate)
    model = shared_models.SharedModel(recording, max_batch_size=8)
    first = threading.Thread(target=lambda: model(torch.ones(1, 1)))
    first.start()
    wait_until(lambda: len(recording.batches) == 1)
    outcomes = {}

    def call(name, value):
        try:
            outcomes[name] = model(torch.full((1, 1), value)).item()
        except ValueError as error:
            outcomes[name] = str(error)

    threads = [threading.Thread(target=call, args=("good", 2.0)), threading.Thread(target=call, args=("bad", -1.0))]
    for thread in threads:
        thread.start()
    wait_until(lambda: model._queued_items == 2)
    gate.set()
    for thread in [first] + threads:
        thread.join(60)
    assert outcomes == {"good": 20.0, "bad": "negative input"}


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="max_batch_size: 0 is not at least 1"):
        shared_models.SharedModel(RecordingModel(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_batch_delay_ms: -1 is negative"):
        shared_models.SharedModel(RecordingModel(), max_batch_delay_ms=-1)


def test_two_classifiers_of_one_model_file_load_it_once_and_answer_as_alone(tmp_path, monkeypatch):
    """Two emclassify elements with the same model, weights and device (two streams' sessions)
    share one loaded model: the loader runs once, and each element's results are those of the
    model on its own frames."""
    import gi
    import numpy
    import torchvision

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
    import model_fixtures as fixtures
    from emi.inference import sessions

    Gst.init(None)
    loads = []
    real_load_model = sessions.load_model

    def counting_load_model(*args, **keywords):
        loads.append(args[:2])
        return real_load_model(*args, **keywords)

    monkeypatch.setattr(sessions, "load_model", counting_load_model)
    model = fixtures.eval_model(torchvision.models.squeezenet1_1, num_classes=5)
    weights = fixtures.save_state_dict(tmp_path / "sq.pth", model)
    labels = fixtures.write_labels(tmp_path / "kinds.txt", fixtures.numbered_labels(5, "kind"))
    settings = (f"inference-region=full-frame model=torchvision.models.squeezenet1_1 model-weights={weights} "
                f"labels-file={labels}")
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=3 pattern=ball ! video/x-raw,format=RGBA,width=64,height=48 ! tee name=split "
        f"split. ! queue ! emclassify name=first meta-key=first {settings} ! fakesink name=first_sink "
        f"split. ! queue ! emclassify name=second meta-key=second {settings} ! fakesink name=second_sink")
    records = records_at_sinks(pipeline, ("first", "second"))
    results = {name: [record[name][0]["class_id"] for record in stream] for name, stream in records.items()}
    assert len(loads) == 1
    assert len(results["first"]) == 3 and results["first"] == results["second"]
    assert numpy.isfinite(results["first"]).all()


def test_numpy_batches_are_joined_and_split_and_the_model_is_called_by_one_thread_at_a_time():
    """ONNX models take numpy blobs: requests are joined along the first dimension and each caller
    gets its rows of every output back; no two model calls overlap (OpenCV's nets are not
    thread-safe), even for the empty requests that skip the queue."""
    import numpy

    inside, overlaps, sizes = [0], [], []
    guard = threading.Lock()

    def model(blob):
        with guard:
            inside[0] += 1
            overlaps.append(inside[0] > 1)
        time.sleep(0.002)
        sizes.append(blob.shape[0])
        with guard:
            inside[0] -= 1
        return (blob * 10, blob.sum(axis=(1, 2)))

    shared = shared_models.SharedModel(model, max_batch_size=3, max_batch_delay_ms=5)

    def stream(stream_id):
        received = []
        for frame in range(15):
            blob = numpy.full((1, 2, 2), stream_id * 100 + frame, numpy.float32)
            received.append((blob, shared(blob)))
            shared(numpy.zeros((0, 2, 2), numpy.float32))
        return received

    results = in_threads([lambda stream_id=stream_id: stream(stream_id) for stream_id in range(3)])
    for received in results:
        assert not isinstance(received, Exception), received
        for blob, (scaled, sums) in received:
            assert numpy.array_equal(scaled, blob * 10) and sums.tolist() == [blob.flat[0] * 4]
    assert not any(overlaps)
    assert max(sizes) > 1 and shared.batch_sizes[1] < 45 and sum(shared.batch_sizes.values()) == shared.batches


class ReplicatedModel:
    """A model that records, per copy, which calls were inside it at once; `gate` holds every call
    until set. replicate() makes a copy (counted in `copies`)."""

    def __init__(self, gate, inside, copies):
        self.gate, self.inside, self.copies = gate, inside, copies
        self.overlapped = False
        self.busy = threading.Lock()

    def replicate(self):
        self.copies.append(1)
        return ReplicatedModel(self.gate, self.inside, self.copies)

    def __call__(self, inputs):
        if not self.busy.acquire(blocking=False):
            self.overlapped = True  # two threads in one copy: what the pool must never do
            self.busy.acquire()
        try:
            self.inside.append(1)
            assert self.gate.wait(60)
            return inputs * 10
        finally:
            self.inside.pop()
            self.busy.release()


def test_up_to_max_concurrent_batches_run_at_once_each_on_a_replica_of_its_own():
    """Three callers at once on a model that may run two batches at a time: two run side by side,
    on the model and one copy of it (made when the first was busy), the third waits its turn; no
    copy is ever called by two threads at once, and each caller gets its own outputs."""
    gate, inside, copies = threading.Event(), [], []
    original = ReplicatedModel(gate, inside, copies)
    shared = shared_models.SharedModel(original, max_batch_size=1, max_concurrent=2,
                                       replicate=ReplicatedModel.replicate)
    results = []
    threads = [threading.Thread(target=lambda value=value: results.append((value, shared(torch.tensor([[value]])))))
               for value in (1.0, 2.0, 3.0)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(inside) == 2 and shared._queued_items == 1)  # two inside the model, one waits
        assert len(copies) == 1  # one copy, not two
    finally:
        gate.set()
    for thread in threads:
        thread.join(60)
    assert sorted((value, output.item()) for value, output in results) == [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]
    assert len(shared.replicas) == 2 and len(copies) == 1
    assert not any(replica.overlapped for replica in shared.replicas)
    # One caller after another never needs a copy.
    alone_copies = []
    alone = shared_models.SharedModel(ReplicatedModel(gate, [], alone_copies), max_concurrent=4,
                                      replicate=ReplicatedModel.replicate)
    for value in range(5):
        assert alone(torch.tensor([[float(value)]])).item() == value * 10
    assert alone_copies == [] and len(alone.replicas) == 1


def test_a_replica_that_cannot_be_made_leaves_the_model_serving_alone():
    """replicate() fails (out of memory, say): the error is kept in replica_error, no caller
    fails, and the calls run on the model one after another."""
    gate = threading.Event()
    recording = RecordingModel(gate)

    def failing_replicate(model):
        raise MemoryError("no room for a second net")

    shared = shared_models.SharedModel(recording, max_batch_size=1, max_concurrent=2, replicate=failing_replicate)
    first = threading.Thread(target=lambda: shared(torch.tensor([[1.0]])))
    first.start()
    wait_until(lambda: len(recording.batches) == 1)
    second = []
    thread = threading.Thread(target=lambda: second.append(shared(torch.tensor([[2.0]]))))
    thread.start()
    wait_until(lambda: shared.replica_error is not None)
    gate.set()
    first.join(60)
    thread.join(60)
    assert second[0].item() == 20.0 and len(shared.replicas) == 1
    assert shared.replica_error == "MemoryError: no room for a second net"
    with pytest.raises(ValueError, match="need replicate"):
        shared_models.SharedModel(recording, max_concurrent=2)


def test_a_call_without_delay_does_not_wait_for_company():
    """A dry run (shared_models.without_delay()) runs at once, whatever max_batch_delay_ms says."""
    recording = RecordingModel()
    model = shared_models.SharedModel(recording, max_batch_size=4, max_batch_delay_ms=600_000)
    started = time.monotonic()
    with shared_models.without_delay():
        assert model(torch.ones(1, 1)).item() == 10.0
    assert time.monotonic() - started < 60 and model.batch_sizes == {1: 1}


def records_at_sinks(pipeline, names):
    """Plays `pipeline` to its end (an error or no end in 120 s fails the test); the frame records
    that reached each `<name>_sink`, in order."""
    from gi.repository import Gst

    sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
    from pipeline_end import wait_for_end

    records = {name: [] for name in names}

    def keep(name):
        def on_buffer(pad, info):
            records[name].append(emi.frame_record(info.get_buffer()))
            return Gst.PadProbeReturn.OK
        return on_buffer

    for name in records:
        pipeline.get_by_name(f"{name}_sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, keep(name))
    pipeline.set_state(Gst.State.PLAYING)
    wait_for_end(pipeline, 120)
    return records


def write_weights(tmp_path, name, num_classes=5):
    import torchvision

    sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
    import model_fixtures as fixtures

    model = fixtures.eval_model(torchvision.models.squeezenet1_1, num_classes=num_classes)
    return fixtures.save_state_dict(tmp_path / name, model)


def two_streams(elements, frames=6):
    """Runs two sources (balls moving two ways) through `elements` (a format with {name}) in one
    pipeline; each stream's frame records in order."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    patterns = {"first": "ball", "second": "ball motion=sweep foreground-color=0xffff0000"}
    branches = " ".join(
        f"videotestsrc num-buffers={frames} pattern={pattern} ! video/x-raw,format=RGBA,width=64,height=48 ! "
        f"{elements.format(name=name)} ! fakesink sync=false name={name}_sink" for name, pattern in patterns.items())
    records = records_at_sinks(Gst.parse_launch(branches), patterns)
    assert all(len(stream) == frames for stream in records.values())
    return records


def test_two_classifiers_with_max_batch_size_2_are_called_with_batches_of_2_each_getting_its_own(
        tmp_path, monkeypatch):
    """Two emclassify elements (two streams' sources in one pipeline) with max-batch-size=2 and a
    long max-batch-delay share one model: every frame's call holds one frame of each stream, and
    each stream gets, in its frame order, what it gets from a model of its own."""
    from emi.inference import sessions

    shared_weights = write_weights(tmp_path, "shared.pth")
    for name in ("first", "second"):  # the same weights in files of their own: models of their own
        write_weights(tmp_path, f"{name}.pth")
    calls = {}
    real_load_model = sessions.load_model

    def recording_load_model(*args, **keywords):
        loaded = real_load_model(*args, **keywords)
        module, sizes = loaded.module, calls.setdefault(os.path.basename(args[1]), [])

        def recording(batch):
            sizes.append(len(batch))
            return module(batch)

        loaded.module = recording
        return loaded

    monkeypatch.setattr(sessions, "load_model", recording_load_model)
    labels = tmp_path / "kinds.txt"
    labels.write_text("".join(f"kind {index}\n" for index in range(5)))
    common = (f"emclassify inference-region=full-frame model=torchvision.models.squeezenet1_1 labels-file={labels} "
              "meta-key=class")
    alone = two_streams(common + f" model-weights={tmp_path}/{{name}}.pth max-batch-size=1")
    batched = two_streams(common + f" model-weights={shared_weights} max-batch-size=2 max-batch-delay=60000")
    frames = 6
    # Loaded once for the two elements; a dry run each (alone, at once), then pairs of frames.
    assert sorted(calls) == ["first.pth", "second.pth", "shared.pth"]
    assert calls["first.pth"] == [1] * (frames + 1) and calls["second.pth"] == [1] * (frames + 1)
    assert calls["shared.pth"] == [1, 1] + [2] * frames

    def results(records):
        return [(record["class"][0]["class_id"], record["class"][0]["probability"]) for record in records]

    for name in ("first", "second"):
        assert [number for number in (record["frame_num"] for record in batched[name])] == list(range(frames))
        got, expected = results(batched[name]), results(alone[name])
        assert [class_id for class_id, _ in got] == [class_id for class_id, _ in expected]
        assert [probability for _, probability in got] == pytest.approx(
            [probability for _, probability in expected], abs=1e-3)
        assert len(set(got)) > 1  # frames that differ: their order shows
    assert results(batched["first"]) != results(batched["second"])


def test_a_later_element_asking_for_other_batch_settings_is_warned_that_the_first_ones_hold(tmp_path):
    from emi.inference import sessions

    weights = write_weights(tmp_path, "w.pth")
    labels = tmp_path / "kinds.txt"
    labels.write_text("".join(f"kind {index}\n" for index in range(5)))
    settings = {"task": "classify", "model": "torchvision.models.squeezenet1_1", "model_weights": str(weights),
                "labels_file": str(labels), "inference_region": "full-frame"}
    first = sessions.Session({**settings, "max_batch_size": 4, "max_batch_delay": 2.5})
    second = sessions.Session({**settings, "max_batch_size": 2})
    assert first.warnings == []
    assert second.warnings == [
        "model torchvision.models.squeezenet1_1 is shared with an element that opened it first with "
        "max-batch-size=4 and max-batch-delay=2.5: those hold, not 2 and 0"]
    assert first.task.model is second.task.model


YOLOX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resource", "models",
                     "yolox_nano.onnx")


def onnx_shared_model(path):
    """The process's SharedModel of the ONNX file `path`."""
    identity = shared_models.file_identity(str(path))
    return next(model for key, model in shared_models._models.items()
                if key[0] == "emi.inference.onnx" and key[1] == identity)


def test_two_detectors_of_one_onnx_file_load_it_once_and_find_what_separate_ones_find(tmp_path, monkeypatch):
    """YOLOX-Nano (a fixed batch of 1) in two emdetect elements of one process: one OpenCV net,
    whose calls gather both streams' frames and run them one after another; each stream's
    detections are those of a net of its own."""
    import shutil

    import gi
    import numpy

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    from emi.inference import onnx_models

    sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
    from media_frames import media_frames

    Gst.init(None)
    streams = {"first": media_frames("entrance_360p.mp4", [0, 40, 80]),
               "second": media_frames("entrance_360p.mp4", [120, 160, 200])}
    models = {name: shutil.copyfile(YOLOX, tmp_path / f"{name}.onnx") for name in ("shared", "first", "second")}
    assert onnx_models.read_onnx_io(YOLOX)[0][0].shape[0] == 1  # batch 1: the net runs one image at a time
    loads = []
    real_load_onnx = onnx_models.load_onnx

    def counting_load_onnx(path, *args):
        loads.append(os.path.basename(path))
        return real_load_onnx(path, *args)

    monkeypatch.setattr(onnx_models, "load_onnx", counting_load_onnx)
    labels = os.path.join(os.path.dirname(YOLOX), "coco_80cl.txt")

    def detect(model_of, batching):
        height, width = streams["first"][0].shape[:2]
        pipeline = Gst.parse_launch(" ".join(
            f"appsrc name={name}_src format=time caps=video/x-raw,format=BGR,width={width},height={height},"
            f"framerate=30/1 ! emdetect model={model_of(name)} labels-file={labels} threshold=0.3 "
            f"backend=opencv {batching} ! fakesink sync=false name={name}_sink" for name in streams))
        found = {name: [] for name in streams}

        def keep(name):
            def on_buffer(pad, info):
                record = emi.frame_record(info.get_buffer())
                found[name].append([(item["obj_label"], item["confidence"], item["rect_params"])
                                    for item in record.get("object", [])])
                return Gst.PadProbeReturn.OK
            return on_buffer

        for name in streams:
            pipeline.get_by_name(f"{name}_sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, keep(name))
        pipeline.set_state(Gst.State.PLAYING)
        for name, frames in streams.items():
            source = pipeline.get_by_name(f"{name}_src")
            for index, frame in enumerate(frames):
                buffer = Gst.Buffer.new_wrapped(numpy.ascontiguousarray(frame).tobytes())
                buffer.pts = index * Gst.SECOND // 30
                source.emit("push-buffer", buffer)
            source.emit("end-of-stream")
        message = pipeline.get_bus().timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        pipeline.set_state(Gst.State.NULL)
        assert message is not None and message.type == Gst.MessageType.EOS, message and message.parse_error()
        return found

    alone = detect(lambda name: models[name], "max-batch-size=1")
    assert sorted(loads) == ["first.onnx", "second.onnx"]
    together = detect(lambda name: models["shared"], "max-batch-size=2 max-batch-delay=60000")
    assert sorted(loads) == ["first.onnx", "second.onnx", "shared.onnx"]  # one net for both elements
    assert together == alone
    assert any(together["first"]) and together["first"] != together["second"]
    shared = onnx_shared_model(models["shared"])
    assert shared.batch_sizes[2] >= 3  # every frame's call held both streams' frames
    # One image at a time, in one worker call, on up to one net per core (copies, not loads).
    assert sum(runner.runs for runner in shared.replicas) == shared.items
    assert 1 <= len(shared.replicas) <= onnx_models.usable_cores()


def test_an_onnx_model_with_an_open_batch_runs_a_gathered_batch_in_one_run(tmp_path):
    """A model exported with an open batch dimension takes the requests of several streams in one
    run; a model of a fixed batch of 2 takes them in runs of 2, the last one padded."""
    import numpy

    from emi.inference import onnx_models

    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    blobs = numpy.random.default_rng(4).random((3, 3, 16, 16), numpy.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(blobs)).numpy()
    for name, batch, dynamic, runs in (("open", 1, {"images": {0: "n"}, "out": {0: "n"}}, 1),
                                       ("pairs", 2, None, 2)):
        path = str(tmp_path / f"{name}.onnx")
        torch.onnx.export(module, torch.zeros(batch, 3, 16, 16), path, input_names=["images"],
                          output_names=["out"], dynamic_axes=dynamic, opset_version=11)
        runner = onnx_models.BatchRunner(onnx_models.load_onnx(path, "opencv", "cpu"))
        per_image = runner(blobs)
        assert runner.runs == runs and len(per_image) == 3
        assert numpy.concatenate([outputs[0] for outputs in per_image]) == pytest.approx(expected, abs=1e-5)
