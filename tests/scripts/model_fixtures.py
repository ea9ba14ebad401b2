# SPDX-License-Identifier: LGPL-2.1-or-later
"""Model files with random weights for the emdetect/emclassify tests and benchmark: no weights can
be downloaded here, so each test saves the real architectures, randomly initialised, to files."""

import os
import urllib.parse

import torch
import torchvision
from torchvision.models import get_model_weights

PERSON = 1  # COCO's class 1, "person", in torchvision's 91-class labels


def write_labels(path, labels):
    with open(path, "w", encoding="utf-8") as file:
        file.write("".join(label + "\n" for label in labels))
    return path


def numbered_labels(count, prefix="class"):
    return [f"{prefix} {index}" for index in range(count)]


def eval_model(builder, seed=0, **keywords):
    """builder(weights=None, **keywords), randomly initialised from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return builder(weights=None, **keywords).eval()


def save_state_dict(path, model):
    torch.save(model.state_dict(), path)
    return path


def cached_weights_path(torch_home, builder):
    """Where torchvision looks for `builder`'s DEFAULT weights in a cache at `torch_home`."""
    url = get_model_weights(builder).DEFAULT.url
    return os.path.join(torch_home, "hub", "checkpoints", os.path.basename(urllib.parse.urlparse(url).path))


def cache_as_default_weights(torch_home, builder, model):
    """Saves `model`'s weights where torchvision looks for `builder`'s DEFAULT weights."""
    path = cached_weights_path(torch_home, builder)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return save_state_dict(path, model)


def person_detector():
    """SSDlite (COCO's 91 classes) with random weights, but heads that give one confident "person"
    per frame: the box of one anchor of the last feature map (centred, 95% of the frame), whatever
    the picture. Every other anchor scores background."""
    model = eval_model(torchvision.models.detection.ssdlite320_mobilenet_v3_large, weights_backbone=None)
    classes = model.head.classification_head.num_columns
    with torch.no_grad():
        for block in model.head.regression_head.module_list:
            block[-1].weight.zero_()
            block[-1].bias.zero_()
        for block in model.head.classification_head.module_list:
            block[-1].weight.zero_()
            logits = block[-1].bias.view(-1, classes)  # (anchor, class)
            logits.zero_()
            logits[:, 0] = 10.0
        last = model.head.classification_head.module_list[-1][-1].bias.view(-1, classes)
        last[0, 0] = 0.0
        last[0, PERSON] = 10.0
    return model


def varied_detector(num_classes):
    """SSDlite with random weights whose scores vary with the picture: torchvision's own
    initialisation of SSDlite lets the features fade to nothing in random layers, so every anchor
    scores the same. He initialisation keeps them; the scoring layers are scaled down so that
    scores spread around 0.5 instead of saturating."""
    model = eval_model(torchvision.models.detection.ssdlite320_mobilenet_v3_large, num_classes=num_classes,
                       weights_backbone=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        for block in model.head.classification_head.module_list:
            block[-1].weight.mul_(0.1)
    return model
