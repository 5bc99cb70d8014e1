"""PixMix (Hendrycks, Zou et al.: "PixMix: Dreamlike Pictures Comprehensively Improve Safety Measures", CVPR 2022) as
a batch op, following the authors' MIT code (andyzoujm/pixmix, `pixmix` in imagenet.py, mixings in pixmix_utils.py).

Per image: start from the image or an augmented copy (probability 1/2 each); then `n ~ U{0..k}` times, take an
augmented copy of the image or a picture of the mixing set (1/2 each) and combine with `add` or `multiply` (1/2 each),
clipping to [0, 1]. With `(a, b)` drawn as the authors' `get_ab(beta)` (1/2: `a ~ Beta(beta, 1)`, `b ~ Beta(1, beta)`;
else `a = 1 + Beta(1, beta)`, `b = -Beta(1, beta)`):

    add(x, y)      = (a (2x - 1) + b (2y - 1) + 1) / 2
    multiply(x, y) = ((2x)^a * max(2y, 1e-37)^b) / 2

The authors' augmentation is one random op of AugMix's list (autocontrast, equalize, posterize, solarize, rotate,
shear, translate); here the photometric four only (on the device, torchvision's tensor ops), so that PixMix keeps the
geometry and runs in stage stl too. The mixing set: `--pixmix-dir` (the authors' fractals + feature visualisations, or
any image folder; checked when the method is built: an empty or unreadable folder is an error), else fractals from the
procedural generator (`fan_stl.stl.augment.fractals`). The pictures are held on the device at the input size (at most
`max_images`, a random subset of a larger folder, drawn once). Defaults are the authors' ImageNet ones (k = 4, beta = 4,
severity 1).
"""
import os
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image, UnidentifiedImageError

from .batch_augment import BatchAugment
from .fractals import fractal_images

__all__ = ['PixMix', 'draw_ab', 'mix_add', 'mix_multiply', 'mixing_set_files']

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.ppm', '.tif', '.tiff')


def draw_ab(beta: float, batch: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """ The authors' `get_ab(beta)`, once per image: `(a, b)` of shape `(B, 1, 1, 1)`. """
    beta_1 = torch.distributions.Beta(torch.tensor(float(beta)), torch.tensor(1.))
    one_beta = torch.distributions.Beta(torch.tensor(1.), torch.tensor(float(beta)))
    first = torch.rand(batch) < 0.5
    a = torch.where(first, beta_1.sample((batch,)), 1. + one_beta.sample((batch,)))
    b = torch.where(first, one_beta.sample((batch,)), -one_beta.sample((batch,)))
    return a.view(-1, 1, 1, 1).to(device), b.view(-1, 1, 1, 1).to(device)


def mix_add(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * (x * 2 - 1) + b * (y * 2 - 1) + 1) / 2


def mix_multiply(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (x * 2) ** a * (y * 2).clamp(min=1e-37) ** b / 2


def mixing_set_files(folder: str) -> List[Path]:
    """ The images of a mixing-set folder (recursively), each opened once to check it is an image; an empty folder,
    or unreadable files (listed), are an error. """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f'--pixmix-dir {folder}: no such folder. Give a folder of mixing images (e.g. the PixMix '
                         f'authors\' fractals and feature visualisations) or leave it unset for generated fractals.')
    files = sorted(p for p in root.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f'--pixmix-dir {folder} holds no images ({", ".join(IMAGE_EXTENSIONS)}); leave it unset to '
                         f'mix with generated fractals.')
    bad = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError) as e:
            bad.append(f'{path} ({type(e).__name__})')
    if bad:
        raise ValueError(f'--pixmix-dir {folder}: {len(bad)} of {len(files)} files cannot be read as images: '
                         + ', '.join(bad[:10]) + (' ...' if len(bad) > 10 else '') + '. Remove or replace them.')
    return files


