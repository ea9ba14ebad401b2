# SPDX-License-Identifier: LGPL-2.1-or-later
"""kill -9 of `emi run` mid-upload and mid-clip, then a second run: the scenario that
tests/test_kill_run.py asserts on and bench/faults.py prints a row of.

Run 1 is `python3 -m emi run` on a live test pattern with two rules on every event from frame 15
on: `record` (a clip that stays open: each event extends it) and `upload` to a local Firehose
(tests/firehose_server.py) that takes each request in and never answers. Once events were fired,
a clip has two fragments on disk, a request is in flight and events fired after it wait in the
spool, run 1 gets SIGKILL. Run 2 (`--append`, the same XDG_STATE_HOME, a Firehose that answers)
sends what run 1 left. Everything here is read from what the runs and the servers wrote: no
timing is assumed.
"""

import collections
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "scripts")]
from local_firehose import LocalFirehose  # noqa: E402
from pipeline_end import decoded_frames_and_duration  # noqa: E402,F401  (test_kill_run, bench/faults.py)

SOURCE_ROOT = os.path.dirname(HERE)
STREAM, REGION = "emi-kill-run", "eu-west-1"
FIRST_EVENT_FRAME = 15
FRAMERATE = "15/1"  # the live test pattern's 300 frames last 20 s: the kill lands long before
BATCH_LIMIT = 500   # PutRecordBatch's records per request: what one request in flight can duplicate
# The clip starts a second before the first event and mp4mux writes a fragment a second: by the
# time this many events (frames) were fired, two whole fragments were written, so they must be in
# the file, not in the process, when the kill comes.
EVENTS_FOR_TWO_FRAGMENTS = 90


def make_app(folder):
    """An app whose program gives each frame {"predicted_class": "marching", "probability": frame_num}
    and whose callback makes each such result an event."""
    os.makedirs(os.path.join(folder, "resource"))
    os.makedirs(os.path.join(folder, "streams"))
    shutil.copy(os.path.join(HERE, "scripts", "frame_result.py"), os.path.join(folder, "resource", "program.py"))
    config = {
        "developer_name": "emi tests", "application_name": "Kill Test", "application_version": "1.0.0",
        "application_description": "an event per frame",
        "pipeline_configuration": {
            "input": {"width": 64, "height": 48, "format": "RGBA", "framerate": FRAMERATE},
            "empycustom": {"custom-lib": "resource/program.py", "process-interval": 1},
            "aimeta": {"signal-interval": 1},
        },
        "signal_callback_function_name": "emi_signal_callback",
        "event_item_keys": [{"key": "predicted_class", "type": "string"},
                            {"key": "probability", "type": "float", "min_value": 0, "max_value": 1000}],
        "options": {},
    }
    with open(os.path.join(folder, "emi_stream_config.json"), "w") as config_file:
        json.dump(config, config_file)
    with open(os.path.join(folder, "emi_signal_callback.py"), "w") as callback:
        callback.write("def emi_signal_callback(signal):\n"
                       "    frame = signal['frame'][0]\n"
                       "    return [dict(result) for result in frame.get('emcustom', [])], ''\n")
    return folder


def write_stream(path, firehose, from_frame, record):
    """A stream config: upload (and record) every event whose probability >= from_frame."""
    condition = [{"key": "probability", "operator": ">=", "value": from_frame}]
    rules = [{"rule_name": "Upload", "and": condition, "or": [],
              "action": {"action_name": "upload", **firehose.action()}}]
    if record:
        rules.append({"rule_name": "Record", "and": condition, "or": [],
                      "action": {"action_name": "record", "duration_in_seconds": 1, "max_duration_in_seconds": 60}})
    with open(path, "w") as stream:
        json.dump({"stream_id": "cam1", "stream_type": "file", "location": "", "action_rules": rules}, stream)
    return path


def json_lines(path):
    """The lines of a JSON lines file that a kill may have cut: a torn last line is left out."""
    lines = []
    if not os.path.exists(path):
        return lines
    with open(path, encoding="utf-8") as lines_file:
        for line in lines_file:
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def fired_events(signals_path, rule_name):
    return [line["firing"]["event"] for line in json_lines(signals_path)
            if "firing" in line and line["firing"]["rule_name"] == rule_name]


def spooled_records(spool_root):
    """Records in the delivery stream's spool, from its batch files (spool.h's format)."""
    records = []
    for path in glob.glob(os.path.join(spool_root, "w-*", "*.batch")):
        with open(path, "rb") as batch:
            contents = batch.read()
        rest = contents[len(b"EMIFHS1\n"):] if contents.startswith(b"EMIFHS1\n") else b""
        while len(rest) >= 8:
            length = int.from_bytes(rest[:4], "little")
            records.append(rest[8:8 + length].decode("utf-8", "replace"))
            rest = rest[8 + length:]
    return records


