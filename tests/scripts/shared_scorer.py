# SPDX-License-Identifier: LGPL-2.1-or-later
# A program whose model is shared by every element (stream) that runs it: emi.shared_model loads
# it once per process and batches the calls. The "model" multiplies by 10, so each frame's result
# says whether it got its own output back: probability = 10 * frame_num.
import torch

import emi

KEY = ("tests", "shared_scorer")
model = None


def load():
    return torch.nn.Linear(1, 1, bias=False).requires_grad_(False).eval().apply(
        lambda layer: layer.weight.fill_(10.0) if isinstance(layer, torch.nn.Linear) else None)


def start():
    global model
    model = emi.shared_model(KEY, load, max_batch_size=4)


def process_ip(io_buffer, in_meta):
    frame_num = in_meta["frame"][0]["frame_num"]
    score = model(torch.tensor([[float(frame_num)]]))
    return [{"predicted_class": "scored", "probability": round(score.item(), 3)}]
