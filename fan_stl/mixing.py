"""Mixup / CutMix for STL: mix the student view only, label tokens from the clean teacher view.

* `TokenLabelMixup` is a drop-in for timm's `Mixup` (`(input, target) -> (input, target)`) on paired batches
  `(B, 2, C, H, W)`: it mixes the student images exactly as timm does, runs the teacher on the un-mixed teacher
  images and returns `(student, TokenLabelTarget)`. Without a labeler it defers the teacher to `attach_token_labels`
  (the `TokenLabelTask` in train.py) and returns the paired batch with a packed target tensor.
* `TokenLabelCollateMixup` is the `FastCollateMixup` variant for timm's prefetcher: it collates
  `((teacher, student), label)` samples into a split-major uint8 batch `cat([teachers, mixed students])` with a
  packed target tensor (tensors survive the prefetcher's `.to(device)`); honours `mixup_enabled`.

Packed target: `(B, K + 5)` = mixed soft image target, then the mixing the token targets follow: `token_lam` and
the CutMix box `(top, bottom, left, right)` in pixels (empty when none). Faithful to STL, token targets do not follow
the mixing (`token_lam = 1`, no box). With `follow_mixing=True` (beyond the paper; `mode='batch'` only) the CutMix
box is snapped to the token grid and pasted into the token targets too, and Mixup's lambda mixes them.
"""
from typing import Optional, Tuple

import torch

from timm.data.loader import fast_collate
from timm.data.mixup import FastCollateMixup, Mixup, cutmix_bbox_and_lam, mixup_target

from .data import split_views
from .loss import TokenLabelTarget
from .models.fan import TOKEN_STRIDE
from .token_labels import TeacherTokenLabeler

__all__ = ['TokenLabelMixup', 'TokenLabelCollateMixup', 'attach_token_labels', 'TOKEN_STRIDE']

_MIX_COLUMNS = 5  # token_lam, top, bottom, left, right


def _pack(soft_target: torch.Tensor, token_lam: float = 1., box: Tuple[int, int, int, int] = (0, 0, 0, 0)):
    record = torch.tensor([token_lam, *box], dtype=soft_target.dtype, device=soft_target.device)
    return torch.cat([soft_target, record.expand(soft_target.shape[0], -1)], dim=1)


def _unpack(target: torch.Tensor, batch_size: int, num_classes: int):
    """ `(image_target, token_lam, box)` from a packed, soft or class-index target. """
    if target.ndim == 1:  # class indices; fast_collate repeats them for each view
        return target[-batch_size:], 1., None
    if target.ndim == 2 and target.shape[1] == num_classes + _MIX_COLUMNS:
        token_lam, *box = target[0, num_classes:].tolist()
        box = tuple(int(round(v)) for v in box)
        return target[:, :num_classes], token_lam, box if box[1] > box[0] and box[3] > box[2] else None
    if target.ndim == 2 and target.shape[1] == num_classes:
        return target, 1., None
    raise ValueError(
        f'Unexpected STL target of shape {tuple(target.shape)} for a {num_classes}-class teacher: expected class '
        f'indices, soft targets (B, {num_classes}) or a packed mixing target (B, {num_classes + _MIX_COLUMNS}). '
        f'Check that --num-classes matches the teacher.')


