# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regions of interest: the stream config's `roi` forms (emi.roi), emroi dropping the objects
that stand outside every region and drawing the regions, and `emi run` applying a stream's roi."""

import json
import os
import sys

import pytest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from emi import app as emi_app  # noqa: E402
from emi import frame_record, roi, runner, streams  # noqa: E402

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline_end import wait_for_end  # noqa: E402
from scattered_boxes import boxes_of  # noqa: E402

Gst.init(None)
LOWER_LEFT = [[0, 36], [48, 36], [48, 72], [0, 72]]
TRIANGLE = [[60, 0], [96, 0], [96, 40]]


def test_every_accepted_form_of_roi():
    rectangle = {"left": 0, "top": 36, "width": 48, "height": 36}
    expected = [(0.0, 36.0), (48.0, 36.0), (48.0, 72.0), (0.0, 72.0)]
    assert roi.parse_roi(rectangle) == [expected]
    assert roi.parse_roi(LOWER_LEFT) == [expected]  # one polygon given alone
    assert roi.parse_roi([LOWER_LEFT, TRIANGLE])[1] == [(60.0, 0.0), (96.0, 0.0), (96.0, 40.0)]
    assert roi.parse_roi({"name": "door", "points": [{"x": 60, "y": 0}, [96, 0], [96, 40]]})[0][0] == (60.0, 0.0)
    assert roi.parse_roi("0;36;48;36;48;72;0;72") == [expected]
    assert roi.parse_roi([rectangle, "60;0;96;0;96;40"])[1][2] == (96.0, 40.0)
    assert roi.parse_roi(None) == [] and roi.parse_roi([]) == []


@pytest.mark.parametrize("value, message", [
    ([[0, 0], [1, 1]], "cam.json: roi: [[0, 0], [1, 1]] is not a polygon of at least three [x, y] points"),
    ([LOWER_LEFT, [[0, 0], [1, "a"], [2, 2]]], "cam.json: roi[1][1][1]: 'a' is not a number"),
    ({"left": 0, "top": 0, "width": 0, "height": 5}, "cam.json: roi: a rectangle of 0 × 5 pixels is empty"),
    ({"points": [[0, 0], [1, 0], [float("nan"), 1]]}, "cam.json: roi.points[2][0]: nan is not a number"),
    ("1;2;3", "cam.json: roi: '1;2;3' is not three or more x;y pairs"),
    ({"door": 1}, "cam.json: roi: {'door': 1} has neither points nor left, top, width and height"),
    (7, "cam.json: roi: 7 is not a region or a list of regions"),
])
def test_a_roi_that_cannot_work_names_the_field_and_the_value(value, message):
    with pytest.raises(roi.RoiError) as error:
        roi.parse_roi(value, "cam.json: roi")
    assert str(error.value) == message


def test_objects_count_where_they_stand_edges_included():
    regions = roi.parse_roi(LOWER_LEFT)
    standing_in = {"rect_params": {"left": 10, "top": 0, "width": 20, "height": 50}}   # feet at (20, 50)
    head_in_feet_out = {"rect_params": {"left": 10, "top": 40, "width": 80, "height": 20}}  # (50, 60)
    on_edge = {"rect_params": {"left": 40, "top": 30, "width": 16, "height": 6}}      # (48, 36)
    frame_level = {"predicted_class": "crowd"}
    kept, dropped = roi.keep_inside([standing_in, head_in_feet_out, on_edge, frame_level], regions)
    assert kept == [standing_in, on_edge, frame_level] and dropped == 1
    assert roi.keep_inside([head_in_feet_out], []) == ([head_in_feet_out], 0)
    assert roi.inside([(0, 0), (10, 0), (10, 10), (0, 10)], (10, 5))
    assert not roi.inside([(0, 0), (10, 0), (0, 10)], (6, 6))  # beyond the hypotenuse


def run_frames(description, frames=20):
    """Runs `description` (ending in a fakesink named sink) on `frames` frames; returns each
    frame's record and the pipeline."""
    pipeline = Gst.parse_launch(description)
    records = []

    def keep(pad, info):
        records.append(frame_record(info.get_buffer()))
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, keep)
    pipeline.set_state(Gst.State.PLAYING)
    wait_for_end(pipeline, 60)
    return records, pipeline


def test_emroi_drops_what_stands_outside_as_the_python_rule_does():
    regions = roi.parse_roi([LOWER_LEFT, TRIANGLE])
    records, pipeline = run_frames(
        "videotestsrc num-buffers=20 ! video/x-raw,format=RGBA,width=96,height=72 ! "
        f"empycustom mode=detect module={os.path.join(SCRIPTS, 'scattered_boxes.py')} ! "
        f"emroi name=roi roi=\"{roi.regions_json(regions)}\" ! fakesink name=sink")
    assert len(records) == 20
    total_dropped = 0
    for record in records:
        detected = [{"rect_params": box} for box in boxes_of(record["frame_num"])]
        kept, dropped = roi.keep_inside(detected, regions)
        total_dropped += dropped
        assert [item["rect_params"] for item in record.get("object", [])] == [item["rect_params"] for item in kept]
    assert 0 < total_dropped < 20 * 12
    assert pipeline.get_by_name("roi").get_property("dropped") == total_dropped


