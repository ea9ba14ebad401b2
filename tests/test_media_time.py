# SPDX-License-Identifier: LGPL-2.1-or-later
"""Media time (emmediatime, through emi run): a recorded source's frame times are the movie's own
(its date-time tag, else the run's start, plus running time), so two runs of one movie agree;
live sources keep the wall clock."""

import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

from emi import app as emi_app  # noqa: E402
from emi import runner, streams  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_streams import make_app, signal_lines, write_stream  # noqa: E402

Gst.init(None)
FRAME_NS = 1_000_000_000 / 30
QUIET = open(os.devnull, "w")


def encode(path, muxer, frames=30):
    """An H.264 clip of `frames` frames at 30/s in `muxer` (mp4mux writes its creation time as
    the movie's date-time tag; mpegtsmux writes no date)."""
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=96,height=72,framerate=30/1 ! "
        f"videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast ! h264parse ! {muxer} ! "
        "filesink name=sink")
    pipeline.get_by_name("sink").set_property("location", path)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message.type == Gst.MessageType.EOS
    return path


def date_tag_ns(path):
    """The movie's date-time tag as GStreamer reads it, in ns since the epoch, or None."""
    pipeline = Gst.parse_launch("filesrc name=file ! decodebin ! fakesink")
    pipeline.get_by_name("file").set_property("location", path)
    pipeline.set_state(Gst.State.PLAYING)
    found = None
    bus = pipeline.get_bus()
    while True:
        message = bus.timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.TAG | Gst.MessageType.EOS
                                         | Gst.MessageType.ERROR)
        if message is None or message.type != Gst.MessageType.TAG:
            break
        ok, date_time = message.parse_tag().get_date_time(Gst.TAG_DATE_TIME)
        if ok:
            found = date_time.to_g_date_time().to_unix() * 1_000_000_000
    pipeline.set_state(Gst.State.NULL)
    return found


def run_once(tmp_path, name, location):
    folder = str(tmp_path / "app")
    if not os.path.isdir(folder):
        make_app(folder)
    specs = streams.stream_specs([write_stream(str(tmp_path), name, location)], str(tmp_path / name))
    summary = streams.run_streams(emi_app.load_app(folder), specs, annotated=False, out=QUIET)
    stream = summary["streams"][0]
    assert stream["state"] == "finished", stream
    frames = [line["frame"][0] for line in signal_lines(stream["signals_file"]) if "frame" in line]
    return stream, frames


def assert_media_spacing(frames):
    """Frame n is n/30 s after frame 0, however fast the frames were processed."""
    first = frames[0]["ntp_timestamp"]
    for frame in frames:
        assert abs(frame["ntp_timestamp"] - first - frame["frame_num"] * FRAME_NS) < 1_000_000, frame


def test_a_movie_with_a_date_tag_has_its_own_times_in_every_run(tmp_path):
    movie = encode(str(tmp_path / "dated.mp4"), "mp4mux")
    tag_ns = date_tag_ns(movie)
    assert tag_ns is not None, "mp4mux wrote no creation time"
    first, frames = run_once(tmp_path, "first", movie)
    second, frames_again = run_once(tmp_path, "second", movie)
    assert first["frame_times"] == second["frame_times"] == "tag"
    assert len(frames) == 30
    assert [frame["ntp_timestamp"] for frame in frames] == [frame["ntp_timestamp"] for frame in frames_again]
    assert [frame["timestamp"] for frame in frames] == [frame["timestamp"] for frame in frames_again]
    assert abs(frames[0]["ntp_timestamp"] - tag_ns) < 1_000_000_000  # the tag has whole seconds
    assert_media_spacing(frames)


def test_a_movie_without_a_date_tag_starts_at_the_run_start(tmp_path):
    movie = encode(str(tmp_path / "undated.ts"), "mpegtsmux")
    assert date_tag_ns(movie) is None
    before = time.time_ns()
    stream, frames = run_once(tmp_path, "undated", movie)
    after = time.time_ns()
    assert stream["frame_times"] == "start-time"
    assert len(frames) == 30
    # Running time 0 is the run's start (a transport stream's first PTS may come a little later).
    assert before <= frames[0]["ntp_timestamp"] <= after + 1_000_000_000
    assert_media_spacing(frames)


def test_live_sources_keep_the_wall_clock(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "TEST_PATTERN_FRAMES", 10)
    before = time.time_ns()
    stream, frames = run_once(tmp_path, "live", "test")
    after = time.time_ns()
    assert stream["frame_times"] == "wall-clock"
    assert len(frames) == 10
    assert all(before <= frame["ntp_timestamp"] <= after for frame in frames)


def test_a_single_stream_run_times_a_movie_by_its_tag_too(tmp_path):
    movie = encode(str(tmp_path / "dated.mp4"), "mp4mux")
    tag_ns = date_tag_ns(movie)
    folder = make_app(str(tmp_path / "app"))
    stream = write_stream(str(tmp_path), "cam", "")
    summary = runner.run_app(emi_app.load_app(folder), stream, movie, str(tmp_path / "out"), annotated=False,
                             out=QUIET)
    frames = [line["frame"][0] for line in signal_lines(summary["signals_file"]) if "frame" in line]
    assert len(frames) == 30
    assert abs(frames[0]["ntp_timestamp"] - tag_ns) < 1_000_000_000
    assert_media_spacing(frames)
