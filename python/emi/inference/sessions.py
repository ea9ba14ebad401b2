# SPDX-License-Identifier: LGPL-2.1-or-later
"""Model sessions: what emdetect and emclassify set up before their empycustom starts.

The element opens a session under a token when it starts (loading the labels, the model-proc and
the model, so a bad setting fails at once), makes the session's dry run when caps are set, and
hands the token to `empycustom class=ModelProgram options={"session": TOKEN}`, which runs the
session on each frame."""

import dataclasses
import os

import numpy

from .. import shared_models
from . import decoders, onnx_models, tasks
from .compiled import for_inference
from .config import read_labels, read_model_proc
from .errors import ModelSetupError
from .models import detection_class_count, load_model, resolve_device
from .preprocess import FRAME_FORMATS, Preprocess

# The file empycustom loads: alone in its folder, because empycustom puts a program's folder on
# sys.path.
PROGRAM_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "program", "emi_inference_program.py")

DEFAULT_CLIP_LENGTH = 16  # frames per clip for torchvision's video models, as they were trained
DEFAULT_NMS_THRESHOLD = 0.45  # YOLOX's and YOLOv5's own
# A shared model's batches (emdetect's and emclassify's max-batch-size, max-batch-delay in ms).
DEFAULT_MAX_BATCH_SIZE = 8

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


def session_warnings(token):
    """What the element should post as warnings about the session it opened (a model file loaded
    as a full pickle, say); each once."""
    session = _sessions.get(token)
    if session is None:
        return []
    warnings, session.warnings = session.warnings, []
    return warnings


class ModelProgram:
    """empycustom's program: runs the session named by options["session"] on each frame."""

    def __init__(self, options):
        self.session = _sessions[options["session"]]

    def process_ip(self, io_buffer, in_meta):
        return self.session.process(io_buffer, in_meta)


