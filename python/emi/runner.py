"""Runs an app on a movie, a camera, an RTSP stream or a test pattern: `emi run`."""

import glob
import os
import signal
import sys
import time
import urllib.parse

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from .app import load_stream  # noqa: E402

SIGNALS_NAME = "signals.jsonl"
ANNOTATED_NAME = "annotated.mp4"
CLIPS_DIR = "clips"
SPOOL_DIR = "spool"
TEST_PATTERN_FRAMES = 300


class RunError(Exception):
    """A pipeline that can't be built or run; the message says which part and why."""


def _source_description(input_spec, app):
    if input_spec == "test":
        # Live, as a camera would be: frames come at the frame rate.
        source = (f"videotestsrc pattern=ball is-live=true num-buffers={TEST_PATTERN_FRAMES} "
                  f"! video/x-raw,framerate={app.framerate or '30/1'}")
    elif input_spec.startswith("/dev/video"):
        source = f'v4l2src device="{input_spec}"'
    elif "://" in input_spec:
        source = f'uridecodebin uri="{input_spec}"'
    else:
        path = os.path.abspath(input_spec)
        if not os.path.isfile(path):
            raise RunError(f"{input_spec}: no such movie")
        source = f'uridecodebin uri="{urllib.parse.urljoin("file:", urllib.parse.quote(path))}"'
    rate = f"! videorate ! video/x-raw,framerate={app.framerate} " if app.framerate else ""
    # A capsfilter, not a bare caps string: caps can't end a bin description.
    return (f"{source} ! videoconvert ! videoscale {rate}! capsfilter name=frames "
            f"caps=video/x-raw,format={app.format},width={app.width},height={app.height}")


def _source_bin(input_spec, app):
    # Only the last element's pad is ghosted: ghosting every unlinked pad would also take
    # videoconvert's sink pad, which uridecodebin links to once it has found a decoder.
    try:
        source = Gst.parse_bin_from_description(_source_description(input_spec, app), False)
    except gi.repository.GLib.Error as error:
        raise RunError(f"input {input_spec}: {error.message}") from None
    source.add_pad(Gst.GhostPad.new("src", source.get_by_name("frames").get_static_pad("src")))
    return source


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


def build_pipeline(app, stream_path, input_spec, output_dir, annotated=True):
    """The app's pipeline; returns (pipeline, aimeta element, ignored properties)."""
    Gst.init(None)
    stream = load_stream(stream_path)
    os.makedirs(output_dir, exist_ok=True)
    ignored = list(app.ignored)
    pipeline = Gst.Pipeline.new(app.name)
    chain = [_source_bin(input_spec, app)]
    for index, stage in enumerate(app.stages):
        element = _make(stage.factory, stage.role.replace("[", "").replace("]", "") + f"_{index}")
        _configure(element, stage.properties, f"pipeline_configuration.{stage.role}", ignored)
        chain.append(element)
    aimeta = _make("emaimeta", "aimeta")
    aimeta.set_property("location", os.path.join(output_dir, SIGNALS_NAME))
    aimeta.set_property("signal-interval", app.signal_interval)
    aimeta.set_property("stream-config", os.path.abspath(stream_path))
    aimeta.set_property("stream-id", str(stream.get("stream_id", "stream")))
    aimeta.set_property("record-dir", os.path.join(output_dir, CLIPS_DIR))
    aimeta.set_property("spool-dir", os.path.join(output_dir, SPOOL_DIR))
    if app.callback_path:
        aimeta.set_property("callback-module", app.callback_path)
        aimeta.set_property("callback-function", app.callback_function)
    chain.append(aimeta)
    if annotated:
        # 4:2:0, which every H.264 decoder plays: from RGB x264 would pick 4:4:4.
        sink = Gst.parse_bin_from_description(
            "videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast tune=zerolatency ! "
            "h264parse ! mp4mux ! "
            f'filesink location="{os.path.join(output_dir, ANNOTATED_NAME)}"', True)
    else:
        sink = _make("fakesink", "sink")
    chain.append(sink)
    for element in chain:
        pipeline.add(element)
    for upstream, downstream in zip(chain, chain[1:]):
        if not upstream.link(downstream):
            raise RunError(f"can't link {upstream.get_name()} to {downstream.get_name()}")
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


def run_app(app, stream_path, input_spec, output_dir, annotated=True, out=None):
    """Runs to the end of the input (or Ctrl-C); returns a summary dict. Raises RunError."""
    out = out if out is not None else sys.stderr
    pipeline, aimeta, ignored = build_pipeline(app, stream_path, input_spec, output_dir, annotated)
    for item in ignored:
        print(f"emi: ignored {item}", file=out)
    frames = 0

    def count(pad, info):
        nonlocal frames
        frames += 1
        return Gst.PadProbeReturn.OK

    aimeta.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, count)
    interrupted = False

    def on_interrupt(signum, frame):
        nonlocal interrupted
        interrupted = True

    previous_handler = signal.signal(signal.SIGINT, on_interrupt)
    progress = _Progress(out)
    bus = pipeline.get_bus()
    started = time.monotonic()
    failure = None
    eos_sent = False
    try:
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
            raise RunError(_error_text(message) if message else "the pipeline did not start")
        while True:
            if interrupted and not eos_sent:
                progress.show("emi: stopping (Ctrl-C): finishing files…", final=True)
                pipeline.send_event(Gst.Event.new_eos())  # files end valid
                eos_sent = True
            message = bus.timed_pop_filtered(200 * Gst.MSECOND, Gst.MessageType.EOS |
                                             Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if message is not None:
                if message.type == Gst.MessageType.EOS:
                    break
                if message.type == Gst.MessageType.ERROR:
                    failure = _error_text(message)
                    break
                warning, debug = message.parse_warning()
                print(f"\nemi: warning from {message.src.get_name()}: {warning.message}", file=out)
            elapsed = time.monotonic() - started
            progress.show(_progress_text(pipeline, aimeta, frames, elapsed))
    finally:
        pipeline.set_state(Gst.State.NULL)
        signal.signal(signal.SIGINT, previous_handler)
    elapsed = time.monotonic() - started
    summary = {
        "frames": frames, "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        "signals": aimeta.get_property("signals"), "events": aimeta.get_property("events"),
        "firings": aimeta.get_property("firings"),
        "callback_errors": aimeta.get_property("callback-errors"),
        "clips": sorted(glob.glob(os.path.join(output_dir, CLIPS_DIR, "*.mp4"))),
        "signals_file": os.path.join(output_dir, SIGNALS_NAME),
        "annotated": os.path.join(output_dir, ANNOTATED_NAME) if annotated else None,
        "interrupted": interrupted,
    }
    progress.show(_progress_text(pipeline, aimeta, frames, elapsed, summary), final=True)
    if failure is not None:
        raise RunError(failure)
    return summary


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
