# SPDX-License-Identifier: LGPL-2.1-or-later
def process_ip(io_buffer, in_meta):
    io_buffer[0:2, 0:2, :] = (1, 2, 3, 4)
    return []
