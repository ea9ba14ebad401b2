# SPDX-License-Identifier: LGPL-2.1-or-later
"""The app folder, emi_stream_config.json validation, and `emi new | check | run`."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import emi  # noqa: E402
from emi import app as emi_app  # noqa: E402
from emi import cli, runner  # noqa: E402
from local_firehose import LocalFirehose  # noqa: E402

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
from pipeline_end import decoded_frames, wait_for_end  # noqa: E402
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Gst.init(None)


def make_app(folder, pipeline=None, **extra):
    """An app folder running tests/scripts/frame_result.py as its empycustom."""
    os.makedirs(os.path.join(folder, "resource"), exist_ok=True)
    os.makedirs(os.path.join(folder, "streams"), exist_ok=True)
    with open(os.path.join(SCRIPTS, "frame_result.py")) as source, \
            open(os.path.join(folder, "resource", "program.py"), "w") as target:
        target.write(source.read())
    config = {
        "developer_name": "emi tests", "application_name": "Test App",
        "application_version": "1.0.0", "application_description": "frame results",
        "pipeline_configuration": pipeline if pipeline is not None else {
            "input": {"width": 64, "height": 48, "format": "RGBA"},
            "empycustom": {"custom-lib": "resource/program.py", "process-interval": 1,
                           "options": {"threshold": 1}},
            "overlay": {"display-clock": True},
            "aimeta": {"signal-interval": 1},
        },
        "signal_callback_function_name": "emi_signal_callback",
        "event_item_keys": [{"key": "predicted_class", "type": "string"},
                            {"key": "probability", "type": "float", "min_value": 0, "max_value": 100}],
        "options": {},
    }
    config.update(extra)
    with open(os.path.join(folder, emi_app.CONFIG_NAME), "w") as config_file:
        json.dump(config, config_file)
    with open(os.path.join(folder, emi_app.CALLBACK_NAME), "w") as callback:
        callback.write(
            "def emi_signal_callback(signal):\n"
            "    frame = signal['frame'][0]\n"
            "    return [dict(result) for result in frame.get('emcustom', [])], ''\n")
    stream = {"stream_id": "cam1", "stream_type": "file", "location": "",
              "action_rules": [{"rule_name": "Record", "and": [
                  {"key": "probability", "operator": ">=", "value": 30}], "or": [],
                  "action": {"action_name": "record", "duration_in_seconds": 1,
                             "max_duration_in_seconds": 60}}]}
    with open(os.path.join(folder, "streams", "stream.json"), "w") as stream_file:
        json.dump(stream, stream_file)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("media") / "clip.mp4")
    subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), path, "60",
                    "96x72"], check=True)
    return path


def config_error(folder):
    with pytest.raises(emi_app.AppConfigError) as error:
        emi_app.load_app(folder)
    return str(error.value)


def test_a_valid_app_maps_to_our_elements(tmp_path):
    app = emi_app.load_app(make_app(str(tmp_path / "app")))
    assert [stage.factory for stage in app.stages] == ["empycustom", "emoverlay"]
    program = app.stages[0].properties
    assert program["module"] == str(tmp_path / "app" / "resource" / "program.py")
    assert json.loads(program["options"]) == {"threshold": 1}
    assert (app.width, app.height, app.format) == (64, 48, "RGBA")
    assert app.callback_function == "emi_signal_callback"


def test_deepstream_properties_are_reported_not_run(tmp_path):
    pipeline = {"input": {"width": 64, "height": 48, "batched-push-timeout": 40000},
                "primary": {"config-file-path": "pgie.txt"},
                "tracker": {"ll-lib-file": "libnvds_nvmultiobjecttracker.so", "iou-threshold": 0.4},
                "secondary": [{"empycustom": {"custom-lib": "resource/program.py"}}],
                "aimeta": {"signal-interval": 2, "silent": True}}
    app = emi_app.load_app(make_app(str(tmp_path / "app"), pipeline))
    assert [stage.role for stage in app.stages] == ["tracker", "secondary[0]"]
    assert app.signal_interval == 2
    assert "pipeline_configuration.input.batched-push-timeout (DeepStream nvstreammux only)" in app.ignored
    assert any(item.startswith("pipeline_configuration.primary (a DeepStream nvinfer stage") for item in app.ignored)
    assert "pipeline_configuration.aimeta.silent (EDGEMATRIX aimeta only)" in app.ignored
    pipeline_object, _, ignored = runner.build_pipeline(
        app, os.path.join(app.folder, "streams", "stream.json"), "test", str(tmp_path / "out"), annotated=False)
    assert "pipeline_configuration.tracker.ll-lib-file (no such property of emtracker)" in ignored
    tracker = next(element for element in pipeline_object.iterate_elements()
                   if element.get_factory().get_name() == "emtracker")
    assert tracker.get_property("iou-threshold") == pytest.approx(0.4)


def test_config_errors_name_the_file_and_the_field(tmp_path):
    folder = str(tmp_path / "app")
    config_path = os.path.join(folder, emi_app.CONFIG_NAME)
    make_app(folder)
    config = json.load(open(config_path))
    config["pipeline_configuration"]["tracker"] = {"iou-threshold": "high"}
    json.dump(config, open(config_path, "w"))
    assert config_error(folder) == (f"{config_path}: pipeline_configuration.tracker.iou-threshold: "
                                    "'high' is not of type 'number'")
    config["pipeline_configuration"]["tracker"] = {}
    config["pipeline_configuration"]["empycustom"]["custom-lib"] = "resource/missing.py"
    json.dump(config, open(config_path, "w"))
    assert config_error(folder) == (f"{config_path}: pipeline_configuration.empycustom.custom-lib: "
                                    f"no such file: {os.path.join(folder, 'resource', 'missing.py')}")
    del config["application_name"]
    json.dump(config, open(config_path, "w"))
    assert config_error(folder) == f"{config_path}: (top level): 'application_name' is a required property"
    open(config_path, "w").write("{\"application_name\": ")
    assert config_error(folder).startswith(f"{config_path}: not valid JSON: ")
    assert config_error(str(tmp_path / "nowhere")) == f"{tmp_path / 'nowhere'}: no such app folder"


def test_events_are_checked_against_event_item_keys():
    keys = [{"key": "predicted_class", "type": "string", "options": ["marching", "running"]},
            {"key": "probability", "type": "float", "min_value": 0, "max_value": 100}]
    assert emi_app.check_event({"predicted_class": "marching", "probability": 63}, keys) == []
    assert emi_app.check_event({"predicted_class": "sitting", "probability": 163.0}, keys) == [
        "'predicted_class' = 'sitting' is not one of ['marching', 'running']",
        "'probability' = 163.0 is above 100"]
    assert emi_app.check_event({"probability": "63"}, keys) == [
        "missing 'predicted_class'", "'probability' is str, not float"]


def test_new_copies_a_template_and_refuses_to_overwrite(tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    make_app(str(templates / "My Template"))
    monkeypatch.setattr(cli, "TEMPLATE_FOLDERS", [str(templates)])
    created = cli.new_app("My Template", str(tmp_path / "mine"))
    assert os.path.isfile(os.path.join(created, emi_app.CONFIG_NAME))
    with pytest.raises(emi_app.AppConfigError, match="already exists"):
        cli.new_app("My Template", str(tmp_path / "mine"))
    with pytest.raises(emi_app.AppConfigError, match=r"no template 'Other' \(templates: My Template\)"):
        cli.new_app("Other", str(tmp_path / "other"))


def test_check_runs_the_program_and_the_callback(tmp_path, capsys):
    folder = make_app(str(tmp_path / "app"))
    assert cli.check_app(folder, frames=5) == 0
    out = capsys.readouterr().out
    assert "programs ran on 5 generated frames: 5 signals" in out
    assert '"predicted_class": "marching", "probability": 4.0' in out
    signal_path = tmp_path / "signal.json"
    signal_path.write_text(json.dumps({"frame": [{"frame_num": 0, "timestamp": "T",
                                                   "emcustom": [{"predicted_class": 3, "probability": 500}]}]}))
    assert cli.check_app(folder, str(signal_path), frames=2) == 2
    out = capsys.readouterr().out
    assert "'predicted_class' is int, not string" in out and "'probability' = 500 is above 100" in out


def test_run_writes_signals_events_clips_and_an_annotated_movie(tmp_path, clip):
    app = emi_app.load_app(make_app(str(tmp_path / "app")))
    out = str(tmp_path / "out")
    summary = runner.run_app(app, os.path.join(app.folder, "streams", "stream.json"), clip, out,
                             out=open(os.devnull, "w"))
    assert summary["frames"] == 60 and summary["signals"] == 60 and summary["events"] == 60
    assert summary["firings"] == 30  # probability = frame_num >= 30
    lines = [json.loads(line) for line in open(summary["signals_file"])]
    assert sum("frame" in line for line in lines) == 60
    assert sum("firing" in line for line in lines) == 30
    assert len(summary["clips"]) == 1 and re.fullmatch(r"cam1_.*_1\.mp4", os.path.basename(summary["clips"][0]))
    assert decoded_frames(summary["annotated"]) == 60




def test_ctrl_c_ends_cleanly_with_valid_files(tmp_path):
    folder = make_app(str(tmp_path / "app"))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "emi", "run", folder, "--stream", "streams/stream.json", "--input", "test",
         "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signals = out / runner.SIGNALS_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:  # until 10 frames went through
        if signals.exists() and sum(line.startswith('{"frame"') for line in open(signals)) >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] and 10 <= summary["frames"] < runner.TEST_PATTERN_FRAMES
    assert all(json.loads(line) for line in open(signals))  # every line whole
    assert decoded_frames(summary["annotated"]) == summary["frames"]


def test_a_missing_movie_is_a_clear_error(tmp_path, capsys):
    folder = make_app(str(tmp_path / "app"))
    assert cli.main(["run", folder, "--stream", "streams/stream.json", "--input", str(tmp_path / "none.mp4"),
                     "--output", str(tmp_path / "out")]) == 1
    assert f"emi: {tmp_path / 'none.mp4'}: no such movie" in capsys.readouterr().err


def test_upload_rules_deliver_each_event_once_to_firehose(tmp_path, clip, monkeypatch):
    """The seed's upload action against a local Firehose that checks every SigV4 signature."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    with LocalFirehose(str(tmp_path), "events", "ap-northeast-1", fail_records=3) as firehose:
        folder = make_app(str(tmp_path / "app"))
        stream = {"stream_id": "cam1", "action_rules": [{
            "rule_name": "Upload to AWS Kinesis Firehose",
            "and": [{"key": "probability", "operator": ">=", "value": 50}], "or": [],
            "action": {"action_name": "upload", **firehose.action()}}]}
        stream_path = tmp_path / "upload.json"
        stream_path.write_text(json.dumps(stream))
        summary = runner.run_app(emi_app.load_app(folder), str(stream_path), clip, str(tmp_path / "out"),
                                 annotated=False, out=open(os.devnull, "w"))
        data = firehose.delivered()
    assert summary["firings"] == 10  # frames 50..59
    assert all(text.endswith("\n") for text in data)  # one event per line in the delivered objects
    delivered = sorted(json.loads(text)["probability"] for text in data)
    assert delivered == [float(frame) for frame in range(50, 60)]  # each once, the 3 failed ones resent
    # The spool is the user's, per delivery stream, not the run's: a later run with another output
    # sends what an outage left.
    assert (state / "emi" / "firehose" / "events").is_dir()
    assert not any("spool" in name for name in os.listdir(tmp_path / "out"))