def attach_token_labels(
        input: torch.Tensor,
        target: torch.Tensor,
        labeler: TeacherTokenLabeler,
        token_stride: int = TOKEN_STRIDE,
) -> Tuple[torch.Tensor, TokenLabelTarget]:
    """ Paired batch + image (or packed) target -> `(student_images, TokenLabelTarget)`, labelling the teacher view. """
    teacher_images, student_images = split_views(input)
    image_target, token_lam, box = _unpack(target, student_images.shape[0], labeler.num_classes)
    tokens = labeler(teacher_images)
    if box is not None:
        height, width = student_images.shape[-2:]
        tokens = tokens.paste(tuple(v // token_stride for v in box), (height // token_stride, width // token_stride))
    elif token_lam < 1.:
        tokens = tokens.mix(token_lam)
    return student_images, TokenLabelTarget(image_target, tokens)


class _TokenGridMixing:
    """ Shared set-up and batch-mode mixing with the CutMix box snapped to the token grid. """

    def _setup(self, follow_mixing: bool, token_stride: int) -> None:
        if self.mode == 'half' or (follow_mixing and self.mode != 'batch'):
            raise ValueError(
                f"Mixup mode {self.mode!r} is not supported here: STL mixing supports 'batch', 'pair' and 'elem', "
                f"and token targets can only follow the mixing in 'batch' mode (--mixup-mode batch).")
        if self.mixup_alpha <= 0. and self.cutmix_alpha <= 0. and self.cutmix_minmax is None:
            self.mixup_enabled = False  # no mixing configured: image targets are only smoothed
        self.follow_mixing = follow_mixing
        self.token_stride = token_stride

    def _mix_on_grid_(self, x: torch.Tensor) -> Tuple[float, Tuple[int, int, int, int]]:
        """ Mix a (B, C, H, W) batch in place (float or uint8); return `(lam, box)` with the box on the token grid. """
        lam, use_cutmix = self._params_per_batch()
        box = (0, 0, 0, 0)
        if lam == 1.:
            return lam, box
        if use_cutmix:
            height, width = x.shape[-2:]
            s = self.token_stride
            (top, bottom, left, right), _ = cutmix_bbox_and_lam(x.shape, lam, ratio_minmax=self.cutmix_minmax)
            top, bottom = (int(round(v / s)) * s for v in (top, bottom))
            left, right = (int(round(v / s)) * s for v in (left, right))
            box = (top, bottom, left, right)
            x[:, :, top:bottom, left:right] = x.flip(0)[:, :, top:bottom, left:right]
            lam = 1. - (bottom - top) * (right - left) / (height * width)
        else:
            mixed = x.float() * lam + x.flip(0).float() * (1. - lam)
            x.copy_(mixed if x.is_floating_point() else torch.round(mixed))
        return lam, box

    def _mix_student_on_grid(self, student: torch.Tensor, target: torch.Tensor):
        lam, box = self._mix_on_grid_(student)
        soft = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        return student, _pack(soft, lam, box)


class TokenLabelMixup(_TokenGridMixing, Mixup):
    """ timm `Mixup` for STL paired batches (see the module docstring). """

    def __init__(
            self,
            labeler: Optional[TeacherTokenLabeler] = None,
            follow_mixing: bool = False,
            token_stride: int = TOKEN_STRIDE,
            **mixup_kwargs,
    ):
        """
        Args:
            labeler: Teacher token labeler; None defers labelling to `attach_token_labels` (train.py's task).
            follow_mixing: Token targets follow CutMix (grid-snapped box) and Mixup (beyond the paper).
            token_stride: Pixel size of a token (16 for FAN).
            **mixup_kwargs: timm `Mixup` arguments (mixup_alpha, cutmix_alpha, prob, label_smoothing, num_classes...).
        """
        super().__init__(**mixup_kwargs)
        self._setup(follow_mixing, token_stride)
        self.labeler = labeler

    def __call__(self, input: torch.Tensor, target: torch.Tensor):
        if input.ndim != 5:
            raise ValueError(
                f'TokenLabelMixup needs paired batches (B, 2, C, H, W) from fan_stl.data.PairedViewDataset; got '
                f'{tuple(input.shape)}.')
        teacher, student = input[:, 0], input[:, 1].clone()
        if self.follow_mixing:
            student, packed = self._mix_student_on_grid(student, target)
        else:
            student, soft = Mixup.__call__(self, student, target)
            packed = _pack(soft)
        paired = torch.stack([teacher, student], dim=1)
        if self.labeler is None:
            return paired, packed
        return attach_token_labels(paired, packed, self.labeler, self.token_stride)


class TokenLabelCollateMixup(_TokenGridMixing, FastCollateMixup):
    """ timm `FastCollateMixup` for STL paired samples, for the prefetcher path (see the module docstring). """

    def __init__(self, follow_mixing: bool = False, token_stride: int = TOKEN_STRIDE, **mixup_kwargs):
        super().__init__(**mixup_kwargs)
        self._setup(follow_mixing, token_stride)

    def __call__(self, batch, _=None):
        if not isinstance(batch[0][0], tuple) or len(batch[0][0]) != 2:
            raise ValueError(
                'TokenLabelCollateMixup needs ((teacher, student), target) samples from '
                'fan_stl.data.PairedViewDataset with uint8 (prefetcher) transforms.')
        teachers, _ = fast_collate([(views[0], label) for views, label in batch])
        student_samples = [(views[1], label) for views, label in batch]
        if self.follow_mixing:
            students, labels = fast_collate(student_samples)
            students, packed = self._mix_student_on_grid(students, labels)
        else:
            students, soft = FastCollateMixup.__call__(self, student_samples)
            packed = _pack(soft)
        return torch.cat([teachers, students]), packed

