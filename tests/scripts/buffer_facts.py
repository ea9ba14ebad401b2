# SPDX-License-Identifier: LGPL-2.1-or-later
# A seed-style process_ip that asks io_buffer what scripts ask of a Gst.Buffer: its timestamps,
# offsets, size and bytes, besides map/unmap.
from gi.repository import Gst


def process_ip(io_buffer, in_meta):
    out_meta_array = []
    ret, map_info = io_buffer.map(Gst.MapFlags.READ)
    try:
        facts = {
            "mapped": ret,
            "map_size": map_info.size,
            "size": io_buffer.get_size(),
            "pts": io_buffer.pts,
            "dts": io_buffer.dts,
            "duration": io_buffer.duration,
            "offset": io_buffer.offset,
            "offset_end": io_buffer.offset_end,
            "pts_unset": io_buffer.pts == Gst.CLOCK_TIME_NONE,
            "dts_unset": io_buffer.dts == Gst.CLOCK_TIME_NONE,
            "first_bytes": list(io_buffer.extract_dup(0, 4)),
            "bytes_at_8": list(io_buffer.extract_dup(8, 3)),
            "past_the_end": len(io_buffer.extract_dup(io_buffer.get_size() - 2, 10)),
        }
        if io_buffer.pts != Gst.CLOCK_TIME_NONE:
            facts["seconds"] = io_buffer.pts / Gst.SECOND
        out_meta_array.append(facts)
    finally:
        io_buffer.unmap(map_info)
    return str(out_meta_array)