def test_check_reports_ignored_settings_as_run_does(tmp_path, clip, capsys):
    pipeline = {"input": {"width": 96, "height": 72, "batched-push-timeout": 40000},
                "tracker": {"ll-lib-file": "libnvds_nvmultiobjecttracker.so", "iou-threshold": 0.4},
                "empycustom": {"custom-lib": "resource/program.py"},
                "aimeta": {"signal-interval": 1, "silent": True}}
    folder = make_app(str(tmp_path / "app"), pipeline)
    cli.check_app(folder, frames=2)
    checked = [line for line in capsys.readouterr().out.splitlines() if line.startswith("emi: ignored ")]
    run_out = io.StringIO()
    runner.run_app(emi_app.load_app(folder), os.path.join(folder, "streams", "stream.json"), clip,
                   str(tmp_path / "out"), annotated=False, out=run_out)
    ran = [line for line in run_out.getvalue().splitlines() if line.startswith("emi: ignored ")]
    assert checked == ran
    assert "emi: ignored pipeline_configuration.tracker.ll-lib-file (no such property of emtracker)" in ran
    assert "emi: ignored pipeline_configuration.aimeta.silent (EDGEMATRIX aimeta only)" in ran


def test_run_refuses_a_previous_run_unless_told_to_append_or_overwrite(tmp_path, clip, capsys):
    folder = make_app(str(tmp_path / "app"))
    out = tmp_path / "out"
    arguments = ["run", folder, "--stream", "streams/stream.json", "--input", clip, "--output", str(out),
                 "--no-video"]
    assert cli.main(arguments) == 0
    first = [json.loads(line) for line in open(out / runner.SIGNALS_NAME)]
    (out / "notes.txt").write_text("kept")  # not the run's: --overwrite leaves it
    capsys.readouterr()
    assert cli.main(arguments) == 1
    assert (f"emi: {out} holds a previous run (signals.jsonl, clips/, run.json): --append adds this run "
            "to it, --overwrite replaces it") in capsys.readouterr().err
    assert [json.loads(line) for line in open(out / runner.SIGNALS_NAME)] == first  # untouched
    assert cli.main(arguments + ["--overwrite"]) == 0
    assert sum(line.startswith('{"frame"') for line in open(out / runner.SIGNALS_NAME)) == 60
    assert len(os.listdir(out / runner.CLIPS_DIR)) == 2  # this run's clip and its sidecar
    assert (out / "notes.txt").read_text() == "kept"
    can_append = Gst.ElementFactory.make("emaimeta").find_property("append") is not None
    assert cli.main(arguments + ["--append"]) == (0 if can_append else 1)
    frames = sum(line.startswith('{"frame"') for line in open(out / runner.SIGNALS_NAME))
    assert frames == (120 if can_append else 60)


