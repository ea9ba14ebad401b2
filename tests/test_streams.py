# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several streams of one app in one process (emi.streams): stream configs' locations, per-stream
outputs and rules, a failing stream beside finishing ones, live sources reconnecting, Ctrl-C."""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

import emi  # noqa: E402
from emi import app as emi_app  # noqa: E402
from emi import cli, runner, streams  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_app_runner import make_app  # noqa: E402  (puts tests/scripts on the path)
from pipeline_end import decoded_frames  # noqa: E402

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Gst.init(None)
QUIET = open(os.devnull, "w")


def record_rule(threshold):
    return {"rule_name": "Record", "and": [{"key": "probability", "operator": ">=", "value": threshold}],
            "or": [], "action": {"action_name": "record", "duration_in_seconds": 1, "max_duration_in_seconds": 60}}


def write_stream(folder, stream_id, location, threshold=30, **extra):
    path = os.path.join(folder, f"{stream_id}.json")
    with open(path, "w") as stream_file:
        json.dump({"stream_id": stream_id, "stream_type": "file", "location": location,
                   "action_rules": [record_rule(threshold)], **extra}, stream_file)
    return path


def make_clip(path, frames, faststart=False):
    """An H.264 MP4 of a moving ball; `faststart` puts its index first, so it plays over HTTP
    without seeking."""
    pipeline = Gst.Pipeline.new("clip")
    chain = []
    for factory, properties in [
            ("videotestsrc", {"num-buffers": frames, "pattern": "ball"}),
            ("capsfilter", {"caps": Gst.Caps.from_string("video/x-raw,width=96,height=72,framerate=30/1")}),
            ("videoconvert", {}),
            ("capsfilter", {"caps": Gst.Caps.from_string("video/x-raw,format=I420")}),
            ("x264enc", {"speed-preset": "ultrafast", "key-int-max": 30}),
            ("h264parse", {}), ("mp4mux", {"faststart": faststart}), ("filesink", {"location": path})]:
        element = Gst.ElementFactory.make(factory)
        for key, value in properties.items():
            element.set_property(key, value)
        pipeline.add(element)
        chain.append(element)
    for upstream, downstream in zip(chain, chain[1:]):
        assert upstream.link(downstream)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {frames: make_clip(str(folder / f"clip{frames}.mp4"), frames) for frames in (40, 60)}


def signal_lines(path):
    with open(path) as signals:
        return [json.loads(line) for line in signals]


def test_two_streams_from_their_configs_each_with_its_outputs_and_rules(tmp_path, clips):
    folder = make_app(str(tmp_path / "app"))
    app = emi_app.load_app(folder)
    paths = [write_stream(str(tmp_path), "north", clips[40], threshold=30),
             write_stream(str(tmp_path), "south", os.path.basename(clips[60]), threshold=50)]
    os.rename(clips[60], tmp_path / os.path.basename(clips[60]))  # found beside its stream config
    try:
        specs = streams.stream_specs(paths, str(tmp_path / "out"))
        summary = streams.run_streams(app, specs, out=QUIET)
    finally:
        os.rename(tmp_path / os.path.basename(clips[60]), clips[60])
    by_id = {stream["stream_id"]: stream for stream in summary["streams"]}
    assert [by_id[name]["state"] for name in ("north", "south")] == ["finished", "finished"]
    assert (by_id["north"]["frames"], by_id["south"]["frames"]) == (40, 60)
    assert summary["frames"] == 100 and summary["failed"] == [] and not summary["interrupted"]
    # Each stream's own rule: probability (= frame_num) >= 30 in the north, >= 50 in the south.
    assert (by_id["north"]["firings"], by_id["south"]["firings"]) == (10, 10)
    # Nothing uploaded, so nothing lost: the upload counters are in each stream's summary all the same.
    assert [(by_id[name]["uploads_dropped"], by_id[name]["uploads_rejected"])
            for name in ("north", "south")] == [(0, 0)] * 2
    for name, frames in (("north", 40), ("south", 60)):
        output = tmp_path / "out" / name
        lines = signal_lines(output / runner.SIGNALS_NAME)
        assert sum("frame" in line for line in lines) == frames
        assert [os.path.basename(clip).split("_")[0] for clip in by_id[name]["clips"]] == [name]
        assert all(clip.startswith(str(output / runner.CLIPS_DIR)) for clip in by_id[name]["clips"])
        assert decoded_frames(str(output / runner.ANNOTATED_NAME)) == frames
        assert by_id[name]["latency_ms"]["p50"] <= by_id[name]["latency_ms"]["p95"]


def test_every_stream_loads_its_programs_before_any_stream_plays(tmp_path, clips):
    """Three streams whose program takes half a second to start (a model load, holding the
    process): no stream's frame goes through before the last stream has loaded. (They played one
    by one before, and the first streams' frames waited behind the later ones' loads.)"""
    log = tmp_path / "program.log"
    folder = make_app(str(tmp_path / "app"), pipeline={
        "input": {"width": 64, "height": 48, "format": "RGBA"},
        "empycustom": {"custom-lib": "resource/program.py", "process-interval": 1,
                       "options": {"log": str(log), "load_seconds": 0.5}},
        "aimeta": {"signal-interval": 1}})
    with open(os.path.join(os.environ["EMI_TEST_SCRIPTS"], "slow_start.py")) as source:
        (tmp_path / "app" / "resource" / "program.py").write_text(source.read())
    paths = [write_stream(str(tmp_path), f"cam{index}", clips[40]) for index in range(3)]
    summary = streams.run_streams(emi_app.load_app(folder), streams.stream_specs(paths, str(tmp_path / "out")),
                                  annotated=False, out=QUIET)
    assert [stream["frames"] for stream in summary["streams"]] == [40] * 3
    events = [line.split() for line in log.read_text().splitlines()]
    loaded = [float(when) for what, when in events if what == "loaded"]
    frames = [float(when) for what, when in events if what == "frame"]
    assert len(loaded) == 3 and len(frames) == 120
    assert max(loaded) < min(frames)


def test_streams_of_an_app_at_a_fixed_frame_rate_play_spread_over_one_frame_interval(tmp_path, monkeypatch):
    """Three test-pattern streams of an app taking 4 frames a second start 1/12 s apart (k/N of
    the interval), so their frames reach the programs at staggered instants; without a frame rate
    they start together."""
    assert streams.play_offsets("4/1", 3) == pytest.approx([0.0, 1 / 12, 2 / 12])
    assert streams.play_offsets("30000/1001", 2) == pytest.approx([0.0, 1001 / 60000])
    assert streams.play_offsets("", 3) == [0.0] * 3 and streams.play_offsets("0/1", 2) == [0.0] * 2
    assert streams.play_offsets("1/10", 4) == pytest.approx([0.0, 0.25, 0.5, 0.75])  # within a second
    folder = make_app(str(tmp_path / "app"), pipeline={
        "input": {"width": 64, "height": 48, "format": "RGBA", "framerate": "4/1"},
        "empycustom": {"custom-lib": "resource/program.py", "process-interval": 1, "options": {"threshold": 1}},
        "aimeta": {"signal-interval": 1}})
    app = emi_app.load_app(folder)
    paths = [write_stream(str(tmp_path), f"cam{index}", "test") for index in range(3)]
    played = {}
    real_play = streams.Stream.play

    def play(stream):
        played[stream.spec.stream_id] = time.monotonic()
        real_play(stream)

    monkeypatch.setattr(runner, "TEST_PATTERN_FRAMES", 4)
    monkeypatch.setattr(streams.Stream, "play", play)
    summary = streams.run_streams(app, streams.stream_specs(paths, str(tmp_path / "out")), annotated=False, out=QUIET)
    assert [stream["frames"] for stream in summary["streams"]] == [4] * 3
    # A turn each, give or take the thread switches around the first (without the spread they
    # were a few milliseconds apart).
    assert played["cam1"] - played["cam0"] >= 0.75 / 12 and played["cam2"] - played["cam0"] >= 1.75 / 12


def test_one_failing_stream_does_not_stop_the_others(tmp_path, clips, monkeypatch, capsys):
    """Three streams through `emi run --streams`: a movie, the live test pattern and a movie that
    is not there. The missing one fails alone and says why; the run's exit status says one failed."""
    monkeypatch.setattr(runner, "TEST_PATTERN_FRAMES", 20)
    folder = make_app(str(tmp_path / "app"))
    configs = tmp_path / "streams"
    configs.mkdir()
    write_stream(str(configs), "a_movie", clips[40])
    write_stream(str(configs), "b_pattern", "test")
    write_stream(str(configs), "c_missing", str(tmp_path / "gone.mp4"))
    status = cli.main(["run", folder, "--streams", str(configs), "--output", str(tmp_path / "out"), "--no-video"])
    captured = capsys.readouterr()
    assert status == 1, captured.err
    summary = json.loads(captured.out)
    states = {stream["stream_id"]: (stream["state"], stream["frames"]) for stream in summary["streams"]}
    assert states == {"a_movie": ("finished", 40), "b_pattern": ("finished", 20), "c_missing": ("failed", 0)}
    missing = next(stream for stream in summary["streams"] if stream["stream_id"] == "c_missing")
    assert missing["error"] == f"{tmp_path / 'gone.mp4'}: no such movie"
    assert summary["failed"] == ["c_missing"]
    assert f"emi: c_missing: {tmp_path / 'gone.mp4'}: no such movie" in captured.err
    assert sum("frame" in line for line in signal_lines(tmp_path / "out" / "b_pattern" / runner.SIGNALS_NAME)) == 20


