"""Snow, frost and fog with the reference's constants; inputs and outputs (N, 3, H, W) in [0, 1].

Size rules (the reference's own): fog's plasma fractal is drawn on the next power of two of the longer side and
cropped; snow flakes are noise zoomed by a fixed factor and motion-blurred with fixed pixel radii; frost's texture is
scaled up to cover the image (x 1.1) only when smaller than it, then a random crop is taken.
"""
import functools
import importlib.resources
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import draws
from .blur import clipped_zoom, motion_blur_layer

FOG = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # strength, wibble decay
FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # image weight, frost weight
FROST_FILES = ('frost1.png', 'frost2.png', 'frost3.png', 'frost4.jpg', 'frost5.jpg', 'frost6.jpg')
SNOW = ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
SNOW_ANGLE = (-135.0, -45.0)
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY


def next_power_of_two(n: int) -> int:
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


def plasma_fractal(generators: draws.Generators, size: int, decay: float) -> torch.Tensor:
    """ The reference's diamond-square height map (size a power of two), per image, scaled to [0, 1]. All of an
    image's uniform draws are taken at once and then used step by step, in the reference's order. """
    n, device = len(generators), generators[0].device
    heights = torch.zeros(n, size, size, device=device)
    shapes, step = [], size
    while step >= 2:
        cells = size // step
        shapes += [(cells, cells)] * 3
        step //= 2
    noise = draws.uniform(generators, (sum(h * w for h, w in shapes),), -1.0, 1.0).split([h * w for h, w in shapes], 1)
    step, wibble, draw = size, 100.0, iter(zip(noise, shapes))

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        values, shape = next(draw)
        return total / 4 + wibble * wibble * values.view(n, *shape)  # wibble * uniform(-wibble, wibble)

    while step >= 2:
        half = step // 2
        corners = heights[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        heights[:, half::step, half::step] = wibbled_mean(squares)
        centres = heights[:, half::step, half::step]
        corners = heights[:, 0::step, 0::step]
        heights[:, 0::step, half::step] = wibbled_mean(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        heights[:, half::step, 0::step] = wibbled_mean(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= decay
    heights = heights - heights.amin((1, 2), keepdim=True)
    return heights / heights.amax((1, 2), keepdim=True)


def fog(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ x + strength * plasma, rescaled by max / (max + strength) with the image's maximum. """
    strength, decay = FOG[severity - 1]
    height, width = x.shape[-2:]
    plasma = plasma_fractal(generators, next_power_of_two(max(height, width)), decay)[:, None, :height, :width]
    peak = x.amax((1, 2, 3), keepdim=True)
    return ((x + strength * plasma.to(x.dtype)) * peak / (peak + strength)).clamp(0, 1)


@functools.lru_cache(maxsize=None)
def frost_texture(index: int) -> torch.Tensor:
    """ Frost texture `index` (3, h, w) as float 0-255, read from the installed `imagecorruptions` package (its
    files are not shipped with fan_stl). """
    try:
        folder = importlib.resources.files('imagecorruptions') / 'frost'
    except ModuleNotFoundError:
        from ...utils.extras import install_hint
        raise ImportError(f'the frost corruption reads its textures from the package imagecorruptions-imaug, which '
                          f'is not installed: {install_hint("robustness")}') from None
    with importlib.resources.as_file(folder / FROST_FILES[index]) as path, Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert('RGB'))).permute(2, 0, 1).float()


def frost_scale(texture_hw: Tuple[int, int], image_hw: Tuple[int, int]) -> float:
    """ The reference's factor: 1 if the texture covers the image, else the larger side ratio; then x 1.1. """
    ratios = [i / t for t, i in zip(texture_hw, image_hw) if t < i]
    return 1.1 * (max(ratios) if ratios else 1.0)


@functools.lru_cache(maxsize=32)
def scaled_frost(index: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """ The texture resized as the reference resizes it (bicubic, rounded to 8 bits) for an image of this size. """
    texture = frost_texture(index)
    scale = frost_scale(tuple(texture.shape[1:]), (height, width))
    size = (int(np.ceil(texture.shape[1] * scale)), int(np.ceil(texture.shape[2] * scale)))
    resized = F.interpolate(texture[None], size=size, mode='bicubic', align_corners=False)[0]
    return resized.round().clamp(0, 255).to(device)


def frost_layer(index: int, top: int, left: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """ The (3, height, width) crop at (top, left) of frost texture `index` scaled for this image size (0-255). """
    return scaled_frost(index, height, width, device)[:, top:top + height, left:left + width]


def frost(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ a * x + b * a random crop of one of the six frost textures (chosen per image). """
    image_weight, frost_weight = FROST[severity - 1]
    height, width = x.shape[-2:]
    layers = []
    for g in generators:
        index = int(torch.randint(len(FROST_FILES), (), generator=g, device=g.device))
        scaled_h, scaled_w = scaled_frost(index, height, width, x.device).shape[1:]
        top = int(torch.randint(scaled_h - height, (), generator=g, device=g.device))
        left = int(torch.randint(scaled_w - width, (), generator=g, device=g.device))
        layers.append(frost_layer(index, top, left, height, width, x.device))
    return ((image_weight * x * 255 + frost_weight * torch.stack(layers).to(x.dtype)) / 255).clamp(0, 1)


def snow(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Flakes (normal noise, zoomed, thresholded, motion-blurred along [-135, -45] degrees, 8-bit rounded) added twice
    (as is and turned by 180 degrees) to the image blended towards its brightened grey. """
    mean, std, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    height, width = x.shape[-2:]
    flakes = draws.normal(generators, (1, height, width), mean=mean, std=std)
    flakes = clipped_zoom(flakes, zoom)
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp(0, 1)
    angles = draws.uniform(generators, (), *SNOW_ANGLE).tolist()
    flakes = motion_blur_layer(flakes, radius, sigma, angles)
    flakes = (torch.round(flakes * 255) / 255)[..., :height, :width].to(x.dtype)
    grey = sum(w * channel for w, channel in zip(GREY_WEIGHTS, x.unbind(1)))[:, None]
    x = blend * x + (1 - blend) * torch.maximum(x, grey * 1.5 + 0.5)
    return (x + flakes + flakes.flip(-2, -1)).clamp(0, 1)
