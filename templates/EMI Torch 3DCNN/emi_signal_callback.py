# SPDX-License-Identifier: LGPL-2.1-or-later
"""EMI Torch 3DCNN: signals → events.

Each frame-level result of the video classifier (`frame["emcustom"]`) becomes one event with the
frame's timestamp; the stream config's rule `probability >= 20` records a clip on them. A signal
without results (the default sample signal: `frame` with `timestamp` only) gives no events.
"""

RESULT_KEY = "emcustom"


def emi_signal_callback(signal):
    events = []
    for frame in signal.get("frame", []):
        for result in frame.get(RESULT_KEY, []):
            if "predicted_class" in result and "probability" in result:
                events.append({"predicted_class": result["predicted_class"],
                               "probability": float(result["probability"]),
                               "timestamp": frame.get("timestamp", "")})
    return events, f"{len(events)} classification event(s)"
