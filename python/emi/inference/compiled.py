# SPDX-License-Identifier: LGPL-2.1-or-later
"""A torch model compiled for inference: scripted, frozen and optimized by torch itself
(torch.jit.optimize_for_inference: batch norms folded into convolutions, convolutions run by
oneDNN on the CPU). With Debian's torch 1.13 on this project's 2-core machines, SqueezeNet 1.1 on
13 crops takes 181 ms instead of 887, r3d_18 on a 16-frame clip 475 ms instead of 3,063
(bench/bench_compiled.py). The compiled model is kept only where it gives the model's own
outputs; anything torch can't script stays as it is."""

import warnings

import torch

# A compiled graph called with another batch size than before resizes the output buffers it had
# allocated, and torch 1.13 warns each time; the outputs are right (tests/test_inference.py).
warnings.filterwarnings("ignore", message="An output with one or more elements was resized", category=UserWarning)


def for_inference(module, example, rtol=1e-3, atol=1e-4):
    """(the model to call, None): `module` compiled, when torch can script it and the compiled
    model gives the module's outputs on `example` (an input the caller will feed, on the module's
    device); else (`module`, why not). The module is put in eval mode."""
    if not isinstance(module, torch.nn.Module):
        return module, f"a {type(module).__name__}, not a torch.nn.Module"
    module.eval()
    try:
        with torch.no_grad():
            expected = module(example)
            compiled = torch.jit.optimize_for_inference(torch.jit.script(module))
            outputs = compiled(example)
    except Exception as error:  # noqa: BLE001 - whatever torch can't compile runs as it is
        lines = str(error).strip().splitlines()
        return module, f"{type(error).__name__}: {lines[0] if lines else ''}"
    if not _same(expected, outputs, rtol, atol):
        return module, "the compiled model's outputs differ from the model's"
    return compiled, None


def _same(expected, outputs, rtol, atol):
    if isinstance(expected, torch.Tensor):
        return (isinstance(outputs, torch.Tensor) and expected.shape == outputs.shape
                and torch.allclose(expected.float(), outputs.float(), rtol=rtol, atol=atol))
    if isinstance(expected, (list, tuple)):
        return (isinstance(outputs, (list, tuple)) and len(expected) == len(outputs)
                and all(_same(a, b, rtol, atol) for a, b in zip(expected, outputs)))
    if isinstance(expected, dict):
        return (isinstance(outputs, dict) and expected.keys() == outputs.keys()
                and all(_same(expected[key], outputs[key], rtol, atol) for key in expected))
    return expected == outputs
