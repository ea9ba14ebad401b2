"""Ready programs for torchvision and TorchScript models: what the emdetect and emclassify
elements run in their empycustom (see the README's "emdetect and emclassify" section)."""

from .errors import ModelSetupError
from .sessions import PROGRAM_PATH, ModelProgram, close_session, open_session, prepare_session

__all__ = ["PROGRAM_PATH", "ModelProgram", "ModelSetupError", "close_session", "open_session",
           "prepare_session"]
