# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several streams of one app in one process: `emi run APP --stream a.json --stream b.json`.

Each stream config (stream_id, stream_type, location, action_rules, roi) becomes a pipeline of its
own (source, the app's elements, emaimeta with the stream's rules, outputs under
OUTPUT/<stream_id>/), so that one stream's failure, end or state change never touches the others;
the programs of all streams share the process (one interpreter, one copy of torch, and one copy of
each model that goes through emi.shared_model).

A stream's input is its config's `location`:
    "test"                     a live test pattern (TEST_PATTERN_FRAMES frames)
    "/dev/videoN"              a V4L2 camera (live)
    "rtsp://…", "http(s)://…"  a network stream (live: reconnects with back-off when it drops)
    "udp://…", "srt://…"       likewise
    a path or "file://…"       a movie; a relative path is looked up from the current folder, then
                               from the stream config's folder
Sources are elements with their properties set: nothing the config says is parsed as a pipeline.

A live stream whose source fails (the camera is gone, the RTSP server is down, the connection is
reset), ends its stream (EOS: the server closed the connection, the camera reboots; a camera
doesn't finish) or goes silent (no frame for the config's `silence_timeout_seconds`, 10 s when
not given, from the source's start or its last frame: a pulled cable can keep the connection open
without an error) gets a new source after a back-off (1 s, doubling up to 30 s, and from 1 s again
once frames flow), while the rest of its pipeline, its files and its counts go on; the summary
lists each outage (`outages`: the frame it came at, the error, the back-offs, how long until
frames came again) and the progress line says how often the source was lost. A live stream ends
only on Ctrl-C or when something other than its source fails. The test pattern and movies finish
at their end. A movie that can't be read is an error for that stream alone. Ctrl-C ends every
stream with valid files (a second Ctrl-C stops at once).

One stream with a live `--input` runs here too (run_live_input, from runner.run_app), its outputs
in OUTPUT/ itself.
"""

import collections
import dataclasses
import glob
import math
import os
import signal
import sys
import time
import urllib.parse

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from . import roi, runner  # noqa: E402
from .app import AppConfigError, load_stream  # noqa: E402

LIVE_SCHEMES = ("rtsp", "rtsps", "rtspt", "http", "https", "udp", "srt", "rtmp")
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# How long a live source may give no frame before it counts as lost (a stream config's
# `silence_timeout_seconds`): a few missed frames are not an outage, a pulled cable is.
SILENCE_SECONDS = 10.0
SOURCE_ENDED = "the source ended its stream (EOS): the camera or server closed it"
# Posted by a live source's pad when its stream ends: the bus, not the streaming thread, replaces it.
_SOURCE_ENDED_MESSAGE = "emi-source-ended"
# The longest span over which streams at a fixed frame rate start (play_offsets).
MAX_PLAY_SPREAD_SECONDS = 1.0
# Frames whose latency is kept for the summary's percentiles (a ring: memory stays bounded).
LATENCY_SAMPLES = 10000


@dataclasses.dataclass
class StreamSpec:
    """One stream of a run: where its config is, what it says, where its input and outputs are."""
    config_path: str
    stream_id: str
    location: str       # "test", "/dev/video0", a URI, or an absolute movie path
    live: bool          # reconnects when its source fails
    output_dir: str
    regions: list = dataclasses.field(default_factory=list)  # the config's `roi` (emi.roi.parse_roi)
    silence_s: float = SILENCE_SECONDS  # a live source without a frame this long is lost


def _is_uri(location):
    return "://" in location


def _resolve_location(location, config_path):
    """The stream's input: URIs, devices and `test` as given; a movie path made absolute."""
    if location == "test" or location.startswith("/dev/video") or _is_uri(location):
        return location
    if os.path.isabs(location) or os.path.exists(location):
        return os.path.abspath(location)
    beside_config = os.path.join(os.path.dirname(os.path.abspath(config_path)), location)
    return beside_config if os.path.exists(beside_config) else os.path.abspath(location)


def is_live(location):
    """Whether the location is a live source: reconnected when it is lost."""
    if location == "test":
        return False  # it ends after its frames: nothing to reconnect to
    if location.startswith("/dev/video"):
        return True
    return urllib.parse.urlsplit(location).scheme.lower() in LIVE_SCHEMES


