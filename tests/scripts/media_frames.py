# SPDX-License-Identifier: LGPL-2.1-or-later
"""Frames of the real clips in ../shared/media (licence unknown: read from there, never copied
into the project), for the Python tests; a test skips with a message when the folder is absent."""
import os

import pytest

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The shared folder beside the checkout (EMI_SHARED names another).
MEDIA = os.path.join(os.environ.get("EMI_SHARED", os.path.join(os.path.dirname(_CHECKOUT), "shared")), "media")


def media_frames(name, numbers):
    """Frames `numbers` of ../shared/media/`name` (BGR); skips the test when the clip is absent."""
    path = os.path.join(MEDIA, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (the shared media folder holds the real clips of people)")
    import cv2

    capture = cv2.VideoCapture(path)
    frames = []
    for number in numbers:
        capture.set(cv2.CAP_PROP_POS_FRAMES, number)
        ok, frame = capture.read()
        assert ok, f"{path}: no frame {number}"
        frames.append(frame)
    return frames
