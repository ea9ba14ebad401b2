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

With --live FPS, the streams are cameras instead of movies: each an MJPEG camera over HTTP on
loopback (multipart/x-mixed-replace, as IP cameras serve it) sending the movie's frames at its
frame rate, looping, camera k starting k/N of the way into the movie (N cameras see N scenes);
the app takes FPS frames a second of each (its input.framerate), and each run is ended by Ctrl-C
(SIGINT) after --seconds. Frames are then offered at a rate the machine can serve, so latency is
a frame's own work and its wait for the other streams' frames, not the backlog of a movie read
as fast as it decodes; frames/s is what was served of what was offered.

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
import http.server
import json
import os
import shutil
import signal
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


def stream_configs(app, locations, count, folder):
    with open(os.path.join(app, "streams", "torch_imagenet_stream.json")) as template:
        stream = json.load(template)
    paths = []
    for index in range(count):
        stream.update({"stream_id": f"cam{index}", "location": locations[index],
                       "stream_type": "file" if os.path.isfile(locations[index]) else "http"})
        path = os.path.join(folder, f"cam{index}.json")
        with open(path, "w") as config:
            json.dump(stream, config)
        paths.append(path)
    return paths


class Cameras(http.server.ThreadingHTTPServer):
    """MJPEG cameras on loopback: GET /camK/N streams the movie's frames at its frame rate, looping,
    from frame K*len/N on, until the client goes away."""

    daemon_threads = True

    def __init__(self, movie):
        import cv2

        capture = cv2.VideoCapture(movie)
        self.frame_seconds = 1.0 / (capture.get(cv2.CAP_PROP_FPS) or 30.0)
        self.jpegs = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
        capture.release()
        if not self.jpegs:
            raise SystemExit(f"no frames in {movie}")
        super().__init__(("127.0.0.1", 0), _CameraHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, index, count):
        return f"http://127.0.0.1:{self.server_address[1]}/cam{index}/{count}"


class _CameraHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        cameras = self.server
        index, count = (int(part.removeprefix("cam")) for part in self.path.strip("/").split("/"))
        frame = index * len(cameras.jpegs) // count
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        due = time.monotonic()
        try:
            while True:
                data = cameras.jpegs[frame % len(cameras.jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(data), data))
                self.wfile.flush()
                frame += 1
                due += cameras.frame_seconds
                time.sleep(max(0.0, due - time.monotonic()))  # the camera's frame rate
        except (BrokenPipeError, ConnectionResetError):
            pass  # the app went away

    def log_message(self, *args):
        pass


def launch(app, streams, output, cpus):
    command = [sys.executable, "-m", "emi", "run", app, "--output", output, "--no-video"]
    for stream in streams:
        command += ["--stream", stream]
    if cpus:
        command = ["taskset", "-c", cpus] + command
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_all(processes, seconds=None):
    """(summaries, peak RSS of each in MiB) once every process has ended; with `seconds`, each is
    sent SIGINT (Ctrl-C) that long after the first was launched."""
    if seconds is not None:
        def interrupt():
            for process in processes:
                process.send_signal(signal.SIGINT)
        timer = threading.Timer(seconds, interrupt)
        timer.start()
    summaries, peaks = [], []
    for process in processes:
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in ((0, 130) if seconds is not None else (0,)):
            raise SystemExit(f"emi run failed ({process.returncode}): {stdout[-500:]}")
        # The programs print to stdout too: the summary is the JSON object that ends it.
        summaries.append(json.loads(stdout[stdout.rindex('{\n  "streams"'):]))
        peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return summaries, peaks


def measure(app, streams, folder, separate, cpus, seconds=None):
    started = time.monotonic()
    if separate:
        processes = [launch(app, [stream], os.path.join(folder, f"out-{index}"), cpus)
                     for index, stream in enumerate(streams)]
    else:
        processes = [launch(app, streams, os.path.join(folder, "out"), cpus)]
    summaries, peaks = wait_all(processes, seconds)
    wall = time.monotonic() - started
    per_stream = [stream for summary in summaries for stream in summary["streams"]]
    ended = "interrupted" if seconds is not None else "finished"
    assert all(stream["state"] == ended for stream in per_stream), per_stream
    frames = sum(stream["frames"] for stream in per_stream)
    latencies = [stream["latency_ms"] for stream in per_stream if stream["latency_ms"]]
    return {"wall_s": wall, "frames": frames, "fps": frames / wall, "rss_mib": sum(peaks),
            "p50_ms": statistics.median(latency["p50"] for latency in latencies),
            "p95_ms": max(latency["p95"] for latency in latencies)}


def paced_app(app, fps):
    """The app taking `fps` frames a second of its input (input.framerate)."""
    config_path = os.path.join(app, "emi_stream_config.json")
    with open(config_path) as config_file:
        config = json.load(config_file)
    config["pipeline_configuration"]["input"]["framerate"] = f"{fps}/1"
    with open(config_path, "w") as config_file:
        json.dump(config, config_file)