def stream_paths_of(stream_args, streams_dir, app_folder):
    """The stream configs named by --stream (relative to the app folder when not found as given)
    and --streams (every *.json in the folder, sorted)."""
    paths = []
    for path in stream_args or []:
        if not os.path.isfile(path) and os.path.isfile(os.path.join(app_folder, path)):
            path = os.path.join(app_folder, path)
        paths.append(path)
    if streams_dir:
        folder = streams_dir
        if not os.path.isdir(folder) and os.path.isdir(os.path.join(app_folder, folder)):
            folder = os.path.join(app_folder, folder)
        if not os.path.isdir(folder):
            raise AppConfigError(f"{streams_dir}: no such folder of stream configs")
        found = sorted(glob.glob(os.path.join(folder, "*.json")))
        if not found:
            raise AppConfigError(f"{folder}: no stream configs (*.json) in it")
        paths += found
    return paths


def stream_specs(stream_paths, output_dir, input_override=None):
    """A StreamSpec per stream config. `input_override` (--input) replaces the location of a single
    stream. Raises AppConfigError naming the file and field of a config that can't run."""
    if input_override and len(stream_paths) != 1:
        raise AppConfigError(f"--input replaces one stream's location; {len(stream_paths)} streams given "
                             "(each takes its input from its config's location)")
    specs, seen = [], {}
    for path in stream_paths:
        stream = load_stream(path)
        stream_id = stream.get("stream_id", os.path.splitext(os.path.basename(path))[0])
        if not isinstance(stream_id, str) or not stream_id or stream_id in (".", "..") \
                or "/" in stream_id or "\\" in stream_id or "\0" in stream_id:
            raise AppConfigError(f"{path}: stream_id: {stream_id!r} can't name a folder (no slashes, "
                                 "not empty, not . or ..)")
        if stream_id in seen:
            raise AppConfigError(f"{path}: stream_id: {stream_id!r} is also the stream_id of {seen[stream_id]}")
        seen[stream_id] = path
        location = input_override or stream.get("location", "")
        if not isinstance(location, str) or not location:
            raise AppConfigError(f"{path}: location: {location!r}: give a movie, rtsp://…, /dev/videoN or "
                                 "test (or --input for a single stream)")
        if not input_override:
            location = _resolve_location(location, path)
        elif location != "test" and not location.startswith("/dev/video") and not _is_uri(location):
            location = os.path.abspath(location)
        try:
            regions = roi.parse_roi(stream.get("roi"), f"{path}: roi")
        except roi.RoiError as error:
            raise AppConfigError(str(error)) from None
        silence_s = stream.get("silence_timeout_seconds", SILENCE_SECONDS)
        if isinstance(silence_s, bool) or not isinstance(silence_s, (int, float)) \
                or not math.isfinite(silence_s) or silence_s <= 0:
            raise AppConfigError(f"{path}: silence_timeout_seconds: {silence_s!r}: give a number of seconds above 0 "
                                 "(how long a live source may send no frame before it is reconnected)")
        specs.append(StreamSpec(config_path=os.path.abspath(path), stream_id=stream_id, location=location,
                                live=is_live(location), output_dir=os.path.join(output_dir, stream_id),
                                regions=regions, silence_s=float(silence_s)))
    return specs


def _make(factory, name=None):
    return runner._make(factory, name)


def _caps_filter(caps_text):
    capsfilter = _make("capsfilter")
    capsfilter.set_property("caps", Gst.Caps.from_string(caps_text))
    return capsfilter


def _file_uri(path):
    return urllib.parse.urljoin("file:", urllib.parse.quote(path))


