# SPDX-License-Identifier: LGPL-2.1-or-later
"""EMI Torch Imagenet Yolo IOU Counter: signals → events.

Every event has the app's event_item_keys, EDGEMATRIX's way (a track that has not ended has
tracking_ended_time "N/A"):
  * each object in view that the classifier classified: its predicted_class and probability
    (the record rule `probability > 20`);
  * each ended track, once: emtracker appends its record to the objects of the frame where it
    ended, with tracking_ended_time set and tracking_duration_in_seconds (the upload rule
    `tracking_ended_time != "N/A"` and `tracking_duration_in_seconds >= 1.3`), with the track's
    last classification.
Each event also says which object (object_id, obj_label) and when (timestamp). A signal without
objects (the default sample signal: `frame` with `timestamp` only) gives no events.

Tracks still alive at the end of the stream end in a document of their own that the classifier
never sees: their events take the track's last classification remembered here.
"""

RESULT_KEY = "emcustom"
NOT_ENDED = "N/A"

last_results = {}  # object_id → the track's last classification


def _event(frame, obj):
    result = obj.get(RESULT_KEY) or {}
    return {"predicted_class": result.get("predicted_class", NOT_ENDED),
            "probability": float(result.get("probability", 0.0)),
            "tracking_ended_time": obj.get("tracking_ended_time", NOT_ENDED),
            "tracking_duration_in_seconds": float(obj.get("tracking_duration_in_seconds", 0.0)),
            "object_id": obj.get("object_id", -1),
            "obj_label": obj.get("obj_label", ""),
            "timestamp": frame.get("timestamp", "")}


def emi_signal_callback(signal):
    events = []
    ended = 0
    for frame in signal.get("frame", []):
        for obj in frame.get("object", []):
            object_id = obj.get("object_id", -1)
            if obj.get("tracking_ended_time", NOT_ENDED) != NOT_ENDED:
                remembered = last_results.pop(object_id, {})
                if "predicted_class" not in (obj.get(RESULT_KEY) or {}):
                    obj = {**obj, RESULT_KEY: remembered}
                events.append(_event(frame, obj))
                ended += 1
            elif "predicted_class" in (obj.get(RESULT_KEY) or {}):
                events.append(_event(frame, obj))
                if object_id >= 0:
                    last_results[object_id] = obj[RESULT_KEY]
    return events, f"{len(events) - ended} classification event(s), {ended} ended track(s)"
