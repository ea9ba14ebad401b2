# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loading a model by name, as DLStreamer's pytorch_tensor_inference does: a torchvision builder
(`torchvision.models.resnet50`) with a state_dict file, its DEFAULT weights from torch's cache, or
random weights; or a file holding a whole model (TorchScript, or a pickled torch.nn.Module)."""

import dataclasses
import difflib
import importlib
import inspect
import os
import pickle
import urllib.parse
import zipfile

import torch
from torchvision.models import get_model_weights, list_models

from .errors import ModelSetupError

TORCHVISION_PREFIX = "torchvision."

# What the models of each torchvision package do.
_FAMILIES = {
    "torchvision.models": "image",  # classification of an image
    "torchvision.models.video": "video",  # classification of a clip of frames
    "torchvision.models.detection": "detection",
}


@dataclasses.dataclass
class LoadedModel:
    module: torch.nn.Module  # in eval mode, on its device
    name: str  # the `model` setting
    family: str  # "image", "video" or "detection"; None for a model file (the element decides)
    transforms: object = None  # the weights' preset transforms (torchvision models)
    categories: list = None  # the class names that came with the DEFAULT weights
    warnings: list = dataclasses.field(default_factory=list)  # for the element to post


def resolve_device(device):
    """"auto" → CUDA when torch sees a CUDA device, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelSetupError(ModelSetupError.INVALID,
                              "device cuda: torch finds no CUDA device (torch.cuda.is_available() is "
                              "False); use device=auto or device=cpu")
    if device not in ("cpu", "cuda"):
        raise ModelSetupError(ModelSetupError.INVALID, f"device {device}: not auto, cpu or cuda")
    return device


def load_model(model, weights_path, random_weights, device, class_count, trust_model_file=False):
    """The model named by the `model` setting, in eval mode on `device`. `class_count` (the labels
    file's) is the number of classes a torchvision model built without its DEFAULT weights gets
    when its default number does not fit `weights_path`, or when it gets random weights.
    Files are read with torch.load(weights_only=True), which builds tensors and containers only;
    a whole pickled model runs code of the file's choosing as it loads, so it is loaded only with
    `trust_model_file` (and a warning)."""
    if not model:
        raise ModelSetupError(ModelSetupError.INVALID,
                              "model is not set: name a torchvision model (torchvision.models.resnet50) "
                              "or a model file (TorchScript or a pickled torch model)")
    if model.startswith(TORCHVISION_PREFIX):
        loaded = _load_torchvision(model, weights_path, random_weights, class_count)
    else:
        if weights_path:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"model-weights {weights_path}: only torchvision models take a "
                                  f"state_dict; the model file {model} holds its own weights")
        if random_weights:
            raise ModelSetupError(ModelSetupError.INVALID,
                                  f"random-weights applies to torchvision models; the model file {model} "
                                  "holds its own weights")
        loaded = _load_file(model, device, trust_model_file)
    loaded.module.to(device).eval()
    return loaded


def detection_class_count(module):
    """The number of classes (background included) of a torchvision detector, when it says."""
    for path in ("head.classification_head.num_classes",  # RetinaNet, FCOS
                 "head.classification_head.num_columns",  # SSD, SSDlite
                 "roi_heads.box_predictor.cls_score.out_features"):  # Faster, Mask and Keypoint R-CNN
        value = module
        for name in path.split("."):
            value = getattr(value, name, None)
        if isinstance(value, int):
            return value
    return None


def _load_torchvision(name, weights_path, random_weights, class_count):
    module_name, _, builder_name = name.rpartition(".")
    family = _FAMILIES.get(module_name)
    if family is None:
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"model {name}: not a model of {', '.join(sorted(_FAMILIES))} (classification, "
                              "video classification and detection)")
    package = importlib.import_module(module_name)
    known = list_models(package)
    if builder_name not in known:
        close = difflib.get_close_matches(builder_name, known, n=3)
        hint = f": did you mean {', '.join(module_name + '.' + match for match in close)}?" if close else ""
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"model {name}: {module_name} has no model {builder_name}{hint}")
    builder = getattr(package, builder_name)
    default = get_model_weights(builder).DEFAULT
    # The architecture's own pre-processing, whatever weights it gets.
    transforms = default.transforms()
    # A detector built without its weights would otherwise fetch ImageNet weights for its backbone.
    takes_backbone = "weights_backbone" in inspect.signature(builder).parameters
    keywords = {"weights_backbone": None} if takes_backbone else {}

    if weights_path:
        state = _read_state_dict(weights_path)
        module = _build_fitting(name, builder, keywords, state, weights_path, class_count)
        return LoadedModel(module, name, family, transforms)
    if random_weights:
        classes = {"num_classes": class_count} if class_count else {}
        return LoadedModel(builder(weights=None, **keywords, **classes), name, family, transforms)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints",
                          os.path.basename(urllib.parse.urlparse(default.url).path))
    if not os.path.isfile(cached):
        raise ModelSetupError(
            ModelSetupError.NOT_FOUND,
            f"model {name}: model-weights is not set and its DEFAULT weights ({default}) are not in torch's "
            f"cache, {cached}. Fetch them where there is internet (python3 -c \"import {module_name}; "
            f"{name}(weights='DEFAULT')\") and copy {os.path.basename(cached)} there (TORCH_HOME moves the "
            "cache), or set model-weights to a state_dict file; random-weights=true runs the model "
            "untrained, for tests")
    try:
        module = builder(weights=default)
    except Exception as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {name}: its DEFAULT weights in torch's cache, {cached}, can't be "
                              f"loaded: {_describe(error)}") from None
    return LoadedModel(module, name, family, transforms, default.meta.get("categories"))


