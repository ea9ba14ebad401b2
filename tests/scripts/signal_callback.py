# SPDX-License-Identifier: LGPL-2.1-or-later
# An app's emi_signal_callback.py: one event per frame-level result and per ended track.
def signal_callback(signal):
    events = []
    for frame in signal["frame"]:
        for result in frame.get("emcustom", []):
            events.append({"timestamp": frame["timestamp"], "predicted_class": result["predicted_class"],
                           "probability": result["probability"]})
        for obj in frame.get("object", []):
            if obj.get("tracking_ended_time", "N/A") != "N/A":
                events.append({"object_id": obj["object_id"],
                               "tracking_ended_time": obj["tracking_ended_time"],
                               "tracking_duration_in_seconds": obj["tracking_duration_in_seconds"]})
    return events, "frame %d" % signal["frame"][0]["frame_num"]


def raises(signal):
    if signal["frame"][0]["frame_num"] == 1:
        raise KeyError("no_such_key")
    return [{"frame_num": signal["frame"][0]["frame_num"]}], ""


def wrong_shape(signal):
    return 42


def stops_the_app(signal):
    return [{ValueError: "camera 3 is not configured"}], "giving up"


import threading

release = threading.Event()


def waits_for_release(signal):
    # Blocks the callback (never the video) until the test says so.
    release.wait(30)
    return [{"frame_num": signal["frame"][0]["frame_num"]}], ""