def test_stream_configs_that_cannot_run_name_the_file_and_field(tmp_path):
    first = write_stream(str(tmp_path), "same", "test")
    second = str(tmp_path / "second.json")
    with open(second, "w") as stream_file:
        json.dump({"stream_id": "same", "location": "test"}, stream_file)
    with pytest.raises(emi_app.AppConfigError) as error:
        streams.stream_specs([first, second], str(tmp_path / "out"))
    assert str(error.value) == f"{second}: stream_id: 'same' is also the stream_id of {first}"
    escaping = write_stream(str(tmp_path), "escaping", "test")
    with open(escaping, "w") as stream_file:
        json.dump({"stream_id": "../elsewhere", "location": "test"}, stream_file)
    with pytest.raises(emi_app.AppConfigError, match=r"stream_id: '\.\./elsewhere' can't name a folder"):
        streams.stream_specs([escaping], str(tmp_path / "out"))
    with pytest.raises(emi_app.AppConfigError, match="--input replaces one stream's location; 2 streams"):
        streams.stream_specs([first, escaping], str(tmp_path / "out"), input_override="test")
    unplaced = str(tmp_path / "unplaced.json")
    with open(unplaced, "w") as stream_file:
        json.dump({"stream_id": "cam", "location": ""}, stream_file)
    with pytest.raises(emi_app.AppConfigError, match=f"{unplaced}: location: '': give a movie"):
        streams.stream_specs([unplaced], str(tmp_path / "out"))
    for value in ("5", 0, -1, True, float("nan"), None):
        silence = write_stream(str(tmp_path), "silence", "rtsp://127.0.0.1:9/x", silence_timeout_seconds=value)
        with pytest.raises(emi_app.AppConfigError) as error:
            streams.stream_specs([silence], str(tmp_path / "out"))
        assert str(error.value) == (f"{silence}: silence_timeout_seconds: {value!r}: give a number of seconds "
                                    "above 0 (how long a live source may send no frame before it is reconnected)")


