# SPDX-License-Identifier: LGPL-2.1-or-later
def start(options):
    raise RuntimeError("model file missing: " + options.get("model", "?"))


def process_ip(io_buffer, in_meta):
    return []
