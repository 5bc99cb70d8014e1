"""The 15 + 4 ImageNet-C corruptions as batched torch operations (CPU or CUDA), measured against `imagecorruptions`.

    from fan_stl.robustness.torch_corruptions import corrupt_batch
    out = corrupt_batch(images, 'motion_blur', 3, seed=0, keys=paths)   # images: (N, 3, H, W) float in [0, 1]

Each corruption follows the `imagecorruptions` (imagecorruptions-imaug) function of the same name: the same
per-severity constants and steps, at any image size by the reference's own size rules (see each module's
docstring). Image n of a batch is corrupted from its own generator, seeded by (seed, keys[n], corruption, severity)
(`keys` default: the positions 0..N-1), so a result depends neither on the batch nor on the device's other work.
Random corruptions draw from torch's generators, not numpy's: they agree with the reference in distribution, not
image for image; benchmarks/corruption_agreement.py measures how closely (table in benchmarks/RESULTS.md).
Glass blur's pixel moves are the reference's sequential loop, computed in parallel with the same result
(`blur.glass_sources`); JPEG is torchvision's libjpeg encoder, not Pillow's (identical files in the measurements).
Frost reads its six textures from the installed imagecorruptions package (they are not shipped with fan_stl).
"""
from typing import Callable, Dict, Optional, Sequence, Union

import torch

from ..names import ALL_CORRUPTIONS, SEVERITIES
from ..seeds import cell_seed
from . import blur, digital, noise, spatter as spatter_module, weather
from .draws import Generators, make_generators

Corruption = Callable[[torch.Tensor, int, Generators], torch.Tensor]
CORRUPTIONS: Dict[str, Corruption] = {
    'gaussian_noise': noise.gaussian_noise, 'shot_noise': noise.shot_noise, 'impulse_noise': noise.impulse_noise,
    'defocus_blur': blur.defocus_blur, 'glass_blur': blur.glass_blur, 'motion_blur': blur.motion_blur,
    'zoom_blur': blur.zoom_blur, 'snow': weather.snow, 'frost': weather.frost, 'fog': weather.fog,
    'brightness': digital.brightness, 'contrast': digital.contrast, 'elastic_transform': digital.elastic_transform,
    'pixelate': digital.pixelate, 'jpeg_compression': digital.jpeg_compression,
    'speckle_noise': noise.speckle_noise, 'gaussian_blur': blur.gaussian_blur, 'spatter': spatter_module.spatter,
    'saturate': digital.saturate,
}
assert tuple(CORRUPTIONS) == ALL_CORRUPTIONS
MIN_SIZE = 32  # the reference refuses smaller images, and its constants assume at least this
to_uint8 = digital.to_uint8


def check_request(corruption: str, severity: int) -> None:
    """ A clear error for an unknown corruption name or a severity outside 1-5. """
    if corruption not in CORRUPTIONS:
        raise ValueError(f'unknown corruption {corruption!r}; choose from: {", ".join(ALL_CORRUPTIONS)}')
    if severity not in SEVERITIES:
        raise ValueError(f'severity must be one of 1-5, got {severity!r}')


def as_batch(images: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """ A (N, 3, H, W) float batch in [0, 1] from a tensor or a list of (3, H, W) tensors (uint8 is scaled by
    1/255); images of different sizes are refused. """
    if not isinstance(images, torch.Tensor):
        sizes = sorted({tuple(image.shape) for image in images})
        if len(sizes) > 1:
            raise ValueError(f'a batch holds images of one size, got {len(sizes)} sizes ({sizes[0]}, {sizes[1]}, ...): '
                             f'corrupt images of different sizes in separate batches (or resize them first)')
        if not sizes:
            raise ValueError('the batch is empty')
        images = torch.stack(list(images))
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'expected RGB images as a (N, 3, H, W) tensor, got shape {tuple(images.shape)}; convert grey '
                         f'or RGBA images to RGB first')
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise ValueError(f'expected float images in [0, 1] or uint8, got {images.dtype}; scale 16-bit images to 8 bits '
                         f'(fan_stl.robustness.images.to_rgb) first')
    return images


def corrupt_batch(
        images: Union[torch.Tensor, Sequence[torch.Tensor]],
        corruption: str,
        severity: int,
        seed: int = 0,
        keys: Optional[Sequence[Union[int, str]]] = None,
) -> torch.Tensor:
    """ The corrupted batch (N, 3, H, W) float in [0, 1], on the images' device.

    `keys` name the images for their seeds (e.g. relative paths; default 0..N-1): the same (seed, key, corruption,
    severity) gives the same output in any batch. Round with `to_uint8` for the reference's 8-bit images.
    """
    check_request(corruption, severity)
    batch = as_batch(images)
    height, width = batch.shape[-2:]
    if min(height, width) < MIN_SIZE:
        raise ValueError(f'{corruption} needs images of at least {MIN_SIZE}x{MIN_SIZE} px, got {width}x{height}: '
                         f'resize them first')
    keys = list(range(len(batch))) if keys is None else list(keys)
    if len(keys) != len(batch):
        raise ValueError(f'{len(keys)} keys for {len(batch)} images; give one key per image')
    generators = make_generators([cell_seed(seed, str(k), corruption, severity) for k in keys], batch.device)
    return CORRUPTIONS[corruption](batch, severity, generators)
