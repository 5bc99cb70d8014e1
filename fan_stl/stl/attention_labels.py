"""Attention-based class targets: MixPro's progressive attention labeling (PAL) and TransMix.

Both rewrite only `MixRecord.lam` (the class-target share of each sample's own image) after the forward pass, from
the class-token attention over the patch tokens `attn (B, N)` (FAN: `model(x, return_attn=True)`, the last
class-attention block, averaged over heads, detached). With `own` the record's per-token own share:

    lam_attn = sum_n own[b, n] * attn[b, n] / sum_n attn[b, n]          (attention mass on the own region)

* TransMix (released code): `lam = (lam_area + lam_attn) / 2`. (The TransMix paper describes the attention term
  alone; its code averages it with the area.) Which tokens count as the partner's in `lam_attn` (`tokens`,
  `--transmix-tokens`): `top_left` (default, the released `transmix.py`: its pixel box resized to the token grid by
  nearest neighbour, so a token is inside when its top-left pixel is; `MixRecord.corner`) or `pixel_share` (each
  token weighted by its exact share of own pixels, `MixRecord.own`). On timm's CutMix pixel boxes at 224 px the two
  class shares differ by 0.012 on average for a uniform attention map and 0.017 for a peaked one (up to 0.06-0.39
  on single samples); they agree on whole-token and Mixup records.
* PAL (MixPro's code): `lam = alpha * lam_attn + (1 - alpha) * lam_area`, with the per-sample "progressive factor"
  `alpha = cos(area class target, softmax(logits))`, in [0, 1]: near 0 while predictions are uniform (the area label
  rules), towards 1 once they follow the mixed target (the attention label takes over). MixPro does not detach
  `alpha`, so gradients also flow through the label; `alpha_grad=True` (`--pal-alpha-grad`) reproduces that, the
  default detaches it. `alpha` may also be given as a fixed number: 0.5 is the equal average that MixPro's code leaves
  commented out (and TransMix's rule). No other form of alpha is offered: MixPro's released code has no other (its
  paper's text was not compared).

Where they apply: MixPro uses PAL on MaskMix batches only, TransMix on CutMix batches only. A Mixup record owns the
same share of every token, so `lam_attn = lam_area` and both rules leave it unchanged: applying them to every batch
only differs from the originals on the spatial batches of the other method (PAL on CutMix, TransMix on MaskMix;
so `--mix-method mixpro --attention-relabel pal` also relabels its CutMix batches, which MixPro does not).

Targets: here the class target is `relabel(record, lam).class_target(own)` with each sample's own label-smoothed
target (`--smoothing`), and PAL's alpha compares the prediction with the smoothed area target. MixPro's PAL batches use
unsmoothed one-hot targets with the rewritten lam, while its alpha and its Mixup / CutMix batches keep smoothing 0.1.
`--smoothing 0` therefore matches MixPro's PAL-batch targets only: it also removes the smoothing from alpha's target
and from the Mixup / CutMix batches, so no setting gives MixPro's PAL-on loss exactly. (MixPro's released
configurations all have PAL off: `--mix-method mixpro --mix-pairing perm --attention-relabel none` is that recipe.)

Each rule is a small object holding its own settings (`PAL(alpha, alpha_grad)`, `TransMix()`), built from `STLConfig`
by its `ATTENTION_RELABELS` entry (`'none'` builds no rule) and called by the task as
`rule(record, attn, logits, own) -> record`. Adding a rule is one class and one registry line.
"""
import dataclasses
import inspect
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mix_record import MixRecord

__all__ = ['ATTENTION_RELABELS', 'TRANSMIX_TOKENS', 'AttentionRelabel', 'PAL', 'TransMix', 'build_relabel',
           'attention_own_share', 'transmix_lam', 'pal_alpha', 'pal_lam', 'relabel']

# which token ownership TransMix's attention term reads: name -> record -> (B, N)
_TRANSMIX_TOKENS: Dict[str, Callable[[MixRecord], torch.Tensor]] = {
    'top_left': lambda record: record.corner,  # the released transmix.py (nearest-neighbour token mask)
    'pixel_share': lambda record: record.own,
}
TRANSMIX_TOKENS = tuple(_TRANSMIX_TOKENS)


def _check_attention(attn: torch.Tensor, record: MixRecord) -> torch.Tensor:
    if tuple(attn.shape) != record.shape:
        raise ValueError(
            f'Attention {tuple(attn.shape)} does not match the mix record {record.shape}: pass the class-token '
            f'attention over the patch tokens only (B, N), on the token grid the record was made for.')
    if (attn < 0).any():
        raise ValueError('Attention weights must be non-negative (a softmax row).')
    return attn.detach().float()


