"""Mixing methods as producers of `MixRecord`, in timm's `Mixup` / `FastCollateMixup` slots, for every stage.

A mixing method draws, for a batch of `B` images of `H x W` pixels, a pixel ownership map `own (B, H, W)` (1 = the
sample's own pixel, 0 = its partner's, fractions for blends; broadcastable shapes such as `(B, 1, 1)` allowed) and
the image-target share `lam (B,)`; the partner of sample `b` is `partner[b]` (`pairing`: `'flip'`, timm's reversed
batch, or `'perm'`, a random permutation). The images become `own * x + (1 - own) * x[partner]`, and the
`MixRecord` (per-token own share, partner, lam) travels packed beside each sample's own smoothed target (the layout
of `fan_stl.stl.mix_record`: the class target `lam * soft + (1 - lam) * soft[partner]` is made by the task, after
PAL / TransMix).

* `STLMixup` is the drop-in for timm's `Mixup` (no prefetcher): a batch `(B, C, H, W)`, or in stage stl the paired
  batch `(B, 2C, H, W)` whose teacher view is never mixed, in; mixed batch and packed target out.
* `STLCollateMixup` is the drop-in for timm's `FastCollateMixup` (prefetcher): it collates uint8 samples (stage stl:
  `((teacher, student), label)` into split-major `cat([teachers, mixed students])`) with the packed target.

`MIX_METHODS` maps `STLConfig.mix_method` names to the draw functions `draw(mixer, B, H, W) -> (own, lam)`:

* `mixup_cutmix`: timm's Mixup / CutMix switch with timm's own draws (`--mixup`, `--cutmix`, `--mixup-prob`, ...).
* `maskmix`: MixPro's MaskMix grid mask (`--maskmix-cell` tokens per cell, `--maskmix-mode`, Beta(`--mix-alpha`)).
* `mixpro`: MixPro's schedule: MaskMix with probability `--mixpro-p-maskmix` per batch, else timm's Mixup / CutMix.
* `patch_cutmix`: MixToken in pixel space: CutMix with the box drawn on the token grid (`MixToken`'s draw), exact
  token-space MixToken for a model whose patch embedding is one stride-16 conv (timm ViT p16).
* `mixtoken`: nothing in the data path; the task mixes the tokens inside the model (`fan_stl.stl.mixtoken`).

Adding a pixel-space method is one draw function and one registry entry in this module.
"""
from typing import Any, Callable, Dict, Sequence, Tuple

import numpy as np
import torch

from timm.data.loader import fast_collate
from timm.data.mixup import FastCollateMixup, Mixup, cutmix_bbox_and_lam, mixup_target

from ..models.fan import TOKEN_STRIDE
from .maskmix import (
    MASKMIX_MODES, PAIRINGS, check_maskmix_grid, check_token_grid, maskmix_ownership, pair_partners)
from .mix_record import MixRecord
from .mixtoken import MixToken
from .views import pair_views, split_views

__all__ = ['MIX_METHODS', 'TOKEN_MIX_METHODS', 'STLMixup', 'STLCollateMixup', 'check_mixing_input', 'mixer_options']

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


def _unmixed(batch: int) -> Ownership:
    return torch.ones(batch, 1, 1, dtype=torch.float64), torch.ones(batch, dtype=torch.float64)


def _draw_maskmix(mixer: Mixup, batch: int, height: int, width: int) -> Ownership:
    """ MaskMix on `--mixup-prob` of the batches. """
    if np.random.rand() >= mixer.mix_prob:
        return _unmixed(batch)
    own = maskmix_ownership(batch, height, width, mixer.maskmix_cell, mixer.mix_alpha, mixer.maskmix_mode,
                            mixer.token_stride)
    return own, own.mean((1, 2))


def _draw_mixpro(mixer: Mixup, batch: int, height: int, width: int) -> Ownership:
    """ MixPro: MaskMix with probability `mixpro_p_maskmix`, else timm's Mixup / CutMix. """
    draw = _draw_maskmix if np.random.rand() < mixer.mixpro_p_maskmix else _draw_mixup_cutmix
    return draw(mixer, batch, height, width)


