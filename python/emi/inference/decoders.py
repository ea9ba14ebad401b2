# SPDX-License-Identifier: LGPL-2.1-or-later
"""From a detector's output tensors to boxes in frame pixels: the layouts of YOLOX, YOLOv5, YOLOv8
and torchvision's detectors (exported to ONNX), chosen by a model-proc "converter" or guessed from
the output's shape; the letterbox that makes a frame the model's input and maps boxes back; and
non-maximum suppression per class."""

import dataclasses

import cv2
import numpy

from .errors import ModelSetupError

CONVERTERS = ("yolox", "yolov5", "yolov8", "torchvision")
# DLStreamer's converter names for the same layouts.
CONVERTER_ALIASES = {"yolo_x": "yolox", "yolo_v5": "yolov5", "yolo_v8": "yolov8", "boxes_labels": "torchvision"}
STRIDES = (8, 16, 32)  # the YOLO heads' strides
YOLOV5_ANCHORS_PER_CELL = 3


@dataclasses.dataclass
class Boxes:
    """Detections of one image: (N, 4) x1, y1, x2, y2 float, (N,) scores, (N,) class ids."""

    corners: numpy.ndarray
    scores: numpy.ndarray
    class_ids: numpy.ndarray

    @classmethod
    def empty(cls):
        return cls(numpy.zeros((0, 4), numpy.float32), numpy.zeros(0, numpy.float32), numpy.zeros(0, numpy.int64))

    def __len__(self):
        return len(self.scores)

    def take(self, keep):
        return Boxes(self.corners[keep], self.scores[keep], self.class_ids[keep])


@dataclasses.dataclass
class Preprocessing:
    """How a frame becomes an ONNX detector's input; the defaults of each converter are in
    DEFAULT_PREPROCESSING."""

    resize: str = "letterbox"  # "letterbox" (top-left), "letterbox-center" or "stretch"
    color_space: str = "RGB"
    value_range: tuple = (0.0, 1.0)
    pad_value: float = 114.0
    mean: list = None  # per channel of the model's colour order, in value_range units
    std: list = None


DEFAULT_PREPROCESSING = {
    # YOLOX's own demo: BGR 0-255, padded at the right and bottom with 114.
    "yolox": Preprocessing("letterbox", "BGR", (0.0, 255.0)),
    # Ultralytics' exports: RGB 0-1, centred letterbox padded with 114.
    "yolov5": Preprocessing("letterbox-center", "RGB", (0.0, 1.0)),
    "yolov8": Preprocessing("letterbox-center", "RGB", (0.0, 1.0)),
    # torchvision's detectors take RGB 0-1 and resize inside the model.
    "torchvision": Preprocessing("stretch", "RGB", (0.0, 1.0)),
}


@dataclasses.dataclass
class Placement:
    """Where the frame lies in the model's input: input = frame × scale + offset."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_frame(self, corners):
        frame = numpy.empty_like(corners)
        frame[:, 0::2] = (corners[:, 0::2] - self.offset_x) / self.scale_x
        frame[:, 1::2] = (corners[:, 1::2] - self.offset_y) / self.scale_y
        return frame


def make_input(image, frame_color_space, preprocessing, height, width, dtype):
    """An H×W×C (C ≥ 3) uint8 image → the model's 1×3×height×width input, and its Placement."""
    image_height, image_width = image.shape[:2]
    if preprocessing.resize == "stretch":
        scale_x, scale_y = width / image_width, height / image_height
        resized_width, resized_height = width, height
    else:
        scale_x = scale_y = min(width / image_width, height / image_height)
        resized_width = min(width, max(1, round(image_width * scale_x)))
        resized_height = min(height, max(1, round(image_height * scale_y)))
    offset_x = offset_y = 0
    if preprocessing.resize == "letterbox-center":
        offset_x, offset_y = (width - resized_width) // 2, (height - resized_height) // 2
    canvas = numpy.full((height, width, 3), preprocessing.pad_value, numpy.uint8)
    resized = cv2.resize(image, (resized_width, resized_height), interpolation=cv2.INTER_LINEAR)
    # Views, not copies: the channels in the model's order, straight into the canvas.
    channels = resized[:, :, :3] if frame_color_space == preprocessing.color_space else resized[:, :, 2::-1]
    canvas[offset_y:offset_y + resized_height, offset_x:offset_x + resized_width] = channels
    planes = canvas.transpose(2, 0, 1)[numpy.newaxis]
    if dtype == numpy.uint8:
        blob = numpy.ascontiguousarray(planes)
    else:
        low, high = preprocessing.value_range
        mean = numpy.asarray(preprocessing.mean if preprocessing.mean is not None else [0.0] * 3, numpy.float32)
        std = numpy.asarray(preprocessing.std if preprocessing.std is not None else [1.0] * 3, numpy.float32)
        # (low + pixel × (high - low) / 255 - mean) / std as one multiply and one add per channel.
        gain = ((high - low) / 255.0 / std).reshape(1, 3, 1, 1)
        bias = ((low - mean) / std).reshape(1, 3, 1, 1)
        blob = planes.astype(numpy.float32)
        if not numpy.all(gain == 1.0):
            blob *= gain
        if numpy.any(bias != 0.0):
            blob += bias
        blob = blob.astype(dtype, copy=False)
    return blob, Placement(resized_width / image_width, resized_height / image_height, offset_x, offset_y)


