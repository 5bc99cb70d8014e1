"""The torch backend of `eval --corrupt-on-the-fly`: a corruption cell applied to a batch of model-size images.

The evaluator reads and resizes each image with the model's eval transform (without its normalisation), then, on
the evaluation device, corrupts the batch (`torch_corruptions.corrupt_batch`, seeded per image by its path relative
to the dataset root), rounds it to 8 bits as the reference does, and round-trips it through JPEG quality 85 (the
format of ImageNet-C and of `corrupt`'s default) or keeps it lossless (`image_format='png'`). So the corruption
happens at the model's own resolution - as ImageNet-C's was made at the 224 px input size - and these numbers are
not those of the imagecorruptions backend, which corrupts the full-size image before the transform resizes it.
"""
from dataclasses import dataclass
from typing import Sequence

import torch

from .torch_corruptions import check_request, corrupt_batch, to_uint8
from .torch_corruptions.digital import jpeg_round_trip

ON_THE_FLY_JPEG_QUALITY = 85


@dataclass(frozen=True)
class TensorCorruption:
    """ One cell (corruption, severity) of the torch backend, for batches (N, 3, H, W) in [0, 1] on any device. """
    corruption: str
    severity: int
    seed: int = 0
    image_format: str = 'jpg'

    def __post_init__(self):
        check_request(self.corruption, self.severity)

    def __call__(self, images: torch.Tensor, keys: Sequence[str]) -> torch.Tensor:
        with torch.autocast(images.device.type, enabled=False):  # the evaluator's autocast must not round the blurs
            corrupted = corrupt_batch(images.float(), self.corruption, self.severity, self.seed, keys)
        if self.image_format == 'jpg':
            return jpeg_round_trip(corrupted, ON_THE_FLY_JPEG_QUALITY)
        return to_uint8(corrupted).to(images.dtype) / 255
