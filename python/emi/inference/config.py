# SPDX-License-Identifier: LGPL-2.1-or-later
"""The two small files beside a model: its labels and its model-proc (pre- and post-processing)."""

import dataclasses
import json
import numbers

from .errors import ModelSetupError


def read_labels(path):
    """The labels of `path`, one per line (DLStreamer's .txt labels files): line i names class i.
    None when no path is set."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        raise ModelSetupError(ModelSetupError.NOT_FOUND, f"labels-file {path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"labels-file {path} is not UTF-8 text ({error.reason} at byte "
                              f"{error.start}): it takes one label per line") from None
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"labels-file {path}: {error.strerror}") from None
    labels = [line.strip() for line in lines]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"labels-file {path} has no labels: it takes one label per line")
    return labels


@dataclasses.dataclass
class ModelProc:
    """What a model-proc file says; None where it says nothing."""

    resize: list = None  # [side]: the shorter side, keeping the aspect ratio; [height, width]: exact
    crop: list = None  # [height, width] of a central crop after resizing
    mean: list = None  # per channel (R, G, B), in `range` units
    std: list = None
    range: list = None  # [low, high] the 0-255 pixel values are scaled to
    color_space: str = None  # "RGB" or "BGR": the channel order the model takes
    method: str = None  # classification outputs: "softmax" (logits), "sigmoid", "none" (probabilities)
    clip_length: int = None  # frames per clip: the model classifies clips (a video model)
    # ONNX detectors
    converter: str = None  # output layout: "yolox", "yolov5", "yolov8" or "torchvision"
    resize_mode: str = None  # "letterbox" (top-left), "letterbox-center" or "stretch"
    pad_value: float = None  # the letterbox's padding, 0-255
    nms_threshold: float = None  # boxes of a class overlapping a better one by more (IoU) are dropped
    labels: list = None  # the labels, when no labels-file is set (DLStreamer's output_postproc)


_METHODS = ("softmax", "sigmoid", "none")
_COLOR_SPACES = ("RGB", "BGR")
_CONVERTERS = ("yolox", "yolov5", "yolov8", "torchvision")
_CONVERTER_ALIASES = {"yolo_x": "yolox", "yolo_v5": "yolov5", "yolo_v8": "yolov8", "boxes_labels": "torchvision"}
_RESIZE_MODES = ("letterbox", "letterbox-center", "stretch")
# DLStreamer's input_preproc "resize" values, and its output_postproc "method" ones.
_DLSTREAMER_RESIZE = {"aspect-ratio": "letterbox", "no-aspect-ratio": "stretch", "no": "stretch"}
_DLSTREAMER_METHODS = {"softmax": "softmax", "max": "none", "sigmoid_max": "sigmoid"}


def read_model_proc(path):
    """The ModelProc of a JSON file (docs/models.md); an empty one without a
    path."""
    if not path:
        return ModelProc()
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except FileNotFoundError:
        raise ModelSetupError(ModelSetupError.NOT_FOUND, f"model-proc {path}: no such file") from None
    except json.JSONDecodeError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model-proc {path} is not JSON: {error.msg} at line {error.lineno} "
                              f"column {error.colno}") from None
    except UnicodeDecodeError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model-proc {path} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model-proc {path}: {error.strerror}") from None
    if not isinstance(document, dict):
        raise _invalid(path, f"must be a JSON object, got {json.dumps(document)[:60]}")

    document = _with_dlstreamer_fields(path, document)
    fields = {field.name for field in dataclasses.fields(ModelProc)}
    unknown = sorted(set(document) - fields)
    if unknown:
        raise _invalid(path, f"has unknown keys {', '.join(unknown)} (it takes {', '.join(sorted(fields))})")
    proc = ModelProc()
    for key in ("resize", "crop"):
        if key in document:
            setattr(proc, key, _size(path, key, document[key]))
    for key in ("mean", "std"):
        if key in document:
            setattr(proc, key, _numbers(path, key, document[key], 3))
    if proc.std is not None and any(value <= 0 for value in proc.std):
        raise _invalid(path, f'"std" must be positive, got {proc.std}')
    if "range" in document:
        proc.range = _numbers(path, "range", document["range"], 2)
        if proc.range[0] >= proc.range[1]:
            raise _invalid(path, f'"range" must be [low, high] with low < high, got {proc.range}')
    proc.color_space = _choice(path, document, "color_space", _COLOR_SPACES)
    proc.method = _choice(path, document, "method", _METHODS)
    if "clip_length" in document:
        value = document["clip_length"]
        if not _is_integer(value) or value < 1:
            raise _invalid(path, f'"clip_length" must be a whole number of frames, got {json.dumps(value)}')
        proc.clip_length = value
    converter = document.get("converter")
    proc.converter = _CONVERTER_ALIASES.get(converter, converter)
    if proc.converter is not None and proc.converter not in _CONVERTERS:
        raise _invalid(path, f'"converter" must be one of {", ".join(_CONVERTERS)} (or DLStreamer\'s '
                             f'{", ".join(_CONVERTER_ALIASES)}), got {json.dumps(converter)}')
    proc.resize_mode = _choice(path, document, "resize_mode", _RESIZE_MODES)
    if "pad_value" in document:
        proc.pad_value = _numbers(path, "pad_value", [document["pad_value"]], 1)[0]
        if not 0 <= proc.pad_value <= 255:
            raise _invalid(path, f'"pad_value" must be from 0 to 255, got {proc.pad_value:g}')
    if "nms_threshold" in document:
        proc.nms_threshold = _numbers(path, "nms_threshold", [document["nms_threshold"]], 1)[0]
        if not 0 < proc.nms_threshold <= 1:
            raise _invalid(path, f'"nms_threshold" must be above 0 and at most 1, got {proc.nms_threshold:g}')
    if "labels" in document:
        labels = document["labels"]
        if not (isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)):
            raise _invalid(path, f'"labels" must be a list of strings, got {json.dumps(labels)[:60]}')
        proc.labels = labels
    return proc


def _with_dlstreamer_fields(path, document):
    """A DLStreamer model-proc (json_schema_version, input_preproc, output_postproc) as the flat
    keys that mean the same; its other fields (layer names, attribute names, ...) are DLStreamer's
    own and are left out. A flat document comes back as it is."""
    dlstreamer_keys = {"json_schema_version", "input_preproc", "output_postproc"}
    if not dlstreamer_keys & set(document):
        return document
    flat = {key: value for key, value in document.items() if key not in dlstreamer_keys}
    preprocs = document.get("input_preproc") or []
    postprocs = document.get("output_postproc") or []
    if not isinstance(preprocs, list) or not isinstance(postprocs, list):
        raise _invalid(path, '"input_preproc" and "output_postproc" must be lists')
    images = [entry for entry in preprocs if isinstance(entry, dict) and entry.get("format", "image") == "image"]
    params = images[0].get("params", {}) if images else {}
    if not isinstance(params, dict):
        raise _invalid(path, f'input_preproc "params" must be an object, got {json.dumps(params)[:60]}')
    for key in ("color_space", "range", "mean", "std"):
        if key in params:
            flat[key] = params[key]
    if "resize" in params:
        if params["resize"] not in _DLSTREAMER_RESIZE:
            raise _invalid(path, f'input_preproc "resize" must be one of {", ".join(_DLSTREAMER_RESIZE)}, got '
                                 f'{json.dumps(params["resize"])}')
        flat["resize_mode"] = _DLSTREAMER_RESIZE[params["resize"]]
    fill = (params.get("padding") or {}).get("fill_value") if isinstance(params.get("padding"), dict) else None
    if fill is not None:
        flat["pad_value"] = fill[0] if isinstance(fill, list) and fill else fill
    post = postprocs[0] if postprocs and isinstance(postprocs[0], dict) else {}
    converter = post.get("converter")
    if converter in ("label", "raw_data_copy"):
        if post.get("method") in _DLSTREAMER_METHODS:
            flat["method"] = _DLSTREAMER_METHODS[post["method"]]
    elif converter is not None:
        flat["converter"] = converter
    if "labels" in post:
        flat["labels"] = post["labels"]
    if "iou_threshold" in post:
        flat["nms_threshold"] = post["iou_threshold"]
    return flat


def _invalid(path, problem):
    return ModelSetupError(ModelSetupError.INVALID, f"model-proc {path}: {problem}")


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _size(path, key, value):
    if _is_integer(value):
        value = [value]
    sides_ok = isinstance(value, list) and len(value) in (1, 2)
    if sides_ok and all(_is_integer(side) and side > 0 for side in value):
        return value
    raise _invalid(path, f'"{key}" must be a number of pixels or [height, width], got {json.dumps(value)}')


def _numbers(path, key, value, count):
    if (isinstance(value, list) and len(value) == count
            and all(isinstance(item, numbers.Real) and not isinstance(item, bool) for item in value)):
        return [float(item) for item in value]
    raise _invalid(path, f'"{key}" must be a list of {count} numbers, got {json.dumps(value)}')


def _choice(path, document, key, choices):
    value = document.get(key)
    if value is None or value in choices:
        return value
    raise _invalid(path, f'"{key}" must be one of {", ".join(choices)}, got {json.dumps(value)}')
