# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs an app on a movie, a camera, an RTSP stream or a test pattern: `emi run`."""

import glob
import json
import os
import shutil
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from . import roi  # noqa: E402
from .app import ignored_lines, load_stream  # noqa: E402

SIGNALS_NAME = "signals.jsonl"
ANNOTATED_NAME = "annotated.mp4"
CLIPS_DIR = "clips"
RUN_NAME = "run.json"       # the run's summary, which `emi report` reads
REPORT_NAME = "report.html"
TEST_PATTERN_FRAMES = 300
# What a run leaves in its output folder. Upload rules spool what is still to be sent in the user's
# state folder, per delivery stream ($XDG_STATE_HOME/emi/firehose/<stream>), so a later run with
# any output sends what an outage left.
RUN_OUTPUTS = (SIGNALS_NAME, ANNOTATED_NAME, CLIPS_DIR, RUN_NAME, REPORT_NAME)


class RunError(Exception):
    """A pipeline that can't be built or run; the message says which part and why."""


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _make(factory, name):
    element = Gst.ElementFactory.make(factory, name)
    if element is None:
        raise RunError(f"no GStreamer element {factory!r}: is the emi plugin installed, or "
                       f"GST_PLUGIN_PATH set to its build folder?")
    return element


def _configure(element, properties, where, ignored):
    for key, value in properties.items():
        if element.find_property(key) is None:
            ignored.append(f"{where}.{key} (no such property of {element.get_factory().get_name()})")
            continue
        Gst.util_set_object_arg(element, key, _as_text(value))


FRAMES_QUEUED = 4  # a queue between two threads of a pipeline holds this many frames


def frames_queue(name):
    """A queue of FRAMES_QUEUED frames (no byte or time limit): what is upstream of it runs on a
    thread of its own, a few frames ahead of what is downstream."""
    queue = _make("queue", name)
    queue.set_property("max-size-buffers", FRAMES_QUEUED)
    queue.set_property("max-size-bytes", 0)
    queue.set_property("max-size-time", 0)
    return queue


def _with_detector_thread(app, elements):
    """The app's elements with a queue after the primary: the detector works on the next frame
    while the tracker, the secondaries and the outputs work on this one (the counter app on a
    1080p movie, 2 cores: 10 -> 12.5-17 frames/s, bench/bench_counter.py)."""
    roles = [stage.role for stage in app.stages]
    if "primary" not in roles:
        return elements
    after = roles.index("primary") + 1
    return elements[:after] + [frames_queue("detected")] + elements[after:]


def app_elements(app, ignored):
    """The app's elements, configured, in pipeline order; settings they don't have are added to
    `ignored`. `emi run` and `emi check` both build their pipelines from these."""
    elements = []
    for index, stage in enumerate(app.stages):
        element = _make(stage.factory, stage.role.replace("[", "").replace("]", "") + f"_{index}")
        _configure(element, stage.properties, f"pipeline_configuration.{stage.role}", ignored)
        elements.append(element)
    return elements


def previous_run(output_dir):
    """What of an earlier run `output_dir` holds (names, in RUN_OUTPUTS order)."""
    found = []
    for name in RUN_OUTPUTS:
        path = os.path.join(output_dir, name)
        if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
            found.append(name + ("/" if os.path.isdir(path) else ""))
    return found


def prepare_output(output_dir, mode):
    """Makes `output_dir` ready for a run. mode: "new" refuses a folder that holds a previous
    run, "overwrite" removes that run's files first, "append" adds this run to them."""
    found = previous_run(output_dir)
    if found and mode == "new":
        raise RunError(f"{output_dir} holds a previous run ({', '.join(found)}): --append adds this "
                       "run to it, --overwrite replaces it, or choose another --output")
    if mode == "overwrite":
        for name in found:
            path = os.path.join(output_dir, name.rstrip("/"))
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    os.makedirs(output_dir, exist_ok=True)


def _annotated_path(output_dir, append):
    """annotated.mp4, or with --append the first free annotated-N.mp4 (an MP4 can't be extended)."""
    path = os.path.join(output_dir, ANNOTATED_NAME)
    number = 1
    while append and os.path.exists(path):
        path = os.path.join(output_dir, f"annotated-{number}.mp4")
        number += 1
    return path


