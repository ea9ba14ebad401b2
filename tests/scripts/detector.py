# SPDX-License-Identifier: LGPL-2.1-or-later
def process_ip(io_buffer, in_meta):
    return [
        {"rect_params": {"left": 10, "top": 5, "width": 20, "height": 10}, "class_id": 2,
         "obj_label": "car", "confidence": 0.9, "color": "red"},
        {"rect_params": {"left": 50, "top": 30, "width": 100, "height": 100}, "obj_label": "person",
         "confidence": 0.4},
        {"rect_params": {"left": "x"}},
        {"scene": "street"},
    ]
