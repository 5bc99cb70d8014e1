"""MaskMix (MixPro)'s grid mask and the partner pairings shared by the mixing methods.

`maskmix_ownership` draws MaskMix's pixel ownership: a grid of square cells of `cell_tokens x token_stride` pixels;
each sample keeps `ceil(M * r)` of its `M` cells (chosen at random per sample), `r ~ Beta(alpha, alpha)` drawn once
per batch (`mode='batch'`, MixPro's code) or per sample (`mode='elem'`); the rest comes from the partner. The exact
fraction of own pixels is the class share `lam` (cells cropped at the image border count by their visible area).

Cell size: MixPro's 56 px cells are 4 tokens of its patch-14 DeiTs (a 4 x 4 grid at 224 px). With 16 px tokens a
224 px image is 14 tokens wide, so `cell_tokens=7` gives a 2 x 2 grid, 2 a 7 x 7 grid, and the default 4 a 4 x 4
grid of 64 px cells whose last row and column are cropped to 32 px (every token still belongs to one image). A cell
that covers the whole image (k = 4 at 64 px) is refused: nothing would be mixed.

`pair_partners` gives the partner of every sample: `'perm'` (a random permutation, MixPro) or `'flip'` (the reversed
batch, timm and LV-ViT). The mixing methods themselves are the `MIX_METHODS` of `fan_stl.stl.mixing`.
"""
import math
from typing import Optional

import numpy as np
import torch

__all__ = ['PAIRINGS', 'MASKMIX_MODES', 'pair_partners', 'check_token_grid', 'check_maskmix_grid',
           'mixpro_grid_cell', 'maskmix_ownership']

PAIRINGS = ('perm', 'flip')
MASKMIX_MODES = ('batch', 'elem')


def pair_partners(batch: int, pairing: str, device: Optional[torch.device] = None) -> torch.Tensor:
    """ `(B,)` partner indices: a random permutation (`'perm'`, MixPro) or the reversed batch (`'flip'`, timm). """
    if pairing == 'perm':
        return torch.randperm(batch, device=device)
    if pairing == 'flip':
        return torch.arange(batch - 1, -1, -1, device=device)
    raise ValueError(f'Unknown pairing {pairing!r}; choose one of {PAIRINGS}.')


def check_token_grid(height: int, width: int, token_stride: int) -> None:
    """ Raise a clear error unless the image is a whole number of tokens. """
    if height % token_stride or width % token_stride:
        raise ValueError(
            f'Mixing with a per-token record needs an image height and width that are multiples of the token stride '
            f'{token_stride}; got {height}x{width}. Use --img-size / --input-size a multiple of {token_stride}.')


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
    """ The cell side in tokens (`--maskmix-cell`) that gives MixPro's 4 x 4 grid at `img_size` (at least 1). """
    return max(1, img_size // (4 * token_stride))


def maskmix_ownership(
        batch: int,
        height: int,
        width: int,
        cell_tokens: int = 4,
        alpha: float = 1.,
        mode: str = 'batch',
        token_stride: int = 16,
) -> torch.Tensor:
    """ MaskMix's pixel ownership `(B, H, W)` float64, 1 = own pixel (see the module docstring).

    Args:
        batch, height, width: The batch of images to mix.
        cell_tokens: Tokens per mask cell along each side (k); a cell is `k * token_stride` pixels.
        alpha: Beta(alpha, alpha) parameter of the kept-cell ratio.
        mode: `'batch'` (one ratio per batch, MixPro's code) or `'elem'` (one ratio per sample).
        token_stride: Pixels per token side of the student (16 for FAN and p16 ViTs).
    """
    if cell_tokens < 1 or alpha <= 0:
        raise ValueError(f'MaskMix needs a cell of >= 1 token and alpha > 0; got {cell_tokens} and {alpha}.')
    if mode not in MASKMIX_MODES:
        raise ValueError(f"MaskMix mode must be 'batch' (one ratio per batch) or 'elem' (per sample); got {mode!r}.")
    check_maskmix_grid(height, width, cell_tokens, token_stride)
    cell = cell_tokens * token_stride
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    cells = rows * cols
    ratio = np.random.beta(alpha, alpha, size=batch if mode == 'elem' else 1)
    keep = torch.from_numpy(np.clip(np.ceil(cells * ratio), 1, cells))
    rank = torch.rand(batch, cells).argsort(dim=1).argsort(dim=1)  # a random order of the cells
    cell_own = (rank < keep.view(-1, 1)).double().view(batch, rows, cols)
    return cell_own.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)[:, :height, :width]
