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

`MIX_METHODS` maps `STLConfig.mix_method` names to `MixMethod` classes (`fan_stl.stl.mix_method`), each built
from the config by its `from_config` and holding its own settings:

* `mixup_cutmix`: `MixupCutMix`, timm's Mixup / CutMix switch with timm's own draws (`--mixup`, `--cutmix`, ...).
* `maskmix`: `MaskMix(cell, alpha, mode, pairing)`, MixPro's grid mask.
* `mixpro`: `MixPro(p_maskmix, maskmix, timm_mix)`, MaskMix with probability `p_maskmix` per batch, else Mixup / CutMix.
* `patch_cutmix`: `PatchCutMix(alpha, pairing)`, MixToken in pixel space: CutMix with the box drawn on the token grid,
  exact token-space MixToken for a model whose patch embedding is one stride-16 conv (timm ViT p16).
* `mixtoken`: `MixToken(alpha, pairing)`, nothing in the data path; the task mixes the tokens inside the model.

Adding a method is one module (a `MixMethod` subclass with `from_config` and `draw`) and one registry line here.
"""
from typing import Dict, Optional, Tuple, Type

import torch

from timm.data.loader import fast_collate
from timm.data.mixup import FastCollateMixup, Mixup, mixup_target

from ..models.fan import TOKEN_STRIDE
from .crop_record import attach_crops, split_crop_target
from .maskmix import MaskMix, MixPro
from .mix_method import MixMethod, unmixed
from .mix_record import MixRecord
from .mixtoken import MixToken, PatchCutMix
from .mixup_cutmix import MixupCutMix
from .views import pair_views, split_views

__all__ = ['MIX_METHODS', 'STLMixup', 'STLCollateMixup', 'build_mix_method']

# name -> MixMethod class, built by its from_config(STLConfig); see the module docstring
MIX_METHODS: Dict[str, Type[MixMethod]] = {
    'mixup_cutmix': MixupCutMix,
    'maskmix': MaskMix,
    'mixpro': MixPro,
    'patch_cutmix': PatchCutMix,
    'mixtoken': MixToken,
}


def build_mix_method(config) -> MixMethod:
    """ The mixing method of an `STLConfig`, with its settings (checked by the method's constructor). """
    if config.mix_method not in MIX_METHODS:
        raise ValueError(f'Unknown mix method {config.mix_method!r}; registered: {", ".join(MIX_METHODS)}.')
    return MIX_METHODS[config.mix_method].from_config(config)


class _ProducesMixRecord:
    """ The set-up and the mixing shared by `STLMixup` and `STLCollateMixup`. """

    def __init__(
            self,
            method: Optional[MixMethod] = None,
            token_stride: int = TOKEN_STRIDE,
            paired: bool = True,
            **mixup_kwargs,
    ):
        """
        Args:
            method: The mixing method (a `MixMethod`, e.g. `build_mix_method(config)`; default: timm's Mixup / CutMix).
            token_stride: Pixel size of a token (16 for FAN and p16 ViTs).
            paired: The batches are STL's paired views (teacher, student); only the student view is mixed.
            **mixup_kwargs: timm `Mixup` arguments (mixup_alpha, cutmix_alpha, prob, label_smoothing, num_classes...).
        """
        super().__init__(**mixup_kwargs)  # timm's Mixup / FastCollateMixup (next in the MRO)
        method = MixupCutMix() if method is None else method
        if not isinstance(method, MixMethod):
            raise ValueError(f'Unknown mix method {method!r}: pass a MixMethod (registered: {", ".join(MIX_METHODS)}; '
                             f'fan_stl.stl.mixing.build_mix_method(config) builds the one of an STLConfig).')
        if self.mode not in ('batch', 'pair', 'elem'):
            raise ValueError(f"Mixup mode {self.mode!r} is not supported by STL mixing; use 'batch' (the official "
                             f"setting), 'pair' or 'elem' (--mixup-mode).")
        if self.mode == 'pair' and method.pairing != 'flip':
            raise ValueError(f"timm's --mixup-mode pair needs pairing 'flip' (--mix-pairing); got {method.pairing!r}.")
        self.method, self.token_stride, self.paired = method, token_stride, paired
        method.check_mixer(self)

    @property
    def timm_mixing_configured(self) -> bool:
        """ timm's own Mixup or CutMix is configured (an alpha or a CutMix box range is set). """
        return self.mixup_alpha > 0. or self.cutmix_alpha > 0. or self.cutmix_minmax is not None

    def mix_images(self, images: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ Mixed images `(B, C, H, W)` (float or uint8) and the packed target `[own soft | lam | partner | own]`. """
        target, crops = split_crop_target(target)  # a maps-source crop record rides at the end, unmixed
        batch, _, height, width = images.shape
        partner = self.method.partners(batch)
        own, lam = self.method.draw(self, batch, height, width) if self.mixup_enabled else unmixed(batch)
        if (lam < 1.).any():
            weight = own.expand(batch, height, width)[:, None].to(images.device)  # float64: 1 - lam as timm's
            mixed = images.float() * weight.float() + images[partner.to(images.device)].float() * (1. - weight).float()
            images = mixed if images.is_floating_point() else torch.round(mixed).to(images.dtype)
        record = MixRecord.from_pixel_mask(own.expand(batch, height, width), partner, self.token_stride, lam=lam)
        soft = mixup_target(target, self.num_classes, 1., self.label_smoothing)  # each sample's own target
        return images, attach_crops(record.pack(soft), crops)


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
