# SPDX-License-Identifier: LGPL-2.1-or-later
"""The frame document from Python: what elements write matches docs/frame_document.schema.json,
and the package's list of frame fields is the schema's."""

import io
import json
import os
import sys

import gi
import jsonschema  # python3-jsonschema

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import emi  # noqa: E402
from emi import document, show  # noqa: E402

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
from pipeline_end import wait_for_end  # noqa: E402

Gst.init(None)


def schema_validator():
    with open(os.environ["EMI_FRAME_DOCUMENT_SCHEMA"], encoding="utf-8") as schema_file:
        return jsonschema.Draft202012Validator(json.load(schema_file))


def run_detector_and_tracker():
    """Documents of six frames through a detector, a script that appends events and the tracker,
    and the ended-tracks document it posts at EOS."""
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=6 ! video/x-raw,format=RGBA,width=160,height=120 ! "
        f"empycustom mode=detect module={SCRIPTS}/detector.py ! "
        f"empycustom module={SCRIPTS}/events.py meta-key=scene ! "
        "emtracker min-hits=1 line=0,60,160,60 ! fakesink name=sink")
    documents = []

    def on_buffer(pad, info):
        documents.append(emi.frame_document(info.get_buffer()))
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    ended = []
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    while True:
        message = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                         | Gst.MessageType.ERROR)
        if message is None or message.type != Gst.MessageType.ELEMENT:
            break
        if message.get_structure().get_name() == "emi/ended-tracks":
            ended.append(json.loads(message.get_structure().get_string("json")))
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS, "the pipeline did not end with EOS"
    return documents, ended


def test_elements_write_documents_the_schema_accepts():
    documents, ended = run_detector_and_tracker()
    assert len(documents) == 6 and len(ended) == 1
    last = documents[-1]["frame"][0]
    assert [obj["obj_label"] for obj in last["object"]] == ["car", "person"]
    assert "counts" in last and "events" in last and last["emcustom"] == [{"scene": "street"}]
    validator = schema_validator()
    for number, frame_document in enumerate(documents + ended):
        errors = [f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
                  for error in validator.iter_errors(frame_document)]
        assert errors == [], f"document {number}: {errors}"


def test_the_schema_rejects_what_emi_never_writes():
    validator = schema_validator()
    broken = {"frame": [{"frame_num": 0, "buf_pts": -1, "ntp_timestamp": 0, "timestamp": "yesterday",
                         "source_frame_width": 8, "source_frame_height": 8,
                         "object": [{"class_id": "car"}]}]}
    paths = sorted("/".join(map(str, error.absolute_path)) for error in validator.iter_errors(broken))
    assert "frame/0/timestamp" in paths
    assert any(path.startswith("frame/0/object/0") for path in paths)


def test_the_frame_fields_come_from_the_schema():
    assert document.frame_facts() == ("frame_num", "buf_pts", "ntp_timestamp", "timestamp",
                                      "source_frame_width", "source_frame_height")
    with open(os.environ["EMI_FRAME_DOCUMENT_SCHEMA"], encoding="utf-8") as schema_file:
        assert document.frame_document_schema() == json.load(schema_file)


def test_show_prints_results_apart_from_the_frame_fields():
    out = io.StringIO()
    assert show.run("videotestsrc num-buffers=2 ! video/x-raw,format=RGBA,width=32,height=24 ! "
                    f"empycustom module={SCRIPTS}/counter.py ! fakesink name=sink", out=out) == 0
    lines = out.getvalue().splitlines()
    # The frame fields stay out of the results: only what the script returned is printed.
    assert lines[0] == 'frame     0  {"emcustom": [{"calls": 1, "frame_num": 0}]}'
    assert lines[-1] == "2 frames with a frame document"
