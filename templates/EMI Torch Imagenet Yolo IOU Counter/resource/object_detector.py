# SPDX-License-Identifier: LGPL-2.1-or-later
"""EMI Torch Imagenet Yolo IOU Counter's primary: people (and any COCO classes the app lists) by
a YOLO detector, YOLOX-Nano by default, run by `empycustom mode=detect` through the same code as
the emdetect element (emi.inference.Detector: ONNX with onnxruntime or OpenCV's DNN module, the
output layout guessed from the model, per-class NMS, boxes in frame pixels).

Each frame's detections of at least `min_confidence` come back as new objects:

    [{"rect_params": {"left", "top", "width", "height"}, "obj_label": "person", "class_id": 0,
      "confidence": 0.91}, ...]

prepare_resource.sh installs the model as models/detector.onnx (emi's yolox_nano.onnx, or yours
with --detector-weights FILE) with the COCO labels, models/coco_80cl.txt. Without a model file the
program says so once at start and detects moving objects with motion_detector.py instead
(`fallback: "motion"`, the default, OpenCV's MOG2 background subtraction), so the app shows boxes
on any video. `fallback: "none"` makes a missing model an error.

Options (the app config's empycustom `options`; paths relative to this file's folder unless
absolute):
    model           an ONNX detector (YOLOX, YOLOv5, YOLOv8), or any model emdetect takes
                                                                       ("models/detector.onnx")
    labels          one label per line, by class id                  ("models/coco_80cl.txt")
    model_proc      a model-proc file (converter, preprocessing) when the model needs one  ("")
    object_class    labels of the classes to keep; [] keeps all                    (["person"])
    min_confidence  least detection score                                          (0.3)
    backend         "auto", "onnxruntime", "opencv", "torch"                       ("auto")
    device          "auto" (CUDA when present, else the CPU), "cpu", "cuda"         ("auto")
    roi             detect only in these rectangles: "left,top,width,height;..."    ("")
    inference_interval  detect on every Nth frame; the frames between keep the last
                    detections (emdetect's inference-interval)                      (1)
    fallback        "motion": detect moving objects when there is no model; "none"  ("motion")
    motion          motion_detector.py's options                                   ({})

Run as a script, it installs a detector: --install-model [FILE] (no FILE: emi's YOLOX-Nano).
"""

import argparse
import os
import shutil
import sys

import emi.inference

import model_weights
from motion_detector import MotionDetector

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FILE = os.path.join("models", "detector.onnx")
LABELS_FILE = os.path.join("models", "coco_80cl.txt")
DEFAULT_OPTIONS = {"model": MODEL_FILE, "labels": LABELS_FILE, "model_proc": "", "object_class": ["person"],
                   "min_confidence": 0.3, "backend": "auto", "device": "auto", "roi": "",
                   "inference_interval": 1, "fallback": "motion", "motion": {}}


def settings_of(options):
    """The options over the defaults; unknown keys and bad values raise ValueError naming them."""
    settings = model_weights.options_over_defaults(options, DEFAULT_OPTIONS)
    if settings["fallback"] not in ("motion", "none"):
        raise ValueError(f"option 'fallback': {settings['fallback']!r} is neither \"motion\" nor \"none\"")
    confidence = settings["min_confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise ValueError(f"option 'min_confidence': {confidence!r} is not a number from 0 to 1")
    interval = settings["inference_interval"]
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"option 'inference_interval': {interval!r} is not a whole number of frames (1 or more)")
    classes = settings["object_class"]
    if not (isinstance(classes, list) and all(isinstance(label, str) for label in classes)):
        raise ValueError(f"option 'object_class': {classes!r} is not a list of labels")
    return settings