def attention_own_share(attn: torch.Tensor, record: MixRecord, own: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ `(B,)` share of each sample's patch attention that falls on its own content (`lam_attn`), the tokens
    weighted by `own (B, N)` (default: `record.own`, each token's exact share of own pixels). """
    attn = _check_attention(attn, record)
    total = attn.sum(dim=1).clamp_min(torch.finfo(attn.dtype).tiny)
    return ((record.own if own is None else own).to(attn) * attn).sum(dim=1) / total


def transmix_lam(attn: torch.Tensor, record: MixRecord, tokens: str = 'top_left') -> torch.Tensor:
    """ TransMix's class share `(lam_area + lam_attn) / 2`, `(B,)`, a token counted as own by its top-left pixel
    (`'top_left'`, the released code) or by its exact share of own pixels (`'pixel_share'`). """
    return 0.5 * (record.lam.float() + attention_own_share(attn, record, _TRANSMIX_TOKENS[tokens](record)))


def pal_alpha(logits: torch.Tensor, soft: torch.Tensor, record: MixRecord, detach: bool = True) -> torch.Tensor:
    """ MixPro's progressive factor `cos(class_target(soft, record), softmax(logits))`, `(B,)` in [0, 1].

    Args:
        logits: Class logits `(B, K)` of the mixed batch.
        soft: Each sample's own (smoothed) target `(B, K)` (the packed soft columns).
        record: The batch's mix record (its area `lam` builds the target).
        detach: Stop gradients through alpha (MixPro's code does not; False reproduces it).
    """
    probs = logits.float().softmax(dim=-1)
    alpha = F.cosine_similarity(record.class_target(soft), probs, dim=-1)
    return alpha.detach() if detach else alpha


def pal_lam(
        attn: torch.Tensor,
        record: MixRecord,
        alpha: Union[torch.Tensor, float],
) -> torch.Tensor:
    """ PAL's class share `alpha * lam_attn + (1 - alpha) * lam_area`, `(B,)`; `alpha` per sample or fixed (a fixed
    one is checked by `PAL`). """
    return alpha * attention_own_share(attn, record) + (1. - alpha) * record.lam.float()


def relabel(record: MixRecord, lam: torch.Tensor) -> MixRecord:
    """ The same record with the class share replaced (token ownership and pairing unchanged). """
    return dataclasses.replace(record, lam=lam)


class AttentionRelabel:
    """ A rule rewriting `MixRecord.lam` from the last class-attention map (see the module docstring). """

    def __call__(self, record: MixRecord, attn: torch.Tensor, logits: torch.Tensor, own: torch.Tensor) -> MixRecord:
        """ The record with `lam` rewritten, from the attention `(B, N)`, the class logits `(B, K)` and each sample's
        own target `(B, K)`. """
        raise NotImplementedError

    @classmethod
    def from_config(cls, config) -> 'AttentionRelabel':
        return cls()

    def check_model(self, model: nn.Module) -> None:
        """ Refuse a model without the class-attention output the rule reads. """
        forward = getattr(model, '_orig_mod', model).forward
        if 'return_attn' not in inspect.signature(forward).parameters or not len(getattr(model, 'cls_attn_blocks', ())):
            raise ValueError(
                f'{type(self).__name__} (--attention-relabel) reads the last class-attention map (model(x, '
                f'return_attn=True)), which {type(model).__name__} does not provide. Use a FAN model with '
                f'class-attention blocks, or --attention-relabel none.')


class TransMix(AttentionRelabel):
    """ TransMix (its released code): `lam = (lam_area + lam_attn) / 2`. """

    def __init__(self, tokens: str = 'top_left'):
        """
        Args:
            tokens: Which tokens are the partner's in `lam_attn`: `'top_left'` (those whose top-left pixel is, as the
                released code) or `'pixel_share'` (each by its exact pixel share) (`--transmix-tokens`).
        """
        if tokens not in _TRANSMIX_TOKENS:
            raise ValueError(f'transmix_tokens (--transmix-tokens) must be one of {TRANSMIX_TOKENS}; got {tokens!r}.')
        self.tokens = tokens

    @classmethod
    def from_config(cls, config) -> 'TransMix':
        return cls(config.transmix_tokens)

    def __call__(self, record: MixRecord, attn: torch.Tensor, logits: torch.Tensor, own: torch.Tensor) -> MixRecord:
        return relabel(record, transmix_lam(attn, record, self.tokens))


class PAL(AttentionRelabel):
    """ MixPro's progressive attention labeling: `lam = alpha * lam_attn + (1 - alpha) * lam_area`. """

    def __init__(self, alpha: Optional[float] = None, alpha_grad: bool = False):
        """
        Args:
            alpha: None for the per-sample cosine of MixPro's code, a fixed number in [0, 1] otherwise (`--pal-alpha`).
            alpha_grad: Let gradients flow through the cosine alpha (as MixPro's code; `--pal-alpha-grad`).
        """
        if alpha is not None and not 0. <= alpha <= 1.:
            raise ValueError(f'pal_alpha (--pal-alpha) must be in [0, 1] (or unset for the per-sample cosine); got '
                             f'{alpha}.')
        self.alpha, self.alpha_grad = alpha, alpha_grad

    @classmethod
    def from_config(cls, config) -> 'PAL':
        return cls(config.pal_alpha, config.pal_alpha_grad)

    def __call__(self, record: MixRecord, attn: torch.Tensor, logits: torch.Tensor, own: torch.Tensor) -> MixRecord:
        factor = pal_alpha(logits, own, record, detach=not self.alpha_grad) if self.alpha is None else self.alpha
        return relabel(record, pal_lam(attn, record, factor))


def _no_relabel(config) -> None:
    return None


# name -> builder(STLConfig) -> rule (None: the area lam is kept); see the module docstring
ATTENTION_RELABELS: Dict[str, Callable[..., Optional[AttentionRelabel]]] = {
    'none': _no_relabel,
    'pal': PAL.from_config,
    'transmix': TransMix.from_config,
}


def build_relabel(config) -> Optional[AttentionRelabel]:
    """ The attention relabelling rule of an `STLConfig` (None for `'none'`), its settings checked by the rule. """
    if config.attention_relabel not in ATTENTION_RELABELS:
        raise ValueError(f'Unknown attention relabelling {config.attention_relabel!r}; choose one of '
                         f'{tuple(ATTENTION_RELABELS)}.')
    return ATTENTION_RELABELS[config.attention_relabel](config)