class Detector:
    """emdetect's detection for a program of one's own (an app's empycustom primary): the same
    model loading, pre- and post-processing, with the settings as keywords (model, labels_file,
    model_proc, backend, device, threshold, object_class, roi, ...; see Session)."""

    def __init__(self, **settings):
        self.session = Session({"task": "detect", **settings})
        self.caps = None

    @property
    def backend(self):
        return getattr(self.session, "backend", "torch")

    def detect(self, frame, pixel_format="RGBA"):
        """The objects of an H×W×C uint8 frame, as emdetect adds them to the frame document."""
        caps = (frame.shape[1], frame.shape[0], pixel_format)
        if caps != self.caps:
            self.session.prepare(*caps)
            self.caps = caps
        return self.session.task.detect_frame(frame)


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
        labels = labels or model_proc.labels
        device = resolve_device(settings.get("device", "auto"))
        backend = settings.get("backend") or "auto"
        if backend not in onnx_models.BACKENDS:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"backend {backend}: not one of {', '.join(onnx_models.BACKENDS)}")
        self.model_name = settings.get("model")
        # Where the labels came from, for errors.
        self.labels_source = (f"labels-file {settings.get('labels_file')}" if settings.get("labels_file")
                              else f"model-proc {settings.get('model_proc')}'s \"labels\"")
        self.labels = labels
        self.warnings = []
        threshold = settings.get("threshold", 0.0)
        interval = settings.get("inference_interval", 1)
        if self.model_name and onnx_models.is_onnx_file(self.model_name):
            self.open_onnx(task, settings, model_proc, labels, device, backend, threshold, interval)
            return
        if backend in ("onnxruntime", "opencv"):
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"backend {backend} runs ONNX files (model=/path/model.onnx); model "
                                  f"{self.model_name} runs on torch: use backend=auto or torch")
        loaded, module = _shared_torch_model(settings, device, labels, self.warnings,
                                             compiled=task == "classify")
        self.warnings.extend(loaded.warnings)
        self.model_name = loaded.name
        family = loaded.family or _family_of_file(task, model_proc)
        _check_fits(task, family, loaded.name, model_proc, settings)
        for key in ("converter", "resize_mode", "pad_value", "nms_threshold"):
            if getattr(model_proc, key) is not None:
                raise ModelSetupError(ModelSetupError.INVALID,
                                      f"model-proc {settings.get('model_proc')}: \"{key}\" is for ONNX detectors, "
                                      f"and {loaded.name} runs on torch")

        preprocess = Preprocess.for_model(loaded.transforms, model_proc)
        common = (module, preprocess, labels or loaded.categories, threshold, interval, device)
        if family == "detection":
            class_count = detection_class_count(loaded.module)
            self.check_label_count(class_count)
            self.task = tasks.TorchDetection(*common, **_detection_filters(settings, common[2]))
            return
        self.task = _classification_task(family, common, model_proc, settings)

    def open_onnx(self, task, settings, model_proc, labels, device, backend, threshold, interval):
        for key in ("model_weights", "random_weights"):
            if settings.get(key):
                raise ModelSetupError(ModelSetupError.INVALID,
                                      f"{key.replace('_', '-')}: model {self.model_name} is an ONNX file, which "
                                      "holds its own weights")
        model = self.shared_onnx_model(settings, backend, device)
        self.backend = model.backend
        _, channels, height, width = model.input.shape
        if model_proc.resize is not None and len(model_proc.resize) == 2:
            height, width = model_proc.resize
        if height is None or width is None or channels not in (3, None):
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"model {self.model_name}: its input {model.input.name} is "
                                  f"{onnx_models._shape_text(model.input.shape)}, not 3 channels of a known "
                                  "size: give the size as \"resize\": [height, width] in a model-proc file")
        if task == "classify":
            _check_fits(task, _family_of_file(task, model_proc), self.model_name, model_proc, settings)
            steps = Preprocess(resize=[height, width], mean=model_proc.mean, std=model_proc.std,
                               color_space=model_proc.color_space or "RGB")
            if model_proc.range is not None:
                steps.value_range = tuple(model_proc.range)
            # The shared model runs any number of images (in chunks of a fixed batch size).
            settings = {**settings, "batch_size": settings.get("batch_size", 1)}
            common = (onnx_models.TorchCallable(model), steps, labels, threshold, interval, "cpu")
            self.task = _classification_task(_family_of_file(task, model_proc), common, model_proc, settings)
            return
        for key in ("crop", "method", "clip_length"):
            if getattr(model_proc, key) is not None:
                raise ModelSetupError(ModelSetupError.INVALID,
                                      f"model-proc {settings.get('model_proc')}: \"{key}\" is for classification "
                                      f"models, and {self.model_name} is a detection model")
        common = (model, None, labels, threshold, interval, "cpu")
        self.task = tasks.OnnxDetection(
            *common, converter=model_proc.converter, preprocessing=_onnx_preprocessing(model_proc),
            nms_threshold=model_proc.nms_threshold or DEFAULT_NMS_THRESHOLD, input_size=(height, width),
            **_detection_filters(settings, labels))

    def shared_onnx_model(self, settings, backend, device):
        """The ONNX model of `model`, loaded once per file, backend and device in the process and
        called in batches by every session that has it (emi.shared_models)."""
        path = self.model_name
        key = ("emi.inference.onnx", shared_models.file_identity(path), onnx_models.effective_backend(backend),
               str(device))
        model = shared_models.shared_load(key, lambda: onnx_models.load_onnx(path, backend, device))
        batched = _shared_batched(key, lambda: onnx_models.BatchRunner(model), settings, path, self.warnings,
                                  max_concurrent=model.max_concurrent, replicate=onnx_models.BatchRunner.replicate)
        return onnx_models.SharedOnnxModel(model, batched)

    def prepare(self, width, height, pixel_format):
        if pixel_format not in FRAME_FORMATS:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"frames in {pixel_format}: the model takes {', '.join(FRAME_FORMATS)}")
        self.task.frame_color_space = FRAME_FORMATS[pixel_format]
        channels = 3 if pixel_format in ("RGB", "BGR") else 4
        blank = numpy.zeros((height, width, channels), numpy.uint8)
        try:
            with shared_models.without_delay():  # no other stream joins a dry run: don't wait for one
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
                                  f"{self.labels_source} has {len(self.labels)} labels, but model "
                                  f"{self.model_name} has {class_count} classes")


def _classification_task(family, common, model_proc, settings):
    classification = {"activation": model_proc.method or "softmax",
                      "batch_size": settings.get("batch_size", 1)}
    if family == "video":
        return tasks.ClipClassification(
            *common, clip_length=model_proc.clip_length or DEFAULT_CLIP_LENGTH, **classification)
    if settings.get("inference_region", "full-frame") == "roi-list":
        return tasks.ObjectClassification(
            *common, object_class=_labels_of(settings.get("object_class")),
            reclassify_interval=settings.get("reclassify_interval", 1), **classification)
    return tasks.FrameClassification(*common, **classification)


