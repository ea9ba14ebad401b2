# SPDX-License-Identifier: LGPL-2.1-or-later
"""N streams of the counter app in one `emi run` against N `emi run` processes, and a batched
model call against batch size 1. Prints figures; not a test.

    GST_PLUGIN_PATH=build/plugin PYTHONPATH=python /usr/bin/python3 bench/bench_streams.py \
        [--movie ../shared/media/entrance_360p.mp4] [--frames 150] [--streams 1,2,4] [--cpus 0,1]
    ... bench/bench_streams.py --batching-only      # only the ResNet-18 batching figures
    ... bench/bench_streams.py --batching-only --element-frames 12 --element-rounds 3

Streams: the template "EMI Torch Imagenet Yolo IOU Counter" copied to a scratch folder with
randomly initialised SqueezeNet weights (resource/prepare_resource.sh --random-weights), each
stream a copy of its stream config with `location` set to the first --frames frames of the movie
(re-encoded once). Outputs are signals and clips only (--no-video), the same both ways. For each N: one process running N streams, then N processes
running one stream each at the same time. Figures: wall time from launch to the last exit,
aggregate frames/s over it, peak resident memory (the sum of the processes' peaks for N
processes), per-frame latency from the source to emaimeta (p50: median of the streams' p50s,
p95: the largest of their p95s).

Batching: torchvision ResNet-18 (random weights) on 224×224 inputs, ms per frame called with
batch sizes 1, 2, 4, 8, and through emi.shared_model with 4 threads calling one frame at a time
(max_batch_size 4): the batch sizes it formed and ms per frame. Then the same through the
elements: --element-streams (4) test-pattern sources, each into an `emclassify
inference-region=full-frame model=torchvision.models.resnet18` of one pipeline, all with one
weights file (random weights, saved: one shared model), for each max-batch-size / max-batch-delay
of --element-settings: wall ms per frame from PLAYING to EOS (all streams' frames) and the batch
sizes the shared model was called with.
"""

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(SOURCE_ROOT, "templates", "EMI Torch Imagenet Yolo IOU Counter")
DEFAULT_MOVIE = os.path.join(os.path.dirname(SOURCE_ROOT), "shared", "media", "entrance_360p.mp4")


def trimmed_movie(movie, frames, folder):
    """The first `frames` frames of `movie`, as an H.264 MP4 of its own (decoded once here)."""
    path = os.path.join(folder, "clip.mp4")
    subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={movie}", "!", "decodebin", "!",
                    "videoconvert", "!", "video/x-raw,format=I420", "!", "identity", "eos-after=" + str(frames),
                    "!", "x264enc", "speed-preset=veryfast", "!", "h264parse", "!", "mp4mux", "!",
                    "filesink", f"location={path}"], check=True)
    return path


def prepared_app(folder):
    app = os.path.join(folder, "app")
    shutil.copytree(TEMPLATE, app, ignore=shutil.ignore_patterns("__pycache__", "models"))
    script = os.path.join(app, "resource", "prepare_resource.sh")
    result = subprocess.run(["bash", script, "--random-weights"], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"prepare_resource.sh --random-weights failed ({result.stderr.strip()[-300:]}); "
              "installing the classifier's random weights alone", file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(app, "resource", "image_classification.py"),
                        "--random-weights"], check=True)
    return app


def stream_configs(app, clip, count, folder):
    with open(os.path.join(app, "streams", "torch_imagenet_stream.json")) as template:
        stream = json.load(template)
    paths = []
    for index in range(count):
        stream.update({"stream_id": f"cam{index}", "location": clip})
        path = os.path.join(folder, f"cam{index}.json")
        with open(path, "w") as config:
            json.dump(stream, config)
        paths.append(path)
    return paths


def launch(app, streams, output, cpus):
    command = [sys.executable, "-m", "emi", "run", app, "--output", output, "--no-video"]
    for stream in streams:
        command += ["--stream", stream]
    if cpus:
        command = ["taskset", "-c", cpus] + command
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_all(processes):
    """(summaries, peak RSS of each in MiB) once every process has ended."""
    summaries, peaks = [], []
    for process in processes:
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"emi run failed ({process.returncode}): {stdout[-500:]}")
        # The programs print to stdout too: the summary is the JSON object that ends it.
        summaries.append(json.loads(stdout[stdout.rindex('{\n  "streams"'):]))
        peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return summaries, peaks


