# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a session does with each frame: detect objects, classify the frame, its objects, or a clip
of frames. Every task runs its model every `interval`th frame and reuses its results between."""

import collections
import dataclasses
import math

import numpy
import torch

from . import decoders
from .errors import ModelSetupError
from .preprocess import frame_tensor

NOT_APPLICABLE = "N/A"


class _Task:
    def __init__(self, model, preprocess, names, threshold, interval, device):
        self.model = model
        self.preprocess = preprocess
        self.names = names
        self.threshold = threshold
        self.interval = interval
        self.device = device
        self.frame_color_space = "RGB"
        self.frames = 0

    def name_of(self, class_id):
        if self.names is not None and 0 <= class_id < len(self.names):
            return self.names[class_id]
        return str(class_id)

    def process(self, io_buffer, in_meta):
        """The results of one frame, as empycustom places them."""
        index = self.frames
        self.frames += 1
        return self.process_frame(io_buffer, in_meta["frame"][0], index, index % self.interval == 0)


class Detection(_Task):
    """Objects of a detector, as new objects of the frame document: each region of `regions`
    ((left, top, width, height) in frame pixels; None: the whole frame) is detected on its own
    and keeps the objects whose box centre lies in it; `class_ids` (None: all) limits the
    objects to these classes."""

    def __init__(self, *args, regions=None, class_ids=None):
        super().__init__(*args)
        self.regions = regions
        self.class_ids = set(class_ids) if class_ids is not None else None
        self.last = []

    def process_frame(self, io_buffer, frame, index, infer):
        if infer:
            self.last = self.detect_frame(io_buffer)
        return self.last

    def dry_run(self, blank_frame):
        self.detect_frame(blank_frame)

    def detect_frame(self, pixels):
        """The objects of an H×W×C frame, each region in turn."""
        height, width = pixels.shape[:2]
        if not self.regions:
            return self.objects_in(pixels, 0, 0)
        objects = []
        for left, top, region_width, region_height in self.regions:
            right, bottom = min(left + region_width, width), min(top + region_height, height)
            if right > left and bottom > top:
                objects.extend(self.objects_in(pixels[top:bottom, left:right], left, top))
        return objects

    def objects_in(self, view, left, top):
        """The objects of `view` (the frame, or the part of it at left, top), clipped to it, in
        frame pixels."""
        view_height, view_width = view.shape[:2]
        objects = []
        for (x1, y1, x2, y2), class_id, score in self.detect(view):
            if self.class_ids is not None and class_id not in self.class_ids:
                continue
            x1, x2 = max(x1, 0.0), min(x2, float(view_width))
            y1, y2 = max(y1, 0.0), min(y2, float(view_height))
            if x2 <= x1 or y2 <= y1:
                continue
            rect = {"left": x1 + left, "top": y1 + top, "width": x2 - x1, "height": y2 - y1}
            objects.append({"rect_params": rect, "class_id": class_id, "confidence": score,
                            "obj_label": self.name_of(class_id)})
        return objects


class TorchDetection(Detection):
    """A torchvision detector (or a model file with its outputs: per image a dict of boxes (x1,
    y1, x2, y2), labels and scores)."""

    def detect(self, view):
        """(box, class id, score) of each detection of an H×W×C image, in its pixels."""
        image = frame_tensor(view, self.device)
        height, width = image.shape[-2:]
        with torch.inference_mode():
            batch = self.preprocess(image, self.frame_color_space)
            output = self.model([batch])
            return self.detections_of(output, batch, width, height)

    def detections_of(self, output, batch, width, height):
        # Scripted torchvision detectors return (losses, detections).
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], list):
            output = output[1]
        if not (isinstance(output, list) and output and isinstance(output[0], dict)
                and {"boxes", "labels", "scores"} <= output[0].keys()):
            raise ModelSetupError(ModelSetupError.INVALID,
                                  "its outputs are not torchvision detections (per image a dict of "
                                  f"boxes, labels and scores) but {_shape_of(output)}")
        detections = output[0]
        keep = detections["scores"] >= self.threshold
        boxes = detections["boxes"][keep].float()
        scale = torch.tensor([width / batch.shape[-1], height / batch.shape[-2]] * 2, device=boxes.device)
        boxes = boxes * scale
        return zip(boxes.tolist(), detections["labels"][keep].tolist(), detections["scores"][keep].tolist())


class OnnxDetection(Detection):
    """An ONNX detector: the frame letterboxed (or resized) into the model's input, its outputs
    decoded by `converter` (None: guessed from their shape on the first frame), then per-class
    non-maximum suppression and the boxes mapped back to the frame's pixels."""

    def __init__(self, *args, converter, preprocessing, nms_threshold, input_size, **keywords):
        super().__init__(*args, **keywords)
        self.converter = converter
        self.preprocessing = preprocessing  # None: the converter's defaults, once it is known
        self.nms_threshold = nms_threshold
        self.input_height, self.input_width = input_size
        self.class_count = None

    def detect(self, view):
        steps = self.preprocessing or decoders.DEFAULT_PREPROCESSING.get(self.converter) \
            or decoders.DEFAULT_PREPROCESSING["yolox"]
        blob, placement = decoders.make_input(view, self.frame_color_space, steps, self.input_height,
                                              self.input_width, self.model.input.dtype)
        outputs = [numpy.asarray(output) for output in self.model.run(blob)]
        if self.converter is None:
            self.converter = decoders.guess_converter(outputs, self.input_height, self.input_width)
            if self.preprocessing is None and self.converter != "yolox":
                # The guess changes the preprocessing: this frame again, the converter's way.
                return self.detect(view)
        self.class_count = decoders.class_count(self.converter, outputs)
        boxes = decoders.decode(self.converter, outputs, self.input_height, self.input_width, self.threshold)
        if self.class_ids is not None:
            boxes = boxes.take(numpy.isin(boxes.class_ids, list(self.class_ids)))
        boxes = decoders.non_maximum_suppression(boxes, self.nms_threshold)
        corners = placement.to_frame(boxes.corners)
        return zip(corners.tolist(), boxes.class_ids.tolist(), boxes.scores.tolist())

    def dry_run(self, blank_frame):
        super().dry_run(blank_frame)
        return self.class_count


