# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ready programs for torchvision, TorchScript and ONNX models: what the emdetect and emclassify
elements run in their empycustom (docs/models.md)."""

import os
import sys

from .compiled import for_inference
from .errors import ModelSetupError
from .sessions import (PROGRAM_PATH, Detector, ModelProgram, close_session, open_session, prepare_session,
                       session_warnings)

__all__ = ["PROGRAM_PATH", "Detector", "ModelProgram", "ModelSetupError", "close_session", "for_inference",
           "open_session", "prepare_session", "session_warnings", "SHIPPED_MODELS_DIR"]


def _shipped_models_dir():
    """Where emi's own models (yolox_nano.onnx, coco_80cl.txt) are: resource/models/ of the
    source tree this package is in, else PREFIX/share/emi/models of an install (the package in
    PREFIX/lib/python3/dist-packages), else sys.prefix's."""
    here = os.path.dirname(os.path.abspath(__file__))
    for parents, folder in ((3, ("resource", "models")), (5, ("share", "emi", "models"))):
        candidate = os.path.normpath(os.path.join(here, *[".."] * parents, *folder))
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(sys.prefix, "share", "emi", "models")


SHIPPED_MODELS_DIR = _shipped_models_dir()
