# SPDX-License-Identifier: LGPL-2.1-or-later
"""`emi run --display`: the annotated video in a window, on a virtual X server (Xvfb)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

SCRIPTS = os.environ["EMI_TEST_SCRIPTS"]
sys.path.insert(0, SCRIPTS)
import box_apps  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="no Xvfb (apt-get install xvfb)")


@pytest.fixture
def display():
    """A fresh X display (Xvfb picks a free number and writes it when it is ready; -noreset: a
    sink that probes the display and lets go must find it again)."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "640x480x24",
                               "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,), stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        number = ready.readline().strip()
    try:
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def saturated_box(image, width, height):
    """Whether `image` (RGB) holds the outline of a box about width x height in one bright colour:
    two rows and two columns of coloured pixels that far apart. Black, white and greys (the test
    pattern, the root window) don't count."""
    pixels = numpy.asarray(image.convert("RGB")).astype(int)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 80
    rows = numpy.flatnonzero(coloured.sum(axis=1) >= 0.8 * width)
    columns = numpy.flatnonzero(coloured.sum(axis=0) >= 0.8 * height)
    return (rows.size >= 2 and abs((rows.max() - rows.min()) - height) <= 6 and
            columns.size >= 2 and abs((columns.max() - columns.min()) - width) <= 6)


def test_display_shows_the_annotated_video_in_a_window(tmp_path, display):
    from PIL import ImageGrab

    folder = box_apps.write_still_box_app(str(tmp_path / "app"))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "emi", "run", folder, "--stream", "streams/stream.json", "--input", "test",
         "--output", str(out), "--no-video", "--display"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "DISPLAY": display})
    left, top, width, height = box_apps.STILL_BOX
    shown = None
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:  # until the window shows it
            screen = ImageGrab.grab(xdisplay=display)
            if saturated_box(screen, width, height):
                shown = screen
                break
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    screenshot = os.path.join(os.environ.get("EMI_TEST_OUTPUT", str(tmp_path)), "display_screenshot.png")
    (shown or screen).save(screenshot)
    assert shown is not None, f"no box on the screen (see {screenshot}); emi run said: {stderr}"
    assert process.returncode == 130, stderr


def test_an_empty_screen_shows_no_box(display):
    """The check above can fail: the bare screen (the root window's pattern) has no box."""
    from PIL import ImageGrab

    assert not saturated_box(ImageGrab.grab(xdisplay=display), *box_apps.STILL_BOX[2:])


def test_display_without_a_display_is_a_clear_error(tmp_path):
    folder = box_apps.write_still_box_app(str(tmp_path / "app"))
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    ran = subprocess.run([sys.executable, "-m", "emi", "run", folder, "--stream", "streams/stream.json", "--input",
                          "test", "--output", str(tmp_path / "out"), "--display"],
                         env=environment, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 1
    assert "emi: --display: no display to show the video on (DISPLAY and WAYLAND_DISPLAY are not set" in ran.stderr