def write_blocking_app(folder):
    """An app whose program never returns from its first frame (after touching a marker file)."""
    make_app(folder)
    with open(os.path.join(folder, "resource", "program.py"), "w") as program:
        program.write("import os\nimport threading\n\n\n"
                      "def process_ip(io_buffer, in_meta):\n"
                      "    open(os.environ['EMI_TEST_BLOCKED'], 'w').close()\n"
                      "    threading.Event().wait()\n")
    return folder


def test_a_second_ctrl_c_ends_a_blocked_run_at_once(tmp_path):
    folder = write_blocking_app(str(tmp_path / "app"))
    blocked = tmp_path / "blocked"
    process = subprocess.Popen(
        [sys.executable, "-m", "emi", "run", folder, "--stream", "streams/stream.json", "--input", "test",
         "--output", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "EMI_TEST_BLOCKED": str(blocked)})
    deadline = time.monotonic() + 60
    while not blocked.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None and blocked.exists(), process.communicate()
    process.send_signal(signal.SIGINT)
    for line in process.stderr:  # the first Ctrl-C asks the pipeline to finish its files
        if "stopping (Ctrl-C)" in line:
            break
    assert process.poll() is None  # the program still blocks: the files can't be finished
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "second Ctrl-C: stopped at once" in stderr
    assert stdout == ""  # no summary: the process ended where it stood


