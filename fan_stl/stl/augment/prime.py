"""PRIME (Modas, Rade, Ortiz-Jimenez, Moosavi-Dezfooli, Frossard: "PRIME: A Few Primitives Can Boost Robustness to
Common Corruptions", ECCV 2022) as a batch op, written from the paper's definitions (the released code has no
licence; nothing of it is used).

Three families of maximum-entropy primitives, each a random draw per image:

* spectral: convolution with a random filter `delta + w`, `w` a `size x size` filter of i.i.d. `N(0, sigma^2)`
  entries (`delta` the identity filter), the result rescaled to the input's range per image;
* colour: per channel `x_c + sum_{n=1..K} beta_{c,n} sin(n pi x_c)`, `beta ~ N(0, sigma_c^2)`, clipped to [0, 1]
  (a random smooth monotone-in-expectation colour curve);
* spatial (diffeomorphism, Petrini et al. 2021): pixels displaced by
  `tau(u, v) = sum_{i,j=1..c} C_ij sin(i pi u) sin(j pi v)`, `C_ij ~ N(0, T / (i^2 + j^2))` per axis, sampled with
  bilinear interpolation. It moves pixels: stage stl refuses it (the token labels would not line up), so in stage
  stl `--prime-primitives spectral,color` is the form to use.

PRIME's mixture: `width` chains, each of depth `U{1..3}` with a random primitive per step, combined with Dirichlet(1)
weights and blended with the clean image with `m ~ Beta(1, 1)` (AugMix's structure, which the paper follows).
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .batch_augment import BatchAugment

__all__ = ['PRIME', 'PRIMITIVES', 'spectral', 'colour', 'diffeomorphism']


def spectral(images: torch.Tensor, size: int = 5, sigma: float = 0.5) -> torch.Tensor:
    """ Each image convolved (per channel) with its own random filter `delta + N(0, sigma^2)`, rescaled to [0, 1]. """
    batch, channels, height, width = images.shape
    weight = torch.randn(batch, 1, size, size, device=images.device, dtype=images.dtype) * sigma
    weight[:, :, size // 2, size // 2] += 1.
    weight = weight.repeat_interleave(channels, 0)
    pad = size // 2
    padded = F.pad(images.reshape(1, batch * channels, height, width), (pad, size - 1 - pad, pad, size - 1 - pad),
                   mode='reflect')
    out = F.conv2d(padded, weight, groups=batch * channels).reshape(batch, channels, height, width)
    lo = out.flatten(1).min(1)[0].view(-1, 1, 1, 1)
    hi = out.flatten(1).max(1)[0].view(-1, 1, 1, 1)
    return (out - lo) / (hi - lo).clamp(min=1e-6)


def colour(images: torch.Tensor, terms: int = 8, sigma: float = 0.05) -> torch.Tensor:
    """ Per channel `x + sum_n beta_n sin(n pi x)`, `beta ~ N(0, sigma^2)`, clipped to [0, 1]. """
    batch, channels = images.shape[:2]
    beta = torch.randn(batch, channels, 1, 1, terms, device=images.device, dtype=images.dtype) * sigma
    n = torch.arange(1, terms + 1, device=images.device, dtype=images.dtype)
    return (images + (beta * torch.sin(math.pi * n * images[..., None])).sum(-1)).clamp(0., 1.)


def diffeomorphism(images: torch.Tensor, cut: int = 3, temperature: float = 1e-3) -> torch.Tensor:
    """ Petrini et al.'s random smooth displacement (in units of the image side), bilinear resampling. """
    batch, _, height, width = images.shape
    i = torch.arange(1, cut + 1, device=images.device, dtype=images.dtype)
    scale = (temperature / (i[:, None] ** 2 + i[None, :] ** 2)).sqrt()
    coeffs = torch.randn(2, batch, cut, cut, device=images.device, dtype=images.dtype) * scale
    u = torch.linspace(0., 1., width, device=images.device, dtype=images.dtype)
    v = torch.linspace(0., 1., height, device=images.device, dtype=images.dtype)
    sin_u, sin_v = torch.sin(math.pi * i[:, None] * u), torch.sin(math.pi * i[:, None] * v)  # (c, W), (c, H)
    shift = torch.einsum('kbij,iy,jx->kbyx', coeffs, sin_v, sin_u)  # (2, B, H, W), image-side units
    ys, xs = torch.meshgrid(v, u, indexing='ij')
    grid = torch.stack([xs + shift[0], ys + shift[1]], dim=-1) * 2 - 1
    return F.grid_sample(images, grid, mode='bilinear', padding_mode='border', align_corners=True)


PRIMITIVES = {'spectral': spectral, 'color': colour, 'diffeo': diffeomorphism}


class PRIME(BatchAugment):
    """ PRIME of the student images (see the module docstring). """

    def __init__(self, primitives: Sequence[str] = ('spectral', 'color', 'diffeo'), width: int = 3,
                 max_depth: int = 3):
        primitives = tuple(primitives)
        unknown = [p for p in primitives if p not in PRIMITIVES]
        if not primitives or unknown:
            raise ValueError(f'--prime-primitives: unknown {unknown or "(none given)"}; choose from '
                             f'{",".join(PRIMITIVES)}.')
        if width < 1 or max_depth < 1:
            raise ValueError(f'PRIME needs width >= 1 and depth >= 1; got {width}, {max_depth}.')
        self.primitives, self.width, self.max_depth = primitives, width, max_depth
        self.moves_pixels = 'diffeo' in primitives

    @classmethod
    def from_config(cls, config) -> 'PRIME':
        default = 'spectral,color' if config.needs_teacher else ','.join(PRIMITIVES)
        return cls(tuple(p.strip() for p in (config.prime_primitives or default).split(',') if p.strip()))

    def geometry_fix(self) -> str:
        return 'drop its diffeomorphism: --prime-primitives spectral,color.'

    def _step(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.stack([PRIMITIVES[p](images) for p in self.primitives])
        pick = torch.randint(len(self.primitives), (images.shape[0],), device=images.device)
        return out[pick, torch.arange(images.shape[0], device=images.device)]

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.shape[0]
        weights = torch.distributions.Dirichlet(torch.ones(self.width)).sample((batch,)).to(images)
        mixed = torch.zeros_like(images)
        for chain in range(self.width):
            depth = torch.randint(1, self.max_depth + 1, (batch,), device=images.device)
            x = images
            for step in range(self.max_depth):
                x = torch.where((step < depth).view(-1, 1, 1, 1), self._step(x), x)
            mixed = mixed + weights[:, chain].view(-1, 1, 1, 1) * x
        m = torch.rand(batch, 1, 1, 1, device=images.device, dtype=images.dtype)
        return m * images + (1. - m) * mixed