def source_bin(location, app, name="source", start_time_ns=-1):
    """The stream's input as a bin with one src pad giving the app's frames (format, size and, when
    the app sets one, frame rate), a recorded source's frames timed by the movie's own clock
    (emmediatime: its date-time tag, else `start_time_ns`, the run's start, plus running time).
    Raises runner.RunError for a movie that isn't there."""
    source = Gst.Bin.new(name)
    media_time = _make("emmediatime", "media_time")
    media_time.set_property("start-time", start_time_ns)
    # Scaled before it is converted: a 1080p frame converted to RGBA first costs 6x the pixels.
    tail = [media_time, _make("videoscale"), _make("videoconvert")]
    if app.framerate:
        tail += [_make("videorate"), _caps_filter(f"video/x-raw,framerate={app.framerate}")]
    tail.append(_caps_filter(f"video/x-raw,format={app.format},width={app.width},height={app.height}"))
    # Decoding and scaling on a thread of their own, while the app's programs work on the frames
    # before: a few frames of latency for up to a core's worth of decoding in parallel.
    tail.append(runner.frames_queue("decoded"))
    if location == "test":
        test = _make("videotestsrc")
        test.set_property("pattern", "ball")
        test.set_property("is-live", True)  # frames at the frame rate, as a camera gives them
        test.set_property("num-buffers", runner.TEST_PATTERN_FRAMES)
        head = [test, _caps_filter(f"video/x-raw,framerate={app.framerate or '30/1'}")]
    elif location.startswith("/dev/video"):
        camera = _make("v4l2src")
        camera.set_property("device", location)
        head = [camera]
    else:
        if not _is_uri(location):
            path = os.path.abspath(location)
            if not os.path.isfile(path):
                raise runner.RunError(f"{location}: no such movie")
            location = path
        decode = _make("uridecodebin")
        decode.set_property("uri", location if _is_uri(location) else _file_uri(location))
        decode.connect("pad-added", _link_video_pad, media_time)
        if is_live(location):
            decode.connect("source-setup", _live_network_source)
            decode.connect("deep-element-added", _single_stream_demuxer)
        head = []
        source.add(decode)
    for element in head + tail:
        source.add(element)
    chain = head + tail
    for upstream, downstream in zip(chain, chain[1:]):
        if not upstream.link(downstream):
            raise runner.RunError(f"input {location}: can't link {upstream.get_name()} to {downstream.get_name()}")
    source.add_pad(Gst.GhostPad.new("src", tail[-1].get_static_pad("src")))
    return source


def _live_network_source(decode, element):
    """An HTTP camera (souphttpsrc) is a live source: its frames are stamped with the pipeline's
    running time as they arrive (as rtspsrc's and v4l2src's are), so they keep going forward
    when a new source replaces a lost one, and their documents keep the wall clock. Without it a
    multipart MJPEG stream's frames have no time at all, and a new connection's would start again
    at 0."""
    if element.find_property("is-live") is not None and element.find_property("do-timestamp") is not None:
        element.set_property("is-live", True)
        element.set_property("do-timestamp", True)


def _single_stream_demuxer(decode, sub_bin, element):
    """An HTTP camera's MJPEG (multipart/x-mixed-replace) holds one stream: told so, multipartdemux
    says it has no more pads after the first, and decodebin passes frames on as they come instead
    of holding them until its queue overruns (a second of video), or until the connection ends,
    when a dropped connection loses them."""
    factory = element.get_factory()
    if factory is not None and factory.get_name() == "multipartdemux":
        element.set_property("single-stream", True)


def _link_video_pad(decode, pad, first):
    caps = pad.get_current_caps() or pad.query_caps(None)
    sink = first.get_static_pad("sink")
    if caps.get_size() and caps.get_structure(0).get_name().startswith("video/") and not sink.is_linked():
        pad.link(sink)


