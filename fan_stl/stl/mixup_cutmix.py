"""`MixupCutMix`: timm's Mixup / CutMix switch as a `MixMethod`, with timm's own random draws.

The settings are timm's (`--mixup`, `--cutmix`, `--mixup-prob`, `--mixup-switch-prob`, `--mixup-mode`, ...), read
from the Mixup slot the method runs in; with no Mixup or CutMix alpha configured, the slot only smooths the targets.
"""
import numpy as np
import torch

from timm.data.mixup import cutmix_bbox_and_lam

from .mix_method import MixMethod, Ownership

__all__ = ['MixupCutMix']


class MixupCutMix(MixMethod):
    """ timm's Mixup / CutMix for its 'batch', 'pair' and 'elem' modes. """

    needs_mixup_slot = False  # train.py without --mixup / --cutmix: no slot, no mixing, as timm

    def check_mixer(self, mixer) -> None:
        if not mixer.timm_mixing_configured:
            mixer.mixup_enabled = False  # no mixing configured: image targets are only smoothed

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        if mixer.mode == 'batch':
            lam, use_cutmix = mixer._params_per_batch()
            lams, cutmix = np.full(batch, lam), np.full(batch, use_cutmix)
            pairs = range(1)
        else:
            drawn = batch // 2 if mixer.mode == 'pair' else batch
            lams, cutmix = (np.ones(batch), np.zeros(batch, dtype=bool))
            lams[:drawn], cutmix[:drawn] = mixer._params_per_elem(drawn)
            pairs = range(drawn)
        own = torch.ones(batch, height, width, dtype=torch.float64)
        for i in pairs:
            rows = slice(None) if mixer.mode == 'batch' else [i, batch - 1 - i] if mixer.mode == 'pair' else [i]
            if lams[i] == 1.:
                continue
            if cutmix[i]:
                (top, bottom, left, right), lam = cutmix_bbox_and_lam(
                    (batch, 3, height, width), lams[i], ratio_minmax=mixer.cutmix_minmax,
                    correct_lam=mixer.correct_lam)
                own[rows, top:bottom, left:right] = 0.
            else:
                lam = lams[i]
                own[rows] = lam
            lams[rows] = lam
        return own, torch.from_numpy(np.asarray(lams, dtype=np.float64))
