# SPDX-License-Identifier: LGPL-2.1-or-later
import app_state


def process_ip(io_buffer, in_meta):
    app_state.frames.append(in_meta["frame"][0]["frame_num"])
    return [{"mean": float(io_buffer.mean())}]
