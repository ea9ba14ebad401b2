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


_METHODS = ("softmax", "sigmoid", "none")
_COLOR_SPACES = ("RGB", "BGR")


def read_model_proc(path):
    """The ModelProc of a JSON file (see the README's emdetect section); an empty one without a
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
    return proc


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
