"""MaskMix (MixPro) and MixPro's per-batch schedule, as producers of a `MixRecord` for timm's training loop.

Every mixer here works the same way: it draws a *pixel ownership map* `(B, 1, H, W)` (1 = the sample's own pixel,
0 = its partner's, fractions for Mixup), a partner per sample and the class-target share `lam`; the images are
blended with that map, and the per-token record is the map averaged over each token (`token_stride` pixels square):

* `MaskMix`: a grid of square cells of `cell_tokens x token_stride` pixels; each sample keeps `ceil(M * r)` of its
  `M` cells (chosen at random per sample), `r ~ Beta(alpha, alpha)` drawn once per batch (`mode='batch'`, MixPro's
  code) or per sample (`mode='elem'`); the rest comes from the partner (`pairing='perm'`, MixPro's random
  permutation, or `'flip'`, timm's reversed batch). `lam` is the exact fraction of own pixels (cells cropped at the
  image border count by their visible area).
* `TimmMixing`: timm's own `Mixup` draws (Mixup or CutMix, `prob`, `switch_prob`, `cutmix_minmax`, `correct_lam`,
  `mixup_enabled`), expressed as a record: Mixup owns `lam` of every token; CutMix owns, per token, the fraction of
  its pixels outside the box.
* `MixProSchedule`: MaskMix with probability `p_maskmix`, else `TimmMixing` (MixPro: 0.5, i.e. 50 % MaskMix, 25 %
  Mixup, 25 % CutMix with timm's `switch_prob=0.5`). `p_maskmix=0` means no MaskMix (MixPro's code then uses
  MaskMix on every batch, a quirk not reproduced).

Cell size: MixPro's 56 px cells are 4 tokens of its patch-14 DeiTs (a 4 x 4 grid at 224 px). With 16 px tokens a
224 px image is 14 tokens wide, so `cell_tokens=7` gives a 2 x 2 grid, 2 a 7 x 7 grid, and the default 4 a 4 x 4
grid of 64 px cells whose last row and column are cropped to 32 px (every token still belongs to one image).

Each is a timm-`Mixup`-compatible callable `(input, target) -> (input, packed)` for float batches, and
`CollateMixing(mixer)` is the `FastCollateMixup` variant (uint8 samples, timm's prefetcher path). The packed target is
`MixRecord.pack(soft)` where `soft (B, K)` is each sample's *own* smoothed one-hot target (not the mixed one): the class
target is `class_target(soft, record) = lam * soft + (1 - lam) * soft[partner]`, so that PAL / TransMix can rewrite
`lam` after the forward pass.
"""
import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from timm.data.loader import fast_collate
from timm.data.mixup import Mixup, cutmix_bbox_and_lam, mixup_target

from .mix_record import MixRecord

__all__ = [
    'PAIRINGS', 'MaskMix', 'TimmMixing', 'MixProSchedule', 'CollateMixing', 'class_target', 'pair_partners',
    'token_ownership',
]

PAIRINGS = ('perm', 'flip')
_TOKEN_STRIDE = 16  # FAN's token stride (fan_stl.models.fan.TOKEN_STRIDE), the default everywhere here


def pair_partners(batch: int, pairing: str, device: Optional[torch.device] = None) -> torch.Tensor:
    """ `(B,)` partner indices: a random permutation (`'perm'`, MixPro) or the reversed batch (`'flip'`, timm). """
    if pairing == 'perm':
        return torch.randperm(batch, device=device)
    if pairing == 'flip':
        return torch.arange(batch - 1, -1, -1, device=device)
    raise ValueError(f'Unknown pairing {pairing!r}; choose one of {PAIRINGS}.')


def check_token_grid(height: int, width: int, token_stride: int) -> None:
    """ Raise a clear error unless the image is a whole number of tokens. """
    if height % token_stride or width % token_stride:
        raise ValueError(
            f'Mixing with a per-token record needs an image height and width that are multiples of the token stride '
            f'{token_stride}; got {height}x{width}. Use --img-size / --input-size a multiple of {token_stride}.')


def token_ownership(pixel_own: torch.Tensor, token_stride: int = _TOKEN_STRIDE) -> torch.Tensor:
    """ `(B, N)` share of each token's pixels that are own, from a pixel ownership map `(B, 1, H, W)`. """
    height, width = pixel_own.shape[-2:]
    check_token_grid(height, width, token_stride)
    return F.avg_pool2d(pixel_own.float(), token_stride).flatten(1)


