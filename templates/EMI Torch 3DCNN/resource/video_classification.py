# SPDX-License-Identifier: LGPL-2.1-or-later
"""EMI Torch 3DCNN: video classification with torchvision's r3d_18 (Kinetics-400) in empycustom.

start(options) loads the model (model_weights.py says from where: models/ next to this file is
torch's hub dir, as in the seed). process_ip() gets each frame as a zero-copy view of the mapped
buffer, preprocesses it on the model's device into a ring of the last `clip_length` frames, and
classifies the clip once it is full. The result is one frame-level entry (with no objects in the
frame, empycustom puts the first entry on the frame):

    [{"predicted_class": "marching", "probability": 63.0}]     probability: softmax, in percent

Frames are RGB(A) (the app's input format RGBA; the alpha plane is skipped). Options (the app
config's empycustom `options`; paths relative to this file's folder unless absolute):
    device          "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:1"   ("auto")
    clip_length     frames in a clip                                                   (16)
    frame_size      height and width of a clip frame                                   (112)
    infer_interval  classify every Nth frame, repeating the last result in between     (1)
    weights         a checkpoint to load instead of models/r3d_18.pth                  ("")
    models_dir      torch's hub dir and installed weights                              ("models")
    labels          one label per line                                  ("kinetics_400_labels.txt")

Run as a script, it installs weights (see model_weights.py): --install-weights FILE | --random-weights.
"""

import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torchvision.models.video import R3D_18_Weights, r3d_18

import emi.inference
import model_weights

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = model_weights.ModelSpec("r3d_18", lambda weights: r3d_18(weights=weights), R3D_18_Weights.DEFAULT)
# The seed's normalisation (torchvision's for its video models), on pixels in [0, 1].
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)
DEFAULT_OPTIONS = {"device": "auto", "clip_length": 16, "frame_size": 112, "infer_interval": 1,
                   "weights": "", "models_dir": model_weights.MODELS_DIR,
                   "labels": "kinetics_400_labels.txt"}

# The frame is mapped read-only and never written to: torch.from_numpy's warning about it is noise.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def settings_of(options):
    """The options over the defaults; unknown keys and bad values raise ValueError naming them."""
    settings = model_weights.options_over_defaults(options, DEFAULT_OPTIONS)
    for key in ("clip_length", "frame_size", "infer_interval"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise ValueError(f"option {key!r}: {settings[key]!r} is not a whole number of at least 1")
    return settings


class ClipClassifier:
    """A sliding clip of preprocessed frames on the model's device, and the model that classifies it.

    The ring holds every frame twice (at i and i + clip_length), so the last clip_length frames,
    oldest first, are always one contiguous slice: no list to concatenate and trim per frame."""

    def __init__(self, model, labels, device, clip_length=16, frame_size=112, infer_interval=1):
        self.model = model
        self.labels = labels
        self.device = device
        self.clip_length = clip_length
        self.frame_size = frame_size
        self.infer_interval = infer_interval
        self.ring = torch.zeros((2 * clip_length, 3, frame_size, frame_size), device=device)
        self.frames = 0
        self.result = None
        # (x / 255 - mean) / std as one multiply and one subtract.
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in STD], device=device).view(3, 1, 1)
        self.shift = torch.tensor([m / s for m, s in zip(MEAN, STD)], device=device).view(3, 1, 1)

    def preprocess(self, frame):
        """An H×W×C uint8 RGB(A) array → a normalised 3×size×size float tensor on the device."""
        pixels = torch.from_numpy(frame)
        if self.device.type == "cpu":
            pixels = pixels[:, :, :3]
        else:
            pixels = pixels.to(self.device)[:, :, :3]  # one copy of the frame as it is, then on the device
        planes = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32, memory_format=torch.contiguous_format)
        small = F.interpolate(planes, size=(self.frame_size, self.frame_size), mode="bilinear",
                              align_corners=False, antialias=True)[0]
        return small.mul_(self.scale).sub_(self.shift)

    def clip(self):
        """The last clip_length preprocessed frames, oldest first: clip_length×3×size×size."""
        oldest = self.frames % self.clip_length
        return self.ring[oldest:oldest + self.clip_length]

    def push(self, frame):
        """Adds a frame; returns the clip's result ({"predicted_class", "probability"}), or None
        until clip_length frames have come."""
        with torch.no_grad():
            slot = self.frames % self.clip_length
            preprocessed = self.preprocess(frame)
            self.ring[slot] = preprocessed
            self.ring[slot + self.clip_length] = preprocessed
            self.frames += 1
            if self.frames < self.clip_length:
                return None
            if (self.frames - self.clip_length) % self.infer_interval == 0:
                # The model takes batches of 3 × T × H × W clips.
                scores = self.model(self.clip().permute(1, 0, 2, 3).unsqueeze(0))
                probability, index = scores[0].softmax(0).max(0)
                self.result = {"predicted_class": model_weights.label_of(self.labels, int(index)),
                               "probability": 100.0 * probability.item()}
        return self.result


classifier = None


def start(options):
    global classifier
    settings = settings_of(options)
    model, origin, device = model_weights.open_model(MODEL, HERE, settings)
    size = settings["frame_size"]
    # Compiled by torch for inference where it can be (6x faster on a CPU), else as it is.
    model, not_compiled = emi.inference.for_inference(
        model, torch.zeros(1, 3, settings["clip_length"], size, size, device=device))
    labels = model_weights.read_labels(model_weights.resource_path(HERE, settings["labels"]))
    print(f"video_classification: r3d_18 on {device}{' (not compiled: ' + not_compiled + ')' if not_compiled else ''}, "
          f"weights from {origin}", flush=True)
    classifier = ClipClassifier(model, labels, device, settings["clip_length"], settings["frame_size"],
                                settings["infer_interval"])


def process_ip(io_buffer, in_meta, options):
    result = classifier.push(io_buffer)
    return [result] if result else []


def stop(options):
    global classifier
    classifier = None


if __name__ == "__main__":
    sys.exit(model_weights.command_line(MODEL, HERE))