def open_detector(settings):
    """The detector the settings name, or None when its model file is absent."""
    model = settings["model"]
    is_file = not model.startswith("torchvision.")
    if is_file:
        model = model_weights.resource_path(HERE, model)
        if not os.path.exists(model):
            return None
    paths = {key: model_weights.resource_path(HERE, settings[key]) if settings[key] else ""
             for key in ("labels", "model_proc")}
    return emi.inference.Detector(model=model, labels_file=paths["labels"], model_proc=paths["model_proc"],
                                  backend=settings["backend"], device=settings["device"],
                                  threshold=float(settings["min_confidence"]),
                                  object_class=",".join(settings["object_class"]), roi=settings["roi"])


class Primary:
    def __init__(self, options):
        settings = settings_of(options)
        self.detector = open_detector(settings)
        self.interval = settings["inference_interval"]
        self.frames = 0
        self.last = []
        self.motion = None
        if self.detector is None:
            model = model_weights.resource_path(HERE, settings["model"])
            if settings["fallback"] == "none":
                raise FileNotFoundError(f"object_detector: no model {model} (resource/prepare_resource.sh "
                                        "installs emi's YOLOX-Nano there)")
            print(f"object_detector: no model {model} (resource/prepare_resource.sh installs emi's YOLOX-Nano "
                  "there): detecting moving objects instead (motion_detector.py)", flush=True)
            self.motion = MotionDetector(settings["motion"])
        else:
            print(f"object_detector: {settings['model']} on {self.detector.backend}, keeping "
                  f"{', '.join(settings['object_class']) or 'every class'}", flush=True)

    def detect(self, frame, pixel_format):
        if self.motion is not None:
            return self.motion.detect(frame)
        if self.frames % self.interval == 0:
            self.last = self.detector.detect(frame, pixel_format)
        self.frames += 1
        return self.last


primary = None


def start(options):
    global primary
    primary = Primary(options)


def process_ip(io_buffer, in_meta, options):
    # The app's input format is RGBA; a 3-channel frame is RGB.
    return primary.detect(io_buffer, "RGBA" if io_buffer.shape[2] == 4 else "RGB")


def stop(options):
    global primary
    primary = None


def shipped_model():
    """emi's YOLOX-Nano and its labels: (model, labels) paths, or None when emi has none."""
    folder = emi.inference.SHIPPED_MODELS_DIR
    model, labels = os.path.join(folder, "yolox_nano.onnx"), os.path.join(folder, "coco_80cl.txt")
    return (model, labels) if os.path.isfile(model) and os.path.isfile(labels) else None


def install_model(source):
    """Copies a detector (`source`, or emi's YOLOX-Nano) to models/detector.onnx, after checking
    that it detects, and the COCO labels beside it. Keeps an installed model when no file is
    given. Fails (1) only for a `source` that is not a detector."""
    target = os.path.join(HERE, MODEL_FILE)
    labels_target = os.path.join(HERE, LABELS_FILE)
    shipped = shipped_model()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if shipped is not None and not os.path.exists(labels_target):
        shutil.copyfile(shipped[1], labels_target)
    if not source:
        if os.path.exists(target):
            print(f"object_detector: keeping the installed {target}")
            return 0
        if shipped is None:  # the detector is optional: the app detects motion without it
            print(f"object_detector: emi has no YOLOX-Nano in {emi.inference.SHIPPED_MODELS_DIR}: the app "
                  "detects moving objects instead; install a detector with --detector-weights FILE",
                  file=sys.stderr)
            return 0
        source = shipped[0]
    import numpy

    try:
        detector = emi.inference.Detector(model=source, labels_file=labels_target, threshold=0.3)
        detector.detect(numpy.zeros((64, 64, 4), numpy.uint8))
    except emi.inference.ModelSetupError as error:
        print(f"object_detector: {error}", file=sys.stderr)
        return 1
    partial = target + ".partial"
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    print(f"object_detector: installed {source} as {target}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Installs the counter's detector")
    parser.add_argument("--install-model", nargs="?", const="", metavar="FILE", required=True,
                        help="an ONNX detector (YOLOX, YOLOv5, YOLOv8); no FILE: emi's YOLOX-Nano")
    sys.exit(install_model(parser.parse_args().install_model))