def measure(app, streams, folder, separate, cpus):
    started = time.monotonic()
    if separate:
        processes = [launch(app, [stream], os.path.join(folder, f"out-{index}"), cpus)
                     for index, stream in enumerate(streams)]
    else:
        processes = [launch(app, streams, os.path.join(folder, "out"), cpus)]
    summaries, peaks = wait_all(processes)
    wall = time.monotonic() - started
    per_stream = [stream for summary in summaries for stream in summary["streams"]]
    assert all(stream["state"] == "finished" for stream in per_stream), per_stream
    frames = sum(stream["frames"] for stream in per_stream)
    latencies = [stream["latency_ms"] for stream in per_stream if stream["latency_ms"]]
    return {"wall_s": wall, "frames": frames, "fps": frames / wall, "rss_mib": sum(peaks),
            "p50_ms": statistics.median(latency["p50"] for latency in latencies),
            "p95_ms": max(latency["p95"] for latency in latencies)}


def bench_streams(args):
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        clip = trimmed_movie(args.movie, args.frames, folder)
        app = prepared_app(folder)
        print(f"counter app, {args.frames} frames of {os.path.basename(args.movie)} per stream, --no-video"
              + (f", pinned to CPUs {args.cpus}" if args.cpus else ""))
        print(f"{'N':>2} {'how':<12} {'wall s':>7} {'frames':>6} {'agg fps':>8} {'RSS MiB':>8} "
              f"{'p50 ms':>7} {'p95 ms':>7}")
        single = None
        for count in args.streams:
            streams = stream_configs(app, clip, count, folder)
            results = {}
            for how, separate in (("1 process", False), (f"{count} processes", True)):
                run_folder = tempfile.mkdtemp(dir=folder)
                results[how] = result = measure(app, streams, run_folder, separate, args.cpus)
                print(f"{count:>2} {how:<12} {result['wall_s']:>7.1f} {result['frames']:>6} {result['fps']:>8.1f} "
                      f"{result['rss_mib']:>8.0f} {result['p50_ms']:>7.1f} {result['p95_ms']:>7.1f}", flush=True)
            one, many = results["1 process"], results[f"{count} processes"]
            if count == 1:
                single = one
            print(f"   one process / {count} processes: RSS {one['rss_mib'] / many['rss_mib']:.2f}, "
                  f"fps {one['fps'] / many['fps']:.2f}; p95 vs one stream alone: "
                  f"{one['p95_ms'] / single['p95_ms']:.2f}", flush=True)


