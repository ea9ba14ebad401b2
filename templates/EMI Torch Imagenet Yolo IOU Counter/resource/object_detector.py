"""EMI Torch Imagenet Yolo IOU Counter's primary: objects by torchvision's SSDlite
(ssdlite320_mobilenet_v3_large, COCO), run by `empycustom mode=detect`.

Each frame's detections of at least `min_confidence` come back as new objects:

    [{"rect_params": {"left", "top", "width", "height"}, "obj_label": "person", "class_id": 1,
      "confidence": 0.91}, ...]

Without detector weights (models/ssdlite320_mobilenet_v3_large.pth, or the pretrained ones that
prepare_resource.sh downloads), the program says so once at start and detects moving objects
with motion_detector.py instead (`fallback: "motion"`, the default), so the app shows boxes, ids,
counts and classifications on any video. `fallback: "none"` makes missing weights an error (after
trying the download): prepare_resource.sh uses it to fetch them.

Frames are RGB(A) (the app's input format RGBA). Options (the app config's empycustom `options`;
paths relative to this file's folder unless absolute):
    device          "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:1"  ("auto")
    min_confidence  least detection score                                          (0.5)
    fallback        "motion": detect moving objects when there are no weights; "none" ("motion")
    motion          motion_detector.py's options                                   ({})
    weights         a checkpoint to load instead of models/ssdlite320_mobilenet_v3_large.pth ("")
    models_dir      torch's hub dir and installed weights                          ("models")
    labels          one label per line, by class id                                ("coco_labels.txt")

Run as a script, it installs weights (see model_weights.py): --install-weights FILE | --random-weights.
"""

import os
import sys
import warnings

import torch
from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights, ssdlite320_mobilenet_v3_large

import model_weights
from motion_detector import MotionDetector

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = model_weights.ModelSpec(
    "ssdlite320_mobilenet_v3_large",
    # weights_backbone=None: with no detector weights, nothing else is downloaded either.
    lambda weights: ssdlite320_mobilenet_v3_large(weights=weights, weights_backbone=None),
    SSDLite320_MobileNet_V3_Large_Weights.DEFAULT,
    weights_flag="--detector-weights", offers_random=False)  # random boxes help no one: motion does
DEFAULT_OPTIONS = {"device": "auto", "min_confidence": 0.5, "fallback": "motion", "motion": {},
                   "weights": "", "models_dir": model_weights.MODELS_DIR, "labels": "coco_labels.txt"}

# The frame is mapped read-only and never written to: torch.from_numpy's warning about it is noise.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def settings_of(options):
    """The options over the defaults; unknown keys and bad values raise ValueError naming them."""
    settings = model_weights.options_over_defaults(options, DEFAULT_OPTIONS)
    if settings["fallback"] not in ("motion", "none"):
        raise ValueError(f"option 'fallback': {settings['fallback']!r} is neither \"motion\" nor \"none\"")
    if not isinstance(settings["min_confidence"], (int, float)) or not 0 <= settings["min_confidence"] <= 1:
        raise ValueError(f"option 'min_confidence': {settings['min_confidence']!r} is not a number from 0 to 1")
    return settings


class TorchDetector:
    def __init__(self, model, labels, device, min_confidence=0.5):
        self.model = model
        self.labels = labels
        self.device = device
        self.min_confidence = min_confidence

    def detect(self, frame):
        """The objects of an H×W×C RGB(A) frame, most confident first."""
        with torch.no_grad():
            pixels = torch.from_numpy(frame)
            if self.device.type != "cpu":
                pixels = pixels.to(self.device)
            # The model takes 3×H×W images in [0, 1] and resizes and normalises them itself.
            image = pixels[:, :, :3].permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format)
            detections = self.model([image.div_(255.0)])[0]
        keep = detections["scores"] >= self.min_confidence
        objects = []
        for (x1, y1, x2, y2), label, score in zip(detections["boxes"][keep].tolist(),
                                                  detections["labels"][keep].tolist(),
                                                  detections["scores"][keep].tolist()):
            left, top = round(x1), round(y1)
            objects.append({"rect_params": {"left": left, "top": top, "width": round(x2) - left,
                                            "height": round(y2) - top},
                            "obj_label": model_weights.label_of(self.labels, label),
                            "class_id": label, "confidence": round(score, 4)})
        return objects


detector = None


def start(options):
    global detector
    settings = settings_of(options)
    try:
        model, origin, device = model_weights.open_model(MODEL, HERE, settings,
                                                         download=settings["fallback"] == "none")
    except model_weights.WeightsUnavailable:
        if settings["weights"] or settings["fallback"] == "none":
            raise
        models_dir = model_weights.resource_path(HERE, settings["models_dir"])
        print(f"object_detector: no {MODEL.name} weights in {models_dir} (resource/prepare_resource.sh "
              f"downloads them, or installs yours with --detector-weights FILE): detecting moving "
              f"objects instead (motion_detector.py)", flush=True)
        detector = MotionDetector(settings["motion"])
        return
    labels = model_weights.read_labels(model_weights.resource_path(HERE, settings["labels"]))
    print(f"object_detector: ssdlite320_mobilenet_v3_large on {device}, weights from {origin}", flush=True)
    detector = TorchDetector(model, labels, device, settings["min_confidence"])


def process_ip(io_buffer, in_meta, options):
    return detector.detect(io_buffer)


def stop(options):
    global detector
    detector = None


if __name__ == "__main__":
    sys.exit(model_weights.command_line(MODEL, HERE))