def _draw_patch_cutmix(mixer: Mixup, batch: int, height: int, width: int) -> Ownership:
    """ MixToken's token-grid box (Beta(`mix_alpha`), on `--mixup-prob` of the batches), pasted in pixels. """
    stride = mixer.token_stride
    check_token_grid(height, width, stride)
    top, bottom, left, right = MixToken(mixer.mix_alpha, mixer.mix_prob).box((height // stride, width // stride))
    own = torch.ones(batch, height, width, dtype=torch.float64)
    own[:, top * stride:bottom * stride, left * stride:right * stride] = 0.
    return own, own.mean((1, 2))


def _draw_nothing(mixer: Mixup, batch: int, height: int, width: int) -> Ownership:
    """ Token-space methods mix inside the model: the data path only packs the own targets. """
    return _unmixed(batch)


# name -> draw(mixer, batch, height, width) -> (own pixels, lam); see the module docstring
MIX_METHODS: Dict[str, Callable[[Mixup, int, int, int], Ownership]] = {
    'mixup_cutmix': _draw_mixup_cutmix,
    'maskmix': _draw_maskmix,
    'mixpro': _draw_mixpro,
    'patch_cutmix': _draw_patch_cutmix,
    'mixtoken': _draw_nothing,
}
TOKEN_MIX_METHODS = ('mixtoken',)  # methods the task runs inside the model


def mixer_options(config) -> Dict[str, Any]:
    """ The `STLMixup` / `STLCollateMixup` arguments of an `STLConfig` (besides timm's own Mixup arguments). """
    return dict(method=config.mix_method, pairing=config.mix_pairing, mix_alpha=config.mix_alpha,
                maskmix_cell=config.maskmix_cell, maskmix_mode=config.maskmix_mode,
                mixpro_p_maskmix=config.mixpro_p_maskmix, paired=config.stage == 'stl')


def check_mixing_input(config, input_size: Sequence[int]) -> None:
    """ Refuse, before the first step, an `STLConfig`'s mixing that cannot work on `(C, H, W)` inputs, naming the
    fix (so far: a MaskMix cell that covers the whole image). """
    if config.mix_method in ('maskmix', 'mixpro'):
        check_maskmix_grid(input_size[-2], input_size[-1], config.maskmix_cell, TOKEN_STRIDE)


class _ProducesMixRecord:
    """ The set-up and the mixing shared by `STLMixup` and `STLCollateMixup`. """

    def __init__(
            self,
            method: str = 'mixup_cutmix',
            token_stride: int = TOKEN_STRIDE,
            pairing: str = 'flip',
            paired: bool = True,
            mix_alpha: float = 1.,
            maskmix_cell: int = 4,
            maskmix_mode: str = 'batch',
            mixpro_p_maskmix: float = 0.5,
            **mixup_kwargs: Any,
    ):
        """
        Args:
            method: A `MIX_METHODS` name.
            token_stride: Pixel size of a token (16 for FAN and p16 ViTs).
            pairing: `'flip'` (timm's reversed batch) or `'perm'` (a random permutation, MixPro).
            paired: The batches are STL's paired views (teacher, student); only the student view is mixed.
            mix_alpha: Beta(alpha, alpha) of the MaskMix ratio and of the MixToken / patch CutMix box.
            maskmix_cell: MaskMix cell side in tokens (k).
            maskmix_mode: `'batch'` (one MaskMix ratio per batch) or `'elem'` (per sample).
            mixpro_p_maskmix: MixPro's probability of MaskMix per batch.
            **mixup_kwargs: timm `Mixup` arguments (mixup_alpha, cutmix_alpha, prob, label_smoothing, num_classes...).
        """
        super().__init__(**mixup_kwargs)  # timm's Mixup / FastCollateMixup (next in the MRO)
        if self.mode not in ('batch', 'pair', 'elem'):
            raise ValueError(f"Mixup mode {self.mode!r} is not supported by STL mixing; use 'batch' (the official "
                             f"setting), 'pair' or 'elem' (--mixup-mode).")
        if method not in MIX_METHODS:
            raise ValueError(f'Unknown mix method {method!r}; registered: {", ".join(MIX_METHODS)}.')
        if pairing not in PAIRINGS or (self.mode == 'pair' and pairing != 'flip'):
            raise ValueError(f"Unknown or unsupported pairing {pairing!r} (--mix-pairing): choose one of {PAIRINGS}; "
                             f"timm's --mixup-mode pair needs pairing 'flip'.")
        if maskmix_cell < 1 or mix_alpha <= 0 or maskmix_mode not in MASKMIX_MODES or not 0 <= mixpro_p_maskmix <= 1:
            raise ValueError(
                f'Mixing needs --maskmix-cell >= 1, --mix-alpha > 0, --maskmix-mode in {MASKMIX_MODES} and '
                f'0 <= --mixpro-p-maskmix <= 1; got {maskmix_cell}, {mix_alpha}, {maskmix_mode!r}, {mixpro_p_maskmix}.')
        timm_alphas = self.mixup_alpha > 0. or self.cutmix_alpha > 0. or self.cutmix_minmax is not None
        if method == 'mixpro' and not timm_alphas and mixpro_p_maskmix < 1:
            raise ValueError('--mix-method mixpro picks timm\'s Mixup / CutMix on the batches without MaskMix; set '
                             '--mixup and/or --cutmix (MixPro: --mixup 0.8 --cutmix 1.0) or --mixpro-p-maskmix 1.')
        if method == 'mixup_cutmix' and not timm_alphas:
            self.mixup_enabled = False  # no mixing configured: image targets are only smoothed
        self.draw = MIX_METHODS[method]
        self.token_stride, self.pairing, self.paired = token_stride, pairing, paired
        self.mix_alpha, self.maskmix_cell, self.maskmix_mode = mix_alpha, maskmix_cell, maskmix_mode
        self.mixpro_p_maskmix = mixpro_p_maskmix

    def mix_images(self, images: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ Mixed images `(B, C, H, W)` (float or uint8) and the packed target `[own soft | lam | partner | own]`. """
        batch, _, height, width = images.shape
        partner = pair_partners(batch, self.pairing)
        if self.mixup_enabled:
            own, lam = self.draw(self, batch, height, width)
        else:
            own, lam = _unmixed(batch)
        if (lam < 1.).any():
            weight = own.expand(batch, height, width)[:, None].to(images.device)  # float64: 1 - lam as timm's
            mixed = images.float() * weight.float() + images[partner.to(images.device)].float() * (1. - weight).float()
            images = mixed if images.is_floating_point() else torch.round(mixed).to(images.dtype)
        record = MixRecord.from_pixel_mask(own.expand(batch, height, width), partner, self.token_stride, lam=lam)
        soft = mixup_target(target, self.num_classes, 1., self.label_smoothing)  # each sample's own target
        return images, record.pack(soft)


class STLMixup(_ProducesMixRecord, Mixup):
    """ timm `Mixup` producing a packed `MixRecord` target (see the module docstring). """

    def __call__(self, input: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if not self.paired:
            return self.mix_images(input, target)
        teacher, student = split_views(input)
        student, packed = self.mix_images(student, target)
        return pair_views(teacher, student), packed


class STLCollateMixup(_ProducesMixRecord, FastCollateMixup):
    """ timm `FastCollateMixup` producing a packed `MixRecord` target, for the prefetcher path. """

    def __call__(self, batch, _=None) -> Tuple[torch.Tensor, torch.Tensor]:
        views = isinstance(batch[0][0], tuple)
        if self.paired != views or (views and len(batch[0][0]) != 2):
            raise ValueError(
                'STLCollateMixup needs ((teacher, student), target) samples from fan_stl.stl.views.PairedViewDataset '
                'in stage stl, and (image, target) samples otherwise (--aug-splits is not supported), with uint8 '
                '(prefetcher) transforms.')
        if not self.paired:
            return self.mix_images(*fast_collate(list(batch)))
        teachers, _ = fast_collate([(views[0], label) for views, label in batch])
        students, labels = fast_collate([(views[1], label) for views, label in batch])
        students, packed = self.mix_images(students, labels)
        return torch.cat([teachers, students]), packed
