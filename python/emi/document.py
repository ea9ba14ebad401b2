# SPDX-License-Identifier: LGPL-2.1-or-later
"""The frame document (EDGEMATRIX's "signal") that emi elements attach to each buffer.

It travels as a GstCustomMeta named DOCUMENT_META_NAME whose structure holds the document as a JSON
string in its "json" field, so any PyGObject application can read it from a pad probe:

    def on_buffer(pad, info):
        document = emi.frame_document(info.get_buffer())
        if document:
            print(document["frame"][0].get("emcustom"))
        return Gst.PadProbeReturn.OK
"""

import functools
import json
import os

DOCUMENT_META_NAME = "EmiFrameDocumentMeta"
_DOCUMENT_FIELD = "json"
# The JSON Schema of the document (docs/frame_document.schema.json, installed beside the package).
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas",
                           "frame_document.schema.json")


@functools.lru_cache(maxsize=None)
def frame_document_schema():
    """The frame document's JSON Schema, as a dict."""
    with open(SCHEMA_PATH, encoding="utf-8") as schema_file:
        return json.load(schema_file)


def frame_facts():
    """The fields that describe the frame itself (frame_num, buf_pts, ...), as the schema lists
    them: everything else in a frame record is objects, events, counts or results."""
    return tuple(frame_document_schema()["$defs"]["frame_facts"]["properties"])


def frame_document(buffer):
    """The document attached to a Gst.Buffer, as a dict, or None when it has none."""
    meta = buffer.get_custom_meta(DOCUMENT_META_NAME)
    if meta is None:
        return None
    text = meta.get_structure().get_string(_DOCUMENT_FIELD)
    return json.loads(text) if text is not None else None


def frame_record(buffer):
    """document["frame"][0] of a Gst.Buffer (frame_num, timestamp, object, results), or None."""
    document = frame_document(buffer)
    if not document or not document.get("frame"):
        return None
    return document["frame"][0]
