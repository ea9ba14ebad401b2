# SPDX-License-Identifier: LGPL-2.1-or-later
# Module globals: each element instance must get its own.
calls = 0


def process_ip(io_buffer, in_meta):
    global calls
    calls += 1
    return [{"calls": calls, "frame_num": in_meta["frame"][0]["frame_num"]}]
