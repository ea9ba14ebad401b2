# SPDX-License-Identifier: LGPL-2.1-or-later
"""Torch classifiers as they are and compiled for inference (emi.inference.for_inference:
scripted, frozen, optimized by torch): ms per call on the CPU, the two taking turns, medians.
Prints figures; not a test.

    PYTHONPATH=python /usr/bin/python3 bench/bench_compiled.py [--rounds 5]
"""

import argparse
import statistics
import sys
import time

import torch
import torchvision

from emi.inference import for_inference

CASES = [  # (model, input shape): the templates' classifiers and an emclassify one
    ("squeezenet1_1", (1, 3, 224, 224)),
    ("squeezenet1_1", (13, 3, 224, 224)),  # the counter's burst: 13 tracks confirmed at once
    ("resnet18", (1, 3, 224, 224)),
    ("resnet18", (8, 3, 224, 224)),
    ("video.r3d_18", (1, 3, 16, 112, 112)),  # the 3DCNN template's clip
]


def builder(name):
    value = torchvision.models
    for part in name.split("."):
        value = getattr(value, part)
    return value


def ms_per_call(model, inputs, calls):
    with torch.no_grad():
        started = time.perf_counter()
        for _ in range(calls):
            model(inputs)
        return 1000 * (time.perf_counter() - started) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); ms per call, median of {args.rounds}")
    for name, shape in CASES:
        model = builder(name)(weights=None).eval()
        inputs = torch.rand(*shape)
        compiled, why = for_inference(model, inputs)
        if why:
            print(f"  {name} {shape}: not compiled ({why})")
            continue
        calls = 1 if shape[0] > 4 or len(shape) == 5 else 3
        ms_per_call(model, inputs, 1)
        ms_per_call(compiled, inputs, 1)
        eager, fast = [], []
        for _ in range(args.rounds):  # taking turns: the machine's load changes within a minute
            eager.append(ms_per_call(model, inputs, calls))
            fast.append(ms_per_call(compiled, inputs, calls))
        eager, fast = statistics.median(eager), statistics.median(fast)
        print(f"  {name:<14} {'x'.join(map(str, shape)):<16} as it is {eager:8.1f}  compiled {fast:8.1f}  "
              f"({eager / fast:.2f}x)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
