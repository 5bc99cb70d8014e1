"""`MixMethod`: what a mixing method is, owns and answers; the partner pairings every method shares.

A mixing method is a small object built from `STLConfig` by its `MIX_METHODS` entry (`fan_stl.stl.mixing`), holding
its own settings, checked once in its constructor. It answers:

* `draw(mixer, batch, height, width) -> (own, lam)`: the pixel ownership `own` (`(B, H, W)` or broadcastable, 1 = the
  sample's own pixel, 0 = its partner's, fractions for blends; float64) and the class share `lam (B,)` of one batch;
  `mixer` is the timm `Mixup` / `FastCollateMixup` slot it runs in (timm's own draws, `mix_prob`, `token_stride`);
* `partners(batch)`: the partner of each sample (`pairing`: `'flip'`, timm's reversed batch, or `'perm'`, a random
  permutation);
* `token_mixer`: for a method that mixes tokens inside the model, the callable `(batch, grid, device) -> MixRecord`
  the task runs (None for pixel-space methods);
* `needs_mixup_slot`: drawn in timm's Mixup slot, which train.py only creates with `--mixup` / `--cutmix` > 0;
* the checks `check_mixer(mixer)`, `check_input(height, width, token_stride)` and `check_model(model)`, which refuse a
  combination that cannot work before the first step, naming the fix.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn

__all__ = ['PAIRINGS', 'Ownership', 'MixMethod', 'check_token_grid', 'unmixed']

Ownership = Tuple[torch.Tensor, torch.Tensor]  # own (B, H, W) or broadcastable, lam (B,); float64


def _random_permutation(batch: int, device: Optional[torch.device] = None) -> torch.Tensor:
    return torch.randperm(batch, device=device)


def _reversed_batch(batch: int, device: Optional[torch.device] = None) -> torch.Tensor:
    return torch.arange(batch - 1, -1, -1, device=device)


# name -> partners(batch, device) -> (B,) partner indices
PAIRINGS: Dict[str, Callable[[int, Optional[torch.device]], torch.Tensor]] = {
    'perm': _random_permutation,  # MixPro
    'flip': _reversed_batch,  # timm, LV-ViT
}


def unmixed(batch: int) -> Ownership:
    """ The ownership of a batch left as it is. """
    return torch.ones(batch, 1, 1, dtype=torch.float64), torch.ones(batch, dtype=torch.float64)


def check_token_grid(height: int, width: int, token_stride: int) -> None:
    """ Raise a clear error unless the image is a whole number of tokens. """
    if height % token_stride or width % token_stride:
        raise ValueError(
            f'Mixing with a per-token record needs an image height and width that are multiples of the token stride '
            f'{token_stride}; got {height}x{width}. Use --img-size / --input-size a multiple of {token_stride}.')


class MixMethod:
    """ A mixing method (see the module docstring); subclasses add their settings and `draw`. """

    needs_mixup_slot = True
    token_mixer: Optional[Callable[..., object]] = None

    def __init__(self, pairing: str = 'flip'):
        """
        Args:
            pairing: `'flip'` (the reversed batch, timm / LV-ViT) or `'perm'` (a random permutation, MixPro).
        """
        if pairing not in PAIRINGS:
            raise ValueError(f'Unknown pairing {pairing!r} (--mix-pairing / mix_pairing): choose one of '
                             f'{tuple(PAIRINGS)}.')
        self.pairing = pairing

    @classmethod
    def from_config(cls, config) -> 'MixMethod':
        """ The method with the settings of an `STLConfig` (its `MIX_METHODS` entry calls this). """
        return cls(pairing=config.mix_pairing)

    def partners(self, batch: int, device: Optional[torch.device] = None) -> torch.Tensor:
        """ `(B,)` partner indices of a batch. """
        return PAIRINGS[self.pairing](batch, device)

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        raise NotImplementedError(f'{type(self).__name__} must implement draw(mixer, batch, height, width).')

    def check_mixer(self, mixer) -> None:
        """ Refuse (or switch off) the timm Mixup settings of `mixer` this method cannot use. """

    def check_input(self, height: int, width: int, token_stride: int) -> None:
        """ Refuse, before the first step, images this method cannot mix. """

    def check_model(self, model: nn.Module) -> None:
        """ Refuse a model this method cannot train. """

    def __repr__(self) -> str:
        settings = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({settings})'
