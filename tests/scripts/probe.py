# SPDX-License-Identifier: LGPL-2.1-or-later
# Reports what the script was given, so tests can check the contract from C++.
def describe(array):
    return {
        "type": type(array).__name__,
        "address": array.__array_interface__["data"][0],
        "shape": list(array.shape),
        "strides": list(array.strides),
        "writeable": bool(array.flags.writeable),
        "dtype": str(array.dtype),
    }


def process_ip(io_buffer, in_meta, options, events):
    planes = io_buffer if isinstance(io_buffer, tuple) else (io_buffer,)
    return [{"planes": [describe(plane) for plane in planes], "in_meta": in_meta, "options": options}]
