# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a pipeline and prints the frame document of every buffer that reaches its sink.

    python3 -m emi.show "videotestsrc num-buffers=10 ! video/x-raw,format=RGBA ! \\
        empycustom module=my_script.py ! fakesink name=sink"

The probe goes on the element named `sink` (else the pipeline's last sink). Each line is one
frame: frame_num, then the results each element stored, then the objects.
"""

import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from .document import frame_document, frame_facts  # noqa: E402


def _sink_of(pipeline):
    sink = pipeline.get_by_name("sink")
    if sink is not None:
        return sink
    sinks = [element for element in pipeline.iterate_sinks()]
    if not sinks:
        raise SystemExit("the pipeline has no sink to watch")
    return sinks[-1]


def _describe(frame):
    not_results = set(frame_facts()) | {"object"}
    results = {key: value for key, value in frame.items() if key not in not_results}
    line = f"frame {frame.get('frame_num', '?'):>5}  {json.dumps(results)}"
    objects = frame.get("object") or []
    if objects:
        line += f"  objects: {json.dumps(objects)}"
    return line


def run(description, out=sys.stdout):
    """Runs `description` to the end; returns 0 on EOS, 1 on an error (printed to stderr)."""
    Gst.init(None)
    try:
        pipeline = Gst.parse_launch(description)
    except gi.repository.GLib.Error as error:
        print(f"emi.show: {error.message}", file=sys.stderr)
        return 1
    frames = 0

    def on_buffer(pad, info):
        nonlocal frames
        document = frame_document(info.get_buffer())
        if document and document.get("frame"):
            frames += 1
            print(_describe(document["frame"][0]), file=out, flush=True)
        return Gst.PadProbeReturn.OK

    _sink_of(pipeline).get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        print(f"emi.show: {message.src.get_name()}: {error.message}\n{debug or ''}", file=sys.stderr)
        return 1
    print(f"{frames} frames with a frame document", file=out)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    return run(argv[0])


if __name__ == "__main__":
    sys.exit(main())
