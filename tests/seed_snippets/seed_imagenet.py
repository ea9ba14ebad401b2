# SPDX-License-Identifier: LGPL-2.1-or-later
# The seed's EMI Torch Imagenet Yolo IOU Counter secondary: its "Torch Program" snippets, unchanged,
# in the scaffolding the seed describes in prose (see README.md).
import os
import sys

import numpy as np
import torch
import torchvision
from gi.repository import Gst
from PIL import Image
from torchvision import transforms

NUM_PLANES = 4
MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")

labels = []
model = None


class _CpuWhenNoCuda(torch.Tensor):
    """A tensor whose .cuda() keeps it on the CPU when there is no CUDA, so that the snippets'
    `.cuda()` runs unchanged on any machine."""

    def cuda(self, *args, **kwargs):
        plain = self.as_subclass(torch.Tensor)
        return plain.cuda(*args, **kwargs) if torch.cuda.is_available() else plain


data_transform = transforms.Compose([
    transforms.Resize((224, 224)),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    lambda tensor: tensor.as_subclass(_CpuWhenNoCuda),
])


def start(options):
    global model, labels
    # The model is downloaded to a directory under models by configuring the hub dir.
    torch.hub.set_dir(MODELS_DIR)
    if options.get("weights"):
        model = torchvision.models.squeezenet1_1()
        model.load_state_dict(torch.load(options["weights"], map_location="cpu"))
    else:
        model = torchvision.models.squeezenet1_1(pretrained=True)
    model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    with open(options["labels"], encoding="utf-8") as labels_file:
        labels = [line.rstrip("\n") for line in labels_file]


def process_ip(io_buffer, in_meta):
    out_meta_array = []  # the blueprint leaves its creation out
    # Convert the buffer to a numpy array
    print('mapping a buffer')
    ret, map_info = io_buffer.map(Gst.MapFlags.READ)
    try:
        print('frame_meta = {}'.format(in_meta["frame"][0]))
        w = 360
        h = 360
        print('creating an array of (w,h) = ({}, {})'.format(w, h))
        buffer_array = np.ndarray(
            shape=(h, w, NUM_PLANES),
            dtype=np.uint8,
            buffer=map_info.data)

        # Get object array
        object_array = in_meta["frame"][0]["object"]
        cuda_list = []
        with torch.no_grad():
            for obj in object_array:

                # Cut the object
                left = int(obj["rect_params"]["left"])
                top = int(obj["rect_params"]["top"])
                width = int(obj["rect_params"]["width"])
                height = int(obj["rect_params"]["height"])
                if width <= height:
                    diff = int((height - width) / 2)
                    left_with_diff = max(0, left-diff)
                    right_with_diff = min(w, left+width+diff)
                    print('taller rect, the new (left, right) = ({}, {}) out of {}'.format(left_with_diff, right_with_diff, obj["rect_params"]))
                    # Skip the transparency (A) plane since the model is RGB
                    rect = buffer_array[top:top + height, left_with_diff:right_with_diff, 0:3]
                else:
                    diff = int((width - height) / 2)
                    top_with_diff = max(0, top-diff)
                    bottom_with_diff = min(h, top+height+diff)
                    print('wider rect, the new (top, bottom) = ({}, {}) out of {}'.format(top_with_diff, bottom_with_diff, obj["rect_params"]))
                    # Skip the transparency (A) plane since the model is RGB
                    rect = buffer_array[top_with_diff:bottom_with_diff, left:left + width, 0:3]
                image = Image.fromarray(rect, mode="RGB")
                cuda_image = data_transform(image).unsqueeze(0).cuda()
                cuda_list.append(cuda_image)

            if len(cuda_list) > 0:

                batch = torch.cat(cuda_list)
                out = model(batch)
                print("inference result of {}".format(out.shape))
                for obj in out:
                    out_obj = {}
                    if len(labels) > obj.argmax():
                        out_obj["predicted_class"] = labels[obj.argmax()]
                    else:
                        out_obj["predicted_class"] = str(obj.argmax())
                    out_obj["probability"] = obj[obj.argmax()].item()
                    print('out_obj: {}'.format(out_obj))
                    out_meta_array.append(out_obj)

    except:
        print('failed to run process due to the error, {}'.format(sys.exc_info()[1]))
    finally:
        print('unmapping a buffer')
        io_buffer.unmap(map_info)
    return str(out_meta_array)
