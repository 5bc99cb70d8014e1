"""The five blur corruptions with the reference's constants; inputs and outputs (N, 3, H, W) in [0, 1].

Size rules (the reference's own, at any H x W): defocus and Gaussian blur use fixed pixel radii; motion blur's
kernel is 2 * radius + 1 taps along a random angle, cut where a shift reaches the image size; zoom blur zooms
centre crops of ceil(side / factor) px back to the full size; glass blur moves pixels within +-max_delta px.
"""
import math
from typing import Sequence

import numpy as np
import torch

from . import draws
from .filters import (
    disk_taps, fft_filter, gaussian_blur as _gaussian, resize_align_corners, separable_filter, zoom_crop_size,
)

GAUSSIAN_SIGMA = (1, 2, 3, 4, 6)
DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # disk radius, anti-alias sigma
GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # sigma, max_delta, iterations
MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # radius, sigma
MOTION_ANGLE = (-45.0, 45.0)
ZOOM_RANGES = ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03))  # np.arange


def gaussian_blur(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ scikit-image `gaussian` with sigma 1-6 px (border 'nearest', truncate 4). """
    sigma = GAUSSIAN_SIGMA[severity - 1]
    return _gaussian(x, (sigma, sigma)).clamp(0, 1)


def defocus_kernel(radius: int, alias_sigma: float) -> torch.Tensor:
    """ The reference's disk: a binary disk of `radius` on a grid of at least 17 x 17, normalised, then smoothed by
    a 3 x 3 (5 x 5 above radius 8) Gaussian of `alias_sigma` (OpenCV border rule). """
    reach, ksize = (8, 3) if radius <= 8 else (radius, 5)
    grid = torch.arange(-reach, reach + 1, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).double()
    disk = disk / disk.sum()
    offsets = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    smooth = torch.exp(-offsets ** 2 / (2 * alias_sigma ** 2))
    smooth = smooth / smooth.sum()
    return separable_filter(disk[None, None], smooth, smooth, 'reflect101')[0, 0]


def defocus_blur(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Correlation with the anti-aliased disk (radius 3-10 px), OpenCV's border (reflect 101). """
    taps = disk_taps(defocus_kernel(*DEFOCUS[severity - 1]))
    return fft_filter(x, [taps], 'reflect101').clamp(0, 1)


def motion_taps(radius: int, sigma: float, angle: float, height: int, width: int) -> torch.Tensor:
    """ The reference's motion kernel as (dy, dx, weight) rows: 2 * radius + 1 half-Gaussian weights, tap i shifted by
    i px along `angle` (degrees, rounded as the reference rounds); taps from the first one that reaches the image
    size on are dropped, as the reference's loop stops there. """
    taps = 2 * radius + 1
    weights = np.exp(-np.arange(taps) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    weights /= weights.sum()
    point = (taps * np.sin(np.deg2rad(angle)), taps * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(*point)
    rows = []
    for i in range(taps):
        dy = -math.ceil(i * point[0] / hypot - 0.5)
        dx = -math.ceil(i * point[1] / hypot - 0.5)
        if abs(dy) >= height or abs(dx) >= width:
            break
        rows.append((dy, dx, weights[i]))
    return torch.tensor(rows, dtype=torch.float64)


def motion_blur_layer(x: torch.Tensor, radius: int, sigma: float, angles: Sequence[float]) -> torch.Tensor:
    """ Each image of `x` blurred along its own angle; borders replicated as the reference's `shift`. """
    height, width = x.shape[-2:]
    taps = [motion_taps(radius, sigma, a, height, width) for a in angles]
    return fft_filter(x, taps, 'replicate', reach=2 * radius)  # the reach of any angle: batch-independent


def motion_blur(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Motion blur of radius 10-20 px along a uniform random angle in [-45, 45] degrees per image. """
    angles = draws.uniform(generators, (), *MOTION_ANGLE).tolist()
    return motion_blur_layer(x, *MOTION[severity - 1], angles).clamp(0, 1)


def zoom_factors(severity: int) -> np.ndarray:
    return np.arange(*ZOOM_RANGES[severity - 1])


def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """ The reference's `clipped_zoom`: the centre ceil(side / factor) crop, zoomed by `factor` (SciPy order 1, size
    rounded), not cut back to the input size. """
    height, width = x.shape[-2:]
    crop_h, crop_w = zoom_crop_size(height, factor), zoom_crop_size(width, factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = x[..., top:top + crop_h, left:left + crop_w]
    return resize_align_corners(crop, (int(round(crop_h * factor)), int(round(crop_w * factor))))


def zoom_blur(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ The mean of the image and its centre zooms by 1 to 1.1-1.3 (11 to 16 zooms). """
    height, width = x.shape[-2:]
    factors = zoom_factors(severity)
    x = x.contiguous(memory_format=torch.channels_last)  # twice as fast bilinear zooms on the CPU
    total = x.clone()
    for factor in factors:
        total += clipped_zoom(x, float(factor))[..., :height, :width]
    return (total / (len(factors) + 1)).clamp(0, 1)


def _sweep_positions(size: int, delta: int, device: torch.device) -> torch.Tensor:
    """ The coordinates the reference's sweep visits along one side: delta + 1 .. size - delta. """
    return torch.arange(delta + 1, size - delta + 1, device=device)


def glass_sources(generators: draws.Generators, height: int, width: int, delta: int, iterations: int
                  ) -> torch.Tensor:
    """ Per image, the pixel (flat index) each pixel holds after the reference's local pixel moves.

    The reference's loop, per iteration, visits (h, w), delta < h, w <= size - delta, from the last row to the first
    and right to left, and does `x[h, w], x[h', w'] = x[h', w'], x[h, w]` with (h', w') = (h + dy, w + dx), dy, dx
    uniform in [-delta, delta). On array views that tuple assignment is a copy, not a swap: x[h, w] takes the
    pixel at (h', w') and (h', w') keeps it. So after the sweep a visited pixel holds the final value of (h', w') if
    the sweep visited (h', w') before it (it lies later in raster order), else the original value there; following
    those links to their end by pointer jumping (log2 of the longest chain steps over the whole image) gives
    exactly the sequential loop's result.
    """
    device = generators[0].device
    count = (height - 2 * delta) * (width - 2 * delta)
    side = 2 * delta
    cells = [draws.integers(generators, (count,), 0, side * side) for _ in range(iterations)]  # one draw per move
    shifts = [torch.stack([cell // side - delta, cell % side - delta], 1) for cell in cells]
    return sources_after_moves(shifts, height, width, delta)


def sources_after_moves(shifts: Sequence[torch.Tensor], height: int, width: int, delta: int) -> torch.Tensor:
    """ `glass_sources` for given moves: per iteration a (N, 2, P) tensor of (dy, dx) for the P visited positions
    in raster order. """
    device = shifts[0].device
    n, pixels = shifts[0].shape[0], height * width
    rows, cols = _sweep_positions(height, delta, device), _sweep_positions(width, delta, device)
    here = (rows[:, None] * width + cols[None, :]).flatten()
    here_rows, here_cols = here // width, here % width
    identity = torch.arange(pixels, device=device).repeat(n, 1)
    inside = (slice(None), slice(delta + 1, height - delta + 1), slice(delta + 1, width - delta + 1))
    index = identity
    for shift in shifts:
        there_rows, there_cols = here_rows + shift[:, 0], here_cols + shift[:, 1]
        there = there_rows * width + there_cols
        visited_before = ((there > here) & (there_rows > delta) & (there_rows <= height - delta)
                          & (there_cols > delta) & (there_cols <= width - delta))
        source = identity.clone()
        source.view(n, height, width)[inside] = there.view(n, len(rows), len(cols))
        link = identity.clone()
        link.view(n, height, width)[inside] = torch.where(visited_before, there, here).view(n, len(rows), len(cols))
        while True:
            jumped = link.gather(1, link)
            if torch.equal(jumped, link):
                break
            link = jumped
        index = index.gather(1, source.gather(1, link))
    return index


def glass_blur(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Gaussian blur, 8-bit truncation, local pixel moves (see `glass_sources`), Gaussian blur again. """
    sigma, delta, iterations = GLASS[severity - 1]
    n, c, height, width = x.shape
    blurred = torch.floor(_gaussian(x, (sigma, sigma)) * 255) / 255
    source = glass_sources(generators, height, width, delta, iterations)
    swapped = blurred.flatten(2).gather(2, source[:, None].expand(-1, c, -1)).view(n, c, height, width)
    return _gaussian(swapped, (sigma, sigma)).clamp(0, 1)
