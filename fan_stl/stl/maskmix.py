"""MixPro's mixing methods: MaskMix's grid mask and MixPro's MaskMix-or-Mixup/CutMix schedule.

`MaskMix(cell, alpha, mode, pairing)` draws MaskMix's pixel ownership: a grid of square cells of `cell x token_stride`
pixels; each sample keeps `ceil(M * r)` of its `M` cells (chosen at random per sample), `r ~ Beta(alpha, alpha)`
drawn once per batch (`mode='batch'`, MixPro's code) or per sample (`mode='elem'`); the rest comes from the partner.
The exact fraction of own pixels is the class share `lam` (cells cropped at the image border count by their visible
area; MixPro's code counts cells, `k / M`, which differs only when cells are cropped).

Cell size: MixPro's 56 px cells are 4 tokens of its patch-14 DeiTs (a 4 x 4 grid at 224 px). With 16 px tokens a
224 px image is 14 tokens wide, so `cell=7` gives a 2 x 2 grid, 2 a 7 x 7 grid, and the default 4 a 4 x 4
grid of 64 px cells whose last row and column are cropped to 32 px (every token still belongs to one image). A cell
that covers the whole image (k = 4 at 64 px) is refused: nothing would be mixed. `mixpro_grid_cell(img_size)` picks
the cell whose grid is MixPro's 4 x 4 (4 at 224 px, 2 at 128 px, 1 at 64 px), or the nearest where whole tokens do
not allow 4 x 4 (32 px: 2 x 2).

`MixPro(p_maskmix, maskmix, timm_mix)` is MixPro's schedule: MaskMix with probability `p_maskmix` per batch, else
timm's Mixup / CutMix (`MixupCutMix`). Both are `MixMethod`s, registered in `fan_stl.stl.mixing.MIX_METHODS`.
"""
import math
from typing import Optional

import numpy as np
import torch

from .mix_method import MixMethod, Ownership, check_token_grid, unmixed
from .mixup_cutmix import MixupCutMix

__all__ = ['MASKMIX_MODES', 'MaskMix', 'MixPro', 'check_maskmix_grid', 'mixpro_grid_cell']

MASKMIX_MODES = ('batch', 'elem')


