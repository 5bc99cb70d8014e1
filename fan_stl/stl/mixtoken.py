"""MixToken (LV-ViT): mix tokens after the patch embedding, un-mix the token predictions, mix the class target.

`MixToken` draws, once per batch, `lam ~ Beta(alpha, alpha)` and a box on the token grid as LV-ViT does
(`lvvit_token_box`: side `cut = int(grid * sqrt(1 - lam))`, uniform centre `c`, rows and columns `c - cut // 2` up to
`c + cut // 2`, clipped to the grid; timm's `rand_bbox` ends at `c + (cut + 1) // 2`, one token later for odd `cut`,
which on a 14 x 14 grid raises the mean mixed share from 0.271 to 0.297), and returns a `MixRecord`:
`own = 0` inside the box (those tokens are the partner's), 1 outside; `lam = 1 - |box| / N` (the exact token area,
recomputed after clipping); `partner` from `pairing` (`'flip'`, LV-ViT's reversed batch, or `'perm'`).

Model side: a FAN model mixes its patch embedding (for hybrids: after the ConvNeXt stem and projection) when called
with `token_mix=record_args(record)`, e.g. `model.forward_dense(x, token_mix=...)` - an explicit argument, no hooks,
no module state, so it works with `torch.compile` and EMA copies. The position encoding is added after the mix, so
every token keeps its position.

Losses: `unmix_tokens(token_logits, record)` moves every token prediction back to the sample whose image the token
came from, so the dense loss uses each image's own token targets (`unmixed_record(record)`: own = 1 everywhere) and
the class loss uses `lam`. Equivalently (the same loss, since un-mixing only permutes the (prediction, target) pairs
inside the box), the predictions can stay as they are and the token targets follow `record` with the `MixRecord`
blend rule.

For models whose patch embedding is a single non-overlapping `Conv2d(kernel_size=stride=P)` (timm ViT/DeiT p16 and
the like, not FAN's overlapping conv stems), mixing tokens is exactly pixel CutMix with a box snapped to multiples of
P: `PatchCutMix` (`patch_cutmix`) is that pixel-space form (the same box draw, pasted in pixels by timm's Mixup /
FastCollateMixup slots), which needs no model support.

Both are `MixMethod`s (`fan_stl.stl.mixing.MIX_METHODS`). `MixToken` is its own `token_mixer`: in training,
`STLConfig(mix_method='mixtoken')` makes the task (`fan_stl.stl.task.STLTask`) draw the record, call
`model(x, token_mix=record_args(record))` and let the token targets follow the record.
"""
import inspect
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .mix_method import MixMethod, Ownership, check_token_grid, unmixed
from .mix_record import MixRecord

__all__ = ['MixToken', 'PatchCutMix', 'lvvit_token_box', 'record_args', 'unmix_tokens', 'unmixed_record']


