# SPDX-License-Identifier: LGPL-2.1-or-later
def process_ip(io_buffer, in_meta, options, events):
    events.append({"event": "seen", "frame_num": in_meta["frame"][0]["frame_num"]})
    return []
