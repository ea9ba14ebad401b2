# SPDX-License-Identifier: LGPL-2.1-or-later
"""A PyGObject application hosting empycustom in its own process and interpreter."""

import os
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import emi  # noqa: E402

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
import app_state  # noqa: E402
from pipeline_end import wait_for_end  # noqa: E402

Gst.init(None)


def run(description):
    """Runs the pipeline to EOS; returns the frame documents seen by a probe on the sink."""
    pipeline = Gst.parse_launch(description)
    documents = []

    def on_buffer(pad, info):
        documents.append(emi.frame_document(info.get_buffer()))
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    pipeline.set_state(Gst.State.PLAYING)
    wait_for_end(pipeline, 60)
    return documents


def test_reads_the_frame_document_from_a_pad_probe():
    documents = run(
        "videotestsrc num-buffers=5 pattern=white ! video/x-raw,format=RGBA,width=64,height=48 ! "
        f"empycustom module={SCRIPTS}/counter.py ! fakesink name=sink")
    assert [document["frame"][0]["frame_num"] for document in documents] == [0, 1, 2, 3, 4]
    assert [document["frame"][0]["emcustom"][0]["calls"] for document in documents] == [1, 2, 3, 4, 5]
    assert emi.frame_record  # the package's helpers are importable from the app


def test_the_element_runs_in_the_apps_interpreter():
    app_state.frames.clear()
    documents = run(
        "videotestsrc num-buffers=3 pattern=white ! video/x-raw,format=RGBA,width=32,height=16 ! "
        f"empycustom module={SCRIPTS}/app_shared.py ! fakesink name=sink")
    assert app_state.frames == [0, 1, 2]
    assert documents[0]["frame"][0]["emcustom"][0]["mean"] == 255.0


def test_a_buffer_without_a_document_reads_as_none():
    buffer = Gst.Buffer.new_allocate(None, 16, None)
    assert emi.frame_document(buffer) is None
    assert emi.frame_record(buffer) is None