class _Classification(_Task):
    """Class scores → the top class: {"predicted_class", "class_id", "probability" (percent)}."""

    def __init__(self, *args, activation, batch_size):
        super().__init__(*args)
        self.activation = activation
        self.batch_size = batch_size

    def classify(self, inputs):
        """Results of a batch of model inputs (None where below the threshold), and the number
        of classes the model outputs."""
        with torch.inference_mode():
            scores = torch.cat([self.checked(self.model(chunk)) for chunk in inputs.split(self.batch_size)])
            if self.activation == "softmax":
                scores = scores.softmax(dim=1)
            elif self.activation == "sigmoid":
                scores = scores.sigmoid()
            probabilities, class_ids = scores.max(dim=1)
        results = []
        for probability, class_id in zip(probabilities.tolist(), class_ids.tolist()):
            results.append({"predicted_class": self.name_of(class_id), "class_id": class_id,
                            "probability": 100.0 * probability} if probability >= self.threshold else None)
        return results, scores.shape[1]

    def checked(self, scores):
        if not (isinstance(scores, torch.Tensor) and scores.dim() == 2):
            raise ModelSetupError(ModelSetupError.INVALID,
                                  "its outputs are not class scores (a batch × classes tensor) but "
                                  f"{_shape_of(scores)}")
        return scores


class FrameClassification(_Classification):
    """The whole frame's class, a frame-level result."""

    def __init__(self, *args, **keywords):
        super().__init__(*args, **keywords)
        self.last = []

    def process_frame(self, io_buffer, frame, index, infer):
        if infer:
            results, _ = self.classify(self.inputs(io_buffer))
            self.last = [result for result in results if result is not None]
        return self.last

    def dry_run(self, blank_frame):
        return self.classify(self.inputs(blank_frame))[1]

    def inputs(self, io_buffer):
        return self.preprocess(frame_tensor(io_buffer, self.device), self.frame_color_space).unsqueeze(0)


@dataclasses.dataclass
class _Track:
    """What emclassify keeps of a tracked object."""

    result: dict  # its last classification (None: below the threshold)
    classified_at: int  # frame index
    seen_at: int


