# SPDX-License-Identifier: LGPL-2.1-or-later
def analyse():
    return [{"called": True}]