def _load_picture(path: Path, height: int, width: int) -> torch.Tensor:
    with Image.open(path) as image:
        picture = image.convert('RGB').resize((width, height), Image.BICUBIC)
    return TF.to_dtype(TF.pil_to_tensor(picture), torch.float32, scale=True)


def _photometric_op(images: torch.Tensor, severity: int) -> torch.Tensor:
    """ One random op per image of the authors' list, photometric part: autocontrast, equalize, posterize, solarize
    (levels as pixmix_utils at `severity`). """
    as_uint8 = (images * 255).round().clamp(0, 255).to(torch.uint8)
    level = float(torch.empty(()).uniform_(0.1, severity))
    candidates = torch.stack([
        TF.autocontrast(images),
        TF.to_dtype(TF.equalize(as_uint8), torch.float32, scale=True),
        TF.to_dtype(TF.posterize(as_uint8, max(1, 4 - int(level * 4 / 10))), torch.float32, scale=True),
        TF.solarize(images, (256 - int(level * 256 / 10)) / 255.),
    ]).to(images.dtype)
    pick = torch.randint(len(candidates), (images.shape[0],), device=images.device)
    return candidates[pick, torch.arange(images.shape[0], device=images.device)]


class PixMix(BatchAugment):
    """ PixMix of the student images (see the module docstring). """

    def __init__(self, k: int = 4, beta: float = 4., severity: int = 1, mixing_dir: Optional[str] = None,
                 fractals: int = 256, max_images: int = 512, seed: int = 0):
        if k < 0 or beta <= 0 or severity < 1 or fractals < 1:
            raise ValueError(f'PixMix needs --pixmix-k >= 0, --pixmix-beta > 0, severity >= 1 and at least one '
                             f'generated fractal; got k={k}, beta={beta}, severity={severity}, fractals={fractals}.')
        self.k, self.beta, self.severity, self.fractals, self.max_images, self.seed = (
            k, beta, severity, fractals, max_images, seed)
        self.files = mixing_set_files(mixing_dir) if mixing_dir else None
        self._mixing: Optional[torch.Tensor] = None

    @classmethod
    def from_config(cls, config) -> 'PixMix':
        return cls(k=config.pixmix_k, beta=config.pixmix_beta, mixing_dir=config.pixmix_dir)

    def mixing_set(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """ The mixing pictures `(M, 3, H, W)` in [0, 1] on `device` (loaded or generated on first use). """
        if self._mixing is None or self._mixing.shape[-2:] != (height, width) or self._mixing.device != device:
            if self.files is None:
                images = fractal_images(self.fractals, max(height, width), self.seed)
            else:
                picked = self.files[:self.max_images] if len(self.files) <= self.max_images else [
                    self.files[i] for i in torch.randperm(len(self.files))[:self.max_images]]
                images = torch.stack([_load_picture(p, height, width) for p in picked])
            self._mixing = F.interpolate(images, size=(height, width), mode='bilinear', align_corners=False).to(device)
        return self._mixing

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        device, dtype = images.device, images.dtype
        mixing = self.mixing_set(height, width, device).to(dtype)

        def either(p_first, first, second):
            choose = (torch.rand(batch, 1, 1, 1, device=device) < p_first)
            return torch.where(choose, first, second)

        mixed = either(0.5, _photometric_op(images, self.severity), images)
        rounds = torch.randint(self.k + 1, (batch,), device=device)
        for step in range(self.k):
            picture = mixing[torch.randint(len(mixing), (batch,), device=device)]
            partner = either(0.5, _photometric_op(images, self.severity), picture)
            a, b = draw_ab(self.beta, batch, device)
            combined = either(0.5, mix_add(mixed, partner, a.to(dtype), b.to(dtype)),
                              mix_multiply(mixed, partner, a.to(dtype), b.to(dtype))).clamp(0., 1.)
            mixed = torch.where((step < rounds).view(-1, 1, 1, 1), combined, mixed)
        return mixed
