# SPDX-License-Identifier: LGPL-2.1-or-later
# A signal callback that says how many frames the test had got back from emaimeta when it ran:
# with pace=always, frame n's callback runs before frame n comes back, so it sees n.
returned = 0


def sees_pushes(signal):
    return [{"frame_num": signal["frame"][0]["frame_num"], "returned": returned}], ""


import threading

held = threading.Event()


def waits_until_released(signal):
    # Holds the signals back (never the video) until the test sets `held`.
    held.wait(30)
    return [{"frame_num": signal["frame"][0]["frame_num"]}], ""
