# SPDX-License-Identifier: LGPL-2.1-or-later
# A program whose start() takes options["load_seconds"] (a slow model load) and which writes when
# its start ended and when it saw each frame into options["log"] (one line each, all streams).
import time


def _log(options, what):
    with open(options["log"], "a") as log:
        log.write(f"{what} {time.monotonic()}\n")


def start(options):
    time.sleep(options["load_seconds"])
    _log(options, "loaded")


def process_ip(io_buffer, in_meta, options):
    _log(options, "frame")
    return [{"predicted_class": "marching", "probability": float(in_meta["frame"][0]["frame_num"])}]
