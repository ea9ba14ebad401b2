# SPDX-License-Identifier: LGPL-2.1-or-later
"""emi new | prepare | check | run | report: EDGEMATRIX apps from the command line.

    emi new TEMPLATE APP_DIR
    emi prepare APP_DIR [ARGUMENTS of resource/prepare_resource.sh]
    emi check APP_DIR [--signal SIGNAL.json] [--frames N]
    emi run APP_DIR --stream STREAM.json --input MOVIE|rtsp://…|/dev/videoN|test --output DIR
            [--display] [--report] [--no-video] [--append | --overwrite]
    emi run APP_DIR --stream A.json --stream B.json | --streams DIR --output DIR   (OUTPUT/<stream_id>/)
    emi report OUTPUT_DIR
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

from .app import AppConfigError, check_event, ignored_lines, load_app

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_FOLDERS = [
    os.environ.get("EMI_TEMPLATES", ""),
    os.path.join(os.path.dirname(PACKAGE_PARENT), "templates"),  # a checkout's python/../templates
    "/usr/share/emi/templates",
]
# Written by `emi new` into the app: where the emi that created it lives, for
# resource/prepare_resource.sh, which runs outside any emi command.
ORIGIN_NAME = ".emi-origin"
PREPARE_SCRIPT = os.path.join("resource", "prepare_resource.sh")


def _template_folder(name):
    if os.path.isdir(name):
        return name
    for folder in TEMPLATE_FOLDERS:
        if folder and os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    known = sorted({entry for folder in TEMPLATE_FOLDERS if folder and os.path.isdir(folder)
                    for entry in os.listdir(folder)})
    raise AppConfigError(f"no template {name!r} (templates: {', '.join(known) or 'none found'})")


def emi_origin():
    """{"plugin_dir", "python_path", "python"}: the GStreamer plugin and the Python package of the
    emi running now. The plugin is the one GStreamer loads here (GST_PLUGIN_PATH or installed);
    "" when GStreamer has none."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    plugin = Gst.Registry.get().find_plugin("emi")
    plugin_file = plugin.get_filename() if plugin is not None else None
    return {"plugin_dir": os.path.dirname(plugin_file) if plugin_file else "",
            "python_path": PACKAGE_PARENT, "python": sys.executable}


def write_origin(app_dir, origin):
    lines = ["# Written by `emi new`: the emi this app was created with. resource/prepare_resource.sh",
             "# loads the GStreamer plugin and the Python package from here (`emi prepare` rewrites it)."]
    lines += [f"{key}={value}" for key, value in origin.items()]
    with open(os.path.join(app_dir, ORIGIN_NAME), "w", encoding="utf-8") as origin_file:
        origin_file.write("\n".join(lines) + "\n")


def new_app(template, app_dir):
    source = _template_folder(template)
    if os.path.exists(app_dir):
        raise AppConfigError(f"{app_dir}: already exists; choose a new folder")
    shutil.copytree(source, app_dir, ignore=shutil.ignore_patterns("__pycache__", "models"))
    load_app(app_dir)  # the copy is a valid app
    write_origin(app_dir, emi_origin())
    return app_dir


def _with_path(environment, name, folder):
    """`environment` with `folder` first on the path list `name`."""
    if folder:
        rest = environment.get(name, "")
        environment[name] = folder + (os.pathsep + rest if rest else "")


def prepare_app(app_dir, arguments):
    """Runs the app's resource/prepare_resource.sh with this emi's plugin and package (and records
    them in the app, as `emi new` does). Returns its exit status."""
    script = os.path.join(app_dir, PREPARE_SCRIPT)
    if not os.path.isfile(script):
        raise AppConfigError(f"{script}: no such file (an app made with `emi new` has one)")
    origin = emi_origin()
    if not origin["plugin_dir"]:
        raise AppConfigError("GStreamer has no emi plugin here: set GST_PLUGIN_PATH to the plugin/ "
                             "folder of an emi build, or install emi (meson install)")
    write_origin(app_dir, origin)
    environment = dict(os.environ)
    # GStreamer reads GST_PLUGIN_PATH_1_0 instead of GST_PLUGIN_PATH when it is set.
    plugin_variable = "GST_PLUGIN_PATH_1_0" if "GST_PLUGIN_PATH_1_0" in environment else "GST_PLUGIN_PATH"
    _with_path(environment, plugin_variable, origin["plugin_dir"])
    _with_path(environment, "PYTHONPATH", origin["python_path"])
    environment.setdefault("EMI_PYTHON", origin["python"])
    return subprocess.run(["bash", script, *arguments], env=environment).returncode


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


