# SPDX-License-Identifier: LGPL-2.1-or-later
# A detector for `empycustom mode=detect`: twelve boxes per frame scattered over a 96x72 frame,
# the same for the same frame_num (tests compute which stand in a region of interest).
import random


def boxes_of(frame_num):
    rng = random.Random(frame_num)
    boxes = []
    for _ in range(12):
        width, height = rng.randint(2, 30), rng.randint(2, 30)
        boxes.append({"left": rng.randint(0, 96 - width), "top": rng.randint(0, 72 - height),
                      "width": width, "height": height})
    return boxes


def process_ip(io_buffer, in_meta):
    frame_num = in_meta["frame"][0]["frame_num"]
    return [{"rect_params": box, "obj_label": "person", "class_id": 0, "confidence": 0.9}
            for box in boxes_of(frame_num)]
