# SPDX-License-Identifier: LGPL-2.1-or-later
def process_ip(io_buffer, in_meta):
    try:
        io_buffer[0, 0, 0] = 7
    except ValueError as error:
        return [{"refused": True, "error": str(error)}]
    return [{"refused": False}]
