# SPDX-License-Identifier: LGPL-2.1-or-later
import helper_module


def process_ip(io_buffer, in_meta):
    return [{"answer": helper_module.answer()}]
