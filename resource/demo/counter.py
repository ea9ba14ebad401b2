# SPDX-License-Identifier: LGPL-2.1-or-later
"""`./emi demo --input MOVIE`: the "EMI Torch Imagenet Yolo IOU Counter" app on the user's movie,
printing the people counts as they change.

Makes a fresh copy of the template under WORK/app, prepares it (YOLOX-Nano from emi's own copy;
SqueezeNet's pretrained weights where the network allows, else random ones, said plainly), runs
`python3 -m emi run` on the movie and follows its signals file, printing a line each time the
number of people in view or the total of tracks changes. Needs GST_PLUGIN_PATH, PYTHONPATH and
EMI_TEMPLATES to name this checkout's plugin, package and templates (./emi sets them).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

TEMPLATE = "EMI Torch Imagenet Yolo IOU Counter"
STREAM = os.path.join("streams", "torch_imagenet_stream.json")
POLL_SECONDS = 0.2


def log(text):
    print(f"\033[1m[emi]\033[0m {text}", file=sys.stderr, flush=True)


def prepare(app, work):
    """Prepares the app's models; says which classifier weights it has."""
    prepare_script = os.path.join(app, "resource", "prepare_resource.sh")
    prepare_log = os.path.join(work, "prepare.log")
    with open(prepare_log, "w") as output:
        if subprocess.run([prepare_script], stdout=output, stderr=output).returncode == 0:
            log("SqueezeNet has its pretrained ImageNet weights")
            return
        log(f"no pretrained SqueezeNet weights (see {prepare_log}): the classes shown are an untrained "
            "network's; the detections and counts are YOLOX-Nano's, real")
        if subprocess.run([prepare_script, "--random-weights"], stdout=output, stderr=output).returncode != 0:
            raise SystemExit(f"prepare_resource.sh failed: see {prepare_log}")


def counts_of(record):
    """(frame number, counts) of a signals-file line, or None for lines without counts."""
    frames = record.get("frame")
    frame = frames[0] if isinstance(frames, list) and frames and isinstance(frames[0], dict) else record
    counts = frame.get("counts")
    if not isinstance(counts, dict):
        return None
    return frame.get("frame_num"), counts


def describe(counts):
    by_label = counts.get("by_label") or {}
    labels = ", ".join(f"{label} {count}" for label, count in sorted(by_label.items()))
    return f"in view {counts.get('in_view', 0):>3}   total {counts.get('total', 0):>4}" + \
        (f"   ({labels})" if labels else "")


def follow(path, process):
    """Prints each change of the counts in the signals file `path` while `process` runs."""
    shown = None
    position = 0
    pending = ""
    while True:
        finished = process.poll() is not None
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as file:
                file.seek(position)
                pending += file.read()
                position = file.tell()
            *lines, pending = pending.split("\n")
            for line in lines:
                try:
                    found = counts_of(json.loads(line))
                except (json.JSONDecodeError, AttributeError):
                    continue
                if found is None:
                    continue
                frame_num, counts = found
                key = (counts.get("in_view"), counts.get("total"))
                if key != shown:
                    print(f"frame {frame_num:>5}   {describe(counts)}", flush=True)
                    shown = key
        if finished:
            return process.returncode
        time.sleep(POLL_SECONDS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="a movie file")
    parser.add_argument("--work", required=True, help="folder for the app copy and its output")
    arguments = parser.parse_args()
    movie = os.path.abspath(arguments.input)
    if not os.path.isfile(movie):
        raise SystemExit(f"./emi demo --input {arguments.input}: no such file")
    work = os.path.abspath(arguments.work)
    app, output = os.path.join(work, "app"), os.path.join(work, "out")
    shutil.rmtree(app, ignore_errors=True)
    shutil.rmtree(output, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    subprocess.run([sys.executable, "-m", "emi", "new", TEMPLATE, app], check=True, stdout=subprocess.DEVNULL)
    prepare(app, work)
    log(f"running {TEMPLATE} on {movie} (output in {output}); counts as they change:")
    process = subprocess.Popen([sys.executable, "-m", "emi", "run", app, "--stream", STREAM, "--input", movie,
                                "--output", output], stdout=subprocess.DEVNULL)
    try:
        status = follow(os.path.join(output, "signals.jsonl"), process)
    except KeyboardInterrupt:
        process.wait()
        status = 130
    if status == 0:
        log(f"done: annotated video and signals in {output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