def test_locations_become_sources_with_properties_not_pipeline_text(tmp_path):
    """A location with quotes and '!' in it is a file name, not pipeline syntax."""
    app = emi_app.load_app(make_app(str(tmp_path / "app")))
    odd = tmp_path / 'clip " ! fakesink name=x.mp4'
    odd.write_bytes(b"")
    source = streams.source_bin(str(odd), app)
    decode = next(element for element in source.iterate_elements()
                  if element.get_factory().get_name() == "uridecodebin")
    assert Gst.uri_get_location(decode.get_property("uri")) == str(odd)
    assert not any(element.get_factory().get_name() == "fakesink" for element in source.iterate_elements())
    specs = streams.stream_specs([write_stream(str(tmp_path), "cam", "rtsp://127.0.0.1:9/x")], str(tmp_path))
    assert specs[0].live and specs[0].location == "rtsp://127.0.0.1:9/x"
    assert specs[0].silence_s == streams.SILENCE_SECONDS == 10
    specs = streams.stream_specs([write_stream(str(tmp_path), "cam", "rtsp://127.0.0.1:9/x",
                                               silence_timeout_seconds=2.5)], str(tmp_path))
    assert specs[0].silence_s == 2.5
    assert not streams.stream_specs([write_stream(str(tmp_path), "cam", "test")], str(tmp_path))[0].live


