"""Brightness, contrast, saturate, elastic transform, pixelate and JPEG with the reference's constants; inputs and
outputs (N, 3, H, W) in [0, 1].

Size rules: elastic transform's displacement field (amplitude 0.5 % of the height, smoothing 1 % of each side) and
pixelate's cell size (a 1 / factor downscale) scale with the image, as in the reference; the others are per pixel.
"""
from typing import List

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

from . import draws
from .filters import gaussian_blur

BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # saturation * a + b
ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)
ELASTIC_SIGMA_FRACTION, ELASTIC_DELTA_FRACTION = 0.01, 0.005
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
JPEG_QUALITY = (25, 18, 15, 10, 7)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """ 8-bit values as the reference makes them (`np.uint8` of values * 255: truncated, not rounded). """
    return torch.floor(x.clamp(0, 1) * 255 + 1e-3).to(torch.uint8)


def brightness(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ HSV value + c: hue and saturation are kept, so the RGB triple scales by the new value over the old one. """
    value = x.amax(1, keepdim=True)
    brighter = (value + BRIGHTNESS[severity - 1]).clamp(0, 1)
    return torch.where(value > 0, x * brighter / value.clamp_min(1e-12), brighter).clamp(0, 1)


def contrast(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ (x - channel mean) * c + channel mean, per image. """
    means = x.mean((2, 3), keepdim=True)
    return ((x - means) * CONTRAST[severity - 1] + means).clamp(0, 1)


def saturate(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ HSV saturation * a + b (clipped to [0, 1]), hue and value kept.

    Closed form of scikit-image's rgb2hsv -> hsv2rgb round trip: with hue and value fixed, each channel's distance
    to the value scales with the saturation, c' = v - (v - c) * s' / s; a grey pixel (s = 0, hue 0 = red) becomes
    (v, v (1 - s'), v (1 - s')).
    """
    scale, shift = SATURATE[severity - 1]
    value = x.amax(1, keepdim=True)
    delta = value - x.amin(1, keepdim=True)
    saturation = torch.where(value > 0, delta / value.clamp_min(1e-12), torch.zeros_like(value))
    new = (saturation * scale + shift).clamp(0, 1)
    coloured = value - (value - x) * new / saturation.clamp_min(1e-12)
    grey = torch.cat([value, value * (1 - new), value * (1 - new)], 1)
    return torch.where(delta > 0, coloured, grey).clamp(0, 1)


def elastic_transform(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Bilinear resampling along a smooth random field: uniform +-0.5 % of the height per pixel, Gaussian-smoothed
    (sigma 1 % of each side, SciPy 'reflect' border, truncate 3), times alpha; borders mirrored (SciPy 'reflect'). """
    n, _, height, width = x.shape
    delta = height * ELASTIC_DELTA_FRACTION
    sigma = (height * ELASTIC_SIGMA_FRACTION, width * ELASTIC_SIGMA_FRACTION)
    field = draws.uniform(generators, (2, height, width), -delta, delta).to(x.dtype)
    field = gaussian_blur(field, sigma, mode='symmetric', truncate=3) * ELASTIC_ALPHA[severity - 1]
    rows = torch.arange(height, device=x.device, dtype=x.dtype)[:, None] + field[:, 1]
    cols = torch.arange(width, device=x.device, dtype=x.dtype)[None, :] + field[:, 0]
    grid = torch.stack([(2 * cols + 1) / width - 1, (2 * rows + 1) / height - 1], -1)
    out = F.grid_sample(x, grid, mode='bilinear', padding_mode='reflection', align_corners=False)
    return out.clamp(0, 1)


def _box_matrix(size: int, out_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """ Pillow's BOX downscale as a matrix: output pixel o averages the input pixels whose centres lie in its box. """
    scale = size / out_size
    centres = torch.arange(size, device=device, dtype=torch.float64) + 0.5
    low = torch.arange(out_size, device=device, dtype=torch.float64)[:, None] * scale
    inside = ((centres[None, :] >= low) & (centres[None, :] < low + scale)).double()
    return (inside / inside.sum(1, keepdim=True)).to(dtype)


def pixelate(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Pillow's BOX downscale to int(side * factor) (horizontal pass, 8-bit rounding, vertical pass, 8-bit rounding),
    then NEAREST back to the full size. """
    height, width = x.shape[-2:]
    factor = PIXELATE[severity - 1]
    small_h, small_w = int(height * factor), int(width * factor)
    values = torch.round(x * 255)
    values = torch.floor(values @ _box_matrix(width, small_w, x.device, x.dtype).T + 0.5)
    values = torch.floor(_box_matrix(height, small_h, x.device, x.dtype) @ values + 0.5)
    rows = torch.floor((torch.arange(height, device=x.device) + 0.5) * small_h / height).long()
    cols = torch.floor((torch.arange(width, device=x.device) + 0.5) * small_w / width).long()
    return values[..., rows, :][..., cols] / 255


def jpeg_round_trip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """ Each image encoded as JPEG at `quality` and decoded (torchvision; on the GPU for CUDA tensors). """
    encoded: List[torch.Tensor] = encode_jpeg(list(to_uint8(x)), quality=quality)
    decoded = decode_jpeg([data.cpu() for data in encoded], device=x.device)  # decode_jpeg reads bytes on the CPU
    return torch.stack(decoded).to(x.dtype) / 255


def jpeg_compression(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ JPEG at quality 25 to 7. """
    return jpeg_round_trip(x, JPEG_QUALITY[severity - 1])