class Stream:
    """One stream's pipeline and what happened to it."""

    def __init__(self, app, spec, annotated, clock=time.monotonic, start_time_ns=-1, display=False, append=False):
        self.app = app
        self.start_time_ns = start_time_ns  # the run's start: a recorded source's time without a tag
        self.spec = spec
        self.annotated = annotated
        self.display = display    # the annotated video in a window too (`emi run --display`)
        self.append = append      # added to the previous run in its output folder (`--append`)
        self.annotated_path = None
        self.recorded_clips = []  # emaimeta's emi-clip-recorded documents
        self.clock = clock
        self.state = "starting"   # running, reconnecting, finished, failed, interrupted
        self.error = None
        self.reconnects = 0
        self.backoff = FIRST_BACKOFF_SECONDS
        self.retry_at = None
        self.frames = 0
        self.started = clock()
        self.ended = None
        self.eos_sent = False
        self.latencies = collections.deque(maxlen=LATENCY_SAMPLES)
        self.entered = {}         # buffer PTS → when it left the source
        self.pipeline = None
        self.aimeta = None
        self.source = None
        self._downstream_pad = None  # where the source's frames go
        self.roi_element = None      # emroi dropping objects outside the stream's regions
        self.ignored = []
        # Each time the live source was lost: {"at_frame": frames out of the app then, "error": its
        # first line, "backoffs_s": the waits before each attempt, "down_s": seconds until frames
        # came again (None: not yet)}.
        self.outages = []
        self._outage = None          # the outage going on
        self._failed_source = None   # the source that posted an error: its EOS is not the stream's
        self._source_held = False    # a movie's source, locked until play()
        self._last_pts = None        # of the live source's last frame
        self._last_frame_at = None   # clock() when the live source started or last gave a frame
        self._dropped_frame_times = None  # frame_times() of the last source dropped

    # -- building -----------------------------------------------------------------------------
    def build(self):
        # The app's pipeline as `emi run` builds it, with its source replaced by this stream's.
        if self.annotated:
            self.annotated_path = runner._annotated_path(self.spec.output_dir, self.append)
        self.pipeline, self.aimeta, self.ignored = runner.build_pipeline(
            self.app, self.spec.config_path, "test", self.spec.output_dir, self.annotated_path or False,
            self.display, self.append)
        placeholder = next(element for element in self.pipeline.iterate_elements()
                           if element.get_static_pad("sink") is None and element.get_static_pad("src"))
        self._downstream_pad = placeholder.get_static_pad("src").get_peer()
        placeholder.unlink(self._downstream_pad.get_parent_element())
        self.pipeline.remove(placeholder)
        source = self._new_source()
        self.pipeline.add(source)
        source.get_static_pad("src").link(self._downstream_pad)
        self.pipeline.set_name(self.spec.stream_id)
        self.roi_element = self.pipeline.get_by_name("roi")  # build_pipeline put it in (emi.roi)
        self.aimeta.set_property("stream-id", self.spec.stream_id)
        self.aimeta.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._left_app)
        bus = self.pipeline.get_bus()
        bus.enable_sync_message_emission()
        bus.connect("sync-message::error", self._on_error_now)

    def _on_error_now(self, bus, message):
        """In the thread that posts it: a source that fails then sends EOS (GstBaseSrc does, after
        posting its error), which must not end a live stream that is about to reconnect."""
        source = self.source
        if source is not None and self.from_source(message):
            self._failed_source = source

    def _new_source(self):
        self.source = source_bin(self.spec.location, self.app, f"source{self.reconnects}", self.start_time_ns)
        self.source.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._left_source)
        if self.spec.live:
            self.source.get_static_pad("src").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._source_event,
                                                        self.source)
        return self.source

    def _source_event(self, pad, info, source):
        if info.get_event().type != Gst.EventType.EOS or self.eos_sent:
            return Gst.PadProbeReturn.OK
        if self._failed_source is not source:
            # A camera doesn't finish: its end is an outage, handled where the bus is read.
            source.post_message(Gst.Message.new_application(source, Gst.Structure.new_empty(_SOURCE_ENDED_MESSAGE)))
        return Gst.PadProbeReturn.DROP  # the end of a lost source: a new one follows

    def _left_source(self, pad, info):
        buffer = info.get_buffer()
        if self.spec.live:
            if buffer.pts == Gst.CLOCK_TIME_NONE and self._last_pts is not None:
                # A live frame without a time: multipartdemux times only the first frame of what
                # it reads at once, and the others came with it. Just after that one, so that the
                # annotated video's encoder keeps it.
                buffer.pts = self._last_pts + Gst.MSECOND
            if buffer.pts != Gst.CLOCK_TIME_NONE:
                self._last_pts = buffer.pts
            self._last_frame_at = self.clock()
        outage = self._outage
        if outage is not None:  # frames again: the outage is over, and the next one backs off from the start
            outage["down_s"] = round(self.clock() - outage["lost_at"], 2)
            self._outage = None
            self.backoff = FIRST_BACKOFF_SECONDS
            self.error = None
        if len(self.entered) < 1000:  # frames a stage drops never come out: keep the map bounded
            self.entered[buffer.pts] = time.monotonic()
        return Gst.PadProbeReturn.OK

    def _left_app(self, pad, info):
        self.frames += 1
        entered = self.entered.pop(info.get_buffer().pts, None)
        if entered is not None:
            self.latencies.append(time.monotonic() - entered)
        return Gst.PadProbeReturn.OK

    # -- running ------------------------------------------------------------------------------
    def load(self):
        """Builds the pipeline and starts its elements: the app's programs and models load here.
        run_streams loads every stream before it plays any, so that no stream's frames wait
        seconds behind another's loading (which holds the interpreter). A movie's source is held
        back until play() (it would preroll frames that then wait); a live source makes no frame
        before PLAYING anyway. A stream that can't load fails (a live one whose source can't
        start retries)."""
        try:
            self.build()
        except runner.RunError as error:
            self.fail(str(error))
            return
        self._source_held = self.spec.location != "test" and not self.spec.live
        if self._source_held:
            self.source.set_locked_state(True)
        if self.pipeline.set_state(Gst.State.PAUSED) == Gst.StateChangeReturn.FAILURE:
            self._start_failed()

    def play(self):
        """Plays the loaded stream (a held-back source starts now); a source that can't start
        fails the stream (or, live, retries)."""
        if self.state != "starting":
            return
        started = self.pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
        if started and self._source_held:
            # The pipeline still waits for its first frame in PAUSED, PLAYING its target: the
            # source starts to the state the pipeline is heading for.
            self.source.set_locked_state(False)
            started = self.source.sync_state_with_parent()
        if not started:
            self._start_failed()
            return
        self.state = "running"
        self._last_frame_at = self.clock()

    def _start_failed(self):
        message = self.pipeline.get_bus().timed_pop_filtered(0, Gst.MessageType.ERROR)
        self.source_failed(runner._error_text(message) if message else "the pipeline did not start",
                           from_source=message is None or self.from_source(message))

    def from_source(self, message):
        element = message.src
        while element is not None:
            if element == self.source:
                return True
            element = element.get_parent()
        return False

    def _from_dropped_source(self, message):
        """Posted by an element no longer in the pipeline: a source that was dropped (a source
        that fails often posts a second error, and a silent one may post one as it stops)."""
        element = message.src
        while element.get_parent() is not None:
            element = element.get_parent()
        return element is not self.pipeline

    def source_failed(self, text, from_source=True):
        if not (self.spec.live and from_source) or self.state == "interrupted":
            self.fail(text)
            return
        # The rest of the pipeline stays as it is: its files, tracks and counts go on.
        self._drop_source()
        self.error = text
        self.state = "reconnecting"
        if self._outage is None:
            self._outage = {"at_frame": self.frames, "error": text.splitlines()[0] if text else "",
                            "backoffs_s": [], "down_s": None, "lost_at": self.clock()}
            self.outages.append(self._outage)
        self._outage["backoffs_s"].append(self.backoff)
        self.retry_at = self.clock() + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)

    def _drop_source(self):
        source, self.source = self.source, None
        if source is None:
            return
        # A live stream may end while it waits for a new source: its summary still says where
        # its frames' times came from.
        self._dropped_frame_times = self._frame_times_of(source) or self._dropped_frame_times
        source.set_state(Gst.State.NULL)
        source.get_static_pad("src").unlink(self._downstream_pad)
        self.pipeline.remove(source)
        self.entered.clear()

    def reconnect(self):
        self.reconnects += 1
        self.retry_at = None
        source = self._new_source()
        self.pipeline.add(source)
        source.get_static_pad("src").link(self._downstream_pad)
        self.state = "running"
        self._last_frame_at = self.clock()
        # The pipeline may never have reached PLAYING (the source failed while starting).
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = self.pipeline.get_bus().timed_pop_filtered(0, Gst.MessageType.ERROR)
            self.source_failed(runner._error_text(message) if message else "the source did not start")

    def silent(self, now):
        """Whether the live source has given no frame for `silence_s` seconds since it started or
        since its last frame, while nothing waits in its last queue (an app that is slow holds
        frames there: that is not the source's silence)."""
        if not self.spec.live or self.state != "running" or self.source is None \
                or now - self._last_frame_at < self.spec.silence_s:
            return False
        return self.source.get_by_name("decoded").get_property("current-level-buffers") == 0

    def fail(self, text):
        self.error = text
        self.state = "failed"
        self.ended = self.clock()
        if self.pipeline is not None:
            self.pipeline.set_state(Gst.State.NULL)

    def finish(self, state):
        self.state = state
        self.ended = self.clock()
        self.pipeline.set_state(Gst.State.NULL)
        bus = self.pipeline.get_bus()  # the last clip is closed as the pipeline stops
        while (message := bus.pop_filtered(Gst.MessageType.ELEMENT)) is not None:
            self._keep_clip(message)

    def _keep_clip(self, message):
        clip = runner._clip_of(message)
        if clip is not None:
            self.recorded_clips.append(clip)

    def interrupt(self):
        """Ends the stream with valid files: EOS from the source, or into the pipeline when its
        source is gone."""
        if self.state in ("finished", "failed", "interrupted") or self.eos_sent:
            return
        self.eos_sent = True
        if self.state == "starting" or (self.state == "reconnecting" and self.frames == 0):
            self.finish("interrupted")  # no frame went through: no file to finish
            return
        if self.state == "reconnecting":
            self.retry_at = None
            self._downstream_pad.send_event(Gst.Event.new_eos())
        else:
            self.pipeline.send_event(Gst.Event.new_eos())
        self.state = "stopping"

    @property
    def done(self):
        return self.state in ("finished", "failed", "interrupted")

    def handle(self, message):
        if message.type == Gst.MessageType.ELEMENT:
            self._keep_clip(message)
        elif message.type == Gst.MessageType.APPLICATION:
            if message.get_structure().get_name() != _SOURCE_ENDED_MESSAGE or message.src is not self.source:
                return  # another element's, or a source already replaced
            if self.state == "running":
                self.source_failed(SOURCE_ENDED)
            elif self.state == "stopping":
                # It ended just before Ctrl-C's EOS, which it then never passed on.
                self._downstream_pad.send_event(Gst.Event.new_eos())
        elif message.type == Gst.MessageType.EOS:
            self.finish("interrupted" if self.eos_sent else "finished")
        elif message.type == Gst.MessageType.ERROR:
            if self._from_dropped_source(message):
                return  # its loss was handled when it was dropped: a late error is not the stream's
            if self.state == "stopping" and not self.from_source(message):
                self.fail(runner._error_text(message))
            elif self.state in ("running", "stopping"):
                if self.state == "stopping":
                    self.finish("interrupted")  # the source died after EOS was asked for
                else:
                    self.source_failed(runner._error_text(message), self.from_source(message))

    def summary(self):
        ended = self.ended if self.ended is not None else self.clock()
        elapsed = ended - self.started
        output_dir = self.spec.output_dir
        text = {"stream_id": self.spec.stream_id, "location": self.spec.location, "state": self.state,
                "frames": self.frames, "seconds": round(elapsed, 2),
                "fps": round(self.frames / elapsed, 2) if elapsed > 0 else 0.0,
                "reconnects": self.reconnects,
                "outages": [{key: value for key, value in outage.items() if key != "lost_at"}
                            for outage in self.outages],
                "latency_ms": self.latency_percentiles(),
                "frame_times": self.frame_times()}
        if self.aimeta is not None:
            text.update(runner.aimeta_counts(self.aimeta))
            text.update({"clips": sorted(glob.glob(os.path.join(output_dir, runner.CLIPS_DIR, "*.mp4"))),
                         "signals_file": os.path.join(output_dir, runner.SIGNALS_NAME),
                         "recorded_clips": self.recorded_clips, "annotated": self.annotated_path})
        if self.roi_element is not None:
            text["roi_dropped"] = self.roi_element.get_property("dropped")
        if self.error is not None:
            text["error"] = self.error
        text["ignored"] = self.ignored
        return text

    def frame_times(self):
        """Where the documents' times came from: tag, start-time (a movie's own time) or wall-clock."""
        return (self._frame_times_of(self.source) if self.source is not None else None) or self._dropped_frame_times

    @staticmethod
    def _frame_times_of(source):
        media_time = source.get_by_name("media_time")
        return media_time.get_property("origin") or None if media_time is not None else None

    def latency_percentiles(self):
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return {"p50": round(1000 * _percentile(ordered, 50), 1), "p95": round(1000 * _percentile(ordered, 95), 1)}

    def progress_text(self):
        elapsed = (self.ended if self.ended is not None else self.clock()) - self.started
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        text = f"{self.spec.stream_id}: frames {self.frames}  {fps:.1f} fps"
        if self.aimeta is not None:
            text += f"  events {self.aimeta.get_property('events')}"
        if self.outages:
            text += f"  source lost {len(self.outages)}x"
        if self.state == "reconnecting":
            text += f"  reconnecting in {max(0.0, self.retry_at - self.clock()):.0f} s ({self.error.splitlines()[0]})"
        elif self.state != "running":
            text += f"  {self.state}"
        return text