def write_helper_app(folder, who):
    """An app folder whose program imports helper.py from its own folder."""
    os.makedirs(os.path.join(folder, "resource"))
    with open(os.path.join(folder, "resource", "helper.py"), "w") as helper:
        helper.write(f"WHO = {who!r}\n")
    with open(os.path.join(folder, "resource", "program.py"), "w") as program:
        program.write("import helper\nfrom helper import WHO\n\n\n"
                      "def process_ip(io_buffer, in_meta):\n"
                      "    return [{'helper': helper.WHO, 'imported': WHO}]\n")
    return os.path.join(folder, "resource", "program.py")


def test_apps_with_helpers_of_the_same_name_each_import_their_own(tmp_path):
    programs = {who: write_helper_app(str(tmp_path / who), who) for who in ("first", "second")}
    pipelines, results = [], {}
    for who, program in programs.items():  # both alive in one process at once
        pipeline = Gst.parse_launch(
            "videotestsrc num-buffers=3 ! video/x-raw,format=RGBA,width=32,height=16 ! "
            f'empycustom module="{program}" ! fakesink name=sink')
        seen = results.setdefault(who, [])

        def on_buffer(pad, info, seen=seen):
            seen.append(emi.frame_document(info.get_buffer())["frame"][0]["emcustom"][0])
            return Gst.PadProbeReturn.OK

        pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
        pipeline.set_state(Gst.State.PAUSED)  # started: the program is loaded
        pipelines.append(pipeline)
    for pipeline in pipelines:
        pipeline.set_state(Gst.State.PLAYING)
    for pipeline in pipelines:
        wait_for_end(pipeline, 60)
    for who in programs:
        assert results[who] == [{"helper": who, "imported": who}] * 3
    assert "helper" not in sys.modules  # nothing leaks under the bare name
    assert not [name for name in sys.modules if name.startswith("_emi_app_")]  # dropped at stop


