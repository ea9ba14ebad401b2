# SPDX-License-Identifier: LGPL-2.1-or-later
def process_ip(io_buffer, in_meta)
    return []
