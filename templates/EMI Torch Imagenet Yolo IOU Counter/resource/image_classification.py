# SPDX-License-Identifier: LGPL-2.1-or-later
"""EMI Torch Imagenet Yolo IOU Counter's secondary: ImageNet classification of each object with
torchvision's SqueezeNet 1.1, in empycustom after the primary and the tracker.

As in the seed: each object is cut from the frame as a square where possible (the seed's rule,
square_crop()), all crops of a frame go through the model as one batch, and the results come back
one per object, in the objects' order, so empycustom attaches result i to object i:

    [{"predicted_class": "black swan", "probability": 97.1}, ...]    probability: softmax, percent

Tracks, not every object of every frame (as emclassify's reclassify-interval): a tracked object
(object_id >= 0) is classified when its track is confirmed and then every `reclassify_interval`
frames, keeping its last result in between; objects the tracker has not confirmed (object_id -1)
are not classified. With 15-20 people in view this is what keeps the app in real time on a CPU.
`classify_every_object: true` is the seed's way: every object of every frame, tracked or not.

The tracker appends the record of each track that ended (tracking_ended_time set) to the objects;
it is not in the picture, so it is not classified again: it gets the track's last result.

Unlike the seed, crops never go through PIL: each is normalised on its own pixels and resized
bilinearly (with torch on CUDA, with OpenCV on the CPU, where it is 3-4x faster) straight into
the batch.

Frames are RGB(A) (the app's input format RGBA). Options (the app config's empycustom `options`;
paths relative to this file's folder unless absolute):
    device      "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:1"      ("auto")
    input_size  crops are resized to input_size × input_size                       (224)
    reclassify_interval  classify a track again after this many frames; 0: once     (30)
    classify_every_object  the seed's way: every object, every frame                (false)
    weights     a checkpoint to load instead of models/squeezenet1_1.pth           ("")
    models_dir  torch's hub dir and installed weights                              ("models")
    labels      one label per line                                     ("imagenet_labels.txt")

Run as a script, it installs weights (see model_weights.py): --install-weights FILE | --random-weights.
"""

import dataclasses
import os
import sys
import warnings

import cv2
import torch
import torch.nn.functional as F
from torchvision.models import SqueezeNet1_1_Weights, squeezenet1_1

import emi.inference
import model_weights
from emi import shared_model
from emi.shared_models import shared_load

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = model_weights.ModelSpec("squeezenet1_1", lambda weights: squeezenet1_1(weights=weights),
                                SqueezeNet1_1_Weights.DEFAULT)
# The seed's normalisation (ImageNet's), on pixels in [0, 1].
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_OPTIONS = {"device": "auto", "input_size": 224, "reclassify_interval": 30, "classify_every_object": False,
                   "weights": "", "models_dir": model_weights.MODELS_DIR, "labels": "imagenet_labels.txt"}
NOT_ENDED = "N/A"

