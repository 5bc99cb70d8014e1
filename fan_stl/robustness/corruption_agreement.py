"""How far the torch corruptions are from `imagecorruptions` on the same images, per corruption and severity.

* Corruptions without randomness (`EXACT`): the mean absolute difference of the two 8-bit outputs, in grey levels
  (target: at most 1, i.e. 1/255).
* Random ones: the two sides draw different random numbers, so images differ; what must agree is the perturbation
  (corrupted - clean): its mean, standard deviation, mean absolute value and the share of its power above half the
  Nyquist frequency (how fine-grained it is), over the same images.
* Motion blur's, frost's and spatter's deterministic part is checked with the reference's own draw
  (`motion_blur_at_angle`, `frost_with_texture`, `spatter_with_noise`): same angle, texture and crop, or noise.

Needs the robustness extra (imagecorruptions-imaug); used by benchmarks/corruption_agreement.py and the tests.
"""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np
import torch

from .corrupt import corrupt_image
from .images import read_rgb
from .layouts import is_image
from .names import ALL_CORRUPTIONS
from .seeds import cell_seed
from .torch_corruptions import corrupt_batch, to_uint8

EXACT = ('defocus_blur', 'zoom_blur', 'gaussian_blur', 'brightness', 'contrast', 'saturate', 'pixelate',
         'jpeg_compression')
RANDOM = tuple(c for c in ALL_CORRUPTIONS if c not in EXACT)


@dataclass
class Agreement:
    """ One cell's comparison; `*_stats` describe the perturbation (grey levels) of each side. """
    corruption: str
    severity: int
    kind: str  # 'exact' or 'random'
    mean_abs_diff: float
    reference_stats: Dict[str, float]
    torch_stats: Dict[str, float]

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def load_images(root: Path, count: int, size: int) -> np.ndarray:
    """ `count` images spread over the sorted files under `root`, resized (bicubic) to size x size:
    (count, size, size, 3) uint8. The benchmarks' and the tests' common input. """
    files = sorted(p for p in Path(root).rglob('*') if is_image(p))
    if len(files) < count:
        raise ValueError(f'{root} holds {len(files)} images, fewer than the {count} asked for')
    step = len(files) // count
    picked = files[::step][:count]
    return np.stack([np.asarray(read_rgb(f).resize((size, size), 3)) for f in picked])  # 3: Image.BICUBIC


def reference_images(images: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """ imagecorruptions' outputs (N, H, W, 3) uint8 for `images` (N, H, W, 3) uint8, image i keyed by str(i). """
    return np.stack([corrupt_image(image, corruption, severity, cell_seed(seed, str(i), corruption, severity))
                     for i, image in enumerate(images)])


def torch_images(images: np.ndarray, corruption: str, severity: int, seed: int = 0, device: str = 'cpu'
                 ) -> np.ndarray:
    """ The torch corruptions' outputs (N, H, W, 3) uint8 for the same images and keys. """
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)
    out = corrupt_batch(batch, corruption, severity, seed, [str(i) for i in range(len(images))])
    return to_uint8(out).permute(0, 2, 3, 1).cpu().numpy()


def perturbation_stats(corrupted: np.ndarray, clean: np.ndarray) -> Dict[str, float]:
    """ Mean, std, mean |.| (grey levels) and high-frequency power share of corrupted - clean. """
    delta = corrupted.astype(np.float64) - clean.astype(np.float64)
    centred = delta - delta.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred, axes=(1, 2))) ** 2
    fy = np.abs(np.fft.fftfreq(delta.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(delta.shape[2]))[None, :]
    high = (np.sqrt(fy ** 2 + fx ** 2) > 0.25)[None, :, :, None]
    total = power.sum()
    return {'mean': float(delta.mean()), 'std': float(delta.std()), 'mean_abs': float(np.abs(delta).mean()),
            'high_freq_share': float((power * high).sum() / total) if total else 0.0}


def measure(images: np.ndarray, corruption: str, severity: int, seed: int = 0, device: str = 'cpu') -> Agreement:
    """ The agreement of one cell on `images` (N, H, W, 3) uint8. """
    reference = reference_images(images, corruption, severity, seed)
    ours = torch_images(images, corruption, severity, seed, device)
    return Agreement(corruption, severity, 'exact' if corruption in EXACT else 'random',
                     float(np.abs(reference.astype(np.float64) - ours).mean()),
                     perturbation_stats(reference, images), perturbation_stats(ours, images))


def motion_blur_at_angle(images: np.ndarray, severity: int, angle: float) -> float:
    """ Mean |difference| (grey levels) of the two motion blurs at one given angle (the reference's own kernel). """
    from imagecorruptions.corruptions import _motion_blur  # the reference's kernel, for a fixed angle

    from .torch_corruptions.blur import MOTION, motion_blur_layer
    radius, sigma = MOTION[severity - 1]
    reference = np.stack([np.uint8(np.clip(_motion_blur(image, radius, sigma, angle), 0, 255)) for image in images])
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    ours = to_uint8(motion_blur_layer(batch, radius, sigma, [angle] * len(images))).permute(0, 2, 3, 1).numpy()
    return float(np.abs(reference.astype(np.float64) - ours).mean())


def frost_with_texture(images: np.ndarray, severity: int, seed: int) -> float:
    """ Mean |difference| (grey levels) of the two frosts when the torch side uses the texture and crop the
    reference drew (numpy's global generator seeded with `seed`, as `corrupt_image` seeds it). """
    from imagecorruptions import corrupt

    from .torch_corruptions.weather import FROST, frost_layer, scaled_frost
    height, width = images.shape[1:3]
    weights = FROST[severity - 1]
    total = 0.0
    for image in images:
        np.random.seed(seed)
        reference = corrupt(image, severity, 'frost')
        np.random.seed(seed)
        index = np.random.randint(6)
        scaled = scaled_frost(index, height, width, torch.device('cpu'))
        top, left = np.random.randint(0, scaled.shape[1] - height), np.random.randint(0, scaled.shape[2] - width)
        layer = frost_layer(index, top, left, height, width, torch.device('cpu'))
        clean = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()
        ours = to_uint8((weights[0] * clean + weights[1] * layer) / 255).permute(1, 2, 0).numpy()
        total += float(np.abs(reference.astype(np.float64) - ours).mean())
    return total / len(images)


def spatter_with_noise(images: np.ndarray, severity: int, seed: int) -> float:
    """ Mean |difference| (grey levels) of the two spatters when the torch side is given the liquid noise the
    reference drew (numpy's global generator seeded with `seed`). """
    from imagecorruptions import corrupt

    from .torch_corruptions.spatter import SPATTER, spatter_from_noise
    mean, std = SPATTER[severity - 1][:2]
    total = 0.0
    for image in images:
        np.random.seed(seed)
        reference = corrupt(image, severity, 'spatter')
        np.random.seed(seed)
        noise = torch.from_numpy(np.random.normal(size=image.shape[:2], loc=mean, scale=std))[None, None]
        clean = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
        ours = to_uint8(spatter_from_noise(clean, severity, noise))[0].permute(1, 2, 0).numpy()
        total += float(np.abs(reference.astype(np.float64) - ours).mean())
    return total / len(images)


def within(reference: Dict[str, float], ours: Dict[str, float], relative: float, absolute: float,
           keys: Sequence[str] = ('std', 'mean_abs')) -> bool:
    """ Whether the perturbation statistics `keys` agree within relative * reference + absolute. """
    return all(abs(reference[k] - ours[k]) <= relative * abs(reference[k]) + absolute for k in keys)
