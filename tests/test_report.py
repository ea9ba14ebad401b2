# SPDX-License-Identifier: LGPL-2.1-or-later
"""`emi report OUT`: a run's output as one HTML page with plots, rendered by headless Chromium."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from emi import app as emi_app
from emi import cli, report, runner

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
import box_apps  # noqa: E402

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# matplotlib's first two line colours (C0, C1): the plots' lines, nothing else on the page.
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    """The output of a run of the counting app on a 60-frame clip (96x72)."""
    scratch = tmp_path_factory.mktemp("report")
    clip = str(scratch / "clip.mp4")
    subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), clip, "60", "96x72"],
                   check=True)
    folder = box_apps.write_counting_app(str(scratch / "app"))
    out = str(scratch / "out")
    runner.run_app(emi_app.load_app(folder), os.path.join(folder, "streams", "stream.json"), clip, out,
                   annotated=False, out=open(os.devnull, "w"))
    return out


def test_the_record_follows_the_run(run_output):
    record = report.read_signals(os.path.join(run_output, runner.SIGNALS_NAME))
    # A signal a frame, and the tracker's last one at EOS (the tracks that ended there).
    assert len(record.times) == 61 and record.counted_by_tracker and record.has_crossings
    assert record.in_view[0] == 1 and record.in_view[30] == 2 and record.in_view[-1] == 0
    assert record.total[-1] == 2
    assert record.by_label["car"][-1] == 1 and record.by_label["person"][-1] == 1
    assert record.crossings["forward"][-1] + record.crossings["backward"][-1] == 1  # the car    assert len(record.firings["Car seen"]) == 60 and len(record.firings["Person seen"]) == 40
    assert record.times[-1] == pytest.approx(59 / 30, abs=0.01)


def test_the_page_stands_alone_with_plots_and_clip_thumbnails(run_output, capsys):
    assert cli.main(["report", run_output]) == 0
    path = os.path.join(run_output, runner.REPORT_NAME)
    assert capsys.readouterr().out.strip() == f"report: {path}"
    text = open(path, encoding="utf-8").read()
    assert not re.search(r'(src|href)="(?!data:)', text)  # nothing to fetch
    clips = report.read_clips(run_output)
    assert len(clips) >= 1
    thumbnails = re.findall(r'class="thumb" alt="[^"]*" src="data:image/png;base64,([^"]+)"', text)
    assert len(thumbnails) == len(clips)
    picture = numpy.asarray(Image.open(io.BytesIO(base64.b64decode(thumbnails[0]))).convert("RGB"))
    assert picture.shape[1] == report.THUMBNAIL_WIDTH and picture.std() > 5  # a frame, not a blank
    for clip in clips:
        assert f"{clip['start_pts'] / 1e9:.2f} s – {clip['end_pts'] / 1e9:.2f} s" in text
    assert "<th>firings</th><td>Car seen: 60, Person seen: 40</td>" in text
    summary = json.load(open(os.path.join(run_output, runner.RUN_NAME)))
    assert f"<th>frames</th><td>{summary['frames']}</td>" in text


def colour_pixels(image, colour, tolerance=40):
    pixels = numpy.asarray(image.convert("RGB")).astype(int)
    return int((numpy.abs(pixels - numpy.array(colour)).sum(axis=2) < tolerance).sum())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (apt-get install chromium)")
def test_chromium_shows_the_plots(run_output, tmp_path):
    path = report.write_report(run_output)
    screenshot = tmp_path / "report.png"
    chromium = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1100,2600",
         f"--screenshot={screenshot}", "file://" + path],
        capture_output=True, text=True, timeout=120)
    assert screenshot.exists(), chromium.stderr
    rendered = Image.open(screenshot)
    kept = os.path.join(os.environ.get("EMI_TEST_OUTPUT", str(tmp_path)), "report_screenshot.png")
    rendered.save(kept)
    # Each plot's lines in C0 and C1: hundreds of pixels of each, where the page's text has none.
    assert colour_pixels(rendered, BLUE) > 2000, kept
    assert colour_pixels(rendered, ORANGE) > 2000, kept
    # The same page without its images shows neither colour: the pixels are the plots'.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'<img [^>]*>', "", open(path, encoding="utf-8").read()), encoding="utf-8")
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1100,2600",
         f"--screenshot={tmp_path / 'bare.png'}", f"file://{bare}"],
        capture_output=True, text=True, timeout=120, check=True)
    assert colour_pixels(Image.open(tmp_path / "bare.png"), BLUE) == 0


def test_a_folder_without_signals_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 1
    assert (f"emi: {tmp_path / runner.SIGNALS_NAME}: no such file (is {tmp_path} the --output of an emi run?)"
            in capsys.readouterr().err)


def test_run_with_report_says_where_the_report_is(tmp_path, capsys):
    clip = str(tmp_path / "clip.mp4")
    subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), clip, "10", "96x72"],
                   check=True)
    folder = box_apps.write_counting_app(str(tmp_path / "app"))
    out = tmp_path / "out"
    assert cli.main(["run", folder, "--stream", "streams/stream.json", "--input", clip, "--output", str(out),
                     "--no-video", "--report"]) == 0
    assert f"emi: report: {out / runner.REPORT_NAME}\n" in capsys.readouterr().err
    assert "<th>signals</th><td>11</td>" in (out / runner.REPORT_NAME).read_text(encoding="utf-8")


def test_frame_level_results_get_no_empty_count_plots(tmp_path):
    """A 3DCNN-like run: results per frame, no objects, no rule: events only, said plainly."""
    with open(tmp_path / runner.SIGNALS_NAME, "w") as signals:
        for frame_num in range(10):
            signals.write(json.dumps({"frame": [{"frame_num": frame_num, "buf_pts": frame_num * 33333333,
                                                 "emcustom": [{"predicted_class": "marching"}]}]}) + "\n")
            signals.write(json.dumps({"events": [{"predicted_class": "marching"}], "frame_num": frame_num,
                                      "pts": frame_num * 33333333}) + "\n")
    text = open(report.write_report(str(tmp_path)), encoding="utf-8").read()
    assert "No objects in any signal (the app gives frame-level results)" in text
    assert text.count('class="plot"') == 1  # the timeline only
    assert "<th>events</th><td>10</td>" in text and "<th>firings</th><td>0</td>" in text
