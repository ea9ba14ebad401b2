# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Python tests do when a pipeline should have run to its end."""

from gi.repository import Gst


def wait_for_end(pipeline, seconds):
    """Waits up to `seconds` for EOS, then stops the pipeline. An error message fails the test with
    its text and debug part, and so does no end in time."""
    message = pipeline.get_bus().timed_pop_filtered(seconds * Gst.SECOND,
                                                    Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None, f"the pipeline did not finish in {seconds} s"
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        raise AssertionError(f"{message.src.get_name()}: {error.message}\n{debug}")