def _output_branches(annotated_path, display):
    """The sink side: the annotated MP4 and/or a window, each behind its own queue on a tee."""
    branches = []
    if annotated_path:
        # 4:2:0, which every H.264 decoder plays: from RGB x264 would pick 4:4:4.
        branches.append(
            "queue ! videoconvert ! video/x-raw,format=I420 ! "
            "x264enc speed-preset=veryfast tune=zerolatency ! h264parse ! mp4mux ! "
            f'filesink location="{annotated_path}"')
    if display:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise RunError("--display: no display to show the video on (DISPLAY and WAYLAND_DISPLAY "
                           "are not set; over ssh use -X, or leave --display out)")
        # Shown at the video's pace (the sink syncs to the clock); a late frame is dropped there,
        # never held back for the file.
        branches.append("queue ! videoconvert ! autovideosink name=display")
    if not branches:
        return _make("fakesink", "sink")
    if len(branches) == 1:
        return Gst.parse_bin_from_description(branches[0], True)
    return Gst.parse_bin_from_description(
        "tee name=split " + " ".join(f"split. ! {branch}" for branch in branches), True)


def build_pipeline(app, stream_path, input_spec, output_dir, annotated=True, display=False,
                   append=False):
    """The app's pipeline; returns (pipeline, aimeta element, ignored properties). `annotated`:
    True (annotated.mp4 in output_dir), a path, or False; `display`: a window too."""
    Gst.init(None)
    stream = load_stream(stream_path)
    os.makedirs(output_dir, exist_ok=True)
    ignored = list(app.ignored)
    pipeline = Gst.Pipeline.new(app.name)
    from .streams import source_bin  # streams builds on this module

    chain = [source_bin(input_spec, app)] + _with_detector_thread(app, app_elements(app, ignored))
    aimeta = _make("emaimeta", "aimeta")
    aimeta.set_property("location", os.path.join(output_dir, SIGNALS_NAME))
    aimeta.set_property("signal-interval", app.signal_interval)
    aimeta.set_property("stream-config", os.path.abspath(stream_path))
    aimeta.set_property("stream-id", str(stream.get("stream_id", "stream")))
    aimeta.set_property("record-dir", os.path.join(output_dir, CLIPS_DIR))
    if append:
        if aimeta.find_property("append") is None:
            raise RunError("--append: this emi's emaimeta has no `append` property yet; "
                           "use --overwrite or another --output")
        aimeta.set_property("append", True)
    if app.callback_path:
        aimeta.set_property("callback-module", app.callback_path)
        aimeta.set_property("callback-function", app.callback_function)
    chain.append(aimeta)
    if annotated is True:
        annotated = _annotated_path(output_dir, append)
    try:
        chain.append(_output_branches(annotated or None, display))
    except gi.repository.GLib.Error as error:
        raise RunError(f"the output: {error.message}") from None
    for element in chain:
        pipeline.add(element)
    for upstream, downstream in zip(chain, chain[1:]):
        if not upstream.link(downstream):
            raise RunError(f"can't link {upstream.get_name()} to {downstream.get_name()}")
    try:  # the stream config's regions of interest: emroi after the detector, and after emoverlay
        regions = roi.parse_roi(stream.get("roi"), f"{stream_path}: roi")
        if regions:
            roi.insert_roi_elements(chain[1], regions, _make)
    except roi.RoiError as error:
        raise RunError(str(error)) from None
    return pipeline, aimeta, ignored


class _Progress:
    """One line on a terminal, rewritten in place; a line every few seconds in a log."""

    def __init__(self, out):
        self.out = out
        self.interactive = out.isatty()
        self.last_line = 0.0

    def show(self, text, final=False):
        now = time.monotonic()
        if self.interactive:
            self.out.write("\r\033[K" + text + ("\n" if final else ""))
            self.out.flush()
        elif final or now - self.last_line >= 5:
            self.out.write(text + "\n")
            self.out.flush()
            self.last_line = now


def _clip_of(message):
    structure = message.get_structure()
    if structure is None or structure.get_name() != "emi-clip-recorded":
        return None
    for index in range(structure.n_fields()):
        value = structure.get_value(structure.nth_field_name(index))
        if isinstance(value, str) and value.startswith("{"):
            try:
                return json.loads(value)
            except ValueError:
                return None
    return None


