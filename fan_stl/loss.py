"""Token-labeling loss for both STL stages, and the target types it consumes.

`TokenLabelLoss` computes, in fp32 whatever the autocast state (K classes, N tokens):

* STL student (target is a `TokenLabelTarget` with token targets):
  `cls_weight * SCE(cls_logits, y) + dense_weight * mean_{b,n} SCE(token_logits[b, n], t[b, n])`
* FAN-TL token labeler (target is a plain tensor, or a `TokenLabelTarget` without token targets):
  `cls_weight * SCE(cls_logits, y) + dense_weight * SCE(mean_n token_logits, y)`

where `SCE(x, t) = sum_c -t_c * log_softmax(x)_c` averaged over rows. Image targets `y` are soft `(B, K)` (mixed and
smoothed by Mixup/CutMix) or class indices `(B,)` (smoothed here with `label_smoothing`).

Token targets (`TokenTargets`) stay compact: class indices or top-k (indices, weights) plus a smoothing value, so the
dense `(B, N, K)` target is only built for soft teacher labels or when asked for with `TokenTargets.dense()`.
"""
from dataclasses import dataclass, replace
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['TokenTargets', 'TokenLabelTarget', 'TokenLabelLoss', 'soft_target_cross_entropy']


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.) -> torch.Tensor:
    """ Mean cross-entropy of `logits (M, K)` against soft targets `(M, K)` or class indices `(M,)`, in fp32. """
    logits = logits.float()
    if target.ndim == logits.ndim - 1 and not target.is_floating_point():
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if target.shape != logits.shape:
        raise ValueError(
            f'Target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: soft targets must be '
            f'(batch, num_classes) with the model\'s num_classes, class indices must be an integer (batch,) tensor.')
    return torch.sum(-target.float() * F.log_softmax(logits, dim=-1), dim=-1).mean()


@dataclass
class TokenTargets:
    """ Per-token soft targets `(B, N, K)` in compact form.

    The target of token `n` of image `b` is `(1 - smoothing) * p[b, n] + smoothing / K`, where `p` is either sparse,
    `indices (B, N, k)` with `weights (B, N, k)` (`weights=None`: one class per token, weight 1), or dense,
    `probs (B, N, K)`. Sparse weights of a token should sum to one.
    """
    num_classes: int
    indices: Optional[torch.Tensor] = None
    weights: Optional[torch.Tensor] = None
    probs: Optional[torch.Tensor] = None
    smoothing: float = 0.

    def __post_init__(self):
        if (self.indices is None) == (self.probs is None):
            raise ValueError('TokenTargets needs exactly one of `indices` (sparse form) or `probs` (dense form).')
        if self.indices is not None:
            if self.indices.ndim == 2:
                self.indices = self.indices.unsqueeze(-1)
            if self.weights is not None and self.weights.shape != self.indices.shape:
                raise ValueError(
                    f'TokenTargets weights {tuple(self.weights.shape)} must match indices {tuple(self.indices.shape)}.')
        elif self.probs.ndim != 3 or self.probs.shape[-1] != self.num_classes:
            raise ValueError(
                f'Dense token targets must be (batch, tokens, {self.num_classes}); got {tuple(self.probs.shape)}.')
        if not 0. <= self.smoothing < 1.:
            raise ValueError(f'Token label smoothing must be in [0, 1); got {self.smoothing}.')

    @property
    def shape(self) -> Tuple[int, int, int]:
        """ `(B, N, K)` of the dense equivalent. """
        batch, tokens = (self.indices if self.probs is None else self.probs).shape[:2]
        return batch, tokens, self.num_classes

    def _fields(self) -> dict:
        fields = {name: getattr(self, name) for name in ('indices', 'weights', 'probs')}
        return {name: value for name, value in fields.items() if value is not None}

    def dense(self) -> torch.Tensor:
        """ The `(B, N, K)` fp32 target tensor. """
        if self.probs is not None:
            p = self.probs.float()
        else:
            weights = torch.ones_like(self.indices, dtype=torch.float32) if self.weights is None else self.weights
            p = torch.zeros(self.shape, device=self.indices.device).scatter_add_(-1, self.indices, weights.float())
        return p * (1. - self.smoothing) + self.smoothing / self.num_classes

    def cross_entropy(self, token_logits: torch.Tensor) -> torch.Tensor:
        """ Soft-target cross-entropy of `token_logits (B, N, K)`, averaged over all B*N tokens, in fp32. """
        if tuple(token_logits.shape) != self.shape:
            raise ValueError(
                f'Student token logits {tuple(token_logits.shape)} do not match the token targets {self.shape} '
                f'(batch, tokens, classes). Teacher and student must see the same image size and share the token '
                f'stride (16) and the class set.')
        log_probs = F.log_softmax(token_logits.float(), dim=-1)
        if self.probs is not None:
            nll = -(self.probs.float() * log_probs).sum(-1)
        else:
            picked = log_probs.gather(-1, self.indices)
            nll = -(picked if self.weights is None else picked * self.weights.float()).sum(-1)
        if self.smoothing:
            nll = (1. - self.smoothing) * nll - self.smoothing * log_probs.mean(-1)
        return nll.mean()

    def mix(self, lam: float) -> 'TokenTargets':
        """ Mixup with the batch-flipped partner (timm's batch pairing): `lam * t + (1 - lam) * t.flip(0)`. """
        if self.probs is not None:
            return replace(self, probs=self.probs * lam + self.probs.flip(0) * (1. - lam))
        weights = torch.ones_like(self.indices, dtype=torch.float32) if self.weights is None else self.weights
        return replace(
            self,
            indices=torch.cat([self.indices, self.indices.flip(0)], dim=-1),
            weights=torch.cat([weights * lam, weights.flip(0) * (1. - lam)], dim=-1),
        )

    def paste(self, token_box: Tuple[int, int, int, int], grid: Tuple[int, int]) -> 'TokenTargets':
        """ CutMix on the token grid: tokens inside `token_box = (top, bottom, left, right)` come from the batch-flipped
        partner (timm's batch pairing). `grid = (rows, cols)` of the row-major token layout. """
        if grid[0] * grid[1] != self.shape[1]:
            raise ValueError(f'Token grid {grid} does not hold the {self.shape[1]} tokens of these targets.')
        top, bottom, left, right = token_box
        inside = torch.zeros(grid, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        inside = inside.flatten()
        pasted = {}
        for name, value in self._fields().items():
            value = value.clone()
            value[:, inside.to(value.device)] = value.flip(0)[:, inside.to(value.device)]
            pasted[name] = value
        return replace(self, **pasted)

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> 'TokenTargets':
        return replace(self, **{k: v.to(device, non_blocking=non_blocking) for k, v in self._fields().items()})


@dataclass
class TokenLabelTarget:
    """ Training target of an STL step: the image target `cls` (`(B, K)` soft or `(B,)` indices) and, for the
    student stage, the per-token targets from the teacher. """
    cls: torch.Tensor
    tokens: Optional[TokenTargets] = None

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> 'TokenLabelTarget':
        tokens = None if self.tokens is None else self.tokens.to(device, non_blocking=non_blocking)
        return TokenLabelTarget(self.cls.to(device, non_blocking=non_blocking), tokens)


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
