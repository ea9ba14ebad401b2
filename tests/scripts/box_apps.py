# SPDX-License-Identifier: LGPL-2.1-or-later
"""App folders for the tests of `emi run --display` and `emi report`: a detect program that draws
known boxes, emoverlay, and (for the report) emtracker with a counting line and two rules."""

import json
import os

CONFIG_NAME = "emi_stream_config.json"


def write_app(folder, pipeline, program, callback, rules):
    os.makedirs(os.path.join(folder, "resource"))
    os.makedirs(os.path.join(folder, "streams"))
    with open(os.path.join(folder, "resource", "program.py"), "w") as target:
        target.write(program)
    with open(os.path.join(folder, "emi_signal_callback.py"), "w") as target:
        target.write(callback)
    config = {"developer_name": "emi tests", "application_name": "Box App", "application_version": "1.0.0",
              "application_description": "known boxes", "pipeline_configuration": pipeline,
              "signal_callback_function_name": "emi_signal_callback", "event_item_keys": [], "options": {}}
    with open(os.path.join(folder, CONFIG_NAME), "w") as target:
        json.dump(config, target)
    with open(os.path.join(folder, "streams", "stream.json"), "w") as target:
        json.dump({"stream_id": "cam1", "stream_type": "file", "location": "", "action_rules": rules}, target)
    return folder


# One box, always at the same place: left 40, top 40, 200x120 in a 320x240 frame.
STILL_BOX = (40, 40, 200, 120)


def write_still_box_app(folder):
    left, top, width, height = STILL_BOX
    program = ("def process_ip(io_buffer, in_meta):\n"
               f"    return [{{'rect_params': {{'left': {left}, 'top': {top}, 'width': {width}, "
               f"'height': {height}}}, 'obj_label': 'car', 'confidence': 0.9}}]\n")
    pipeline = {"input": {"width": 320, "height": 240, "format": "RGBA"},
                "primary": {"empycustom": {"custom-lib": "resource/program.py", "mode": "detect"}},
                "overlay": {"display-clock": False},
                "aimeta": {"signal-interval": 1}}
    return write_app(folder, pipeline, program, "def emi_signal_callback(signal):\n    return [], ''\n", [])


# A car that crosses the counting line x = 48 left to right over frames 0..59, and a person from
# frame 20 on; events say each object's probability (car 90, person 60).
MOVING_BOXES_PROGRAM = """
def process_ip(io_buffer, in_meta):
    frame_num = in_meta["frame"][0]["frame_num"]
    boxes = [{"rect_params": {"left": frame_num, "top": 10, "width": 16, "height": 16},
              "obj_label": "car", "confidence": 0.9}]
    if frame_num >= 20:
        boxes.append({"rect_params": {"left": 70 - frame_num // 4, "top": 44, "width": 14, "height": 14},
                      "obj_label": "person", "confidence": 0.6})
    return boxes
"""

EVENTS_CALLBACK = """
def emi_signal_callback(signal):
    frame = signal["frame"][0]
    return [{"obj_label": obj.get("obj_label", ""), "probability": 100.0 * obj.get("confidence", 0),
             "object_id": obj.get("object_id", -1)}
            for obj in frame.get("object", []) if obj.get("tracking_ended_time", "N/A") == "N/A"], ""
"""


def write_counting_app(folder):
    pipeline = {"input": {"width": 96, "height": 72, "format": "RGBA"},
                "primary": {"empycustom": {"custom-lib": "resource/program.py", "mode": "detect"}},
                "tracker": {"min-hits": 1, "line": "48,0,48,72"},
                "overlay": {"display-clock": False},
                "aimeta": {"signal-interval": 1}}
    rules = [{"rule_name": "Car seen", "and": [{"key": "probability", "operator": ">=", "value": 80}], "or": [],
              "action": {"action_name": "record", "duration_in_seconds": 1, "max_duration_in_seconds": 10}},
             {"rule_name": "Person seen", "and": [{"key": "probability", "operator": "<", "value": 80}],
              "or": [], "action": {"action_name": "record", "duration_in_seconds": 1,
                                   "max_duration_in_seconds": 10}}]
    return write_app(folder, pipeline, MOVING_BOXES_PROGRAM, EVENTS_CALLBACK, rules)
