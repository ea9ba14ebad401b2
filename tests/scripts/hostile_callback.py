# SPDX-License-Identifier: LGPL-2.1-or-later
# A signal callback that returns or raises, as signal["kind"] asks, text that is not valid UTF-8.
class RaisingStr:
    def __str__(self):
        raise RuntimeError("no text for you")


def on_signal(signal):
    kind = signal["kind"]
    if kind == "surrogate_event":
        return [{"file": "caf\udce9.jpg", "caf\udce9": 1, "raw": b"\xff ok"}], None
    if kind == "surrogate_debug":
        return [], "debug caf\udce9"
    if kind == "raising_debug":
        return [], RaisingStr()
    if kind == "surrogate_exception":
        raise FileNotFoundError("no such file: caf\udce9.jpg")
    if kind == "surrogate_fatal":
        return [{ValueError: "stop: caf\udce9"}], None
    raise ValueError("unknown kind " + kind)