class ObjectClassification(_Classification):
    """Each object's class (the object's box cut out of the frame), batched, per object: entry i
    for object i, None for objects it does not classify. A tracked object (object_id ≥ 0) is
    classified again only every `reclassify_interval` frames (0: once) and keeps its last result
    in between; `object_class` limits it to objects with these labels."""

    # Tracks not seen for this many frames are forgotten (a tracker that never reports ends).
    FORGET_AFTER_FRAMES = 300

    def __init__(self, *args, object_class, reclassify_interval, **keywords):
        super().__init__(*args, **keywords)
        self.object_class = set(object_class) if object_class else None
        self.reclassify_interval = reclassify_interval
        self.tracks = {}  # object_id → _Track

    def process_frame(self, io_buffer, frame, index, infer):
        objects = frame.get("object") or []
        results = [None] * len(objects)
        to_classify = []  # (object index, box)
        for position, item in enumerate(objects):
            box = self.box_of(item, frame)
            if box is None:
                continue
            track_id = item.get("object_id", -1)
            track = self.tracks.get(track_id) if isinstance(track_id, int) and track_id >= 0 else None
            if track is not None:
                track.seen_at = index
                due = self.reclassify_interval > 0 and index - track.classified_at >= self.reclassify_interval
                if not (infer and due):
                    results[position] = track.result
                    continue
            if infer:
                to_classify.append((position, box))
        if to_classify:
            image = frame_tensor(io_buffer, self.device)
            inputs = [self.preprocess(image[:, top:bottom, left:right], self.frame_color_space)
                      for _, (left, top, right, bottom) in to_classify]
            for (position, _), result in zip(to_classify, self.classify_all(inputs)):
                results[position] = result
                track_id = objects[position].get("object_id", -1)
                if isinstance(track_id, int) and track_id >= 0:
                    self.tracks[track_id] = _Track(result, index, index)
        self.forget_tracks(objects, index)
        while results and results[-1] is None:
            results.pop()
        return results

    def dry_run(self, blank_frame):
        image = frame_tensor(blank_frame, self.device)
        return self.classify(self.preprocess(image, self.frame_color_space).unsqueeze(0))[1]

    def box_of(self, item, frame):
        """(left, top, right, bottom) in whole pixels inside the frame, or None for an object
        this element does not classify."""
        if not isinstance(item, dict) or item.get("tracking_ended_time", NOT_APPLICABLE) != NOT_APPLICABLE:
            return None  # a tracker's record of a track that ended, not in the picture
        if self.object_class is not None and item.get("obj_label") not in self.object_class:
            return None
        rect = item.get("rect_params")
        if not isinstance(rect, dict):
            return None
        try:
            left, top = math.floor(rect["left"]), math.floor(rect["top"])
            right = math.ceil(rect["left"] + rect["width"])
            bottom = math.ceil(rect["top"] + rect["height"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        width, height = frame.get("source_frame_width", 0), frame.get("source_frame_height", 0)
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, width), min(bottom, height)
        return (left, top, right, bottom) if right > left and bottom > top else None

    def classify_all(self, inputs):
        """Stacks inputs of one size into batches; inputs of different sizes (no fixed input
        size in the pre-processing) go one by one."""
        if all(item.shape == inputs[0].shape for item in inputs):
            return self.classify(torch.stack(inputs))[0]
        return [self.classify(item.unsqueeze(0))[0][0] for item in inputs]

    def forget_tracks(self, objects, index):
        for item in objects:
            if isinstance(item, dict) and item.get("tracking_ended_time", NOT_APPLICABLE) != NOT_APPLICABLE:
                self.tracks.pop(item.get("object_id"), None)
        stale = [track_id for track_id, track in self.tracks.items()
                 if index - track.seen_at > self.FORGET_AFTER_FRAMES]
        for track_id in stale:
            del self.tracks[track_id]


class ClipClassification(_Classification):
    """The class of the last `clip_length` frames (a video model, input (1, C, T, H, W)), a
    frame-level result. Every frame joins the clip; the model runs on inference frames once the
    clip is full."""

    def __init__(self, *args, clip_length, **keywords):
        super().__init__(*args, **keywords)
        self.clip = collections.deque(maxlen=clip_length)
        self.last = []

    def process_frame(self, io_buffer, frame, index, infer):
        self.clip.append(self.preprocess(frame_tensor(io_buffer, self.device), self.frame_color_space))
        if infer and len(self.clip) == self.clip.maxlen:
            results, _ = self.classify(torch.stack(list(self.clip), dim=1).unsqueeze(0))
            self.last = [result for result in results if result is not None]
        return self.last

    def dry_run(self, blank_frame):
        frame = self.preprocess(frame_tensor(blank_frame, self.device), self.frame_color_space)
        return self.classify(torch.stack([frame] * self.clip.maxlen, dim=1).unsqueeze(0))[1]


def _shape_of(value):
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}" + (f" {_shape_of(value[0])}" if value else "")
    return f"a {type(value).__name__}"
