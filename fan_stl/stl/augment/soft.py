"""Soft augmentation per token (Liu, Yan, Leal-Taixe, Hays, Ramanan: "Soft Augmentation for Image Classification",
CVPR 2023), written from the paper: the target softens with how much of the image an aggressive crop and an occlusion
leave, non-linearly, and here also per token.

The op translates each image by a whole number of tokens (offsets `~ N(0, (sigma * side)^2)` per axis, rounded to
the token stride, the uncovered border filled with grey: the paper's crop that may leave the image) and, with
probability `p_occlude`, covers a random box with noise. The share of original content that survives is the
visibility: `v_img` for the image, `v[n]` for each token. The paper's curve turns a visibility into a target
confidence,

    p(v) = 1 - (1 - p_min) * (1 - v)^k        (k = 2 by default: mild softening of mild crops)

and a target `t` (a smoothed one-hot, a mixed target, or a token's teacher distribution) becomes
`p * t + (1 - p) / K` (fully occluded: uniform). The class target softens with `v_img`; each token target first moves
with its token (the translation is in whole tokens, so teacher token labels follow exactly; tokens from outside the
image have `v = 0`) and then softens with its own `v[n]`. The `Softening` returned beside the images carries
`v_img`, `v` and the offsets from the op to the targets.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..targets import TokenTargets
from .batch_augment import BatchAugment

__all__ = ['SoftAugment', 'Softening', 'confidence', 'shift_maps']


def confidence(visibility: torch.Tensor, power: float = 2., p_min: float = 0.) -> torch.Tensor:
    """ The paper's target confidence `1 - (1 - p_min) (1 - v)^k` of a visibility in [0, 1]. """
    return 1. - (1. - p_min) * (1. - visibility.clamp(0., 1.)) ** power


def shift_maps(maps: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, fill: float = 0.) -> torch.Tensor:
    """ `out[b, :, y, x] = maps[b, :, y - dy[b], x - dx[b]]` (`fill` where that falls outside). """
    batch, _, height, width = maps.shape
    ys = torch.arange(height, device=maps.device)[None] - dy[:, None].to(maps.device)
    xs = torch.arange(width, device=maps.device)[None] - dx[:, None].to(maps.device)
    inside = ((ys >= 0) & (ys < height))[:, :, None] & ((xs >= 0) & (xs < width))[:, None, :]
    b = torch.arange(batch, device=maps.device)[:, None, None]
    out = maps[b, :, ys.clamp(0, height - 1)[:, :, None], xs.clamp(0, width - 1)[:, None, :]].permute(0, 3, 1, 2)
    return torch.where(inside[:, None], out, torch.full_like(out, fill))


@dataclass
class Softening:
    """ What one soft-augmentation draw did, for the targets (see the module docstring). """
    image_visibility: torch.Tensor  # (B,)
    token_visibility: torch.Tensor  # (B, N), after the move
    token_shift: torch.Tensor  # (B, 2): (dy, dx) in tokens
    grid: Tuple[int, int]
    power: float
    p_min: float

    def soften(self, target: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        p = confidence(visibility, self.power, self.p_min).to(target.device)[..., None]
        return p * target.float() + (1. - p) / target.shape[-1]

    def class_target(self, target: torch.Tensor) -> torch.Tensor:
        """ A soft class target `(B, K)` softened with each image's visibility. """
        return self.soften(target, self.image_visibility)

    def token_targets(self, tokens: TokenTargets) -> TokenTargets:
        """ Token targets moved with their tokens and softened with each token's visibility (dense form). """
        batch, count, classes = tokens.shape
        dense = tokens.dense().transpose(1, 2).reshape(batch, classes, *self.grid)
        moved = shift_maps(dense, self.token_shift[:, 0], self.token_shift[:, 1]).flatten(2).transpose(1, 2)
        return TokenTargets(classes, probs=self.soften(moved, self.token_visibility))


class SoftAugment(BatchAugment):
    """ Token-aligned translation and occlusion with softened targets (see the module docstring). """

    moves_pixels = True
    moves_token_targets = True
    softens_targets = True

    def __init__(self, power: float = 2., p_min: float = 0., sigma: float = 0.3, p_occlude: float = 0.5,
                 token_stride: int = 16):
        if power <= 0 or not 0. <= p_min <= 1. or sigma < 0 or not 0. <= p_occlude <= 1.:
            raise ValueError(f'soft augmentation needs --soft-aug-power > 0, --soft-aug-min in [0, 1], sigma >= 0 '
                             f'and p_occlude in [0, 1]; got {power}, {p_min}, {sigma}, {p_occlude}.')
        self.power, self.p_min, self.sigma, self.p_occlude, self.token_stride = (
            power, p_min, sigma, p_occlude, token_stride)

    @classmethod
    def from_config(cls, config) -> 'SoftAugment':
        return cls(power=config.soft_aug_power, p_min=config.soft_aug_min)

    def augment(self, images: torch.Tensor) -> Tuple[torch.Tensor, Optional[Softening]]:
        batch, _, height, width = images.shape
        stride = self.token_stride
        if height % stride or width % stride:
            raise ValueError(f'soft augmentation moves whole tokens: the image size {height}x{width} must be a '
                             f'multiple of the token stride {stride}.')
        grid = (height // stride, width // stride)
        shift = (torch.randn(batch, 2) * self.sigma * torch.tensor(grid)).round().long()
        shift = torch.maximum(torch.minimum(shift, torch.tensor(grid) - 1), 1 - torch.tensor(grid))
        own = torch.ones(batch, 1, height, width, device=images.device)
        moved = shift_maps(images, shift[:, 0] * stride, shift[:, 1] * stride, fill=0.5)
        own = shift_maps(own, shift[:, 0] * stride, shift[:, 1] * stride)
        side = torch.rand(batch, 2) * 0.5 * torch.tensor([height, width])
        corner = torch.rand(batch, 2) * (torch.tensor([height, width]) - side)
        ys = torch.arange(height)[None]
        xs = torch.arange(width)[None]
        box = (((ys >= corner[:, :1]) & (ys < corner[:, :1] + side[:, :1]))[:, :, None]
               & ((xs >= corner[:, 1:]) & (xs < corner[:, 1:] + side[:, 1:]))[:, None, :])
        box &= (torch.rand(batch) < self.p_occlude)[:, None, None]
        box = box[:, None].to(images.device)
        moved = torch.where(box, torch.rand_like(moved), moved)
        own = own.masked_fill(box, 0.)
        softening = Softening(
            image_visibility=own.flatten(1).mean(1), token_visibility=F.avg_pool2d(own, stride).flatten(1),
            token_shift=shift.to(images.device), grid=grid, power=self.power, p_min=self.p_min)
        return moved, softening
