"""Token-labeling loss for both STL stages.

`TokenLabelLoss` computes, in fp32 whatever the autocast state (K classes, N tokens):

* STL student (target is a `TokenLabelTarget` with token targets):
  `cls_weight * SCE(cls_logits, y) + dense_weight * mean_{b,n} SCE(token_logits[b, n], t[b, n])`
* FAN-TL token labeler (target is a plain tensor, or a `TokenLabelTarget` without token targets):
  `cls_weight * SCE(cls_logits, y) + dense_weight * SCE(mean_n token_logits, y)`

where `SCE(x, t) = sum_c -t_c * log_softmax(x)_c` averaged over rows. Image targets `y` are soft `(B, K)` (mixed and
smoothed by Mixup/CutMix) or class indices `(B,)` (smoothed here with `label_smoothing`).

Soft image targets must be distributions (>= 0, rows summing to 1; `fan_stl.stl.targets.check_simplex`), else they
are refused. Class indices equal to `IGNORE_INDEX` (-100, torch's) are left out of the mean, as in
`F.cross_entropy`; a batch whose image targets are all ignored contributes a zero class loss (and, in stage tl, a zero
token loss, which is made from the same targets) with a warning shown once, instead of the nan of an empty mean. In
stage stl the token targets (the teacher's) still count.
"""
import warnings
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .targets import TokenLabelTarget, check_simplex

__all__ = ['IGNORE_INDEX', 'TokenLabelLoss', 'soft_target_cross_entropy']

IGNORE_INDEX = -100


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.) -> torch.Tensor:
    """ Mean cross-entropy of `logits (M, K)` against soft targets `(M, K)` or class indices `(M,)`, in fp32. """
    logits = logits.float()
    if target.ndim == logits.ndim - 1 and not target.is_floating_point():
        if target.numel() and (target == IGNORE_INDEX).all():
            warnings.warn(f'every class target of this batch is the ignore index {IGNORE_INDEX}: it contributes zero '
                          f'loss (shown once).', stacklevel=3)
            return logits.sum() * 0.  # zero, and still part of the graph so that backward() works
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing, ignore_index=IGNORE_INDEX)
    if target.shape != logits.shape:
        raise ValueError(
            f'Target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: soft targets must be '
            f'(batch, num_classes) with the model\'s num_classes, class indices must be an integer (batch,) tensor.')
    check_simplex(target, 'Soft image targets', 'Pass probabilities (e.g. one-hot or mixed one-hot targets), or '
                                                'class indices as an integer (batch,) tensor.')
    return torch.sum(-target.float() * F.log_softmax(logits, dim=-1), dim=-1).mean()


class TokenLabelLoss(nn.Module):
    """ The STL loss for both stages (see the module docstring); the stage follows from the target type. """

    def __init__(self, cls_weight: float = 1., dense_weight: float = 1., label_smoothing: float = 0.):
        """
        Args:
            cls_weight: Weight of the class-head term.
            dense_weight: Weight of the token-head term (per-token targets, or the token-averaged logits).
            label_smoothing: Smoothing for class-index image targets (soft targets are used as given).
        """
        super().__init__()
        if cls_weight < 0 or dense_weight < 0 or cls_weight + dense_weight <= 0:
            raise ValueError(
                f'cls_weight and dense_weight must be >= 0 with a positive sum; got {cls_weight}, {dense_weight}.')
        self.cls_weight = cls_weight
        self.dense_weight = dense_weight
        self.label_smoothing = label_smoothing

    def forward(
            self,
            output: Tuple[torch.Tensor, torch.Tensor],
            target: Union[torch.Tensor, TokenLabelTarget],
    ) -> torch.Tensor:
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError(
                'TokenLabelLoss needs the model output (cls_logits, token_logits): call '
                'model.set_token_label_training(True) on a token-head model (`*_tl` / `*_stl`) before training, '
                'or pass model.forward_dense(x).')
        cls_logits, token_logits = output
        image_target, token_targets = (target.cls, target.tokens) if isinstance(target, TokenLabelTarget) else (
            target, None)
        with torch.autocast(device_type=cls_logits.device.type, enabled=False):
            loss = self.cls_weight * soft_target_cross_entropy(cls_logits, image_target, self.label_smoothing)
            if self.dense_weight:
                if token_targets is None:
                    dense = soft_target_cross_entropy(
                        token_logits.float().mean(1), image_target, self.label_smoothing)
                else:
                    dense = token_targets.cross_entropy(token_logits)
                loss = loss + self.dense_weight * dense
        return loss

    def extra_repr(self) -> str:
        return f'cls_weight={self.cls_weight}, dense_weight={self.dense_weight}, label_smoothing={self.label_smoothing}'
