# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ablation for emi-bench --breakdown: no arguments, so empycustom passes neither io_buffer nor
in_meta (it still maps the frame and builds the NumPy view)."""


def process_ip():
    return "[]"
