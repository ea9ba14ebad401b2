# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small analytics program for empycustom: how much of the frame moved, and where.

Frame differencing in NumPy on the zero-copy view of the frame; returns one frame-level result
per frame (the first entry goes to the frame when there are no objects).
"""
import numpy as np

previous = None


def start(options):
    global previous
    previous = None


def process_ip(io_buffer, in_meta, options):
    global previous
    gray = io_buffer[:, :, :3].mean(axis=2, dtype=np.float32)
    result = {"frame_num": in_meta["frame"][0]["frame_num"], "moving_percent": 0.0}
    if previous is not None:
        moving = np.abs(gray - previous) > options.get("threshold", 24)
        result["moving_percent"] = round(100.0 * float(moving.mean()), 2)
        if moving.any():
            rows = np.flatnonzero(moving.any(axis=1))
            cols = np.flatnonzero(moving.any(axis=0))
            result["motion_box"] = {"left": int(cols[0]), "top": int(rows[0]),
                                    "width": int(cols[-1] - cols[0] + 1),
                                    "height": int(rows[-1] - rows[0] + 1)}
    previous = gray
    return str([result])
