"""emi: Python and PyTorch programs inside GStreamer video pipelines.

The GStreamer elements live in the `gstemi` plugin; this package holds what Python code around
them uses: reading the frame document that the elements attach to buffers.
"""

from .document import DOCUMENT_META_NAME, frame_document, frame_record

__all__ = ["DOCUMENT_META_NAME", "frame_document", "frame_record"]
__version__ = "0.1.0"
