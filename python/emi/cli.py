"""emi run | new | check: EDGEMATRIX apps from the command line.

    emi new TEMPLATE APP_DIR
    emi check APP_DIR [--signal SIGNAL.json] [--frames N]
    emi run APP_DIR --stream STREAM.json --input MOVIE|rtsp://…|/dev/videoN|test --output DIR
    emi run APP_DIR --stream A.json --stream B.json | --streams DIR --output DIR   (OUTPUT/<stream_id>/)
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile

from .app import AppConfigError, check_event, load_app

TEMPLATE_FOLDERS = [
    os.environ.get("EMI_TEMPLATES", ""),
    os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "templates"),
    "/usr/share/emi/templates",
]


def _template_folder(name):
    if os.path.isdir(name):
        return name
    for folder in TEMPLATE_FOLDERS:
        if folder and os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    known = sorted({entry for folder in TEMPLATE_FOLDERS if folder and os.path.isdir(folder)
                    for entry in os.listdir(folder)})
    raise AppConfigError(f"no template {name!r} (templates: {', '.join(known) or 'none found'})")


def new_app(template, app_dir):
    source = _template_folder(template)
    if os.path.exists(app_dir):
        raise AppConfigError(f"{app_dir}: already exists; choose a new folder")
    shutil.copytree(source, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    load_app(app_dir)  # the copy is a valid app
    return app_dir


def _call_callback(app, signal):
    spec = importlib.util.spec_from_file_location("emi_signal_callback_check", app.callback_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, app.callback_function, None)
    if function is None:
        raise AppConfigError(f"{app.callback_path} has no function {app.callback_function}()")
    returned = function(signal)
    events, debug = returned if isinstance(returned, tuple) and len(returned) == 2 else (returned, "")
    if not isinstance(events, (list, tuple)) or not all(isinstance(event, dict) for event in events):
        raise AppConfigError(f"{app.callback_function}() of {app.callback_path} returned "
                             f"{type(events).__name__}; it must return (events, debug_string), "
                             "events a list of dicts")
    return list(events), debug


def _signals_of_generated_frames(app, frames):
    """Runs the app's elements on `frames` generated frames; returns their signals."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    from .runner import _configure, _make

    Gst.init(None)
    with tempfile.TemporaryDirectory() as scratch:
        location = os.path.join(scratch, "signals.jsonl")
        pipeline = Gst.Pipeline.new("check")
        source = Gst.parse_bin_from_description(
            f"videotestsrc pattern=ball num-buffers={frames} ! videoconvert ! "
            f"capsfilter caps=video/x-raw,format={app.format},width={app.width},height={app.height},"
            "framerate=30/1", True)
        chain = [source]
        ignored = []
        for index, stage in enumerate(app.stages):
            element = _make(stage.factory, f"stage{index}")
            _configure(element, stage.properties, f"pipeline_configuration.{stage.role}", ignored)
            chain.append(element)
        aimeta = _make("emaimeta", "aimeta")
        aimeta.set_property("location", location)
        aimeta.set_property("post-messages", False)
        chain += [aimeta, _make("fakesink", "sink")]
        for element in chain:
            pipeline.add(element)
        for upstream, downstream in zip(chain, chain[1:]):
            upstream.link(downstream)
        pipeline.set_state(Gst.State.PLAYING)
        message = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE,
                                                        Gst.MessageType.EOS | Gst.MessageType.ERROR)
        pipeline.set_state(Gst.State.NULL)
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            raise AppConfigError(f"{message.src.get_name()}: {error.message}\n{debug or ''}")
        with open(location, encoding="utf-8") as signals:
            return [json.loads(line) for line in signals if line.startswith('{"frame"')]


def check_app(app_dir, signal_path=None, frames=20, out=None):
    """Validates the app, runs its programs on generated frames and its callback on a signal.
    Returns the number of problems found."""
    out = out if out is not None else sys.stdout
    app = load_app(app_dir)
    print(f"{app.config_path}: valid", file=out)
    for item in app.ignored:
        print(f"  ignored: {item}", file=out)
    signals = _signals_of_generated_frames(app, frames)
    print(f"programs ran on {frames} generated frames: {len(signals)} signals", file=out)
    if signal_path:
        with open(signal_path, encoding="utf-8") as signal_file:
            signal = json.load(signal_file)
        origin = signal_path
    else:
        signal = signals[-1]
        origin = "the last generated frame's signal"
    if not app.callback_path:
        print("no emi_signal_callback.py: the events are the signal's records", file=out)
        return 0
    events, debug = _call_callback(app, signal)
    print(f"{app.callback_function}() on {origin}: {len(events)} events"
          + (f", debug: {debug}" if debug else ""), file=out)
    problems = 0
    for index, event in enumerate(events):
        print(f"  event {index}: {json.dumps(event)}", file=out)
        for problem in check_event(event, app.event_item_keys):
            print(f"    problem: {problem} (event_item_keys)", file=out)
            problems += 1
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(prog="emi", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create an app from a template")
    new.add_argument("template")
    new.add_argument("app_dir")
    check = commands.add_parser("check", help="validate an app: config, programs, callback")
    check.add_argument("app_dir")
    check.add_argument("--signal", help="a sample signal (JSON) for the callback")
    check.add_argument("--frames", type=int, default=20)
    run = commands.add_parser("run", help="run an app")
    run.add_argument("app_dir")
    run.add_argument("--stream", action="append", default=[],
                     help="stream config (JSON), e.g. APP/streams/x.json; repeat for more streams")
    run.add_argument("--streams", metavar="DIR", help="every stream config (*.json) in DIR")
    run.add_argument("--input", help="a movie file, rtsp://…, /dev/videoN or test: replaces a single "
                                     "stream's location (else each stream's config says)")
    run.add_argument("--output", required=True, help="folder for signals, clips, annotated video")
    run.add_argument("--no-video", action="store_true", help="no annotated MP4")
    args = parser.parse_args(argv)

    from .runner import RunError, run_app

    try:
        if args.command == "new":
            print(f"created {new_app(args.template, args.app_dir)}")
            return 0
        if args.command == "check":
            return 1 if check_app(args.app_dir, args.signal, args.frames) else 0
        if len(args.stream) != 1 or args.streams or not args.input:
            from .streams import run_streams, stream_paths_of, stream_specs

            paths = stream_paths_of(args.stream, args.streams, args.app_dir)
            if not paths:
                raise AppConfigError("no stream: give --stream STREAM.json (repeatable) or --streams DIR")
            summary = run_streams(load_app(args.app_dir), stream_specs(paths, args.output, args.input),
                                  annotated=not args.no_video)
            print(json.dumps(summary, indent=2))
            return 130 if summary["interrupted"] else (1 if summary["failed"] else 0)
        stream = args.stream[0]
        if not os.path.isfile(stream) and os.path.isfile(os.path.join(args.app_dir, stream)):
            stream = os.path.join(args.app_dir, stream)
        summary = run_app(load_app(args.app_dir), stream, args.input, args.output,
                          annotated=not args.no_video)
        print(json.dumps(summary, indent=2))
        return 130 if summary["interrupted"] else 0
    except (AppConfigError, RunError) as error:
        print(f"emi: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
