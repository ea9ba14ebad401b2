# SPDX-License-Identifier: LGPL-2.1-or-later
"""Weights, labels and devices for the template's torchvision models.

A program's start() calls load_model(), which takes the weights from, in this order:
  1. the program's `weights` option: a checkpoint (a state_dict saved with torch.save);
  2. models/<name>.pth next to the program, installed by prepare_resource.sh (`--weights FILE` or
     `--random-weights`);
  3. torchvision's pretrained weights through torch's hub dir, models/ (the file lands in
     models/checkpoints/), downloaded on first use: what prepare_resource.sh does by default.
When none can be had, WeightsUnavailable says what to run.

Each program runs this module's command line for its own model (prepare_resource.sh uses it):
    python3 PROGRAM.py --install-weights FILE     copy a checkpoint to models/<name>.pth
    python3 PROGRAM.py --random-weights [--seed N]  write a randomly initialised one there

This file is the same in every template: an app copied from a template stands alone.
"""

import argparse
import filecmp
import os
import pickle
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlparse

import torch

MODELS_DIR = "models"


class WeightsUnavailable(RuntimeError):
    """No usable weights; the message names the files tried and what to run."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                 # models/<name>.pth
    build: Callable           # build(weights) -> torch.nn.Module; weights: a WeightsEnum or None
    pretrained: object        # the torchvision WeightsEnum member to download
    weights_flag: str = "--weights"   # prepare_resource.sh's option that installs a checkpoint
    offers_random: bool = True        # whether prepare_resource.sh --random-weights writes these

    def installed_path(self, models_dir):
        return os.path.join(models_dir, self.name + ".pth")

    def cached_path(self, models_dir):
        """Where torch's hub keeps the downloaded pretrained weights."""
        return os.path.join(models_dir, "checkpoints", os.path.basename(urlparse(self.pretrained.url).path))


def resource_path(program_folder, value):
    """An option's path: absolute as given, else relative to the program's folder (never to the
    current directory, which is wherever the pipeline was started)."""
    return value if os.path.isabs(value) else os.path.join(program_folder, value)


def pick_device(name):
    """`auto`: the first CUDA device when there is one, else the CPU; else the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available here (use \"auto\" or \"cpu\")")
    return device


def read_labels(path):
    """One label per line."""
    with open(path, encoding="utf-8") as labels_file:
        return [line.rstrip("\n") for line in labels_file if line.strip()]


def label_of(labels, index):
    """The label of a class index; the index as text when the labels file is shorter (as the seed
    does)."""
    return labels[index] if 0 <= index < len(labels) else str(index)


def load_checkpoint(spec, path):
    """spec's architecture with the weights of the checkpoint at `path`, on the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsUnavailable(f"{path}: no such checkpoint") from None
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError) as error:
        raise WeightsUnavailable(f"{path}: not a checkpoint of tensors saved with torch.save "
                                 f"({type(error).__name__}: {str(error).split('.')[0]})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise WeightsUnavailable(f"{path}: holds a {type(state).__name__}, not a state_dict")
    model = spec.build(None)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        details = str(error).splitlines()
        raise WeightsUnavailable(f"{path}: not {spec.name} weights: "
                                 f"{' '.join(line.strip() for line in details[1:3]) or details[0]}") from None
    return model


def _what_to_run(spec, models_dir):
    text = (f"Run resource/prepare_resource.sh {spec.weights_flag} FILE to install a checkpoint of "
            f"{spec.name} you have as {spec.installed_path(models_dir)}")
    if spec.offers_random:
        text += (", or resource/prepare_resource.sh --random-weights for randomly initialised weights "
                 "(the app runs end to end; its predictions mean nothing)")
    return text + "."


def load_model(spec, models_dir, device, weights=None, download=True):
    """(model in eval mode on `device`, the file its weights came from). Raises WeightsUnavailable."""
    if weights:
        model, origin = load_checkpoint(spec, weights), weights
    elif os.path.isfile(spec.installed_path(models_dir)):
        model, origin = load_checkpoint(spec, spec.installed_path(models_dir)), spec.installed_path(models_dir)
    else:
        origin = spec.cached_path(models_dir)
        if not download and not os.path.isfile(origin):
            raise WeightsUnavailable(f"{spec.name}: no weights: neither {spec.installed_path(models_dir)} "
                                     f"nor {origin} is there. {_what_to_run(spec, models_dir)}")
        torch.hub.set_dir(models_dir)  # the seed's way: torchvision downloads into the hub dir
        try:
            model = spec.build(spec.pretrained)
        except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
            raise WeightsUnavailable(
                f"{spec.name}: no weights: {spec.installed_path(models_dir)} is not there and the "
                f"pretrained weights could not be downloaded from {spec.pretrained.url} into "
                f"{origin} ({type(error).__name__}: {error}). {_what_to_run(spec, models_dir)}") from None
    return model.to(device).eval(), origin


def options_over_defaults(options, defaults):
    """A program's options over its defaults; an unknown key raises ValueError naming it."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(defaults)}")
    return {**defaults, **options}


def open_model(spec, program_folder, settings, download=True):
    """(model, the file its weights came from, device) for a program's `device`, `weights` and
    `models_dir` settings, paths relative to the program's folder. Raises WeightsUnavailable."""
    device = pick_device(settings["device"])
    weights = resource_path(program_folder, settings["weights"]) if settings["weights"] else None
    model, origin = load_model(spec, resource_path(program_folder, settings["models_dir"]), device, weights,
                               download)
    return model, origin, device


def install_weights(spec, source, models_dir):
    """Copies a checkpoint that loads into spec's architecture to models/<name>.pth."""
    load_checkpoint(spec, source)
    target = spec.installed_path(models_dir)
    if os.path.isfile(target) and filecmp.cmp(source, target, shallow=False):
        return f"{target}: already installed"
    os.makedirs(models_dir, exist_ok=True)
    partial = target + ".partial"
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return f"installed {source} as {target}"


def write_random_weights(spec, models_dir, seed):
    """Writes randomly initialised weights (seeded: the same file every time) to models/<name>.pth,
    unless weights are installed there already."""
    target = spec.installed_path(models_dir)
    if os.path.isfile(target):
        return f"{target}: weights are installed already; kept (delete the file to write random ones)"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = spec.build(None).state_dict()
    os.makedirs(models_dir, exist_ok=True)
    partial = target + ".partial"
    torch.save(state, partial)
    os.replace(partial, target)
    return (f"wrote randomly initialised {spec.name} weights (seed {seed}) to {target}: the app runs "
            f"end to end, but its predictions mean nothing")


def command_line(spec, program_folder, argv=None):
    """The programs' `__main__`: installs weights for `spec`. Returns the exit status."""
    parser = argparse.ArgumentParser(description=f"Install {spec.name} weights for this program.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--install-weights", metavar="FILE", help="a checkpoint (state_dict) to install")
    what.add_argument("--random-weights", action="store_true", help="write randomly initialised weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (0)")
    parser.add_argument("--models-dir", default=MODELS_DIR,
                        help="relative to the program's folder unless absolute (models)")
    args = parser.parse_args(argv)
    models_dir = resource_path(program_folder, args.models_dir)
    try:
        if args.install_weights:
            print(install_weights(spec, os.path.abspath(args.install_weights), models_dir))
        else:
            print(write_random_weights(spec, models_dir, args.seed))
    except (WeightsUnavailable, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