def grid_cells(height, width):
    """Anchor points of the YOLO heads (strides 8, 16, 32) for an input of this size."""
    return sum((height // stride) * (width // stride) for stride in STRIDES)


def guess_converter(outputs, height, width):
    """The converter whose layout `outputs` (the model's output arrays) have, or a ModelSetupError
    saying why none fits."""
    shapes = [tuple(output.shape) for output in outputs]
    cells = grid_cells(height, width)
    if len(outputs) == 3 and _torchvision_parts(outputs) is not None:
        return "torchvision"
    if len(outputs) == 1 and len(shapes[0]) == 3 and shapes[0][0] == 1:
        _, rows, columns = shapes[0]
        if rows == cells and columns >= 6:
            return "yolox"
        if rows == YOLOV5_ANCHORS_PER_CELL * cells and columns >= 6:
            return "yolov5"
        if columns == cells and rows >= 5:
            return "yolov8"
    raise ModelSetupError(
        ModelSetupError.INVALID,
        f"can't tell its output layout from the shapes {', '.join(map(str, shapes))} for a {width}×{height} "
        f"input: YOLOX gives (1, {cells}, 5 + classes), YOLOv5 (1, {YOLOV5_ANCHORS_PER_CELL * cells}, "
        f"5 + classes), YOLOv8 (1, 4 + classes, {cells}), torchvision boxes, labels and scores. Name the "
        f"layout with \"converter\" ({', '.join(CONVERTERS)}) in a model-proc file")


def class_count(converter, outputs):
    """The number of classes the model scores (None for torchvision's, which says only labels)."""
    shape = outputs[0].shape
    if converter in ("yolox", "yolov5"):
        return shape[-1] - 5
    if converter == "yolov8":
        return shape[1] - 4
    return None


def decode(converter, outputs, height, width, threshold):
    """Boxes (in input pixels) of at least `threshold` of a model's `outputs`, by its converter."""
    if converter == "torchvision":
        return decode_torchvision(outputs, threshold)
    _check_single(converter, outputs, height, width)
    output = outputs[0][0]
    if converter == "yolox":
        return decode_yolox(output, height, width, threshold)
    if converter == "yolov5":
        return decode_yolov5(output, threshold)
    return decode_yolov8(output, threshold)


def _check_single(converter, outputs, height, width):
    cells = grid_cells(height, width)
    expected = {"yolox": f"(1, {cells}, 5 + classes)",
                "yolov5": f"(1, {YOLOV5_ANCHORS_PER_CELL * cells}, 5 + classes)",
                "yolov8": f"(1, 4 + classes, {cells})"}[converter]
    shape = tuple(outputs[0].shape) if len(outputs) == 1 else None
    fits = shape is not None and len(shape) == 3 and shape[0] == 1 and {
        "yolox": lambda: shape[1] == cells and shape[2] >= 6,
        "yolov5": lambda: shape[1] == YOLOV5_ANCHORS_PER_CELL * cells and shape[2] >= 6,
        "yolov8": lambda: shape[2] == cells and shape[1] >= 5}[converter]()
    if not fits:
        shapes = ", ".join(str(tuple(output.shape)) for output in outputs)
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"converter {converter} takes one output {expected} for a {width}×{height} "
                              f"input, and the model gives {shapes}")


def _yolox_grid(height, width):
    """(cells, 2) grid x, y and (cells,) stride of each YOLOX output row, strides in order."""
    grids, strides = [], []
    for stride in STRIDES:
        rows, columns = height // stride, width // stride
        y, x = numpy.meshgrid(numpy.arange(rows), numpy.arange(columns), indexing="ij")
        grids.append(numpy.stack([x.ravel(), y.ravel()], axis=1))
        strides.append(numpy.full(rows * columns, stride))
    return numpy.concatenate(grids).astype(numpy.float32), numpy.concatenate(strides).astype(numpy.float32)


_grid_cache = {}


def decode_yolox(output, height, width, threshold):
    """YOLOX: per anchor point cx, cy, w, h as offsets of its grid cell (in strides, w and h as
    logs), objectness, class scores; score = objectness × class score."""
    objectness = output[:, 4]
    best = output[:, 5:].max(axis=1)
    rows = numpy.flatnonzero(objectness * best >= threshold)
    if rows.size == 0:
        return Boxes.empty()
    if (height, width) not in _grid_cache:
        _grid_cache[(height, width)] = _yolox_grid(height, width)
    grid, strides = _grid_cache[(height, width)]
    picked = output[rows]
    stride = strides[rows, numpy.newaxis]
    centres = (picked[:, 0:2] + grid[rows]) * stride
    sizes = numpy.exp(picked[:, 2:4]) * stride
    class_ids = picked[:, 5:].argmax(axis=1)
    scores = picked[:, 4] * picked[numpy.arange(len(rows)), 5 + class_ids]
    return Boxes(_corners(centres, sizes), scores.astype(numpy.float32), class_ids)


def decode_yolov5(output, threshold):
    """YOLOv5: per anchor cx, cy, w, h in input pixels, objectness, class scores."""
    objectness = output[:, 4]
    rows = numpy.flatnonzero(objectness * output[:, 5:].max(axis=1) >= threshold)
    picked = output[rows]
    class_ids = picked[:, 5:].argmax(axis=1)
    scores = picked[:, 4] * picked[numpy.arange(len(rows)), 5 + class_ids]
    return Boxes(_corners(picked[:, 0:2], picked[:, 2:4]), scores.astype(numpy.float32), class_ids)


def decode_yolov8(output, threshold):
    """YOLOv8: (4 + classes, anchors), cx, cy, w, h in input pixels then class scores; no
    objectness."""
    class_scores = output[4:]
    class_ids = class_scores.argmax(axis=0)
    scores = class_scores[class_ids, numpy.arange(class_scores.shape[1])]
    rows = numpy.flatnonzero(scores >= threshold)
    boxes = output[:4, rows].T
    return Boxes(_corners(boxes[:, 0:2], boxes[:, 2:4]), scores[rows].astype(numpy.float32), class_ids[rows])


def decode_torchvision(outputs, threshold):
    """torchvision's detectors: boxes (N, 4) x1, y1, x2, y2, labels (N,), scores (N,)."""
    parts = _torchvision_parts(outputs)
    if parts is None:
        shapes = ", ".join(str(tuple(output.shape)) for output in outputs)
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"converter torchvision takes three outputs: boxes (N, 4), labels (N) and scores "
                              f"(N); the model gives {shapes}")
    corners, labels, scores = parts
    keep = scores >= threshold
    return Boxes(corners[keep].astype(numpy.float32), scores[keep].astype(numpy.float32),
                 labels[keep].astype(numpy.int64))


