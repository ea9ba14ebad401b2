# SPDX-License-Identifier: LGPL-2.1-or-later
# Never returns from its first call by itself: sleeps in a loop (a script waiting for something
# that never comes), until the element stops it.
import time

calls = 0


def process_ip(io_buffer, in_meta):
    global calls
    calls += 1
    if calls == 2:
        while True:
            time.sleep(0.01)
    return [{"calls": calls}]