def _onnx_preprocessing(model_proc):
    """What the model-proc says of an ONNX detector's preprocessing over its converter's
    defaults; None when it says nothing (the converter's defaults, once it is known)."""
    keys = ("resize_mode", "color_space", "range", "pad_value", "mean", "std")
    if all(getattr(model_proc, key) is None for key in keys):
        return None
    base = decoders.DEFAULT_PREPROCESSING.get(model_proc.converter or "yolox")
    steps = dataclasses.replace(base)
    if model_proc.resize_mode is not None:
        steps.resize = model_proc.resize_mode
    if model_proc.color_space is not None:
        steps.color_space = model_proc.color_space
    if model_proc.range is not None:
        steps.value_range = tuple(model_proc.range)
    if model_proc.pad_value is not None:
        steps.pad_value = model_proc.pad_value
    steps.mean, steps.std = model_proc.mean, model_proc.std
    return steps


def _detection_filters(settings, labels):
    """The `regions` and `class_ids` of a detection task, from the roi and object-class settings."""
    wanted = _labels_of(settings.get("object_class"))
    class_ids = None
    if wanted:
        if not labels:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"object-class {settings.get('object_class')}: the model's classes have no "
                                  "names; set labels-file")
        unknown = [label for label in wanted if label not in labels]
        if unknown:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"object-class {settings.get('object_class')}: no class named "
                                  f"{', '.join(unknown)} in the labels ({', '.join(labels[:8])}"
                                  f"{', ...' if len(labels) > 8 else ''})")
        class_ids = [index for index, label in enumerate(labels) if label in wanted]
    return {"regions": parse_regions(settings.get("roi")), "class_ids": class_ids}


def parse_regions(text):
    """"left,top,width,height;..." (frame pixels) → [(left, top, width, height), ...]; None when
    empty (the whole frame)."""
    if not text or not text.strip():
        return None
    regions = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            values = [int(value) for value in part.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or values[0] < 0 or values[1] < 0 or values[2] <= 0 or values[3] <= 0:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"roi {text}: \"{part.strip()}\" is not left,top,width,height in whole pixels "
                                  "(width and height above 0); rectangles are separated by ;")
        regions.append(tuple(values))
    return regions or None


def _shared_torch_model(settings, device, labels, warnings, compiled=False):
    """(the loaded model, what the task calls): one load per model file, weights, torch home and
    device in the process, called in batches by every session (stream) that has it
    (emi.shared_models). Random weights are each session's own. A classifier (`compiled`) runs
    compiled for inference where torch can compile it (CompiledOnFirstCall)."""
    def load():
        return load_model(settings.get("model"), settings.get("model_weights"), settings.get("random_weights"),
                          device, len(labels) if labels else None,
                          trust_model_file=settings.get("trust_model_file", False))

    def callable_of(loaded):
        return CompiledOnFirstCall(loaded.module) if compiled else loaded.module

    if settings.get("random_weights"):
        loaded = load()
        return loaded, callable_of(loaded)
    key = ("emi.inference", shared_models.file_identity(settings.get("model")),
           shared_models.file_identity(settings.get("model_weights")), os.environ.get("TORCH_HOME", ""),
           str(device), len(labels) if labels else None, bool(settings.get("trust_model_file")), compiled)
    loaded = shared_models.shared_load(key, load)
    return loaded, _shared_batched(key, lambda: callable_of(loaded), settings, loaded.name, warnings)


class CompiledOnFirstCall:
    """A torch classifier compiled for inference (emi.inference.for_inference) on the first batch
    it is given (a session's dry run: an input of the size the frames will have), and run compiled
    from then on; `not_compiled` says why not when torch can't. Called by one thread at a time
    (emi.shared_models)."""

    def __init__(self, module):
        self.module = module
        self.model = None
        self.not_compiled = None

    def __call__(self, inputs):
        if self.model is None:
            self.model, self.not_compiled = for_inference(self.module, inputs)
        return self.model(inputs)


def _shared_batched(key, model, settings, name, warnings, max_concurrent=1, replicate=None):
    """The process's batched model of `key` (emi.shared_model) with the element's max-batch-size
    and max-batch-delay; the element that opened it first set them, and a later one that asks for
    others is told (in `warnings`)."""
    size, delay = settings.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE), settings.get("max_batch_delay", 0.0)
    batched = shared_models.shared_model(key + ("batched",), model, max_batch_size=size, max_batch_delay_ms=delay,
                                         max_concurrent=max_concurrent, replicate=replicate)
    if (batched.max_batch_size, batched.max_batch_delay) != (size, delay / 1000.0):
        warnings.append(f"model {name} is shared with an element that opened it first with max-batch-size="
                        f"{batched.max_batch_size} and max-batch-delay={batched.max_batch_delay * 1000:g}: those "
                        f"hold, not {size} and {delay:g}")
    return batched


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
