"""Model sessions: what emdetect and emclassify set up before their empycustom starts.

The element opens a session under a token when it starts (loading the labels, the model-proc and
the model, so a bad setting fails at once), makes the session's dry run when caps are set, and
hands the token to `empycustom class=ModelProgram options={"session": TOKEN}`, which runs the
session on each frame."""

import os

import numpy

from . import tasks
from .config import read_labels, read_model_proc
from .errors import ModelSetupError
from .models import detection_class_count, load_model, resolve_device
from .preprocess import FRAME_FORMATS, Preprocess

# The file empycustom loads: alone in its folder, because empycustom puts a program's folder on
# sys.path.
PROGRAM_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "program", "emi_inference_program.py")

DEFAULT_CLIP_LENGTH = 16  # frames per clip for torchvision's video models, as they were trained

_sessions = {}


def open_session(token, settings):
    """Opens a session for `settings` (the element's properties: see Session) under `token`.
    Raises ModelSetupError for a setting that can't work."""
    _sessions[token] = Session(settings)


def prepare_session(token, width, height, pixel_format):
    """The dry run for frames of these caps: a blank frame through the whole path."""
    _sessions[token].prepare(width, height, pixel_format)


def close_session(token):
    _sessions.pop(token, None)


class ModelProgram:
    """empycustom's program: runs the session named by options["session"] on each frame."""

    def __init__(self, options):
        self.session = _sessions[options["session"]]

    def process_ip(self, io_buffer, in_meta):
        return self.session.process(io_buffer, in_meta)


class Session:
    """A model with its pre- and post-processing, for one element. `settings`:

    task: "detect" or "classify"; model, model_weights, model_proc, labels_file (paths or names,
    empty when unset); device: "auto", "cpu" or "cuda"; random_weights; threshold;
    inference_interval; for "classify": inference_region ("full-frame" or "roi-list"),
    batch_size, object_class (labels), reclassify_interval."""

    def __init__(self, settings):
        task = settings["task"]
        labels = read_labels(settings.get("labels_file"))
        model_proc = read_model_proc(settings.get("model_proc"))
        device = resolve_device(settings.get("device", "auto"))
        loaded = load_model(settings.get("model"), settings.get("model_weights"),
                            settings.get("random_weights"), device, len(labels) if labels else None)
        self.model_name = loaded.name
        self.labels_file = settings.get("labels_file")
        self.labels = labels
        family = loaded.family or _family_of_file(task, model_proc)
        _check_fits(task, family, loaded.name, model_proc, settings)

        preprocess = Preprocess.for_model(loaded.transforms, model_proc)
        common = (loaded.module, preprocess, labels or loaded.categories, settings.get("threshold", 0.0),
                  settings.get("inference_interval", 1), device)
        if family == "detection":
            class_count = detection_class_count(loaded.module)
            self.check_label_count(class_count)
            self.task = tasks.Detection(*common)
            return
        classification = {"activation": model_proc.method or "softmax",
                          "batch_size": settings.get("batch_size", 1)}
        if family == "video":
            self.task = tasks.ClipClassification(
                *common, clip_length=model_proc.clip_length or DEFAULT_CLIP_LENGTH, **classification)
        elif settings.get("inference_region", "full-frame") == "roi-list":
            self.task = tasks.ObjectClassification(
                *common, object_class=_labels_of(settings.get("object_class")),
                reclassify_interval=settings.get("reclassify_interval", 1), **classification)
        else:
            self.task = tasks.FrameClassification(*common, **classification)

    def prepare(self, width, height, pixel_format):
        if pixel_format not in FRAME_FORMATS:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"frames in {pixel_format}: the model takes {', '.join(FRAME_FORMATS)}")
        self.task.frame_color_space = FRAME_FORMATS[pixel_format]
        channels = 3 if pixel_format in ("RGB", "BGR") else 4
        blank = numpy.zeros((height, width, channels), numpy.uint8)
        try:
            class_count = self.task.dry_run(blank)
        except ModelSetupError as error:
            raise ModelSetupError(error.reason, f"model {self.model_name}: {error}") from None
        except Exception as error:
            raise ModelSetupError(ModelSetupError.DRY_RUN_FAILED,
                                  f"model {self.model_name} fails on {width}x{height} {pixel_format} frames "
                                  f"(its dry run): {type(error).__name__}: {_first_line(error)}") from error
        self.check_label_count(class_count)

    def process(self, io_buffer, in_meta):
        return self.task.process(io_buffer, in_meta)

    def check_label_count(self, class_count):
        if self.labels is not None and class_count is not None and len(self.labels) != class_count:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"labels-file {self.labels_file} has {len(self.labels)} labels, but model "
                                  f"{self.model_name} has {class_count} classes")


def _family_of_file(task, model_proc):
    if task == "detect":
        return "detection"
    return "video" if model_proc.clip_length else "image"


def _check_fits(task, family, name, model_proc, settings):
    """The task, the model and the other settings go together."""
    def invalid(message):
        return ModelSetupError(ModelSetupError.INVALID, message)

    if task == "detect" and family != "detection":
        raise invalid(f"model {name} is a classification model: emdetect runs detection models "
                      "(torchvision.models.detection.…, or a file of one); classify with emclassify")
    if task == "classify" and family == "detection":
        raise invalid(f"model {name} is a detection model: detect with emdetect")
    model_proc_path = settings.get("model_proc")
    if family == "detection":
        for key in ("crop", "method", "clip_length"):
            if getattr(model_proc, key) is not None:
                raise invalid(f"model-proc {model_proc_path}: \"{key}\" is for classification models, and "
                              f"{name} is a detection model")
    if family == "image" and model_proc.clip_length is not None:
        raise invalid(f"model-proc {model_proc_path}: \"clip_length\" is for video models, and {name} "
                      "classifies images")
    if family == "video" and settings.get("inference_region") == "roi-list":
        raise invalid(f"model {name} classifies clips of whole frames: set inference-region=full-frame")


def _labels_of(object_class):
    """The labels of a comma-separated object-class setting ("person, car")."""
    return [label.strip() for label in (object_class or "").split(",") if label.strip()]


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