def check_maskmix_grid(height: int, width: int, cell_tokens: int, token_stride: int = 16) -> None:
    """ Raise a clear error unless MaskMix can mix `height` x `width` images: whole tokens, and at least two cells
    (one cell covering the image would be kept whole by every sample: nothing would ever be mixed). """
    check_token_grid(height, width, token_stride)
    cell = cell_tokens * token_stride
    if cell >= height and cell >= width:
        largest = max(1, (max(height, width) - 1) // token_stride)
        raise ValueError(
            f'MaskMix cannot mix {height}x{width} images with {cell}-pixel cells ({cell_tokens} tokens of '
            f'{token_stride} px): one cell covers the whole image. Use --maskmix-cell {largest} or less (1 gives a '
            f'{height // token_stride} x {width // token_stride} grid), or a larger --img-size.')


def mixpro_grid_cell(img_size: int, token_stride: int = 16) -> int:
    """ The cell side in tokens (`--maskmix-cell`) whose grid is closest to MixPro's 4 x 4 at `img_size`: exactly
    4 x 4 whenever whole-token cells allow it (e.g. 64, 128 and 224 px at 16 px tokens: cells of 1, 2 and 4 tokens,
    the last at 224 px cropped to 2 tokens); else the nearest grid of at least two cells, the smaller on a tie
    (32 px: 2 x 2 of 1-token cells; 96 px: 3 x 3 of 2-token cells). """
    tokens = img_size // token_stride
    if tokens < 2:
        raise ValueError(f'MaskMix needs an image of at least two {token_stride}-pixel tokens per side; got '
                         f'{img_size} px.')
    return min(range(1, tokens), key=lambda cell: (abs(math.ceil(tokens / cell) - 4), math.ceil(tokens / cell)))


class MaskMix(MixMethod):
    """ MixPro's MaskMix grid mask on `--mixup-prob` of the batches (see the module docstring). """

    def __init__(self, cell: int = 4, alpha: float = 1., mode: str = 'batch', pairing: str = 'flip'):
        """
        Args:
            cell: Tokens per mask cell along each side (k, `--maskmix-cell`); a cell is `k * token_stride` pixels.
            alpha: Beta(alpha, alpha) parameter of the kept-cell ratio (`--mix-alpha`).
            mode: `'batch'` (one ratio per batch, MixPro's code) or `'elem'` (one ratio per sample) (`--maskmix-mode`).
            pairing: `'flip'` or `'perm'` (MixPro) (`--mix-pairing`).
        """
        super().__init__(pairing)
        if cell < 1 or alpha <= 0 or mode not in MASKMIX_MODES:
            raise ValueError(f'MaskMix needs --maskmix-cell >= 1, --mix-alpha > 0 and --maskmix-mode in '
                             f'{MASKMIX_MODES}; got {cell}, {alpha} and {mode!r}.')
        self.cell, self.alpha, self.mode = cell, alpha, mode

    @classmethod
    def from_config(cls, config) -> 'MaskMix':
        return cls(config.maskmix_cell, config.mix_alpha, config.maskmix_mode, config.mix_pairing)

    def check_input(self, height: int, width: int, token_stride: int) -> None:
        check_maskmix_grid(height, width, self.cell, token_stride)

    def ownership(self, batch: int, height: int, width: int, token_stride: int = 16) -> torch.Tensor:
        """ MaskMix's pixel ownership `(B, H, W)` float64, 1 = own pixel (see the module docstring). """
        check_maskmix_grid(height, width, self.cell, token_stride)
        cell = self.cell * token_stride
        rows, cols = math.ceil(height / cell), math.ceil(width / cell)
        cells = rows * cols
        ratio = np.random.beta(self.alpha, self.alpha, size=batch if self.mode == 'elem' else 1)
        keep = torch.from_numpy(np.clip(np.ceil(cells * ratio), 1, cells))
        rank = torch.rand(batch, cells).argsort(dim=1).argsort(dim=1)  # a random order of the cells
        cell_own = (rank < keep.view(-1, 1)).double().view(batch, rows, cols)
        return cell_own.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)[:, :height, :width]

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        if np.random.rand() >= mixer.mix_prob:
            return unmixed(batch)
        own = self.ownership(batch, height, width, mixer.token_stride)
        return own, own.mean((1, 2))


class MixPro(MixMethod):
    """ MixPro's schedule: MaskMix with probability `p_maskmix` per batch, else timm's Mixup / CutMix. """

    def __init__(self, p_maskmix: float = 0.5, maskmix: Optional[MaskMix] = None,
                 timm_mix: Optional[MixupCutMix] = None):
        """
        Args:
            p_maskmix: Probability of MaskMix per batch (`--mixpro-p-maskmix`).
            maskmix: The MaskMix of the MaskMix batches (its pairing is the schedule's).
            timm_mix: The Mixup / CutMix of the other batches.
        """
        maskmix = maskmix or MaskMix()
        super().__init__(maskmix.pairing)
        if not 0. <= p_maskmix <= 1.:
            raise ValueError(f'MixPro needs 0 <= --mixpro-p-maskmix <= 1; got {p_maskmix}.')
        self.p_maskmix, self.maskmix, self.timm_mix = p_maskmix, maskmix, timm_mix or MixupCutMix(maskmix.pairing)

    @classmethod
    def from_config(cls, config) -> 'MixPro':
        return cls(config.mixpro_p_maskmix, MaskMix.from_config(config), MixupCutMix.from_config(config))

    def check_mixer(self, mixer) -> None:
        if not mixer.timm_mixing_configured and self.p_maskmix < 1:
            raise ValueError('--mix-method mixpro picks timm\'s Mixup / CutMix on the batches without MaskMix; set '
                             '--mixup and/or --cutmix (MixPro: --mixup 0.8 --cutmix 1.0) or --mixpro-p-maskmix 1.')

    def check_input(self, height: int, width: int, token_stride: int) -> None:
        self.maskmix.check_input(height, width, token_stride)

    def draw(self, mixer, batch: int, height: int, width: int) -> Ownership:
        method = self.maskmix if np.random.rand() < self.p_maskmix else self.timm_mix
        return method.draw(mixer, batch, height, width)
