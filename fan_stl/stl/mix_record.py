"""The per-token mix record: the one contract between every mixing method and the token targets.

For every sample `b` of a mixed batch, `MixRecord` says which share of each token `n` is the sample's own content
(`own[b, n]`, 1 = untouched, 0 = entirely the partner's), whose content fills the rest (`partner[b]`, a batch index),
and which share of the image (class) target is the sample's own (`lam[b]`). Mixup, CutMix, MaskMix and MixToken are
producers of a record; PAL and TransMix rewrite `lam` only; the token targets consume it with one blend rule:

    target[b, n] = own[b, n] * tokens[b, n] + (1 - own[b, n]) * tokens[partner[b], n]

`corner[b, n]` is the ownership of token `n`'s top-left pixel alone: the token mask TransMix's released code reads
(its pixel box resized to the token grid by nearest neighbour). It equals `own` wherever a token is whole or evenly
blended (Mixup, MaskMix, MixToken) and differs only on tokens a pixel box cuts (CutMix).

To travel through timm's data path (worker processes, `pin_memory`, the prefetcher's `.to(device)`, `FastCollateMixup`)
a record is packed into plain float columns appended to the soft image target: `(B, K)` -> `(B, K + 2 + 2N)` =
`[soft target | lam | partner | own | corner]`, and unpacked where the target is consumed.

The one layout of the whole wing: the packed soft columns hold each sample's OWN (smoothed) target, never the mixed
one; the class target is made where it is consumed, `record.class_target(soft) = lam * soft + (1 - lam) *
soft[partner]`, after PAL / TransMix may have rewritten `lam` from the forward pass's attention.
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ['MixRecord']

_HEADER = 2  # lam, partner


@dataclass
class MixRecord:
    """ Per-token ownership of a mixed batch (see the module docstring). """
    own: torch.Tensor  # (B, N) float in [0, 1]
    partner: torch.Tensor  # (B,) int64 batch indices
    lam: torch.Tensor  # (B,) float in [0, 1]
    corner: Optional[torch.Tensor] = None  # (B, N) ownership of each token's top-left pixel; None: `own`

    def __post_init__(self):
        if self.own.ndim != 2:
            raise ValueError(f'MixRecord.own must be (batch, tokens); got shape {tuple(self.own.shape)}.')
        if self.corner is None:
            self.corner = self.own
        elif self.corner.shape != self.own.shape:
            raise ValueError(f'MixRecord.corner {tuple(self.corner.shape)} must match own {tuple(self.own.shape)}.')
        batch = self.own.shape[0]
        if tuple(self.partner.shape) != (batch,) or tuple(self.lam.shape) != (batch,):
            raise ValueError(
                f'MixRecord.partner and .lam must be ({batch},) for a batch of {batch}; got '
                f'{tuple(self.partner.shape)} and {tuple(self.lam.shape)}.')

    @classmethod
    def identity(cls, batch: int, tokens: int, device: Union[str, torch.device] = 'cpu') -> 'MixRecord':
        """ The record of an unmixed batch: every token and every image target is the sample's own. """
        return cls(
            own=torch.ones(batch, tokens, device=device),
            partner=torch.arange(batch, device=device),
            lam=torch.ones(batch, device=device),
        )

    @classmethod
    def from_mixup(cls, lam: torch.Tensor, partner: torch.Tensor, tokens: int) -> 'MixRecord':
        """ Mixup: every token of sample `b` is `lam[b]` its own content. """
        lam = lam.float()
        return cls(own=lam[:, None].expand(-1, tokens).contiguous(), partner=partner, lam=lam)

    @classmethod
    def from_pixel_mask(
            cls,
            mask: torch.Tensor,
            partner: torch.Tensor,
            stride: int,
            lam: Optional[torch.Tensor] = None,
    ) -> 'MixRecord':
        """ From a pixel ownership map `mask (B, H, W)` (1 = own pixel; fractions for blends): the share of own pixels
        under each `stride x stride` token, row-major, and the ownership of each token's top-left pixel (`corner`);
        `lam` defaults to the share of own pixels in the image. """
        if mask.ndim != 3:
            raise ValueError(f'A pixel ownership mask must be (batch, height, width); got {tuple(mask.shape)}.')
        own = F.avg_pool2d(mask[:, None].float(), stride)
        corner = mask[:, ::stride, ::stride][:, :own.shape[2], :own.shape[3]].float()
        return cls(own=own.flatten(1), partner=partner, lam=mask.float().mean((1, 2)) if lam is None else lam.float(),
                   corner=corner.flatten(1))

    @property
    def shape(self) -> Tuple[int, int]:
        """ `(B, N)`. """
        return tuple(self.own.shape)

    @property
    def is_identity(self) -> bool:
        """ True when nothing was mixed (no partner content anywhere). """
        return bool((self.own == 1).all() and (self.lam == 1).all())

    def class_target(self, soft: torch.Tensor) -> torch.Tensor:
        """ The mixed class target `lam * soft + (1 - lam) * soft[partner]` from each sample's own target `(B, K)`. """
        lam = self.lam.to(soft.device, torch.float32)[:, None]
        soft = soft.float()
        return lam * soft + (1. - lam) * soft[self.partner.to(soft.device)]

    def pack(self, soft_target: torch.Tensor) -> torch.Tensor:
        """ `[soft_target | lam | partner | own | corner]` as one float tensor `(B, K + 2 + 2N)` (see the module
        docstring). """
        soft_target = soft_target.float()  # partner indices stay exact in fp32
        columns = [soft_target, self.lam[:, None].to(soft_target), self.partner[:, None].to(soft_target),
                   self.own.to(soft_target), self.corner.to(soft_target)]
        return torch.cat([c.to(soft_target.device) for c in columns], dim=1)

    @classmethod
    def unpack(cls, packed: torch.Tensor, num_classes: int) -> Tuple[torch.Tensor, 'MixRecord']:
        """ `(soft_target (B, K), record)` from a tensor made by `pack`. """
        token_columns = packed.shape[1] - num_classes - _HEADER if packed.ndim == 2 else 0
        if token_columns <= 0 or token_columns % 2:
            raise ValueError(
                f'A packed mix target for {num_classes} classes must be (batch, {num_classes} + 2 + 2 x tokens); got '
                f'{tuple(packed.shape)}. Check that --num-classes matches the data and the teacher.')
        soft, lam, partner, own, corner = packed.split(
            [num_classes, 1, 1, token_columns // 2, token_columns // 2], dim=1)
        return soft, cls(own=own.float(), partner=partner[:, 0].round().long(), lam=lam[:, 0].float(),
                         corner=corner.float())

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> 'MixRecord':
        return MixRecord(
            own=self.own.to(device, non_blocking=non_blocking),
            partner=self.partner.to(device, non_blocking=non_blocking),
            lam=self.lam.to(device, non_blocking=non_blocking),
            corner=self.corner.to(device, non_blocking=non_blocking),
        )