def _signals_of_generated_frames(app, frames, ignored):
    """Runs the app's elements on `frames` generated frames; returns their signals. The settings
    the elements don't have are added to `ignored`."""
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    from .runner import _make, app_elements

    Gst.init(None)
    with tempfile.TemporaryDirectory() as scratch:
        location = os.path.join(scratch, "signals.jsonl")
        pipeline = Gst.Pipeline.new("check")
        source = Gst.parse_bin_from_description(
            f"videotestsrc pattern=ball num-buffers={frames} ! videoconvert ! "
            f"capsfilter caps=video/x-raw,format={app.format},width={app.width},height={app.height},"
            "framerate=30/1", True)
        chain = [source] + app_elements(app, ignored)
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
    ignored = list(app.ignored)
    signals = _signals_of_generated_frames(app, frames, ignored)
    for line in ignored_lines(ignored):
        print(line, file=out)
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
    run.add_argument("--display", action="store_true", help="show the annotated video in a window")
    run.add_argument("--report", action="store_true",
                     help="write OUTPUT/report.html at the end (as `emi report OUTPUT`)")
    previous = run.add_mutually_exclusive_group()
    previous.add_argument("--append", action="store_true",
                          help="add to the previous run in --output (else it is refused)")
    previous.add_argument("--overwrite", action="store_true",
                          help="replace the previous run in --output (else it is refused)")
    prepare = commands.add_parser(
        "prepare", help="run the app's resource/prepare_resource.sh with this emi",
        description="Runs APP_DIR/resource/prepare_resource.sh with this emi's GStreamer plugin "
                    "and Python package, and records them in the app for later runs of the script.")
    prepare.add_argument("app_dir")
    prepare.add_argument("arguments", nargs=argparse.REMAINDER,
                         help="passed on, e.g. --random-weights or --weights FILE")
    report = commands.add_parser("report", help="a run's output as one HTML page with plots")
    report.add_argument("output_dir")
    args = parser.parse_args(argv)

    interrupts = None
    if args.command == "run":
        # Before anything starts a thread, so that every thread inherits the blocked SIGINT.
        from .interrupts import InterruptWatcher

        interrupts = InterruptWatcher(sys.stderr).start()
    from .runner import SIGNALS_NAME, RunError, prepare_output, run_app

    try:
        if args.command == "new":
            print(f"created {new_app(args.template, args.app_dir)}")
            return 0
        if args.command == "prepare":
            return prepare_app(args.app_dir, args.arguments)
        if args.command == "report":
            from .report import write_report

            print(f"report: {write_report(args.output_dir)}")
            return 0
        if args.command == "check":
            return 1 if check_app(args.app_dir, args.signal, args.frames) else 0
        if len(args.stream) != 1 or args.streams or not args.input:
            from .streams import run_streams, stream_paths_of, stream_specs

            paths = stream_paths_of(args.stream, args.streams, args.app_dir)
            if not paths:
                raise AppConfigError("no stream: give --stream STREAM.json (repeatable) or --streams DIR")
            if args.display or args.append:
                raise AppConfigError(f"--{'display' if args.display else 'append'}: one stream at a "
                                     "time (give a single --stream and --input)")
            specs = stream_specs(paths, args.output, args.input)
            for spec in specs:
                prepare_output(spec.output_dir, "overwrite" if args.overwrite else "new")
            summary = run_streams(load_app(args.app_dir), specs,
                                  annotated=not args.no_video, interrupts=interrupts)
            print(json.dumps(summary, indent=2))
            if args.report:
                from .report import write_report

                for spec in specs:
                    if os.path.isfile(os.path.join(spec.output_dir, SIGNALS_NAME)):
                        print(f"emi: report: {write_report(spec.output_dir)}", file=sys.stderr)
            return 130 if summary["interrupted"] else (1 if summary["failed"] else 0)
        stream = args.stream[0]
        if not os.path.isfile(stream) and os.path.isfile(os.path.join(args.app_dir, stream)):
            stream = os.path.join(args.app_dir, stream)
        summary = run_app(load_app(args.app_dir), stream, args.input, args.output,
                          annotated=not args.no_video, display=args.display,
                          output_mode="append" if args.append else
                          "overwrite" if args.overwrite else "new",
                          interrupts=interrupts)
        print(json.dumps(summary, indent=2))
        if args.report:
            from .report import write_report

            print(f"emi: report: {write_report(args.output)}", file=sys.stderr)
        return 130 if summary["interrupted"] else 0
    except (AppConfigError, RunError) as error:
        print(f"emi: {error}", file=sys.stderr)
        return 1
    finally:
        if interrupts is not None:
            interrupts.stop()


if __name__ == "__main__":
    sys.exit(main())