def clip_and_fragments(clips_dir):
    """The clip being written (None before there is one) and the fragments in its file now."""
    for path in glob.glob(os.path.join(clips_dir, "*.mp4")):
        with open(path, "rb") as clip:
            return path, clip.read().count(b"moof")
    return None, 0


def make_movie(path, frames):
    subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), path, str(frames), "64x48"],
                   check=True)
    return path


def kill_mid_upload_and_clip(work, environment, timeout=120):
    """Runs the scenario in `work` (a fresh folder); `environment` finds the plugin and the emi
    package. Returns a dict of what happened (see the end)."""
    work = os.path.abspath(work)
    state = os.path.join(work, "state")
    environment = {**environment, "XDG_STATE_HOME": state, "NO_PROXY": "127.0.0.1"}
    app = make_app(os.path.join(work, "app"))
    out = os.path.join(work, "out")
    signals_path = os.path.join(out, "signals.jsonl")
    spool_root = os.path.join(state, "emi", "firehose", STREAM)
    os.makedirs(os.path.join(work, "first"))
    os.makedirs(os.path.join(work, "second"))
    command = [sys.executable, "-m", "emi", "run", app, "--input", "test", "--output", out, "--no-video"]

    # Run 1: a Firehose that takes requests in (and logs their records as delivered) but never answers.
    with LocalFirehose(os.path.join(work, "first"), STREAM, REGION, answer_delay=3600) as hanging:
        stream = write_stream(os.path.join(work, "first.json"), hanging, FIRST_EVENT_FRAME, record=True)
        with open(os.path.join(work, "first.log"), "w") as log:
            first = subprocess.Popen(command + ["--stream", stream], env=environment, stdout=subprocess.DEVNULL,
                                     stderr=log)
        deadline = time.monotonic() + timeout
        clip, fragments, requests = None, 0, []
        in_flight = fired = 0
        try:
            while time.monotonic() < deadline and first.poll() is None:
                requests = hanging.requests()
                in_flight = sum(request.get("records", 0) for request in requests)
                fired = len(fired_events(signals_path, "Upload"))
                clip, fragments = clip_and_fragments(os.path.join(out, "clips"))
                # A request in flight, events fired after it (in the spool only), a clip open with
                # two fragments (or events enough for two: then they should be in the file).
                if requests and fired > in_flight and (fragments >= 2 or fired >= EVENTS_FOR_TWO_FRAGMENTS):
                    break
                time.sleep(0.05)
            killed_running = first.poll() is None
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        if not killed_running or not requests:
            with open(os.path.join(work, "first.log")) as log:
                raise RuntimeError(f"run 1 ended (code {first.returncode}) or never had a request in flight "
                                   f"and a clip open before it was killed: {log.read()[-3000:]}")
        events_at_kill = fired
        first_requests = hanging.requests()
        first_delivered = hanging.delivered()
    fired = fired_events(signals_path, "Upload")
    spooled_after_kill = spooled_records(spool_root)
    sidecar = os.path.splitext(clip)[0] + ".json" if clip else ""

    # Run 2: a Firehose that answers; the rule never fires, so what arrives is what run 1 left.
    movie = make_movie(os.path.join(work, "short.mp4"), 30)
    with LocalFirehose(os.path.join(work, "second"), STREAM, REGION) as healthy:
        stream = write_stream(os.path.join(work, "second.json"), healthy, 10 ** 9, record=False)
        second = subprocess.run(command[:6] + [movie, "--output", out, "--no-video", "--append", "--stream", stream],
                                env=environment, capture_output=True, text=True, timeout=timeout)
        second_delivered = healthy.delivered()
    if second.returncode != 0:
        raise RuntimeError(f"run 2 failed (code {second.returncode}): {second.stderr[-3000:]}")

    def key(record):
        return json.loads(record)["probability"]

    delivered = collections.Counter(key(record) for record in first_delivered + second_delivered)
    fired_keys = [event["probability"] for event in fired]
    return {
        "fired": fired_keys,                           # events run 1's firing lines say were uploaded
        "delivered": delivered,                        # event -> times Firehose took it (both runs)
        "duplicated": sum(count - 1 for count in delivered.values()),
        "lost": sorted(set(fired_keys) - set(delivered)),
        "unlogged": sorted(set(delivered) - set(fired_keys)),  # delivered, but no firing line
        "in_flight": in_flight,                        # records of run 1's unanswered request
        "first_requests": first_requests,
        "spooled_after_kill": len(spooled_after_kill),
        "second_summary": json.loads(second.stdout),
        "spool_left": len(spooled_records(spool_root)),
        "rejected_file": os.path.exists(os.path.join(spool_root, "rejected.jsonl")),
        "clip": clip,
        "fragments_at_kill": fragments,                # whole fragments in the clip's file then
        "events_at_kill": events_at_kill,
        "sidecar": json.load(open(sidecar)) if os.path.exists(sidecar) else None,
        "output": out,
    }
