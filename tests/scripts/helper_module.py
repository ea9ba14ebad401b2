# SPDX-License-Identifier: LGPL-2.1-or-later
def answer():
    return 42