def _percentile(ordered, percent):
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


class _Display:
    """A line per stream, rewritten in place on a terminal; the lines every few seconds in a log."""

    def __init__(self, out):
        self.out = out
        self.interactive = out.isatty()
        self.lines_shown = 0
        self.last_shown = 0.0

    def show(self, lines, final=False):
        now = time.monotonic()
        if self.interactive:
            up = f"\033[{self.lines_shown}F" if self.lines_shown else ""
            self.out.write(up + "".join("\033[K" + line + "\n" for line in lines))
            self.lines_shown = len(lines)
        elif final or now - self.last_shown >= 5:
            self.out.write("".join(line + "\n" for line in lines))
            self.last_shown = now
        self.out.flush()

    def say(self, text):
        if self.interactive and self.lines_shown:
            self.out.write(f"\033[{self.lines_shown}F\033[J")
            self.lines_shown = 0
        self.out.write(text + "\n")
        self.out.flush()


def play_offsets(framerate, count):
    """When each of `count` streams plays, in seconds after the first: spread over one frame
    interval when the app takes frames at a fixed rate (input.framerate, "N/D"), so that live
    streams take their frames at staggered instants and the frames of N cameras don't all reach a
    shared model at once (4 cameras at 4 frames/s on 2 cores: latency p95 227 -> 152 ms,
    docs/performance.md); all at once otherwise. At most MAX_PLAY_SPREAD_SECONDS in all: an app
    taking a frame every 10 s needn't wait 10 s for its last camera to be offset from the others."""
    numerator, _, denominator = (framerate or "").partition("/")
    try:
        interval = min(int(denominator or 1) / int(numerator), MAX_PLAY_SPREAD_SECONDS)
    except (ValueError, ZeroDivisionError):
        return [0.0] * count
    return [index * interval / count for index in range(count)]