def _write_json(path, value):
    """Whole or not at all: written beside and renamed into place."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as target:
        json.dump(value, target, indent=2)
        target.write("\n")
        target.flush()
        os.fsync(target.fileno())
    os.replace(partial, path)


def run_app(app, stream_path, input_spec, output_dir, annotated=True, out=None, display=False,
            output_mode="new", interrupts=None):
    """Runs to the end of the input (or Ctrl-C); returns a summary dict, also written to
    OUTPUT/run.json. Raises RunError. output_mode: "new", "append" or "overwrite" (see
    prepare_output). `interrupts`: an InterruptWatcher that was started (the command line's);
    without one, Ctrl-C (SIGINT's Python handler) finishes the files. A live input (a camera,
    rtsp://, http://…) runs until Ctrl-C, as emi.streams runs it: reconnected when its source is
    lost (streams.run_live_input)."""
    out = out if out is not None else sys.stderr
    prepare_output(output_dir, output_mode)
    from . import streams  # streams builds on this module

    if streams.is_live(input_spec):
        return streams.run_live_input(app, stream_path, input_spec, output_dir, annotated, out, display,
                                      output_mode == "append", interrupts)
    annotated_path = _annotated_path(output_dir, output_mode == "append") if annotated else None
    pipeline, aimeta, ignored = build_pipeline(app, stream_path, input_spec, output_dir,
                                               annotated_path or False, display,
                                               output_mode == "append")
    for line in ignored_lines(ignored):
        print(line, file=out)
    frames = 0

    def count(pad, info):
        nonlocal frames
        frames += 1
        return Gst.PadProbeReturn.OK

    aimeta.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, count)
    interrupted = interrupts.interrupted if interrupts is not None else threading.Event()
    previous_handler = None
    if interrupts is None and threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    progress = _Progress(out)
    bus = pipeline.get_bus()
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    failure = None
    eos_sent = False
    clips = []
    try:
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
            raise RunError(_error_text(message) if message else "the pipeline did not start")
        while True:
            if interrupted.is_set() and not eos_sent:
                progress.show("emi: stopping (Ctrl-C): finishing files… (Ctrl-C again ends at once)",
                              final=True)
                pipeline.send_event(Gst.Event.new_eos())  # files end valid
                eos_sent = True
            message = bus.timed_pop_filtered(200 * Gst.MSECOND, Gst.MessageType.EOS |
                                             Gst.MessageType.ERROR | Gst.MessageType.WARNING |
                                             Gst.MessageType.ELEMENT)
            if message is not None:
                if message.type == Gst.MessageType.EOS:
                    break
                if message.type == Gst.MessageType.ERROR:
                    failure = _error_text(message)
                    break
                if message.type == Gst.MessageType.ELEMENT:
                    clip = _clip_of(message)
                    if clip is not None:
                        clips.append(clip)
                else:
                    warning, debug = message.parse_warning()
                    print(f"\nemi: warning from {message.src.get_name()}: {warning.message}", file=out)
            elapsed = time.monotonic() - started
            progress.show(_progress_text(pipeline, aimeta, frames, elapsed))
    finally:
        pipeline.set_state(Gst.State.NULL)
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    # Messages posted while the pipeline stopped (the last clip is closed at EOS).
    while (message := bus.pop_filtered(Gst.MessageType.ELEMENT)) is not None:
        clip = _clip_of(message)
        if clip is not None:
            clips.append(clip)
    elapsed = time.monotonic() - started
    summary = {
        "app": app.name, "app_folder": app.folder, "stream": os.path.abspath(stream_path),
        "input": input_spec, "started": started_at,
        "frames": frames, "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        **aimeta_counts(aimeta),
        "clips": sorted(glob.glob(os.path.join(output_dir, CLIPS_DIR, "*.mp4"))),
        "recorded_clips": clips,
        "signals_file": os.path.join(output_dir, SIGNALS_NAME),
        "annotated": annotated_path,
        "ignored": ignored,
        "interrupted": interrupted.is_set(),
        "error": failure,
    }
    _write_json(os.path.join(output_dir, RUN_NAME), summary)
    progress.show(_progress_text(pipeline, aimeta, frames, elapsed, summary), final=True)
    if failure is not None:
        raise RunError(failure)
    return summary


def aimeta_counts(aimeta):
    """What emaimeta counted, for a run's summary. Read after the stop: what uploaders lost as they
    stopped is then in (emaimeta's `dropped`)."""
    return {"signals": aimeta.get_property("signals"), "events": aimeta.get_property("events"),
            "firings": aimeta.get_property("firings"),
            "callback_errors": aimeta.get_property("callback-errors"),
            "uploads_dropped": aimeta.get_property("dropped"),
            "uploads_rejected": aimeta.get_property("rejected")}


def _error_text(message):
    error, debug = message.parse_error()
    text = f"{message.src.get_name()}: {error.message}"
    return text + (f"\n{debug}" if debug else "")


def _progress_text(pipeline, aimeta, frames, elapsed, summary=None):
    fps = frames / elapsed if elapsed > 0 else 0.0
    text = f"frames {frames}  {fps:.1f} fps  events {aimeta.get_property('events')}"
    if summary is None:
        ok_position, position = pipeline.query_position(Gst.Format.TIME)
        ok_duration, duration = pipeline.query_duration(Gst.Format.TIME)
        if ok_position and ok_duration and duration > 0:
            text += f"  {100.0 * position / duration:.0f}%"
    else:
        text += f"  firings {summary['firings']}  clips {len(summary['clips'])}  in {elapsed:.1f} s"
    return text
