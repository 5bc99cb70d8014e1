"""A procedural fractal generator for PixMix's mixing set (no download needed).

`fractal_images(count, size, seed)` renders `count` RGB images `(count, 3, size, size)` in [0, 1] from random
iterated function systems (IFS, as in FractalDB): 2-4 random contractive affine maps, run by the chaos game (1000
walkers in parallel, `points` points after a burn-in), the visited points splatted on the canvas, then coloured with a
random two-colour gradient on a random background, a deterministic function of `seed`. PixMix's authors mix with a
set of fractal and feature-visualisation images (`--pixmix-dir` takes that set, or any image folder).
"""
import numpy as np
import torch

__all__ = ['fractal_images']


def _contractive_maps(rng: np.random.Generator, count: int) -> np.ndarray:
    """ `count` random affine maps `(count, 2, 3)` whose linear parts have singular values below 0.9. """
    maps = rng.uniform(-1., 1., size=(count, 2, 3))
    for m in maps:
        norm = np.linalg.norm(m[:, :2], 2)
        if norm > 0.9:
            m[:, :2] *= rng.uniform(0.5, 0.9) / norm
    return maps


def _render(rng: np.random.Generator, size: int, points: int) -> np.ndarray:
    maps = _contractive_maps(rng, int(rng.integers(2, 5)))
    walkers, burn_in = 1000, 10  # parallel chaos games; each is on the attractor after a few contractions
    xy = rng.uniform(-1., 1., size=(walkers, 2))
    trace = []
    for step in range(burn_in + max(1, points // walkers)):
        chosen = maps[rng.integers(len(maps), size=walkers)]
        xy = np.einsum('wij,wj->wi', chosen[:, :, :2], xy) + chosen[:, :, 2]
        if step >= burn_in:
            trace.append(xy)
    trace = np.concatenate(trace)
    lo, hi = trace.min(0), trace.max(0)
    pixels = ((trace - lo) / np.maximum(hi - lo, 1e-6) * (size - 1)).round().astype(int)
    density = np.zeros((size, size))
    np.add.at(density, (pixels[:, 1], pixels[:, 0]), 1.)
    density = np.log1p(density)
    density /= max(density.max(), 1e-6)
    colours, background = rng.uniform(0., 1., size=(2, 3)), rng.uniform(0., 0.3, size=3)
    gradient = np.linspace(0., 1., size)[None, :, None]
    foreground = colours[0] * (1. - gradient) + colours[1] * gradient
    image = background + density[..., None] * (foreground - background)
    return image.transpose(2, 0, 1)


def fractal_images(count: int, size: int, seed: int = 0, points: int = 20000) -> torch.Tensor:
    """ `count` fractal images `(count, 3, size, size)`, float in [0, 1] (see the module docstring). """
    if count < 1 or size < 8:
        raise ValueError(f'fractal_images needs count >= 1 and size >= 8; got {count}, {size}.')
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([_render(rng, size, points) for _ in range(count)])).float().clamp(0., 1.)
