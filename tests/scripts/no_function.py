# SPDX-License-Identifier: LGPL-2.1-or-later
def something_else(io_buffer, in_meta):
    return []
