# SPDX-License-Identifier: LGPL-2.1-or-later
started = False


def start():
    global started
    started = True


def process_ip(io_buffer, in_meta):
    return [{"started": started, "pixel": int(io_buffer[0, 0, 0])}]


def stop():
    pass
