"""RandConv (Xu, Liu, Yang, Niethammer: "Robust and Generalizable Visual Representation Learning via Random
Convolutions", ICLR 2021), written from the paper.

Each step draws one kernel size `k` from `kernel_sizes` (the paper's 1-7 px: 1, 3, 5, 7) and, per image, a random
`3 -> 3` convolution with weights i.i.d. `N(0, sigma^2)`, `sigma = 1 / sqrt(k * k * C_in)` (the paper's He-style
scale), zero padding `k // 2` so the output keeps the image's size and geometry. `mix=True` is the paper's RC_mix,
`alpha * x + (1 - alpha) * conv(x)` with `alpha ~ U(0, 1)` per image; otherwise RC_img: each image is replaced by its
convolution with probability `1 - p_keep` (the paper's p = 0.5). A convolution does not move pixels (translation
equivariant), so token labels stay aligned: it runs in every stage.
"""
from typing import Sequence

import torch
import torch.nn.functional as F

from .batch_augment import BatchAugment

__all__ = ['RandConv']


class RandConv(BatchAugment):
    """ Random convolutions of the student images (see the module docstring). """

    def __init__(self, kernel_sizes: Sequence[int] = (1, 3, 5, 7), mix: bool = True, p_keep: float = 0.5):
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f'--randconv-kernels must be odd sizes >= 1 (the paper: 1,3,5,7); got {kernel_sizes}.')
        if not 0. <= p_keep <= 1.:
            raise ValueError(f'--randconv-p-keep must be in [0, 1]; got {p_keep}.')
        self.kernel_sizes, self.mix, self.p_keep = kernel_sizes, mix, p_keep

    @classmethod
    def from_config(cls, config) -> 'RandConv':
        return cls(tuple(int(k) for k in str(config.randconv_kernels).split(',') if k.strip()), config.randconv_mix)

    def weights(self, batch: int, channels: int, k: int, device: torch.device) -> torch.Tensor:
        """ Per-image kernels `(B * C, C, k, k)` with std `1 / sqrt(k * k * C)`. """
        return torch.randn(batch * channels, channels, k, k, device=device) / (k * k * channels) ** 0.5

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = images.shape
        k = self.kernel_sizes[int(torch.randint(len(self.kernel_sizes), ()))]
        weight = self.weights(batch, channels, k, images.device).to(images.dtype)
        conv = F.conv2d(images.reshape(1, batch * channels, height, width), weight, padding=k // 2, groups=batch)
        conv = conv.reshape(batch, channels, height, width)
        if self.mix:
            alpha = torch.rand(batch, 1, 1, 1, device=images.device, dtype=images.dtype)
        else:
            alpha = (torch.rand(batch, 1, 1, 1, device=images.device) < self.p_keep).to(images.dtype)
        return alpha * images + (1. - alpha) * conv
