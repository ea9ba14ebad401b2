# SPDX-License-Identifier: LGPL-2.1-or-later
# The EMI Torch Imagenet seed's process_ip, assembled as users have it, with the model replaced
# by the mean colour of each object's crop so the test needs no weights.
import sys

import numpy as np
from gi.repository import Gst
from PIL import Image

NUM_PLANES = 4


def start():
    print("seed-style script starting")


def process_ip(io_buffer, in_meta):
    out_meta_array = []
    # Convert the buffer to a numpy array
    print('mapping a buffer')
    ret, map_info = io_buffer.map(Gst.MapFlags.READ)
    try:
        print('frame_meta = {}'.format(in_meta["frame"][0]))
        w = 64
        h = 48
        buffer_array = np.ndarray(
            shape=(h, w, NUM_PLANES),
            dtype=np.uint8,
            buffer=map_info.data)

        # Get object array
        object_array = in_meta["frame"][0]["object"]
        for obj in object_array:
            left = int(obj["rect_params"]["left"])
            top = int(obj["rect_params"]["top"])
            width = int(obj["rect_params"]["width"])
            height = int(obj["rect_params"]["height"])
            # Skip the transparency (A) plane since the model is RGB
            rect = buffer_array[top:top + height, left:left + width, 0:3]
            image = Image.fromarray(rect, mode="RGB")
            red, green, blue = np.asarray(image).reshape(-1, 3).mean(axis=0)
            out_obj = {}
            out_obj["predicted_class"] = "reddish" if red > blue else "bluish"
            out_obj["probability"] = float(max(red, blue)) / 255.0 * 100.0
            out_meta_array.append(out_obj)
        out_meta_array.append({"frame_mean": float(buffer_array[:, :, 0:3].mean())})
    except:
        print('failed to run process due to the error, {}'.format(sys.exc_info()[1]))
    finally:
        print('unmapping a buffer')
        io_buffer.unmap(map_info)
    return str(out_meta_array)