def _build_fitting(name, builder, keywords, state, weights_path, class_count):
    """The model with `state` loaded: built with its default number of classes, else with the
    labels file's."""
    attempts = [{}] + ([{"num_classes": class_count}] if class_count else [])
    failure = None
    for classes in attempts:
        module = builder(weights=None, **keywords, **classes)
        try:
            module.load_state_dict(state)
            return module
        except RuntimeError as error:
            failure = failure or error
    tried = f" (nor with the labels file's {class_count} classes)" if class_count else ""
    raise ModelSetupError(ModelSetupError.INVALID,
                          f"model-weights {weights_path} does not fit {name}{tried}: "
                          f"{_describe(failure, lines=3)}")


def _is_torch_save_file(path):
    """torch.save writes a zip archive (since torch 1.6), or a pickle stream (protocol 2) before."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as file:
        return file.read(2) == b"\x80\x02"


def _read_state_dict(path):
    if not os.path.exists(path):
        raise ModelSetupError(ModelSetupError.NOT_FOUND, f"model-weights {path}: no such file")
    try:
        if not _is_torch_save_file(path):
            raise ModelSetupError(ModelSetupError.UNREADABLE, f"model-weights {path} is not a file torch.save wrote")
        content = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model-weights {path}: {error.strerror}") from None
    except ModelSetupError:
        raise
    except pickle.UnpicklingError:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model-weights {path} holds more than tensors (objects that torch.load("
                              "weights_only=True) refuses), and loading it would run code from the file: save "
                              "only the state_dict (torch.save(model.state_dict(), path))") from None
    except Exception as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model-weights {path} is not a file torch.save wrote: "
                              f"{_describe(error)}") from None
    if isinstance(content, dict):
        for key in ("state_dict", "model"):  # training checkpoints keep the weights under one of these
            if isinstance(content.get(key), dict):
                content = content[key]
        if content and all(isinstance(value, torch.Tensor) for value in content.values()):
            return content
    raise ModelSetupError(ModelSetupError.UNREADABLE,
                          f"model-weights {path} holds {_kind(content)}, not a state_dict (a dict of "
                          "tensors)")


def _load_file(path, device, trust_model_file):
    if not os.path.exists(path):
        raise ModelSetupError(ModelSetupError.NOT_FOUND,
                              f"model {path}: no such file (model is a model file, or a torchvision model "
                              "such as torchvision.models.resnet50)")
    if os.path.isdir(path):
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path} is a folder, not a model file")
    if _is_torchscript(path):
        try:
            module = torch.jit.load(path, map_location=device)
        except Exception as error:
            raise ModelSetupError(ModelSetupError.UNREADABLE,
                                  f"model {path}: a TorchScript file torch can't load: "
                                  f"{_describe(error)}") from None
        return LoadedModel(module, path, None)
    try:
        is_torch_file = _is_torch_save_file(path)
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path}: {error.strerror}") from None
    if not is_torch_file:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} is neither a TorchScript file nor a pickled torch model (nor ONNX: "
                              "name ONNX files .onnx)")
    try:
        # Tensors and containers only: what it holds, without running anything from it.
        content = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        content = None  # it pickles objects: a whole model, whose loading runs code
    except Exception as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} is neither a TorchScript file nor a pickled torch model: "
                              f"{_describe(error)}") from None
    if content is not None:
        return _model_of(path, content)
    if not trust_model_file:
        raise ModelSetupError(ModelSetupError.INVALID,
                              f"model {path} is a whole pickled model (torch.save(model)): loading it runs "
                              "code from the file. Save it with torch.jit.save (TorchScript) or as a state_dict "
                              "for a torchvision model (model-weights), or set trust-model-file=true if you "
                              "trust where it came from")
    try:
        content = torch.load(path, map_location=device)
    except (AttributeError, ImportError) as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} is a pickled model whose class can't be imported "
                              f"({_describe(error)}): "
                              "put its module on PYTHONPATH, or save the model with torch.jit.save") from None
    except OSError as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE, f"model {path}: {error.strerror}") from None
    except Exception as error:
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} is neither a TorchScript file nor a pickled torch model: "
                              f"{_describe(error)}") from None
    loaded = _model_of(path, content)
    loaded.warnings.append(f"model {path}: loaded as a full pickle (trust-model-file=true), which runs code from "
                           "the file; TorchScript (torch.jit.save) loads without that risk")
    return loaded


def _model_of(path, content):
    if isinstance(content, dict):
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} holds weights only (a state_dict), not a model: set model to "
                              f"its torchvision name and model-weights={path}")
    if not isinstance(content, torch.nn.Module):
        raise ModelSetupError(ModelSetupError.UNREADABLE,
                              f"model {path} holds {_kind(content)}, not a torch model")
    return LoadedModel(content, path, None)


def _is_torchscript(path):
    """torch.jit.save writes a zip archive with the model's code in a code/ folder; torch.save's
    archives have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


def _kind(value):
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def _describe(error, lines=1):
    text = "\n".join(str(error).strip().splitlines()[:lines]) if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
