"""The targets of an STL step: compact per-token targets from a label source, and the image target beside them.

`TokenTargets` keep per-token soft targets `(B, N, K)` compact (class indices, or top-k indices with weights, plus a
smoothing value; dense probabilities only for soft teacher labels). They have one consumer of a mixed batch's
`MixRecord`: `blend`, which gives every token the share of its own and its partner's target that the record says.
`TokenLabelTarget` pairs the image target with them; the loss reads both.
"""
from dataclasses import dataclass, replace
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

from .mix_record import MixRecord

__all__ = ['TokenTargets', 'TokenLabelTarget']


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

    def blend(self, record: MixRecord) -> 'TokenTargets':
        """ The targets of a mixed batch: `own[b, n] * t[b, n] + (1 - own[b, n]) * t[partner[b], n]` (sparse targets
        keep their compact form: the partner's indices are appended with the complementary weights). """
        if tuple(record.shape) != self.shape[:2]:
            raise ValueError(
                f'The mix record covers {record.shape} (batch, tokens) but the token targets are {self.shape[:2]}: '
                f'the mixing must use the model\'s token stride (16) on the same image size.')
        own = record.own.to((self.indices if self.probs is None else self.probs).device)
        partner = record.partner.to(own.device)
        if self.probs is not None:
            return replace(self, probs=self.probs * own[..., None] + self.probs[partner] * (1. - own[..., None]))
        weights = torch.ones_like(self.indices, dtype=torch.float32) if self.weights is None else self.weights.float()
        return replace(
            self,
            indices=torch.cat([self.indices, self.indices[partner]], dim=-1),
            weights=torch.cat([weights * own[..., None], weights[partner] * (1. - own[..., None])], dim=-1),
        )

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