def test_emroi_draws_the_regions_on_the_frame():
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGBA,width=96,height=72 ! "
        f"emroi drop=false draw=true roi=\"{json.dumps([LOWER_LEFT])}\" ! appsink name=sink")
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    sample = sink.emit("pull-sample")
    ok, mapped = sample.get_buffer().map(Gst.MapFlags.READ)
    pixels = bytes(mapped.data)
    sample.get_buffer().unmap(mapped)
    pipeline.set_state(Gst.State.NULL)

    def pixel(x, y):
        offset = (y * 96 + x) * 4
        return tuple(pixels[offset:offset + 4])

    assert pixel(24, 36) == (255, 191, 0, 255)   # the top edge
    assert pixel(48, 54) == (255, 191, 0, 255)   # the right edge
    assert pixel(24, 54) == (0, 0, 0, 255)       # inside, untouched
    assert pixel(70, 20) == (0, 0, 0, 255)       # outside, untouched


def test_a_bad_roi_property_warns_and_everything_passes():
    records, pipeline = run_frames(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGBA,width=96,height=72 ! "
        f"empycustom mode=detect module={os.path.join(SCRIPTS, 'scattered_boxes.py')} ! "
        'emroi name=roi roi="[[[0,0],[1,1]]]" ! fakesink name=sink')
    assert [len(record["object"]) for record in records] == [12, 12, 12]
    assert pipeline.get_by_name("roi").get_property("dropped") == 0


def test_emi_run_applies_each_streams_roi_before_tracking(tmp_path):
    from test_streams import make_app, signal_lines, write_stream

    pipeline = {"input": {"width": 96, "height": 72, "format": "RGBA"},
                "primary": {"empycustom": {"custom-lib": "resource/program.py"}},
                "tracker": {"min-hits": 1},
                "overlay": {},
                "aimeta": {"signal-interval": 1}}
    folder = make_app(str(tmp_path / "app"), pipeline)
    with open(os.path.join(SCRIPTS, "scattered_boxes.py")) as source:
        (tmp_path / "app" / "resource" / "program.py").write_text(source.read())
    paths = [write_stream(str(tmp_path), "ground", "test", roi={"left": 0, "top": 36, "width": 48, "height": 36}),
             write_stream(str(tmp_path), "everywhere", "test")]
    runner_frames = runner.TEST_PATTERN_FRAMES
    runner.TEST_PATTERN_FRAMES = 15
    try:
        summary = streams.run_streams(emi_app.load_app(folder), streams.stream_specs(paths, str(tmp_path / "out")),
                                      annotated=False, out=open(os.devnull, "w"))
    finally:
        runner.TEST_PATTERN_FRAMES = runner_frames
    by_id = {stream["stream_id"]: stream for stream in summary["streams"]}
    assert by_id["ground"]["state"] == by_id["everywhere"]["state"] == "finished"
    regions = roi.parse_roi({"left": 0, "top": 36, "width": 48, "height": 36})
    dropped = 0
    seen = {"ground": set(), "everywhere": set()}
    for name in ("ground", "everywhere"):
        for line in signal_lines(tmp_path / "out" / name / runner.SIGNALS_NAME):
            if "frame" not in line:
                continue
            frame = line["frame"][0]
            if frame["frame_num"] in seen[name]:
                continue  # the tracks still alive at the end, ended after the last frame
            seen[name].add(frame["frame_num"])
            detected = [{"rect_params": box} for box in boxes_of(frame["frame_num"])]
            expected = roi.keep_inside(detected, regions if name == "ground" else [])
            dropped += expected[1]
            live = [item for item in frame.get("object", []) if item.get("tracking_ended_time", "N/A") == "N/A"]
            assert len(live) == len(expected[0])
            assert all(item["object_id"] >= 0 for item in live)  # tracked (min-hits 1)
    assert by_id["ground"]["roi_dropped"] == dropped > 0
    assert len(seen["ground"]) == len(seen["everywhere"]) == 15
    assert "roi_dropped" not in by_id["everywhere"]


def test_a_single_stream_run_applies_its_roi_too(tmp_path):
    from test_streams import make_app, signal_lines, write_stream

    pipeline = {"input": {"width": 96, "height": 72, "format": "RGBA"},
                "primary": {"empycustom": {"custom-lib": "resource/program.py"}},
                "aimeta": {"signal-interval": 1}}
    folder = make_app(str(tmp_path / "app"), pipeline)
    with open(os.path.join(SCRIPTS, "scattered_boxes.py")) as source:
        (tmp_path / "app" / "resource" / "program.py").write_text(source.read())
    stream = write_stream(str(tmp_path), "ground", "", roi=LOWER_LEFT)
    frames = runner.TEST_PATTERN_FRAMES
    runner.TEST_PATTERN_FRAMES = 5
    try:
        summary = runner.run_app(emi_app.load_app(folder), stream, "test", str(tmp_path / "out"),
                                 annotated=False, out=open(os.devnull, "w"))
    finally:
        runner.TEST_PATTERN_FRAMES = frames
    regions = roi.parse_roi(LOWER_LEFT)
    records = [line["frame"][0] for line in signal_lines(summary["signals_file"]) if "frame" in line]
    assert len(records) == 5
    for record in records:
        kept, _ = roi.keep_inside([{"rect_params": box} for box in boxes_of(record["frame_num"])], regions)
        assert [item["rect_params"] for item in record.get("object", [])] == [item["rect_params"] for item in kept]
    bad = write_stream(str(tmp_path), "bad", "", roi=[[0, 0], [1, 1]])
    with pytest.raises(runner.RunError, match=r"bad.json: roi: \[\[0, 0\], \[1, 1\]\] is not a polygon"):
        runner.run_app(emi_app.load_app(folder), bad, "test", str(tmp_path / "bad"), annotated=False,
                       out=open(os.devnull, "w"))