class _Interrupts:
    """run_streams' `interrupts` (emi.interrupts.InterruptWatcher's `interrupted`), set by a thread
    once `condition()` holds (or after a minute): Ctrl-C, as the test asks for it."""

    def __init__(self, condition):
        self.interrupted = threading.Event()
        self._condition = condition
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        deadline = time.monotonic() + 60
        while not self._condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.interrupted.set()


def frames_written(signals):
    return sum(line.startswith('{"frame"') for line in open(signals)) if signals.exists() else 0


def test_an_error_from_a_dropped_source_does_not_fail_the_stream(tmp_path):
    """A source that failed posts a second error (GstBaseSrc's "streaming stopped") that may come
    after it was dropped, when Ctrl-C is already finishing the stream: the stream stops as asked
    instead of failing."""
    app = emi_app.load_app(make_app(str(tmp_path / "app")))
    spec, = streams.stream_specs([write_stream(str(tmp_path), "cam", "rtsp://127.0.0.1:9/x")], str(tmp_path / "out"))
    stream = streams.Stream(app, spec, annotated=False)
    stream.build()
    dropped = stream.source
    stream.source_failed("source: Could not connect")
    stream.state = "stopping"  # Ctrl-C came while it waited to reconnect
    late = Gst.Message.new_error(dropped.get_by_name("media_time"),
                                 GLib.Error.new_literal(Gst.stream_error_quark(), "Internal data stream error.",
                                                        int(Gst.StreamError.FAILED)), "")
    stream.handle(late)
    assert (stream.state, stream.error) == ("stopping", "source: Could not connect")
    stream.pipeline.set_state(Gst.State.NULL)


class _FlakyServer(http.server.ThreadingHTTPServer):
    """Serves one movie over HTTP on loopback once, after answering the first `failures` requests
    with 503 Service Unavailable, and answers 503 again after it; remembers when each request came."""

    def __init__(self, movie, failures):
        self.movie = open(movie, "rb").read()
        self.failures = failures
        self.requests = []
        super().__init__(("127.0.0.1", 0), _FlakyHandler)


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(time.monotonic())
        if len(self.server.requests) != self.server.failures + 1:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.server.movie)))
        self.end_headers()
        self.wfile.write(self.server.movie)

    def log_message(self, *args):
        pass


