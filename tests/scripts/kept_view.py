# SPDX-License-Identifier: LGPL-2.1-or-later
# Keeps the first frame's views (array, a slice and the seed's map() data) and reads them later.
import numpy as np

kept = []


def process_ip(io_buffer, in_meta):
    if not kept:
        ok, info = io_buffer.map(1)
        kept.append(io_buffer)
        kept.append(io_buffer[2:4, 2:4, 1])
        kept.append(np.ndarray(shape=(io_buffer.size,), dtype=np.uint8, buffer=info.data))
        return []
    return [{"first_sum": int(kept[0].sum()), "slice_sum": int(kept[1].sum()),
             "raw_sum": int(kept[2].sum()), "current_sum": int(io_buffer.sum())}]
