"""The targets of an STL step: compact per-token targets from a label source, and the image target beside them.

`TokenTargets` keep per-token soft targets `(B, N, K)` compact (class indices, or top-k indices with weights, plus a
smoothing value; dense probabilities only for soft teacher labels). They have one consumer of a mixed batch's
`MixRecord`: `blend`, which gives every token the share of its own and its partner's target that the record says.
`TokenLabelTarget` pairs the image target with them; the loss reads both.

Targets are checked where they are made: sparse weights and dense probabilities must lie on the simplex (non-negative,
summing to one per token, within `SIMPLEX_TOLERANCE`), indices in `[0, K)`; a target of the wrong scale is refused,
never trained on (a negative target makes the cross-entropy unbounded below). Targets made on a token grid record it
(`grid = (rows, cols)`; dense `(B, H, W, K)` probabilities give it by their shape), and `check_grid` refuses a grid of
the right token count but another shape (e.g. 8 x 4 targets for a 4 x 8 student): tokens are compared by position,
not by count. Targets without a grid are checked by count only.
"""
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .mix_record import MixRecord

__all__ = ['SIMPLEX_TOLERANCE', 'TokenTargets', 'TokenLabelTarget', 'check_simplex']

SIMPLEX_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 1e-2}  # other dtypes: 1e-3


def check_simplex(p: torch.Tensor, what: str, fix: str) -> None:
    """ Refuse `p (..., K)` unless every row is a distribution: entries >= 0 and a sum of 1, within the dtype's
    tolerance. """
    if p.numel() == 0:
        return
    tol = SIMPLEX_TOLERANCE.get(p.dtype, 1e-3)
    lowest = p.min().item()
    sums = p.float().sum(-1)
    worst = (sums - 1.).abs().max().item()
    if lowest < -tol or worst > tol:
        found = f'a negative entry ({lowest:.4g})' if lowest < -tol else f'a row summing to {1. + worst:.4g} or ' \
            f'{1. - worst:.4g}'
        raise ValueError(f'{what} must be probabilities (>= 0, summing to 1 over the classes); found {found}. {fix}')


@dataclass
class TokenTargets:
    """ Per-token soft targets `(B, N, K)` in compact form.

    The target of token `n` of image `b` is `(1 - smoothing) * p[b, n] + smoothing / K`, where `p` is either sparse,
    `indices (B, N, k)` with `weights (B, N, k)` (`weights=None`: one class per token, weight 1), or dense,
    `probs (B, N, K)` (or `(B, H, W, K)` on an H x W grid). Weights and probabilities must be distributions (module
    docstring). `grid`: the `(rows, cols)` token grid the targets were made on, row-major (None: unknown).
    """
    num_classes: int
    indices: Optional[torch.Tensor] = None
    weights: Optional[torch.Tensor] = None
    probs: Optional[torch.Tensor] = None
    smoothing: float = 0.
    grid: Optional[Tuple[int, int]] = None

    def __post_init__(self):
        if (self.indices is None) == (self.probs is None):
            raise ValueError('TokenTargets needs exactly one of `indices` (sparse form) or `probs` (dense form).')
        if self.probs is not None and self.probs.ndim == 4:  # (B, H, W, K) on its grid
            self.grid = self._same_grid(tuple(self.probs.shape[1:3]))
            self.probs = self.probs.flatten(1, 2)
        if self.indices is not None:
            if self.indices.ndim == 2:
                self.indices = self.indices.unsqueeze(-1)
            if self.weights is not None and self.weights.shape != self.indices.shape:
                raise ValueError(
                    f'TokenTargets weights {tuple(self.weights.shape)} must match indices {tuple(self.indices.shape)}.')
            if self.indices.numel() and (self.indices.min() < 0 or self.indices.max() >= self.num_classes):
                raise ValueError(
                    f'Token target indices must be class indices in [0, {self.num_classes}); got values from '
                    f'{self.indices.min().item()} to {self.indices.max().item()}.')
            if self.weights is not None:
                check_simplex(self.weights, 'Sparse token target weights',
                              'Normalise each token\'s weights (e.g. softmax over its top-k logits).')
        elif self.probs.ndim != 3 or self.probs.shape[-1] != self.num_classes:
            raise ValueError(
                f'Dense token targets must be (batch, tokens, {self.num_classes}) or (batch, rows, cols, '
                f'{self.num_classes}); got {tuple(self.probs.shape)}.')
        else:
            check_simplex(self.probs, 'Dense token targets', 'Pass softmax(logits) per token, not logits or scores.')
        if self.grid is not None:
            self.grid = self._same_grid(self.grid)
            if self.grid[0] * self.grid[1] != self.shape[1]:
                raise ValueError(f'A {self.grid[0]} x {self.grid[1]} token grid holds {self.grid[0] * self.grid[1]} '
                                 f'tokens, but the token targets have {self.shape[1]}.')
        if not 0. <= self.smoothing < 1.:
            raise ValueError(f'Token label smoothing must be in [0, 1); got {self.smoothing}.')

    def _same_grid(self, grid: Sequence[int]) -> Tuple[int, int]:
        grid = tuple(int(v) for v in grid)
        if self.grid is not None and tuple(self.grid) != grid:
            raise ValueError(f'TokenTargets were given grid={tuple(self.grid)} but dense targets on a {grid} grid.')
        return grid

    def check_grid(self, grid: Tuple[int, int]) -> 'TokenTargets':
        """ Refuse targets made on another token grid than the student's `grid = (rows, cols)` (module docstring);
        returns self. Targets without a grid are checked by token count. """
        grid = tuple(int(v) for v in grid)
        tokens = grid[0] * grid[1]
        if self.grid is not None and tuple(self.grid) != grid:
            raise ValueError(
                f'The token targets lie on a {self.grid[0]} x {self.grid[1]} grid but the student\'s tokens on a '
                f'{grid[0]} x {grid[1]} grid (rows x cols): same count, other positions, so every target would land '
                f'on the wrong token. Make the targets on the student\'s grid: the teacher view must have the '
                f'student view\'s height and width.')
        if self.shape[1] != tokens:
            raise ValueError(
                f'The token targets have {self.shape[1]} tokens but the student\'s {grid[0]} x {grid[1]} grid has '
                f'{tokens}: teacher and student must see the same image size with the same token stride.')
        return self

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
        """ Soft-target cross-entropy of `token_logits (B, N, K)` (or `(B, H, W, K)`, checked against the targets'
        grid), averaged over all B*N tokens, in fp32. """
        if token_logits.ndim == 4:
            self.check_grid(tuple(token_logits.shape[1:3]))
            token_logits = token_logits.flatten(1, 2)
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
