# SPDX-License-Identifier: LGPL-2.1-or-later
"""YOLOX-Nano's output decoded as one would write it by hand with NumPy and OpenCV: the plain loops
of bench_models.py and bench_counter.py share it, so both compare emi against the same code."""

import cv2
import numpy


def anchor_grid(size):
    """(grid, stride): each of the square input's anchor points (strides 8, 16, 32) as (x, y)
    cells, and its stride, as float32 arrays of 3549 rows at 416."""
    grids, strides = [], []
    for stride in (8, 16, 32):
        cells = size // stride
        y, x = numpy.mgrid[0:cells, 0:cells]
        grids.append(numpy.stack([x.ravel(), y.ravel()], 1))
        strides.append(numpy.full((cells * cells, 1), stride))
    return numpy.concatenate(grids).astype(numpy.float32), numpy.concatenate(strides).astype(numpy.float32)


def people(output, grid, stride, threshold, nms_threshold=0.45):
    """The person boxes of one image's output rows (3549 x 85): ([left, top, width, height] in
    input pixels, scores), after NMS."""
    scores = output[:, 4] * output[:, 5]  # objectness x person
    rows = numpy.flatnonzero(scores >= threshold)
    centres = (output[rows, :2] + grid[rows]) * stride[rows]
    sizes = numpy.exp(output[rows, 2:4]) * stride[rows]
    boxes = numpy.concatenate([centres - sizes / 2, sizes], 1)
    kept = numpy.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), scores[rows].tolist(), threshold, nms_threshold)).reshape(-1)
    return boxes[kept], scores[rows][kept]