def test_a_live_source_that_fails_reconnects_with_backoff(tmp_path, monkeypatch):
    """An HTTP source that fails twice, then plays, then ends (a live source's end is an outage
    too): each try waits twice as long as the one before, and the stream runs until Ctrl-C."""
    monkeypatch.setattr(streams, "FIRST_BACKOFF_SECONDS", 0.2)
    movie = make_clip(str(tmp_path / "live.mp4"), 30, faststart=True)
    server = _FlakyServer(movie, failures=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    interrupts = _Interrupts(lambda: len(server.requests) == 4)  # the try after the movie's end
    try:
        app = emi_app.load_app(make_app(str(tmp_path / "app")))
        location = f"http://127.0.0.1:{server.server_address[1]}/live.mp4"
        specs = streams.stream_specs([write_stream(str(tmp_path), "cam", location)], str(tmp_path / "out"))
        summary = streams.run_streams(app, specs, annotated=False, out=QUIET, interrupts=interrupts)
    finally:
        server.shutdown()
        server.server_close()
    stream = summary["streams"][0]
    assert (stream["state"], stream["frames"]) == ("interrupted", 30)
    assert [(outage["at_frame"], outage["error"] == streams.SOURCE_ENDED) for outage in stream["outages"]] == \
        [(0, False), (30, True)]
    assert stream["outages"][0]["backoffs_s"] == [0.2, 0.4]
    assert len(server.requests) == 4
    first_wait = server.requests[1] - server.requests[0]
    second_wait = server.requests[2] - server.requests[1]
    assert second_wait > 1.5 * first_wait  # the back-off doubles


def test_a_live_source_that_never_comes_back_ends_cleanly_on_ctrl_c(tmp_path):
    """Nothing listens on the stream's port: the stream keeps reconnecting and Ctrl-C ends it and
    the test-pattern stream beside it, whose files are whole."""
    folder = make_app(str(tmp_path / "app"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    write_stream(str(tmp_path), "down", f"rtsp://127.0.0.1:{closed_port}/cam")
    write_stream(str(tmp_path), "pattern", "test")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "emi", "run", folder, "--stream", str(tmp_path / "down.json"),
         "--stream", str(tmp_path / "pattern.json"), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signals = out / "pattern" / runner.SIGNALS_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if signals.exists() and sum(line.startswith('{"frame"') for line in open(signals)) >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"still running 60 s after Ctrl-C: {process.communicate()[1]}") from None
    assert process.returncode == 130, stderr
    summary = json.loads(stdout)
    by_id = {stream["stream_id"]: stream for stream in summary["streams"]}
    assert by_id["pattern"]["state"] == "interrupted"
    assert 10 <= by_id["pattern"]["frames"] < runner.TEST_PATTERN_FRAMES
    assert decoded_frames(by_id["pattern"]["annotated"]) == by_id["pattern"]["frames"]
    assert by_id["down"]["state"] == "interrupted" and by_id["down"]["frames"] == 0
    assert "emi: down: source lost" in stderr


def test_streams_share_one_model_loaded_once_and_get_their_own_results(tmp_path, clips):
    """Three streams whose program asks emi.shared_model for its model: one load in the process,
    and each frame of each stream gets the output of its own input back."""
    from emi import shared_models

    folder = make_app(str(tmp_path / "app"))
    with open(os.path.join(os.environ["EMI_TEST_SCRIPTS"], "shared_scorer.py")) as source:
        (tmp_path / "app" / "resource" / "program.py").write_text(source.read())
    key = ("tests", "shared_scorer")
    shared_models.forget(key)
    loads_before = shared_models.load_count(key)
    paths = [write_stream(str(tmp_path), f"cam{index}", clips[40]) for index in range(3)]
    summary = streams.run_streams(emi_app.load_app(folder), streams.stream_specs(paths, str(tmp_path / "out")),
                                  annotated=False, out=QUIET)
    assert [stream["state"] for stream in summary["streams"]] == ["finished"] * 3
    assert shared_models.load_count(key) == loads_before + 1
    model = emi.shared_model(key, lambda: pytest.fail("loaded again"))
    assert model.calls == 3 * 40
    print(f"shared model: {model.calls} calls in {model.batches} batches, largest {model.largest_batch}")
    for index in range(3):
        frames = [line["frame"][0] for line in signal_lines(tmp_path / "out" / f"cam{index}" / runner.SIGNALS_NAME)
                  if "frame" in line]
        assert [frame["emcustom"][0]["probability"] for frame in frames] == [10.0 * frame["frame_num"] for frame in frames]
        assert len(frames) == 40


class _CameraServer(http.server.ThreadingHTTPServer):
    """An HTTP camera on loopback: multipart MJPEG (multipart/x-mixed-replace), a frame every 1/30 s,
    as IP cameras serve it. Connection N sends `frames_per_connection` frames, then ends as
    `endings[N]` says: "reset" drops it with a TCP reset once `delivered(frames so far)` is true
    (the app has them), "end" ends the stream and closes it (a camera rebooting), "silent" keeps it
    open and sends nothing more (a pulled cable) until the client closes it. After each connection
    the camera is down for `down_requests` requests (503), then serves again; after the last one it
    stays down."""

    daemon_threads = True

    def __init__(self, frames_per_connection, endings, down_requests, delivered):
        import cv2
        import numpy

        self.frames_per_connection = frames_per_connection
        self.endings = endings
        self.down_requests = down_requests
        self.delivered = delivered
        self.jpegs = []
        for index in range(frames_per_connection * len(endings)):
            image = numpy.zeros((72, 96, 3), numpy.uint8)
            cv2.circle(image, (8 + index % 80, 36), 8, (255, 255, 255), -1)
            self.jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
        self.lock = threading.Lock()
        self.requests = []       # (when, "frames" or "503")
        self.connections = 0     # that served frames
        self.down_left = 0
        self.sent = 0
        self.closed_by_client = []  # the silent connections the client gave up on
        super().__init__(("127.0.0.1", 0), _CameraHandler)

    def after_last_connection(self):
        """A request came after the last connection ended: the stream has recorded that outage."""
        with self.lock:
            return self.connections == len(self.endings) and self.requests[-1][1] == "503"


class _CameraHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        import select
        import struct

        server = self.server
        with server.lock:
            down = server.down_left > 0 or server.connections == len(server.endings)
            server.down_left -= 1 if down else 0
            server.requests.append((time.monotonic(), "503" if down else "frames"))
            connection = server.connections
            server.connections += 0 if down else 1
        if down:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        pace = time.monotonic()
        for _ in range(server.frames_per_connection):
            data = server.jpegs[server.sent]
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                             % (len(data), data))
            self.wfile.flush()
            server.sent += 1
            pace += 1 / 30
            time.sleep(max(0.0, pace - time.monotonic()))  # a camera's frame rate
        ending = server.endings[connection]
        with server.lock:
            server.down_left = server.down_requests
        if ending == "end":
            self.wfile.write(b"--frame--\r\n")  # the end of the stream
        elif ending == "silent":
            # Readable when the client closes its end (recv then gives b""); a minute at most.
            if select.select([self.connection], [], [], 60)[0] and self.connection.recv(1) == b"":
                server.closed_by_client.append(connection)
        else:
            deadline = time.monotonic() + 60
            while not server.delivered(server.sent) and time.monotonic() < deadline:
                time.sleep(0.01)
            # A reset, not a close: the connection is lost, as when a camera goes away.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def log_message(self, *args):
        pass


def test_a_live_camera_that_drops_or_ends_reconnects_and_its_frames_flow_again(tmp_path, monkeypatch):
    """An MJPEG camera over HTTP delivers frames, drops the connection (TCP reset), answers 503
    for a while, then streams again and ends its stream cleanly (a reboot), twice: the second
    time it stays down. Every drop and end is an outage: the stream reconnects with back-off,
    starting from the first back-off after each outage, says so (its summary's outages), and
    runs until Ctrl-C; every frame the camera sent goes through the app, in order; the test
    pattern beside it runs on untouched."""
    monkeypatch.setattr(streams, "FIRST_BACKOFF_SECONDS", 0.2)
    monkeypatch.setattr(runner, "TEST_PATTERN_FRAMES", 60)
    out = tmp_path / "out"
    signals = out / "cam" / runner.SIGNALS_NAME

    def delivered(count):
        """The app wrote the signals of `count` frames (the camera drops only then)."""
        return frames_written(signals) >= count

    frames, endings = 15, ("reset", "end", "end")
    server = _CameraServer(frames, endings, down_requests=2, delivered=delivered)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    interrupts = _Interrupts(lambda: server.after_last_connection()
                             and frames_written(out / "pattern" / runner.SIGNALS_NAME) == 60)
    try:
        app = emi_app.load_app(make_app(str(tmp_path / "app")))
        paths = [write_stream(str(tmp_path), "cam", f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"),
                 write_stream(str(tmp_path), "pattern", "test")]
        summary = streams.run_streams(app, streams.stream_specs(paths, str(out)), out=QUIET, interrupts=interrupts)
    finally:
        server.shutdown()
        server.server_close()
    assert server.after_last_connection(), "the camera's last end was not taken as an outage"
    by_id = {stream["stream_id"]: stream for stream in summary["streams"]}
    camera, pattern = by_id["cam"], by_id["pattern"]
    assert camera["state"] == "interrupted", camera
    assert camera["frames"] == frames * len(endings) == server.sent
    outages = camera["outages"]
    assert [outage["at_frame"] for outage in outages] == [frames * (index + 1) for index in range(len(endings))]
    assert [outage["error"] == streams.SOURCE_ENDED for outage in outages] == [False, True, True]
    for outage in outages:
        # Each outage backs off from the first wait, doubling.
        assert outage["backoffs_s"] == [0.2 * 2 ** index for index in range(len(outage["backoffs_s"]))]
    for outage in outages[:-1]:  # frames came again after them
        assert outage["backoffs_s"] and outage["down_s"] >= sum(outage["backoffs_s"][:-1])
    assert outages[-1]["backoffs_s"] and outages[-1]["down_s"] is None  # the camera stayed down
    # One attempt per back-off; the last outage's latest attempt may still be waiting.
    came_back = sum(len(outage["backoffs_s"]) for outage in outages[:-1])
    assert came_back < camera["reconnects"] <= came_back + len(outages[-1]["backoffs_s"])
    assert [kind for _, kind in server.requests].count("frames") == len(endings)
    assert camera["frame_times"] == "wall-clock"  # a live source
    numbers = [line["frame"][0]["frame_num"] for line in signal_lines(signals) if "frame" in line]
    assert numbers == list(range(frames * len(endings)))
    assert (pattern["state"], pattern["frames"], pattern["reconnects"], pattern["outages"]) == \
        ("finished", 60, 0, [])


def test_a_live_camera_that_goes_silent_is_reconnected_after_its_silence_timeout(tmp_path, monkeypatch):
    """An MJPEG camera sends frames, then keeps the connection open and sends nothing (a pulled
    cable): no error, no end. With `silence_timeout_seconds` 1 in the stream config, the stream
    takes the silence as an outage, closes that connection, reconnects and gets the next
    connection's frames."""
    monkeypatch.setattr(streams, "FIRST_BACKOFF_SECONDS", 0.2)
    out = tmp_path / "out"
    signals = out / "cam" / runner.SIGNALS_NAME
    frames, endings = 10, ("silent", "end")
    server = _CameraServer(frames, endings, down_requests=0, delivered=lambda count: True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    interrupts = _Interrupts(server.after_last_connection)
    try:
        app = emi_app.load_app(make_app(str(tmp_path / "app")))
        paths = [write_stream(str(tmp_path), "cam", f"http://127.0.0.1:{server.server_address[1]}/video.mjpg",
                              silence_timeout_seconds=1)]
        summary = streams.run_streams(app, streams.stream_specs(paths, str(out)), annotated=False, out=QUIET,
                                      interrupts=interrupts)
    finally:
        server.shutdown()
        server.server_close()
    camera = summary["streams"][0]
    assert (camera["state"], camera["frames"]) == ("interrupted", 2 * frames), camera
    silence = camera["outages"][0]
    assert (silence["at_frame"], silence["error"], silence["backoffs_s"]) == \
        (frames, "the source gave no frame for 1 s (silence_timeout_seconds)", [0.2])
    assert silence["down_s"] is not None  # frames came again
    assert server.closed_by_client == [0]  # the silent connection was given up, not left open
    numbers = [line["frame"][0]["frame_num"] for line in signal_lines(signals) if "frame" in line]
    assert numbers == list(range(2 * frames))


def test_an_app_slower_than_its_camera_for_a_while_is_not_a_silent_camera(tmp_path, monkeypatch):
    """The app holds a frame while the camera sends the rest of its frames: none leaves the source
    for longer than the silence timeout, but they wait at its end, so the camera isn't silent
    and isn't reconnected; its only outage is its end."""
    monkeypatch.setattr(streams, "FIRST_BACKOFF_SECONDS", 0.2)
    out = tmp_path / "out"
    sent_all = tmp_path / "sent_all"
    frames = 30  # a second of the camera's frames, the app holding the third until they are sent
    server = _CameraServer(frames, ("end",), down_requests=0, delivered=lambda count: True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def mark_sent_all():
        deadline = time.monotonic() + 60
        while server.sent < frames and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_all.touch()

    threading.Thread(target=mark_sent_all, daemon=True).start()
    interrupts = _Interrupts(server.after_last_connection)
    folder = make_app(str(tmp_path / "app"), pipeline={
        "input": {"width": 64, "height": 48, "format": "RGBA"},
        "empycustom": {"custom-lib": "resource/program.py", "process-interval": 1,
                       "options": {"hold_frame": 2, "until": str(sent_all)}},
        "aimeta": {"signal-interval": 1}})
    with open(os.path.join(os.environ["EMI_TEST_SCRIPTS"], "holds_frame.py")) as source:
        (tmp_path / "app" / "resource" / "program.py").write_text(source.read())
    try:
        paths = [write_stream(str(tmp_path), "cam", f"http://127.0.0.1:{server.server_address[1]}/video.mjpg",
                              silence_timeout_seconds=0.3)]
        summary = streams.run_streams(emi_app.load_app(folder), streams.stream_specs(paths, str(out)),
                                      annotated=False, out=QUIET, interrupts=interrupts)
    finally:
        server.shutdown()
        server.server_close()
    camera = summary["streams"][0]
    assert (camera["state"], camera["frames"]) == ("interrupted", frames), camera
    assert [(outage["at_frame"], outage["error"]) for outage in camera["outages"]] == [(frames, streams.SOURCE_ENDED)]


def test_emi_run_of_one_live_input_reconnects_and_writes_into_the_output_folder(tmp_path):
    """`emi run APP --stream s.json --input http://…` (one camera, the usual way): the camera drops
    the connection (TCP reset) once its frames are in, comes back, then ends its stream. The run
    reconnects both times, the frames of both connections go through, the one-stream summary lists
    the outages, and the outputs are in --output itself (not --output/<stream_id>/), until Ctrl-C."""
    out = tmp_path / "out"
    signals = out / runner.SIGNALS_NAME
    frames, endings = 15, ("reset", "end")
    # Down for a request after each connection: souphttpsrc's own retry after the reset gets it.
    server = _CameraServer(frames, endings, down_requests=1, delivered=lambda count: frames_written(signals) >= count)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = make_app(str(tmp_path / "app"))
    location = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    process = subprocess.Popen(
        [sys.executable, "-m", "emi", "run", folder, "--stream", "streams/stream.json", "--input", location,
         "--output", str(out), "--no-video"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and not (
                server.after_last_connection() and frames_written(signals) == frames * len(endings)):
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        server.shutdown()
        server.server_close()
    assert process.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] and summary["frames"] == frames * len(endings) == server.sent, stderr
    assert (summary["input"], summary["signals_file"]) == (location, str(signals))
    assert [(outage["at_frame"], outage["error"] == streams.SOURCE_ENDED) for outage in summary["outages"]] == \
        [(frames, False), (2 * frames, True)]
    assert summary["outages"][0]["down_s"] is not None  # frames came again
    assert summary["reconnects"] >= 2
    assert json.load(open(out / runner.RUN_NAME)) == summary  # what `emi report` reads
    assert not (out / "cam1").exists()
    numbers = [line["frame"][0]["frame_num"] for line in signal_lines(signals) if "frame" in line]
    assert numbers == list(range(frames * len(endings)))


def test_append_adds_a_live_input_run_to_the_previous_one(tmp_path, monkeypatch):
    """run_app (`emi run --input http://… --append`) with a live input goes through the streams'
    path (the camera's end is an outage) and still adds to the previous run in --output: signals
    appended, a second annotated movie."""
    if Gst.ElementFactory.make("emaimeta").find_property("append") is None:
        pytest.skip("this emaimeta has no `append`")
    monkeypatch.setattr(streams, "FIRST_BACKOFF_SECONDS", 0.2)
    app = emi_app.load_app(make_app(str(tmp_path / "app")))
    out = tmp_path / "out"
    frames = 10
    summaries = []
    for mode in ("new", "append"):
        server = _CameraServer(frames, ("end",), down_requests=0, delivered=lambda count: True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            summaries.append(runner.run_app(
                app, os.path.join(app.folder, "streams", "stream.json"),
                f"http://127.0.0.1:{server.server_address[1]}/video.mjpg", str(out), out=QUIET, output_mode=mode,
                interrupts=_Interrupts(server.after_last_connection)))
        finally:
            server.shutdown()
            server.server_close()
    assert [(summary["frames"], summary["annotated"]) for summary in summaries] == \
        [(frames, str(out / runner.ANNOTATED_NAME)), (frames, str(out / "annotated-1.mp4"))]
    assert frames_written(out / runner.SIGNALS_NAME) == 2 * frames
    # The camera's end was an outage each time (the run went on until Ctrl-C).
    assert [[outage["error"] for outage in summary["outages"]] for summary in summaries] == [[streams.SOURCE_ENDED]] * 2
    assert all(decoded_frames(summary["annotated"]) > 0 for summary in summaries)  # each plays, the first kept