def run_streams(app, specs, annotated=True, out=None, poll_seconds=0.1, interrupts=None, display=False,
                append=False):
    """Runs every stream to its end (or Ctrl-C) in this process; returns the run's summary:
    {"streams": [per-stream summary], "frames", "seconds", "fps", "failed", "interrupted"}.
    A stream that fails is in the summary with its error; the others go on. `interrupts`: the
    command line's started emi.interrupts.InterruptWatcher (which ends the process on a second
    Ctrl-C); without one, SIGINT is handled here while the streams run. `display`, `append`: see
    runner.run_app (for one stream)."""
    out = out if out is not None else sys.stderr
    Gst.init(None)
    progress = _Display(out)
    run_start_ns = time.time_ns()
    streams = [Stream(app, spec, annotated, start_time_ns=run_start_ns, display=display, append=append)
               for spec in specs]
    signalled = 0

    def on_interrupt(signum, frame):
        nonlocal signalled
        signalled += 1

    def interrupt_count():
        watched = interrupts is not None and interrupts.interrupted.is_set()
        return max(signalled, 1 if watched else 0)

    previous_handler = signal.signal(signal.SIGINT, on_interrupt) if interrupts is None else None
    started = time.monotonic()
    handled_interrupts = 0
    try:
        for stream in streams:
            os.makedirs(stream.spec.output_dir, exist_ok=True)
            stream.load()
        first_play = time.monotonic()
        for stream, offset in zip(streams, play_offsets(app.framerate, len(streams))):
            time.sleep(max(0.0, first_play + offset - time.monotonic()))
            stream.play()
            for item in stream.ignored if stream.reconnects == 0 and stream is streams[0] else []:
                progress.say(f"emi: ignored {item}")
            if stream.state in ("failed", "reconnecting"):
                progress.say(f"emi: {stream.spec.stream_id}: {stream.error}")
        turn = 0
        while not all(stream.done for stream in streams):
            if interrupt_count() > handled_interrupts:
                handled_interrupts = interrupt_count()
                if handled_interrupts == 1:
                    progress.say("emi: stopping (Ctrl-C): finishing files… (Ctrl-C again stops at once)")
                    for stream in streams:
                        stream.interrupt()
                else:
                    for stream in streams:
                        if not stream.done:
                            stream.finish("interrupted")
                    break
            now = time.monotonic()
            for stream in streams:
                if stream.silent(stream.clock()):
                    stream.source_failed(f"the source gave no frame for {stream.spec.silence_s:g} s "
                                         "(silence_timeout_seconds)")
                    _say_lost(stream, progress)
                if stream.state == "reconnecting" and now >= stream.retry_at:
                    progress.say(f"emi: {stream.spec.stream_id}: reconnecting (attempt {stream.reconnects + 1})")
                    stream.reconnect()
            if not _drain(streams, progress):
                running = [stream for stream in streams if stream.pipeline is not None and not stream.done]
                if running:
                    waiting = running[turn % len(running)]
                    turn += 1
                    message = waiting.pipeline.get_bus().timed_pop_filtered(
                        int(poll_seconds * Gst.SECOND), _WATCHED)
                    if message is not None:
                        _handle(waiting, message, progress)
                else:
                    GLib.usleep(int(poll_seconds * 1e6))  # all waiting to reconnect
            progress.show([stream.progress_text() for stream in streams])
    finally:
        for stream in streams:
            if stream.pipeline is not None and not stream.done:
                stream.finish("interrupted")
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    elapsed = time.monotonic() - started
    summaries = [stream.summary() for stream in streams]
    frames = sum(summary["frames"] for summary in summaries)
    progress.show([stream.progress_text() for stream in streams], final=True)
    return {"streams": summaries, "frames": frames, "seconds": round(elapsed, 2),
            "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
            "failed": [summary["stream_id"] for summary in summaries if summary["state"] == "failed"],
            "interrupted": handled_interrupts > 0}