def environment_without_emi():
    """The test environment less our plugin and package: what a shell outside ./emi has."""
    environment = dict(os.environ)
    environment["GST_PLUGIN_PATH_1_0"] = ":".join(
        folder for folder in environment["GST_PLUGIN_PATH_1_0"].split(":")
        if not os.path.isfile(os.path.join(folder, "libgstemi.so")))
    environment.pop("PYTHONPATH")
    return environment


@pytest.mark.parametrize("template", ["EMI Torch 3DCNN", "EMI Torch Imagenet Yolo IOU Counter"])
def test_prepare_resource_finds_the_emi_that_created_the_app(tmp_path, template):
    folder = cli.new_app(os.path.join(SOURCE_ROOT, "templates", template), str(tmp_path / "app"))
    origin = dict(line.split("=", 1) for line in open(os.path.join(folder, cli.ORIGIN_NAME))
                  if "=" in line and not line.startswith("#"))
    assert os.path.isfile(os.path.join(origin["plugin_dir"].strip(), "libgstemi.so"))
    assert origin["python_path"].strip() == os.path.join(SOURCE_ROOT, "python")
    # A checkpoint that is not there: the script gets past finding the plugin, to the weights.
    prepared = subprocess.run([os.path.join(folder, "resource", "prepare_resource.sh"), "--weights",
                               str(tmp_path / "missing.pth")], env=environment_without_emi(),
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 1
    assert "no empycustom element" not in prepared.stderr
    assert f"{tmp_path / 'missing.pth'}: no such checkpoint" in prepared.stderr


def test_prepare_resource_says_which_emi_is_missing(tmp_path):
    folder = cli.new_app(os.path.join(SOURCE_ROOT, "templates", "EMI Torch 3DCNN"), str(tmp_path / "app"))
    cli.write_origin(folder, {"plugin_dir": str(tmp_path / "gone"), "python_path": str(tmp_path / "gone"),
                              "python": sys.executable})
    prepared = subprocess.run([os.path.join(folder, "resource", "prepare_resource.sh"), "--random-weights"],
                              env=environment_without_emi(), capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 1
    assert (f"GStreamer has no empycustom element: this app was made by the emi whose plugin was in "
            f"{tmp_path / 'gone'} (see {folder}/resource/../.emi-origin)") in prepared.stderr
    assert "emi prepare APP_FOLDER" in prepared.stderr
    assert not os.path.exists(os.path.join(folder, "resource", "models"))  # nothing half done


def test_emi_prepare_runs_the_script_with_this_emi(tmp_path, capsys):
    folder = cli.new_app(os.path.join(SOURCE_ROOT, "templates", "EMI Torch 3DCNN"), str(tmp_path / "app"))
    os.remove(os.path.join(folder, cli.ORIGIN_NAME))  # an app copied by hand
    assert cli.prepare_app(folder, ["--weights", str(tmp_path / "missing.pth")]) == 1
    assert os.path.isfile(os.path.join(folder, cli.ORIGIN_NAME))  # recorded for the next time
    with pytest.raises(emi_app.AppConfigError, match="prepare_resource.sh: no such file"):
        cli.prepare_app(str(tmp_path), [])


def test_several_streams_refuse_previous_runs_too_and_report_each(tmp_path, clip, capsys):
    folder = make_app(str(tmp_path / "app"))
    for name in ("north", "south"):
        stream = {"stream_id": name, "stream_type": "file", "location": clip, "action_rules": []}
        (tmp_path / "app" / "streams" / f"{name}.json").write_text(json.dumps(stream))
    arguments = ["run", folder, "--stream", "streams/north.json", "--stream", "streams/south.json",
                 "--output", str(tmp_path / "out"), "--no-video"]
    assert cli.main(arguments + ["--report"]) == 0
    err = capsys.readouterr().err
    for name in ("north", "south"):
        assert f"emi: report: {tmp_path / 'out' / name / runner.REPORT_NAME}" in err
    assert cli.main(arguments) == 1
    assert f"emi: {tmp_path / 'out' / 'north'} holds a previous run" in capsys.readouterr().err
    assert cli.main(arguments + ["--display"]) == 1
    assert "--display: one stream at a time" in capsys.readouterr().err
    assert cli.main(arguments + ["--overwrite"]) == 0
    assert not (tmp_path / "out" / "north" / runner.REPORT_NAME).exists()  # the new run has none
