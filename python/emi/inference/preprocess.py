# SPDX-License-Identifier: LGPL-2.1-or-later
"""From the frame's pixels to the model's input, on the model's device: resize, central crop,
channel order, value range, mean and std, in the order and with the functions torchvision's
weight presets use, so a model sees what it would see in plain torchvision code."""

import dataclasses
import warnings

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional

# The channel order of each frame format the elements take; all are 8 bits per channel.
FRAME_FORMATS = {"RGBA": "RGB", "RGBx": "RGB", "RGB": "RGB", "BGRA": "BGR", "BGRx": "BGR", "BGR": "BGR"}


def frame_tensor(io_buffer, device):
    """The frame's colour channels as a (3, H, W) uint8 tensor on `device`. torch.from_numpy shares
    the mapped frame's memory: on the CPU nothing is copied; a CUDA device gets one transfer."""
    with warnings.catch_warnings():
        # The frame is mapped read-only and torch has no read-only tensors; nothing here writes
        # to it.
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        pixels = torch.from_numpy(io_buffer[:, :, :3])
    return pixels.to(device).permute(2, 0, 1)


@dataclasses.dataclass
class Preprocess:
    resize: list = None  # as torchvision's resize: [shorter side] or [height, width]
    crop: list = None
    mean: list = None
    std: list = None
    value_range: tuple = (0.0, 1.0)
    color_space: str = "RGB"
    interpolation: InterpolationMode = InterpolationMode.BILINEAR

    @classmethod
    def for_model(cls, transforms, model_proc):
        """The steps of a weights' preset `transforms` (ImageClassification, VideoClassification,
        ObjectDetection, or None), with what `model_proc` says taking precedence."""
        steps = cls()
        if transforms is not None:
            steps.resize = _list_or_none(getattr(transforms, "resize_size", None))
            steps.crop = _list_or_none(getattr(transforms, "crop_size", None))
            steps.mean = _list_or_none(getattr(transforms, "mean", None))
            steps.std = _list_or_none(getattr(transforms, "std", None))
            steps.interpolation = getattr(transforms, "interpolation", steps.interpolation)
        for name in ("resize", "crop", "mean", "std", "color_space"):
            value = getattr(model_proc, name)
            if value is not None:
                setattr(steps, name, value)
        if model_proc.range is not None:
            steps.value_range = tuple(model_proc.range)
        return steps

    def __call__(self, images, frame_color_space):
        """(..., 3, H, W) uint8 images in `frame_color_space` → float model input."""
        if self.resize is not None:
            images = functional.resize(images, self.resize, interpolation=self.interpolation)
        if self.crop is not None:
            images = functional.center_crop(images, self.crop)
        if frame_color_space != self.color_space:
            images = images.flip(-3)
        images = functional.convert_image_dtype(images, torch.float)
        low, high = self.value_range
        if (low, high) != (0.0, 1.0):
            images = images * (high - low) + low
        if self.mean is not None or self.std is not None:
            images = functional.normalize(images, mean=self.mean or [0.0] * 3, std=self.std or [1.0] * 3)
        return images


def _list_or_none(value):
    return list(value) if value is not None else None