def bench_batching(repeats=30):
    import torch
    import torchvision

    from emi.shared_models import SharedModel

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    frames = torch.randn(8, 3, 224, 224)
    print(f"ResNet-18 (random weights), 224x224, torch threads {torch.get_num_threads()}")
    # The sizes take turns, 3 rounds, and the medians are shown: a shared machine's load changes
    # within a minute.
    runs = collections.defaultdict(list)
    with torch.no_grad():
        model(frames[:1])
        for _ in range(3):
            for size in (1, 2, 4, 8):
                started = time.perf_counter()
                for _ in range(max(1, repeats // 3)):
                    for start in range(0, 8, size):
                        model(frames[start:start + size])
                runs[size].append(1000 * (time.perf_counter() - started) / (max(1, repeats // 3) * 8))
    per_frame = {size: statistics.median(times) for size, times in runs.items()}
    for size, ms in per_frame.items():
        print(f"  batch {size}: {ms:6.1f} ms per frame ({per_frame[1] / ms:.2f}x batch 1; median of 3)")
    shared = SharedModel(model, max_batch_size=4, max_batch_delay_ms=5)
    barrier = threading.Barrier(4)

    def stream(index):
        barrier.wait()
        for frame in range(repeats):
            shared(frames[index:index + 1])

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"  emi.shared_model, 4 threads x {repeats} frames (max_batch_size 4, delay 5 ms): "
          f"{1000 * elapsed / (4 * repeats):.1f} ms per frame, {shared.batches} batches, "
          f"{shared.items / shared.batches:.2f} frames per batch on average, largest {shared.largest_batch}")


def bench_element_batching(streams, frames, settings, rounds=1):
    """N emclassify elements sharing ResNet-18 in one pipeline, for each (max-batch-size,
    max-batch-delay) of `settings`: ms per frame and the batch sizes formed. With `rounds` > 1
    the settings take turns that many times and the medians are shown (a shared machine's load
    changes within a minute)."""
    import gi
    import torch
    import torchvision

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    from emi import shared_models

    Gst.init(None)
    print(f"emclassify ResNet-18 (random weights, shared), {streams} streams x {frames} frames of 320x240, "
          f"full-frame, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as folder:
        torch.manual_seed(0)
        state = torchvision.models.resnet18(weights=None).state_dict()
        results = collections.defaultdict(list)
        for turn, (size, delay) in enumerate(settings * rounds):
            weights = os.path.join(folder, f"resnet18-{size}-{delay}-{turn}.pth")  # a file each: a model each
            torch.save(state, weights)
            branches = " ".join(
                f"videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=RGBA,width=320,height=240 ! "
                f"emclassify inference-region=full-frame model=torchvision.models.resnet18 model-weights={weights} "
                f"max-batch-size={size} max-batch-delay={delay} ! fakesink sync=false"
                for _ in range(streams))
            pipeline = Gst.parse_launch(branches)
            pipeline.set_state(Gst.State.PAUSED)
            # Loaded, dry runs done, and each stream's first frame classified (the sinks preroll
            # with it): the timing is the other frames'.
            pipeline.get_state(Gst.CLOCK_TIME_NONE)
            started = time.perf_counter()
            pipeline.set_state(Gst.State.PLAYING)
            message = pipeline.get_bus().timed_pop_filtered(600 * Gst.SECOND,
                                                            Gst.MessageType.EOS | Gst.MessageType.ERROR)
            elapsed = time.perf_counter() - started
            pipeline.set_state(Gst.State.NULL)
            if message is None or message.type != Gst.MessageType.EOS:
                raise SystemExit(f"the pipeline failed: {message and message.parse_error()}")
            identity = shared_models.file_identity(weights)
            model = next(model for key, model in shared_models._models.items() if identity in key)
            # Frames only: without the dry runs (one each, alone).
            sizes = dict(sorted(model.batch_sizes.items()))
            sizes[1] -= streams
            sizes = {batch: count for batch, count in sizes.items() if count}
            per_frame = 1000 * elapsed / (streams * (frames - 1))
            results[(size, delay)].append(per_frame)
            print(f"  max-batch-size={size} max-batch-delay={delay}: {per_frame:6.1f} ms per frame, "
                  f"batches (size: count) {sizes}", flush=True)
        if rounds > 1:
            base = statistics.median(results[settings[0]])
            for (size, delay), runs in results.items():
                median = statistics.median(runs)
                print(f"  median of {rounds}: max-batch-size={size} max-batch-delay={delay}: {median:6.1f} ms per "
                      f"frame ({base / median:.2f}x the first's frames/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movie", default=DEFAULT_MOVIE)
    parser.add_argument("--frames", type=int, default=150, help="frames of the movie per stream (150)")
    parser.add_argument("--streams", default="1,2,4", help="stream counts (1,2,4)")
    parser.add_argument("--cpus", default="", help="taskset CPU list for the runs, e.g. 0,1")
    parser.add_argument("--batching-only", action="store_true")
    parser.add_argument("--element-streams", type=int, default=4, help="emclassify elements sharing ResNet-18 (4)")
    parser.add_argument("--element-frames", type=int, default=20, help="frames per element (20)")
    parser.add_argument("--element-settings", default="1:0,4:0,4:1000",
                        help="max-batch-size:max-batch-delay(ms) runs, the first the baseline (1:0,4:0,4:1000)")
    parser.add_argument("--element-rounds", type=int, default=1, help="turns of the settings; medians (1)")
    args = parser.parse_args()
    args.streams = [int(count) for count in args.streams.split(",")]
    if not args.batching_only:
        if not os.path.isfile(args.movie):
            print(f"skipped the streams: no movie {args.movie} (../shared/media is absent here)")
        else:
            bench_streams(args)
    bench_batching()
    settings = [tuple(float(value) if "." in value else int(value) for value in item.split(":"))
                for item in args.element_settings.split(",")]
    bench_element_batching(args.element_streams, args.element_frames, settings, args.element_rounds)


if __name__ == "__main__":
    main()
