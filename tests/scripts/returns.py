# SPDX-License-Identifier: LGPL-2.1-or-later
# Returns, in the form options["kind"] asks for, one frame-level result.
import json


class Opaque:
    def __repr__(self):
        return "<Opaque object>"


def process_ip(io_buffer, in_meta, options):
    kind = options["kind"]
    result = [{"label": "it's \"quoted\"", "score": 0.5, "ok": True, "none": None, "pair": (1, 2)}]
    if kind == "str":
        return str(result)
    if kind == "json":
        return json.dumps([{"label": "json", "score": 0.25}])
    if kind == "list":
        return result
    if kind == "dict":
        return {"label": "dict"}
    if kind == "none":
        return None
    if kind == "garbage":
        return "<tensor at 0x7f00 ...>"
    if kind == "object":
        return Opaque()
    if kind == "entries":
        return [{"entry": i} for i in range(options["count"])]
    if kind == "numpy":
        import numpy
        return [{"mean": numpy.float32(0.5), "values": numpy.arange(3, dtype=numpy.int64)}]
    raise ValueError("unknown kind " + kind)