def bench_streams(args):
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        app = prepared_app(folder)
        if args.live:
            cameras = Cameras(args.movie)
            paced_app(app, args.live)
            print(f"counter app, N MJPEG cameras on loopback ({os.path.basename(args.movie)} at its frame rate, "
                  f"looping), {args.live} frames/s of each taken, {args.seconds} s a run, --no-video"
                  + (f", pinned to CPUs {args.cpus}" if args.cpus else ""))
        else:
            clip = trimmed_movie(args.movie, args.frames, folder)
            print(f"counter app, {args.frames} frames of {os.path.basename(args.movie)} per stream, --no-video"
                  + (f", pinned to CPUs {args.cpus}" if args.cpus else ""))
        print(f"{'N':>2} {'how':<12} {'wall s':>7} {'frames':>6} {'agg fps':>8} {'RSS MiB':>8} "
              f"{'p50 ms':>7} {'p95 ms':>7}")
        single = None
        for count in args.streams:
            if args.live:
                streams = stream_configs(app, [cameras.url(index, count) for index in range(count)], count, folder)
            else:
                streams = stream_configs(app, [clip] * count, count, folder)
            results = {}
            for how, separate in (("1 process", False), (f"{count} processes", True)):
                run_folder = tempfile.mkdtemp(dir=folder)
                results[how] = result = measure(app, streams, run_folder, separate, args.cpus,
                                                args.seconds if args.live else None)
                print(f"{count:>2} {how:<12} {result['wall_s']:>7.1f} {result['frames']:>6} {result['fps']:>8.1f} "
                      f"{result['rss_mib']:>8.0f} {result['p50_ms']:>7.1f} {result['p95_ms']:>7.1f}", flush=True)
            one, many = results["1 process"], results[f"{count} processes"]
            if count == 1:
                single = one
            print(f"   one process / {count} processes: RSS {one['rss_mib'] / many['rss_mib']:.2f}, "
                  f"fps {one['fps'] / many['fps']:.2f}"
                  + (f"; p95 vs one stream alone: {one['p95_ms'] / single['p95_ms']:.2f}" if single else ""),
                  flush=True)


def seconds_in_threads(functions):
    """Wall seconds to run each function in a thread of its own, all started together."""
    threads = [threading.Thread(target=function) for function in functions]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


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

    elapsed = seconds_in_threads([lambda index=index: stream(index) for index in range(4)])
    print(f"  emi.shared_model, 4 threads x {repeats} frames (max_batch_size 4, delay 5 ms): "
          f"{1000 * elapsed / (4 * repeats):.1f} ms per frame, {shared.batches} batches, "
          f"{shared.items / shared.batches:.2f} frames per batch on average, largest {shared.largest_batch}")


def bench_onnx_replicas(frames=48, rounds=3):
    """YOLOX-Nano (OpenCV DNN, a fixed batch of 1) through emi.shared_model as the sessions share
    it, called by 1, 2 and 4 threads (streams) one frame at a time: frames/s with one net for all
    (max_concurrent 1) and with up to one net per usable core, and the nets made. The settings
    take turns `rounds` times; medians."""
    import numpy

    from emi.inference import onnx_models
    from emi.shared_models import SharedModel

    model_path = os.path.join(SOURCE_ROOT, "resource", "models", "yolox_nano.onnx")
    if not os.path.isfile(model_path):
        print(f"skipped YOLOX-Nano through emi.shared_model: no {model_path}")
        return
    loaded = onnx_models.load_onnx(model_path, "opencv", "cpu")
    blob = numpy.random.default_rng(0).random((1, 3, 416, 416), numpy.float32)
    cores = onnx_models.usable_cores()
    print(f"YOLOX-Nano through emi.shared_model (OpenCV {__import__('cv2').__version__}, {cores} usable cores), "
          f"{frames} frames a run, one frame a call, median of {rounds}")
    results = collections.defaultdict(list)
    for _ in range(rounds):
        for callers in (1, 2, 4):
            for concurrent in (1, cores):
                runner = onnx_models.BatchRunner(loaded)
                shared = SharedModel(runner, max_batch_size=1, max_concurrent=concurrent,
                                     replicate=onnx_models.BatchRunner.replicate)
                shared(blob)  # the first net's first pass (allocations) outside the timing

                def stream():
                    for _ in range(frames // callers):
                        shared(blob)

                elapsed = seconds_in_threads([stream] * callers)
                results[(callers, concurrent)].append((frames / elapsed, len(shared.replicas)))
    for (callers, concurrent), runs in results.items():
        fps = statistics.median(run[0] for run in runs)
        nets = max(run[1] for run in runs)
        print(f"  {callers} caller(s), max_concurrent {concurrent}: {fps:5.1f} frames/s, {nets} net(s)")


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
    parser.add_argument("--live", type=int, default=0, metavar="FPS",
                        help="cameras on loopback instead of movies, FPS frames/s of each taken (0: movies)")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each --live run (40)")
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
    bench_onnx_replicas()
    settings = [tuple(float(value) if "." in value else int(value) for value in item.split(":"))
                for item in args.element_settings.split(",")]
    bench_element_batching(args.element_streams, args.element_frames, settings, args.element_rounds)


if __name__ == "__main__":
    main()
