# SPDX-License-Identifier: LGPL-2.1-or-later
calls = 0


def process_ip(io_buffer, in_meta):
    global calls
    calls += 1
    if calls % 2 == 0:
        raise ValueError("bad frame %d" % calls)
    return [{"calls": calls}]
