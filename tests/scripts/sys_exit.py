# SPDX-License-Identifier: LGPL-2.1-or-later
import sys


def process_ip(io_buffer, in_meta):
    sys.exit(3)
