# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ablation for emi-bench --breakdown: io_buffer only, so empycustom skips converting in_meta."""


def process_ip(io_buffer):
    return "[]"