def lvvit_token_box(grid: Tuple[int, int], lam: float) -> Tuple[int, int, int, int]:
    """ LV-ViT's MixToken box `(top, bottom, left, right)` on a `(rows, cols)` token grid for the area draw `lam`:
    side `int(size * sqrt(1 - lam))` per axis, a uniform centre `c`, from `c - side // 2` to `c + side // 2` (an even
    extent: one token shorter than timm's `rand_bbox` for odd sides), clipped to the grid. """
    rows, cols = grid
    ratio = np.sqrt(1. - lam)
    cut_rows, cut_cols = int(rows * ratio), int(cols * ratio)
    centre_row, centre_col = np.random.randint(rows), np.random.randint(cols)
    top, bottom = np.clip((centre_row - cut_rows // 2, centre_row + cut_rows // 2), 0, rows)
    left, right = np.clip((centre_col - cut_cols // 2, centre_col + cut_cols // 2), 0, cols)
    return int(top), int(bottom), int(left), int(right)


def _forward_arguments(model: nn.Module) -> Tuple[str, ...]:
    return tuple(inspect.signature(getattr(model, '_orig_mod', model).forward).parameters)


class MixToken(MixMethod):
    """ Draws MixToken records on a token grid (see the module docstring); mixes inside the model, not in the data. """

    needs_mixup_slot = False

    def __init__(self, alpha: float = 1., prob: float = 1., pairing: str = 'flip'):
        """
        Args:
            alpha: Beta(alpha, alpha) parameter of lam (LV-ViT: 1) (`--mix-alpha`).
            prob: Probability of mixing a batch (LV-ViT: 1, every training batch).
            pairing: `'flip'` (reversed batch, LV-ViT) or `'perm'` (random permutation) (`--mix-pairing`).
        """
        super().__init__(pairing)
        if alpha <= 0 or not 0. <= prob <= 1.:
            raise ValueError(f'MixToken needs --mix-alpha > 0 and 0 <= prob <= 1; got alpha={alpha}, prob={prob}.')
        self.alpha, self.prob = alpha, prob
        self.mixup_enabled = True

    @classmethod
    def from_config(cls, config) -> 'MixToken':
        return cls(config.mix_alpha, pairing=config.mix_pairing)

    @property
    def token_mixer(self) -> 'MixToken':
        return self

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        return unmixed(batch)  # the task mixes the tokens inside the model; the data path only packs the targets

    def check_model(self, model: nn.Module) -> None:
        if 'token_mix' not in _forward_arguments(model):
            raise ValueError(
                f'--mix-method mixtoken mixes tokens inside the model (model(x, token_mix=...)), which '
                f'{type(model).__name__} does not support. Use a FAN model, or --mix-method patch_cutmix (the '
                f'pixel-space MixToken) for a ViT p16.')

    def box(self, grid: Tuple[int, int], prob: Optional[float] = None) -> Tuple[int, int, int, int]:
        """ `(top, bottom, left, right)` on the token grid; empty when this batch is not mixed (probability `prob`,
        default this method's). """
        if not self.mixup_enabled or np.random.rand() >= (self.prob if prob is None else prob):
            return 0, 0, 0, 0
        return lvvit_token_box(grid, np.random.beta(self.alpha, self.alpha))

    def __call__(
            self,
            batch: int,
            grid: Tuple[int, int],
            device: Optional[torch.device] = None,
    ) -> MixRecord:
        """ A record for a batch of `batch` samples on a `grid = (rows, cols)` token grid. """
        top, bottom, left, right = self.box(grid)
        own = torch.ones(batch, grid[0], grid[1], device=device)
        own[:, top:bottom, left:right] = 0.
        lam = 1. - (bottom - top) * (right - left) / (grid[0] * grid[1])
        return MixRecord(
            own=own.flatten(1),
            partner=self.partners(batch, device),
            lam=torch.full((batch,), lam, device=device),
        )


class PatchCutMix(MixToken):
    """ MixToken in pixel space: its token-grid box (LV-ViT's, on `--mixup-prob` of the batches) pasted in pixels. """

    needs_mixup_slot = True
    token_mixer = None

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        stride = mixer.token_stride
        check_token_grid(height, width, stride)
        top, bottom, left, right = self.box((height // stride, width // stride), prob=mixer.mix_prob)
        own = torch.ones(batch, height, width, dtype=torch.float64)
        own[:, top * stride:bottom * stride, left * stride:right * stride] = 0.
        return own, own.mean((1, 2))

    def check_model(self, model: nn.Module) -> None:
        convs = [m for m in getattr(model, 'patch_embed', nn.Identity()).modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 1 or tuple(convs[0].kernel_size) != (16, 16) or tuple(convs[0].stride) != (16, 16):
            raise ValueError(
                f'--mix-method patch_cutmix equals MixToken only for a model whose patch embedding is one '
                f'non-overlapping 16x16 conv (timm ViT / DeiT p16); {type(model).__name__}\'s is not. Use '
                f'--mix-method mixtoken for FAN models, or maskmix / mixup_cutmix.')


def record_args(record: MixRecord) -> Tuple[torch.Tensor, torch.Tensor]:
    """ The `token_mix=(own, partner)` argument of the FAN models for a record. """
    return record.own, record.partner


def _check_unmixable(record: MixRecord) -> torch.Tensor:
    """ The inverse pairing, after checking that un-mixing is a permutation of the token predictions. """
    partner = record.partner
    batch = partner.shape[0]
    if not torch.equal(partner.sort().values, torch.arange(batch, device=partner.device)):
        raise ValueError('Un-mixing token predictions needs a pairing that is a permutation of the batch.')
    if not ((record.own == 0) | (record.own == 1)).all():
        raise ValueError('Un-mixing token predictions needs whole tokens (own in {0, 1}); Mixup-style records have '
                         'no un-mixed form: let the token targets follow the record instead.')
    inverse = torch.empty_like(partner)
    inverse[partner] = torch.arange(batch, device=partner.device)
    if not torch.equal(record.own[inverse], record.own):
        raise ValueError('Un-mixing token predictions needs the same mixed region for every sample (one box per '
                         'batch, as MixToken draws it).')
    return inverse


def unmix_tokens(tokens: torch.Tensor, record: MixRecord) -> torch.Tensor:
    """ Move token predictions `(B, N, ...)` of a MixToken forward back to the images the tokens came from.

    Inside the box, sample b's sequence holds the tokens of image `partner[b]`; so image i's token n is found in
    the sequence j with `partner[j] = i`. After this, `out[i, n]` predicts image i's own token n for every n.
    """
    if tokens.shape[:2] != record.shape:
        raise ValueError(f'Token predictions {tuple(tokens.shape)} do not match the mix record {record.shape}.')
    inverse = _check_unmixable(record)
    own = record.own.view(*record.shape, *([1] * (tokens.ndim - 2))).bool()
    return torch.where(own, tokens, tokens[inverse])


def unmixed_record(record: MixRecord) -> MixRecord:
    """ The record that goes with un-mixed token predictions: every token the image's own, class share `lam`. """
    return MixRecord(own=torch.ones_like(record.own), partner=record.partner, lam=record.lam)