def run_live_input(app, stream_path, location, output_dir, annotated=True, out=None, display=False, append=False,
                   interrupts=None):
    """runner.run_app for a live `--input` (`emi run APP --stream s.json --input rtsp://…`): the
    stream runs as run_streams runs every stream (a lost, ended or silent source is replaced after
    a back-off), with its outputs in `output_dir` itself, as run_app writes them. Returns run_app's
    summary (also written to OUTPUT/run.json) with the stream's `reconnects`, `outages`,
    `latency_ms` and `frame_times`. Raises runner.RunError when the stream fails."""
    spec = dataclasses.replace(stream_specs([stream_path], output_dir, location)[0], output_dir=output_dir)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result = run_streams(app, [spec], annotated, out, interrupts=interrupts, display=display, append=append)
    stream = result["streams"][0]
    failed = stream["state"] == "failed"
    if failed and "signals" not in stream:
        raise runner.RunError(stream["error"])  # its pipeline could not be built: no run to record
    summary = {"app": app.name, "app_folder": app.folder, "stream": os.path.abspath(stream_path), "input": location,
               "started": started_at,
               **{key: stream[key] for key in (
                   "frames", "seconds", "fps", "signals", "events", "firings", "callback_errors", "uploads_dropped",
                   "uploads_rejected", "clips", "recorded_clips", "signals_file", "annotated", "ignored")},
               "interrupted": result["interrupted"],
               "error": stream["error"] if failed else None,  # else the last outage's, which is in `outages`
               **{key: stream[key] for key in ("reconnects", "outages", "latency_ms", "frame_times")}}
    runner._write_json(os.path.join(output_dir, runner.RUN_NAME), summary)
    if failed:
        raise runner.RunError(stream["error"])
    return summary


_WATCHED = Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.WARNING | Gst.MessageType.APPLICATION \
    | Gst.MessageType.ELEMENT  # emaimeta's recorded clips


def _drain(streams, display):
    handled = False
    for stream in streams:
        if stream.pipeline is None or stream.done:
            continue
        bus = stream.pipeline.get_bus()
        while not stream.done:
            message = bus.pop_filtered(_WATCHED)
            if message is None:
                break
            _handle(stream, message, display)
            handled = True
    return handled


def _handle(stream, message, display):
    if message.type == Gst.MessageType.WARNING:
        warning, _ = message.parse_warning()
        display.say(f"emi: {stream.spec.stream_id}: warning from {message.src.get_name()}: {warning.message}")
        return
    before = stream.state
    stream.handle(message)
    if stream.state == "failed" and before != "failed":
        display.say(f"emi: {stream.spec.stream_id}: failed: {stream.error.splitlines()[0]}")
    elif stream.state == "reconnecting" and before != "reconnecting":
        _say_lost(stream, display)


def _say_lost(stream, display):
    display.say(f"emi: {stream.spec.stream_id}: source lost ({stream.error.splitlines()[0]}): "
                f"reconnecting in {stream.retry_at - stream.clock():.0f} s")