def blend_images(x: torch.Tensor, pixel_own: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """ `pixel_own * x + (1 - pixel_own) * x[partner]`; integer images are rounded back to their dtype (uint8). """
    own = pixel_own.to(torch.float32 if not x.is_floating_point() else x.dtype)
    mixed = x.to(own.dtype) * own + x[partner].to(own.dtype) * (1. - own)
    return mixed if x.is_floating_point() else mixed.round_().to(x.dtype)


def own_targets(target: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """ Each sample's own smoothed one-hot target `(B, K)` from class indices (soft `(B, K)` targets pass through). """
    if target.ndim == 2 and target.shape[1] == num_classes and target.is_floating_point():
        return target.float()
    if target.ndim != 1 or target.is_floating_point():
        raise ValueError(
            f'Mixing targets must be class indices (B,) or soft targets (B, {num_classes}); got '
            f'{tuple(target.shape)} ({target.dtype}). Check --num-classes.')
    return mixup_target(target, num_classes, lam=1., smoothing=smoothing)


def class_target(soft: torch.Tensor, record: MixRecord) -> torch.Tensor:
    """ The mixed class target `lam * soft + (1 - lam) * soft[partner]` from own targets `soft (B, K)`. """
    lam = record.lam.to(soft)[:, None]
    return lam * soft + (1. - lam) * soft[record.partner.to(soft.device)]


class RecordMixer:
    """ Base of the record-producing mixers: a timm-`Mixup`-compatible `(input, target) -> (input, packed)`.

    Subclasses implement `sample(x) -> (pixel_own (B, 1, H, W) or None, partner (B,), lam (B,) or None)`; `None`
    ownership means "no mixing this batch"; `lam=None` means the exact own-pixel fraction.
    """

    def __init__(self, num_classes: int = 1000, label_smoothing: float = 0.1, token_stride: int = _TOKEN_STRIDE):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.token_stride = token_stride
        self.mixup_enabled = True  # timm's train.py sets this False at --mixup-off-epoch

    def sample(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
        raise NotImplementedError

    def mix(self, x: torch.Tensor) -> Tuple[torch.Tensor, MixRecord]:
        """ Mixed images (same dtype as `x`, float or uint8) and their record. """
        if x.ndim != 4:
            raise ValueError(f'{type(self).__name__} mixes image batches (B, C, H, W); got {tuple(x.shape)}.')
        batch, _, height, width = x.shape
        check_token_grid(height, width, self.token_stride)
        tokens = (height // self.token_stride) * (width // self.token_stride)
        if not self.mixup_enabled:
            return x, MixRecord.identity(batch, tokens, device=x.device)
        pixel_own, partner, lam = self.sample(x)
        if pixel_own is None:
            return x, MixRecord.identity(batch, tokens, device=x.device)
        pixel_own = pixel_own.expand(batch, 1, height, width)
        own = token_ownership(pixel_own, self.token_stride)
        if lam is None:
            lam = pixel_own.float().mean(dim=(1, 2, 3))
        return blend_images(x, pixel_own, partner), MixRecord(own=own, partner=partner, lam=lam.float())

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] != target.shape[0]:
            raise ValueError(f'Got {x.shape[0]} images but {target.shape[0]} targets.')
        mixed, record = self.mix(x)
        return mixed, record.pack(own_targets(target, self.num_classes, self.label_smoothing))


class MaskMix(RecordMixer):
    """ MaskMix: a random grid mask of `cell_tokens x token_stride`-pixel cells (see the module docstring). """

    def __init__(
            self,
            cell_tokens: int = 4,
            alpha: float = 1.,
            mode: str = 'batch',
            pairing: str = 'perm',
            prob: float = 1.,
            num_classes: int = 1000,
            label_smoothing: float = 0.1,
            token_stride: int = _TOKEN_STRIDE,
    ):
        """
        Args:
            cell_tokens: Tokens per mask cell along each side (k); a cell is `k * token_stride` pixels (MixPro's
                56 px cells with patch 14 are k = 4; with FAN's 16 px tokens, k = 4 gives 64 px cells).
            alpha: Beta(alpha, alpha) parameter of the kept-cell ratio.
            mode: `'batch'` (one ratio per batch, MixPro's code) or `'elem'` (one ratio per sample).
            pairing: `'perm'` (random permutation, MixPro) or `'flip'` (reversed batch, timm).
            prob: Probability of mixing a batch at all.
            num_classes, label_smoothing: As timm's `Mixup` (own targets are smoothed one-hots).
            token_stride: Pixels per token side of the student (16 for FAN and p16 ViTs).
        """
        super().__init__(num_classes, label_smoothing, token_stride)
        if cell_tokens < 1 or alpha <= 0 or not 0. <= prob <= 1.:
            raise ValueError(
                f'MaskMix needs cell_tokens >= 1, alpha > 0 and 0 <= prob <= 1; got {cell_tokens}, {alpha}, {prob}.')
        if mode not in ('batch', 'elem'):
            raise ValueError(
                f"MaskMix mode must be 'batch' (one ratio per batch) or 'elem' (per sample); got {mode!r}.")
        pair_partners(1, pairing)  # validates the name
        self.cell_tokens, self.alpha, self.mode, self.pairing, self.prob = cell_tokens, alpha, mode, pairing, prob

    def sample(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
        batch, _, height, width = x.shape
        partner = pair_partners(batch, self.pairing, x.device)
        if np.random.rand() >= self.prob:
            return None, partner, None
        cell = self.cell_tokens * self.token_stride
        rows, cols = math.ceil(height / cell), math.ceil(width / cell)
        cells = rows * cols
        ratio = np.random.beta(self.alpha, self.alpha, size=batch if self.mode == 'elem' else 1)
        keep = torch.from_numpy(np.clip(np.ceil(cells * ratio), 1, cells)).to(x.device)
        rank = torch.rand(batch, cells, device=x.device).argsort(dim=1).argsort(dim=1)  # a random order of cells
        cell_own = (rank < keep.view(-1, 1)).float().view(batch, 1, rows, cols)
        pixel_own = cell_own.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)[..., :height, :width]
        return pixel_own, partner, None


class TimmMixing(RecordMixer):
    """ timm's `Mixup` / `CutMix` draws as a record producer (see the module docstring); batch mode only. """

    def __init__(self, pairing: str = 'flip', token_stride: int = _TOKEN_STRIDE, **mixup_kwargs: Any):
        """
        Args:
            pairing: `'flip'` (timm's own pairing) or `'perm'`.
            token_stride: Pixels per token side of the student.
            **mixup_kwargs: timm `Mixup` arguments (mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob,
                mode='batch', correct_lam, label_smoothing, num_classes).
        """
        self.timm_mixup = Mixup(**mixup_kwargs)
        if self.timm_mixup.mode != 'batch':
            raise ValueError(
                f"Per-token mix records follow timm's Mixup/CutMix in mode 'batch' only (one box per batch); got "
                f"mode {self.timm_mixup.mode!r}. Use --mixup-mode batch.")
        super().__init__(self.timm_mixup.num_classes, self.timm_mixup.label_smoothing, token_stride)
        pair_partners(1, pairing)
        self.pairing = pairing

    @property
    def mixup_enabled(self) -> bool:
        return self.timm_mixup.mixup_enabled

    @mixup_enabled.setter
    def mixup_enabled(self, value: bool) -> None:
        self.timm_mixup.mixup_enabled = value

    def sample(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
        batch, _, height, width = x.shape
        partner = pair_partners(batch, self.pairing, x.device)
        lam, use_cutmix = self.timm_mixup._params_per_batch()  # timm's own draws (prob, switch_prob, alphas)
        if lam == 1.:
            return None, partner, None
        lam_column = torch.full((batch,), float(lam), device=x.device)
        if not use_cutmix:
            return lam_column.view(batch, 1, 1, 1), partner, lam_column
        (top, bottom, left, right), lam = cutmix_bbox_and_lam(
            x.shape, lam, ratio_minmax=self.timm_mixup.cutmix_minmax, correct_lam=self.timm_mixup.correct_lam)
        pixel_own = torch.ones(batch, 1, height, width, device=x.device)
        pixel_own[..., top:bottom, left:right] = 0.
        return pixel_own, partner, lam_column.fill_(float(lam))


class MixProSchedule(RecordMixer):
    """ MixPro's per-batch choice: `maskmix` with probability `p_maskmix`, else `timm_mixing` (Mixup / CutMix). """

    def __init__(self, maskmix: MaskMix, timm_mixing: TimmMixing, p_maskmix: float = 0.5):
        if not 0. <= p_maskmix <= 1.:
            raise ValueError(f'p_maskmix must be in [0, 1]; got {p_maskmix}.')
        if (maskmix.num_classes, maskmix.token_stride) != (timm_mixing.num_classes, timm_mixing.token_stride):
            raise ValueError(
                f'MaskMix and Mixup/CutMix must agree on num_classes and token_stride; got '
                f'{(maskmix.num_classes, maskmix.token_stride)} and '
                f'{(timm_mixing.num_classes, timm_mixing.token_stride)}.')
        super().__init__(maskmix.num_classes, maskmix.label_smoothing, maskmix.token_stride)
        self.maskmix, self.timm_mixing, self.p_maskmix = maskmix, timm_mixing, p_maskmix

    def sample(self, x: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
        chosen = self.maskmix if np.random.rand() < self.p_maskmix else self.timm_mixing
        return chosen.sample(x)


class CollateMixing:
    """ The `FastCollateMixup` variant of a record mixer: collates uint8 samples (timm's prefetcher path) with timm's
    `fast_collate`, mixes them in uint8 and returns `(images, packed target)`; honours `mixup_enabled`. """

    def __init__(self, mixer: RecordMixer):
        self.mixer = mixer

    @property
    def mixup_enabled(self) -> bool:
        return self.mixer.mixup_enabled

    @mixup_enabled.setter
    def mixup_enabled(self, value: bool) -> None:
        self.mixer.mixup_enabled = value

    def __call__(self, batch: Sequence[Tuple[Any, Any]], _: Optional[Any] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        if isinstance(batch[0][0], tuple):
            raise ValueError(
                f'{type(self.mixer).__name__} collation takes one image per sample; got a tuple of views '
                f'(--aug-splits is not supported with per-token mix records).')
        images, target = fast_collate(list(batch))
        return self.mixer(images, target)

