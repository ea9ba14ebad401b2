# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Python tests do when a pipeline should have run to its end."""

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def _end_message(pipeline, seconds):
    return pipeline.get_bus().timed_pop_filtered(seconds * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)


def _check_end(message, seconds):
    assert message is not None, f"the pipeline did not finish in {seconds} s"
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        raise AssertionError(f"{message.src.get_name()}: {error.message}\n{debug}")


def wait_for_end(pipeline, seconds):
    """Waits up to `seconds` for EOS, then stops the pipeline. An error message fails the test with
    its text and debug part, and so does no end in time."""
    message = _end_message(pipeline, seconds)
    pipeline.set_state(Gst.State.NULL)
    _check_end(message, seconds)


def decoded_frames_and_duration(path, seconds=60):
    """(frames decoded, duration in ns from the container, 0 when it says none) of a movie, played
    to its end in this process; fails as wait_for_end does when it doesn't play."""
    Gst.init(None)
    pipeline = Gst.parse_launch("filesrc name=file ! decodebin ! fakesink name=sink")
    pipeline.get_by_name("file").set_property("location", path)
    frames = 0

    def count(pad, info):
        nonlocal frames
        frames += 1
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
    pipeline.set_state(Gst.State.PLAYING)
    message = _end_message(pipeline, seconds)
    ok, duration = pipeline.query_duration(Gst.Format.TIME)
    pipeline.set_state(Gst.State.NULL)
    _check_end(message, seconds)
    return frames, duration if ok else 0


def decoded_frames(path):
    """The frames of a movie that decode."""
    return decoded_frames_and_duration(path)[0]
