# SPDX-License-Identifier: LGPL-2.1-or-later
"""emi: Python and PyTorch programs inside GStreamer video pipelines.

The GStreamer elements live in the `gstemi` plugin; this package holds what Python code around
them uses: reading the frame document that the elements attach to buffers.
"""

from .document import DOCUMENT_META_NAME, frame_document, frame_record

__all__ = ["DOCUMENT_META_NAME", "frame_document", "frame_record", "shared_model"]
__version__ = "0.1.0"


def __getattr__(name):
    # emi.shared_model imports torch: only when a program asks for it, not for every `emi` command.
    if name == "shared_model":
        from .shared_models import shared_model
        return shared_model
    raise AttributeError(f"module 'emi' has no attribute {name!r}")
