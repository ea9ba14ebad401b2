# SPDX-License-Identifier: LGPL-2.1-or-later
# The seed's EMI Torch 3DCNN program: its "Torch Program" snippets, unchanged, in the scaffolding
# the seed describes in prose (see README.md).
import os
import sys

import numpy as np
import torch
import torchvision
from gi.repository import Gst
from PIL import Image
from torchvision import transforms

NUM_PLANES = 4
CLIP_LENGTH = 16
MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")

cuda_list = []
labels = []
model = None


class _CpuWhenNoCuda(torch.Tensor):
    """A tensor whose .cuda() keeps it on the CPU when there is no CUDA, so that the snippets'
    `.cuda()` runs unchanged on any machine."""

    def cuda(self, *args, **kwargs):
        plain = self.as_subclass(torch.Tensor)
        return plain.cuda(*args, **kwargs) if torch.cuda.is_available() else plain


data_transform = transforms.Compose([
    transforms.Resize((112, 112)),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.43216, 0.394666, 0.37645], std=[0.22803, 0.22145, 0.216989]),
    lambda tensor: tensor.as_subclass(_CpuWhenNoCuda),
])


def start(options):
    global model, labels
    # The model is downloaded to a directory under models by configuring the hub dir.
    torch.hub.set_dir(MODELS_DIR)
    if options.get("weights"):
        model = torchvision.models.video.r3d_18()
        model.load_state_dict(torch.load(options["weights"], map_location="cpu"))
    else:
        model = torchvision.models.video.r3d_18(pretrained=True)
    model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    with open(options["labels"], encoding="utf-8") as labels_file:
        labels = [line.rstrip("\n") for line in labels_file]
    cuda_list.clear()


def process_ip(io_buffer, in_meta):
    # Convert the buffer to a numpy array
    print('mapping a buffer')
    ret, map_info = io_buffer.map(Gst.MapFlags.READ)
    try:
        print('frame_meta = {}'.format(in_meta["frame"][0]))
        w = 640
        h = 360
        print('creating an array of (w,h) = ({}, {})'.format(w, h))
        buffer_array = np.ndarray(
            shape=(h, w, NUM_PLANES),
            dtype=np.uint8,
            buffer=map_info.data)

        rect = buffer_array[:, :, 0:3]
        out_meta_array = []
        
        if rect.size:
            image = Image.fromarray(rect, mode="RGB")
            cuda_image = data_transform(image).unsqueeze(0).cuda()

            # add to a list
            cuda_list.append(cuda_image)
            # make an inference when a list is full
            if len(cuda_list) == CLIP_LENGTH:
                try:
                    out_obj = {}
                    with torch.no_grad():
                        # create a batch
                        # mini-batches of 3-channel RGB videos of shape (3 x T x H x W), where H and W are expected to be 112, and T is a number of video frames in a clip. 
                        batch = torch.cat(cuda_list).permute(1,0,2,3).unsqueeze(0)
                        print("running an infernce on an array of {} at {}".format(batch.shape, batch.device))
                        out = model(batch)
                        print("inference result of {}".format(out.shape))
                        values, indices = out.topk(1, 1, True, True)
                        if len(labels) >= indices.item():
                            print("topk = {}({} at {})".format(labels[indices.item()], values, indices))
                            out_obj["predicted_class"] = labels[indices.item()]
                        else:
                            print("not enough labels are provided, predicted_class is returned as its index")
                            out_obj["predicted_class"] = str(indices.item())
                        out_obj["probability"] = values.item()
                    out_meta_array.append(out_obj)
                except:
                    print('failed to run an inference due to the error, {}'.format(sys.exc_info()[1]))
                finally:
                    # remove the first
                    del cuda_list[0]
                    print("removed the first item, cuda_list size = {}".format(len(cuda_list)))

        print("cuda memory allocated, list size = {}, {}".format(torch.cuda.memory_allocated(), len(cuda_list)))

    except:
        print('failed to run process due to the error, {}'.format(sys.exc_info()[1]))
    finally:
        print('unmapping a buffer')
        io_buffer.unmap(map_info)
    return str(out_meta_array)