# The frame is mapped read-only and never written to: torch.from_numpy's warning about it is noise.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def settings_of(options):
    """The options over the defaults; unknown keys and bad values raise ValueError naming them."""
    settings = model_weights.options_over_defaults(options, DEFAULT_OPTIONS)
    size = settings["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 32:
        raise ValueError(f"option 'input_size': {size!r} is not a whole number of at least 32")
    interval = settings["reclassify_interval"]
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
        raise ValueError(f"option 'reclassify_interval': {interval!r} is not a whole number of frames (0: once)")
    if not isinstance(settings["classify_every_object"], bool):
        raise ValueError(f"option 'classify_every_object': {settings['classify_every_object']!r} is not "
                         "true or false")
    return settings


def square_crop(frame, rect):
    """The seed's crop of an object: its box widened (or heightened) on both sides to a square
    where the frame allows. `frame` is an H×W×C array or tensor; returns a view."""
    left, top = int(rect["left"]), int(rect["top"])
    width, height = int(rect["width"]), int(rect["height"])
    frame_height, frame_width = frame.shape[0], frame.shape[1]
    if width <= height:
        diff = int((height - width) / 2)
        return frame[top:top + height, max(0, left - diff):min(frame_width, left + width + diff)]
    diff = int((width - height) / 2)
    return frame[max(0, top - diff):min(frame_height, top + height + diff), left:left + width]


def is_ended_track(obj):
    return obj.get("tracking_ended_time", NOT_ENDED) != NOT_ENDED


@dataclasses.dataclass
class TrackResult:
    result: dict  # the track's last classification
    classified_at: int  # frame index


class ObjectClassifier:
    def __init__(self, model, labels, device, input_size=224, reclassify_interval=30, every_object=False):
        self.model = model
        self.labels = labels
        self.device = device
        self.input_size = input_size
        self.reclassify_interval = reclassify_interval
        self.every_object = every_object
        self.frames = 0
        # OpenCV works on host memory: on CUDA the crops stay on the device and torch resizes them.
        self.resize_with_opencv = device.type == "cpu"
        # (x / 255 - mean) / std as one multiply and one subtract.
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in STD], device=device).view(3, 1, 1)
        self.shift = torch.tensor([m / s for m, s in zip(MEAN, STD)], device=device).view(3, 1, 1)
        self.track_results = {}  # object_id → TrackResult: reused between classifications, and for its ended record

    def resize_into(self, crop, target):
        """An h×w×3 uint8 crop, normalised and resized into `target`, a 3×size×size float tensor."""
        planes = crop.permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format)
        height, width = planes.shape[1:]
        size = self.input_size
        if height > size or width > size:
            # Shrinking antialiases (as PIL does in the seed's recipe); normalising commutes with
            # resizing (the weights sum to 1), so it is done on the smaller side, after.
            target.copy_(F.interpolate(planes.unsqueeze(0), size=(size, size), mode="bilinear",
                                       align_corners=False, antialias=True)[0])
            target.mul_(self.scale).sub_(self.shift)
            return
        planes.mul_(self.scale).sub_(self.shift)
        if not self.resize_with_opencv:
            target.copy_(F.interpolate(planes.unsqueeze(0), size=(size, size), mode="bilinear",
                                       align_corners=False)[0])
            return
        # OpenCV's bilinear resize computes what F.interpolate does (half-pixel centres, edges
        # clamped) 3-4x faster on the CPU, straight into the batch.
        for plane, target_plane in zip(planes.numpy(), target.numpy()):
            cv2.resize(plane, (size, size), dst=target_plane, interpolation=cv2.INTER_LINEAR)

    def pixels_of(self, frame):
        """An H×W×C RGB(A) array → its H×W×3 uint8 tensor on the device (a view on the CPU)."""
        pixels = torch.from_numpy(frame)
        if self.device.type != "cpu":
            pixels = pixels.to(self.device)  # the frame once, then the crops on the device
        return pixels[:, :, :3]

    def is_due(self, obj, index):
        """Whether `obj` is classified on frame `index` (else it keeps its track's last result)."""
        if self.every_object:
            return True
        object_id = obj.get("object_id", -1)
        if not isinstance(object_id, int) or object_id < 0:
            return False  # not a confirmed track
        track = self.track_results.get(object_id)
        if track is None:
            return True
        return self.reclassify_interval > 0 and index - track.classified_at >= self.reclassify_interval

    def inputs_of(self, pixels, objects, index=None):
        """(the model's batch, one crop per object that gets classified; those objects' indices).
        The batch is None when no object does: ended tracks, objects without a box and (with
        `index`, the frame's) objects that are not due don't."""
        crops, slots = [], []
        for slot, obj in enumerate(objects):
            rect = obj.get("rect_params")
            if is_ended_track(obj) or not rect or (index is not None and not self.is_due(obj, index)):
                continue
            crop = square_crop(pixels, rect)
            if crop.shape[0] == 0 or crop.shape[1] == 0:
                continue
            crops.append(crop)
            slots.append(slot)
        if not crops:
            return None, slots
        batch = torch.empty((len(crops), 3, self.input_size, self.input_size), device=self.device)
        for crop, target in zip(crops, batch):
            self.resize_into(crop, target)
        return batch, slots

    def classify(self, frame, objects):
        """One result per object, in order: {"predicted_class", "probability"}, or {} for an object
        without a box (or an ended track never classified)."""
        index = self.frames
        self.frames += 1
        results = [{} for _ in objects]
        for slot, obj in enumerate(objects):
            object_id = obj.get("object_id", -1)
            if is_ended_track(obj):
                ended = self.track_results.pop(object_id, None)
                results[slot] = ended.result if ended is not None else {}
            elif not self.every_object and object_id in self.track_results:
                results[slot] = self.track_results[object_id].result
        with torch.no_grad():
            inputs, slots = self.inputs_of(self.pixels_of(frame), objects, index)
            if inputs is None:
                return results
            probabilities, indices = self.model(inputs).softmax(1).max(1)
        for slot, probability, index in zip(slots, probabilities.tolist(), indices.tolist()):
            result = {"predicted_class": model_weights.label_of(self.labels, index),
                      "probability": 100.0 * probability}
            results[slot] = result
            object_id = objects[slot].get("object_id", -1)
            if isinstance(object_id, int) and object_id >= 0:
                self.track_results[object_id] = TrackResult(result, index)
        return results


classifier = None


def compiled_model(settings):
    """(model, weights file, device, why it is not compiled or None): SqueezeNet compiled by torch
    for inference where it can be (5x faster on a CPU), else as it is."""
    model, origin, device = model_weights.open_model(MODEL, HERE, settings)
    size = settings["input_size"]
    model, not_compiled = emi.inference.for_inference(model, torch.zeros(1, 3, size, size, device=device))
    return model, origin, device, not_compiled


def start(options):
    global classifier
    settings = settings_of(options)
    # One SqueezeNet per process whatever the number of streams running this app, its calls
    # batched across them (emi.shared_model): the same weights and device make the same model.
    key = (MODEL.name, HERE, settings["weights"], settings["models_dir"], settings["device"])
    loaded, origin, device, not_compiled = shared_load(key, lambda: compiled_model(settings))
    model = shared_model(key + ("batched",), lambda: loaded)
    labels = model_weights.read_labels(model_weights.resource_path(HERE, settings["labels"]))
    print(f"image_classification: squeezenet1_1 on {device}{' (not compiled: ' + not_compiled + ')' if not_compiled else ''}, "
          f"weights from {origin}", flush=True)
    classifier = ObjectClassifier(model, labels, device, settings["input_size"], settings["reclassify_interval"],
                                  settings["classify_every_object"])


def process_ip(io_buffer, in_meta, options):
    return classifier.classify(io_buffer, in_meta["frame"][0].get("object", []))


def stop(options):
    global classifier
    classifier = None


if __name__ == "__main__":
    sys.exit(model_weights.command_line(MODEL, HERE))
