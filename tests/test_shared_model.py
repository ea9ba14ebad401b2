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
    results = {"first": [], "second": []}

    def keep(name):
        def on_buffer(pad, info):
            record = emi.frame_record(info.get_buffer())
            results[name].append(record[name][0]["class_id"])
            return Gst.PadProbeReturn.OK
        return on_buffer

    for name in results:
        pipeline.get_by_name(f"{name}_sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, keep(name))
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS, message and message.parse_error()
    assert len(loads) == 1
    assert len(results["first"]) == 3 and results["first"] == results["second"]
    assert numpy.isfinite(results["first"]).all()
