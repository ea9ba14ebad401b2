# SPDX-License-Identifier: LGPL-2.1-or-later
import numpy
import torch


def process_ip(io_buffer, in_meta):
    frame = torch.from_numpy(numpy.ascontiguousarray(io_buffer[:, :, :3])).permute(2, 0, 1).float()
    convolution = torch.nn.Conv2d(3, 1, 3, bias=False)
    torch.nn.init.constant_(convolution.weight, 1.0)
    with torch.no_grad():
        out = convolution(frame.unsqueeze(0))
    return [{"torch": torch.__version__, "value": float(out[0, 0, 0, 0])}]
