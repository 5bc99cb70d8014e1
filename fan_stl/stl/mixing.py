"""Mixing for STL as producers of `MixRecord`: the student view is mixed, the teacher view never is.

A mixing method draws, for a batch of `B` images of `H x W` pixels, a pixel ownership map `own (B, H, W)` (1 = the
sample's own pixel, 0 = its partner's, fractions for blends; broadcastable shapes such as `(B, 1, 1)` allowed) and
the image-target share `lam (B,)`; the partner of sample `b` is `B - 1 - b` (timm's pairing). The student images
become `own * x + (1 - own) * x.flip(0)`, the image target `lam * y + (1 - lam) * y.flip(0)` (timm's `mixup_target`,
smoothed), and the `MixRecord` (per-token own share, partner, lam) travels packed beside the soft target.

* `STLMixup` is the drop-in for timm's `Mixup` (no prefetcher): paired batch `(B, 2C, H, W)` in, paired batch and
  packed target out.
* `STLCollateMixup` is the drop-in for timm's `FastCollateMixup` (prefetcher): it collates `((teacher, student),
  label)` uint8 samples into split-major `cat([teachers, mixed students])` with the packed target.

`MIX_METHODS` maps `STLConfig.mix_method` names to the draw functions. Adding a pixel-space method (e.g. MaskMix) is
one draw function and one registry entry in this module. A token-space method (e.g. MixToken, which mixes inside the
model) builds its `MixRecord` directly from its token mask and hands it to the same `TokenTargets.blend`.
"""
from typing import Callable, Dict, Tuple

import numpy as np
import torch

from timm.data.loader import fast_collate
from timm.data.mixup import FastCollateMixup, Mixup, cutmix_bbox_and_lam, mixup_target

from ..models.fan import TOKEN_STRIDE
from .mix_record import MixRecord
from .views import pair_views, split_views

__all__ = ['MIX_METHODS', 'STLMixup', 'STLCollateMixup']

Ownership = Tuple[torch.Tensor, torch.Tensor]  # own (B, H, W) or broadcastable, lam (B,); float64


def _draw_mixup_cutmix(mixer: Mixup, batch: int, height: int, width: int) -> Ownership:
    """ timm's Mixup / CutMix switch with timm's own random draws, for its 'batch', 'pair' and 'elem' modes. """
    if mixer.mode == 'batch':
        lam, use_cutmix = mixer._params_per_batch()
        lams, cutmix = np.full(batch, lam), np.full(batch, use_cutmix)
        pairs = range(1)
    else:
        drawn = batch // 2 if mixer.mode == 'pair' else batch
        lams, cutmix = (np.ones(batch), np.zeros(batch, dtype=bool))
        lams[:drawn], cutmix[:drawn] = mixer._params_per_elem(drawn)
        pairs = range(drawn)
    own = torch.ones(batch, height, width, dtype=torch.float64)
    for i in pairs:
        rows = slice(None) if mixer.mode == 'batch' else [i, batch - 1 - i] if mixer.mode == 'pair' else [i]
        if lams[i] == 1.:
            continue
        if cutmix[i]:
            (top, bottom, left, right), lam = cutmix_bbox_and_lam(
                (batch, 3, height, width), lams[i], ratio_minmax=mixer.cutmix_minmax, correct_lam=mixer.correct_lam)
            own[rows, top:bottom, left:right] = 0.
        else:
            lam = lams[i]
            own[rows] = lam
        lams[rows] = lam
    return own, torch.from_numpy(np.asarray(lams, dtype=np.float64))


# name -> draw(mixer, batch, height, width) -> (own pixels, lam); see the module docstring
MIX_METHODS: Dict[str, Callable[[Mixup, int, int, int], Ownership]] = {
    'mixup_cutmix': _draw_mixup_cutmix,
}


class _ProducesMixRecord:
    """ The set-up and the mixing shared by `STLMixup` and `STLCollateMixup`. """

    def _setup(self, method: str, token_stride: int) -> None:
        if self.mode not in ('batch', 'pair', 'elem'):
            raise ValueError(f"Mixup mode {self.mode!r} is not supported by STL mixing; use 'batch' (the official "
                             f"setting), 'pair' or 'elem' (--mixup-mode).")
        if method not in MIX_METHODS:
            raise ValueError(f'Unknown mix method {method!r}; registered: {", ".join(MIX_METHODS)}.')
        if self.mixup_alpha <= 0. and self.cutmix_alpha <= 0. and self.cutmix_minmax is None:
            self.mixup_enabled = False  # no mixing configured: image targets are only smoothed
        self.draw = MIX_METHODS[method]
        self.token_stride = token_stride

    def mix_students(self, students: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ Mixed students `(B, C, H, W)` (float or uint8) and the packed target `[soft | lam | partner | own]`. """
        batch, _, height, width = students.shape
        partner = torch.arange(batch - 1, -1, -1)
        if self.mixup_enabled:
            own, lam = self.draw(self, batch, height, width)
        else:
            own, lam = torch.ones(batch, 1, 1, dtype=torch.float64), torch.ones(batch, dtype=torch.float64)
        if (lam < 1.).any():
            weight = own.expand(batch, height, width)[:, None].to(students.device)
            mixed = students.float() * weight.float() + students.flip(0).float() * (1. - weight).float()
            students = mixed if students.is_floating_point() else torch.round(mixed).to(students.dtype)
        record = MixRecord.from_pixel_mask(own.expand(batch, height, width), partner, self.token_stride, lam=lam)
        soft = mixup_target(target, self.num_classes, lam[:, None].float().to(target.device), self.label_smoothing)
        return students, record.pack(soft)


class STLMixup(_ProducesMixRecord, Mixup):
    """ timm `Mixup` for paired batches `(B, 2C, H, W)` (see the module docstring). """

    def __init__(self, method: str = 'mixup_cutmix', token_stride: int = TOKEN_STRIDE, **mixup_kwargs):
        """
        Args:
            method: A `MIX_METHODS` name.
            token_stride: Pixel size of a token (16 for FAN).
            **mixup_kwargs: timm `Mixup` arguments (mixup_alpha, cutmix_alpha, prob, label_smoothing, num_classes...).
        """
        super().__init__(**mixup_kwargs)
        self._setup(method, token_stride)

    def __call__(self, input: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        teacher, student = split_views(input)
        student, packed = self.mix_students(student, target)
        return pair_views(teacher, student), packed


class STLCollateMixup(_ProducesMixRecord, FastCollateMixup):
    """ timm `FastCollateMixup` for paired uint8 samples, for the prefetcher path (see the module docstring). """

    def __init__(self, method: str = 'mixup_cutmix', token_stride: int = TOKEN_STRIDE, **mixup_kwargs):
        super().__init__(**mixup_kwargs)
        self._setup(method, token_stride)

    def __call__(self, batch, _=None) -> Tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch[0][0], tuple) or len(batch[0][0]) != 2:
            raise ValueError(
                'STLCollateMixup needs ((teacher, student), target) samples from '
                'fan_stl.stl.views.PairedViewDataset with uint8 (prefetcher) transforms.')
        teachers, _ = fast_collate([(views[0], label) for views, label in batch])
        students, labels = fast_collate([(views[1], label) for views, label in batch])
        students, packed = self.mix_students(students, labels)
        return torch.cat([teachers, students]), packed
