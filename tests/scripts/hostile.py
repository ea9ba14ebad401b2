# SPDX-License-Identifier: LGPL-2.1-or-later
# Returns or raises, as options["kind"] asks, what a script may hand the host that is not clean:
# text that is not valid UTF-8 (a file name decoded with surrogateescape, bytes), odd objects and
# detections with fields of the wrong type.
BOX = {"left": 1, "top": 1, "width": 4, "height": 4}


class OddRepr:
    def __repr__(self):
        return "odd caf\udce9"


def process_ip(io_buffer, in_meta, options, events):
    kind = options["kind"]
    if kind == "surrogate_exception":
        raise FileNotFoundError("no such file: caf\udce9.jpg")
    if kind == "surrogate_result":
        return [{"file": "caf\udce9.jpg", "caf\udce9": 1}]
    if kind == "surrogate_text":
        return "[{'file': 'caf\udce9.jpg'}]"
    if kind == "bytes_result":
        return [{"data": b"\xff\xfe ok"}]
    if kind == "bytes_text":
        return b"[{'label': '\xff ok'}]"
    if kind == "odd_repr":
        return OddRepr()
    if kind == "surrogate_event":
        events.append({"file": "caf\udce9.jpg", b"\xff": b"\xfe"})
        return []
    if kind == "wrong_types":
        return [{"rect_params": BOX, "label": 3},
                {"rect_params": BOX, "class_id": "car"},
                {"rect_params": BOX, "confidence": None},
                {"rect_params": BOX, "label": "fine", "class_id": 1}]
    raise ValueError("unknown kind " + kind)