def _torchvision_parts(outputs):
    arrays = [numpy.asarray(output) for output in outputs]
    boxes = [array for array in arrays if array.ndim == 2 and array.shape[1] == 4]
    vectors = [array for array in arrays if array.ndim == 1]
    if len(boxes) != 1 or len(vectors) != 2 or any(len(v) != len(boxes[0]) for v in vectors):
        return None
    integer = [v for v in vectors if numpy.issubdtype(v.dtype, numpy.integer)]
    real = [v for v in vectors if not numpy.issubdtype(v.dtype, numpy.integer)]
    if len(integer) != 1 or len(real) != 1:
        return None
    return boxes[0], integer[0], real[0]


def _corners(centres, sizes):
    half = sizes / 2
    return numpy.concatenate([centres - half, centres + half], axis=1).astype(numpy.float32)


def non_maximum_suppression(boxes, iou_threshold):
    """The boxes left when, per class, a box overlapping a better-scored one of its class by more
    than `iou_threshold` (IoU) is dropped; best first."""
    if len(boxes) == 0:
        return boxes
    corners = boxes.corners.astype(numpy.float64)
    # Boxes of different classes moved apart so that they never overlap: one NMS does all classes.
    shift = (corners.max() + 1.0) * boxes.class_ids.astype(numpy.float64)
    shifted = corners + shift[:, numpy.newaxis]
    rectangles = numpy.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(rectangles.tolist(), boxes.scores.astype(float).tolist(), 0.0, iou_threshold)
    kept = numpy.asarray(kept, numpy.int64).reshape(-1)
    return boxes.take(kept[numpy.argsort(-boxes.scores[kept], kind="stable")])
