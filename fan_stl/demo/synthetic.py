"""A procedurally generated image set for the demo: textured shapes on cluttered backgrounds, as an ImageFolder.

Each class is one shape with its own texture; colours, position, size and rotation are random, and the background is
clutter (colour blobs, lines and fragments of the other textures), so the class is decided by the pixels of a
region of the image — the situation in which per-token labels carry information. Everything is generated from a
seed, so the set is identical on every machine.
"""
import math
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from ..utils.atomic import atomic_path

Texture = Callable[[np.random.Generator, int], np.ndarray]


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    angle, period = rng.uniform(0, math.pi), rng.uniform(5, 9)
    yy, xx = np.mgrid[0:size, 0:size]
    return (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0).astype(np.float32)


def _checker(rng: np.random.Generator, size: int) -> np.ndarray:
    cell = int(rng.integers(4, 8))
    yy, xx = np.mgrid[0:size, 0:size]
    return (((yy // cell) + (xx // cell)) % 2).astype(np.float32)


def _dots(rng: np.random.Generator, size: int) -> np.ndarray:
    pitch = rng.uniform(6, 9)
    yy, xx = np.mgrid[0:size, 0:size]
    return ((((yy % pitch) - pitch / 2) ** 2 + ((xx % pitch) - pitch / 2) ** 2) < (pitch / 3.2) ** 2).astype(np.float32)


def _rings(rng: np.random.Generator, size: int) -> np.ndarray:
    period = rng.uniform(5, 8)
    yy, xx = np.mgrid[0:size, 0:size] - size / 2
    return (np.sin(np.hypot(yy, xx) * 2 * math.pi / period) > 0).astype(np.float32)


def _grid(rng: np.random.Generator, size: int) -> np.ndarray:
    pitch, width = int(rng.integers(6, 9)), 2
    yy, xx = np.mgrid[0:size, 0:size]
    return (((yy % pitch) < width) | ((xx % pitch) < width)).astype(np.float32)


def _zigzag(rng: np.random.Generator, size: int) -> np.ndarray:
    period, amplitude = rng.uniform(6, 9), rng.uniform(2, 4)
    yy, xx = np.mgrid[0:size, 0:size]
    wave = amplitude * np.abs(((xx / period) % 2) - 1)
    return (((yy + wave) % period) < period / 2).astype(np.float32)


TEXTURES: Dict[str, Texture] = {
    'stripes': _stripes, 'checker': _checker, 'dots': _dots, 'rings': _rings, 'grid': _grid, 'zigzag': _zigzag}


def _polygon(sides: int, star: bool = False) -> Callable[[float, float, float, float], List[Tuple[float, float]]]:
    def points(cx: float, cy: float, radius: float, rotation: float) -> List[Tuple[float, float]]:
        count = sides * 2 if star else sides
        pts = []
        for i in range(count):
            r = radius * (0.45 if star and i % 2 else 1.0)
            a = rotation + 2 * math.pi * i / count
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        return pts
    return points


def _cross(cx: float, cy: float, radius: float, rotation: float) -> List[Tuple[float, float]]:
    arm = radius * 0.38
    outline = [(arm, radius), (arm, arm), (radius, arm), (radius, -arm), (arm, -arm), (arm, -radius), (-arm, -radius),
               (-arm, -arm), (-radius, -arm), (-radius, arm), (-arm, arm), (-arm, radius)]
    c, s = math.cos(rotation), math.sin(rotation)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in outline]


SHAPES = {'triangle': _polygon(3), 'square': _polygon(4), 'hexagon': _polygon(6), 'star': _polygon(5, star=True),
          'disc': _polygon(32), 'cross': _cross}

# 6 classes, each its own shape and texture; the clutter carries fragments of every texture, so the object region
# (not a texture anywhere in the image) decides the class
CLASSES: List[Tuple[str, str]] = [
    ('triangle', 'stripes'), ('square', 'checker'), ('hexagon', 'dots'), ('star', 'rings'), ('disc', 'grid'),
    ('cross', 'zigzag'),
]


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _clutter(rng: np.random.Generator, size: int) -> Image.Image:
    """ Smooth colour field, random lines and blobs, and small patches of the class textures. """
    low = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    image = Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0, x1, y1 = rng.uniform(0, size, 4)
        draw.line((x0, y0, x1, y1), fill=tuple(int(c) for c in _colour(rng)), width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(2, 5))):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size * 0.04, size * 0.12)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in _colour(rng)))
    pixels = np.asarray(image, dtype=np.float32).copy()
    for _ in range(int(rng.integers(1, 3))):  # texture fragments: a texture patch alone must not decide
        texture = TEXTURES[list(TEXTURES)[int(rng.integers(len(TEXTURES)))]](rng, size)
        side = int(size * rng.uniform(0.1, 0.16))
        y, x = (int(v) for v in rng.integers(0, size - side, 2))
        patch = texture[y:y + side, x:x + side, None]
        pixels[y:y + side, x:x + side] = patch * _colour(rng) + (1 - patch) * _colour(rng)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def render_sample_with_mask(
        class_index: int, rng: np.random.Generator, size: int = 64) -> Tuple[Image.Image, np.ndarray]:
    """ One RGB image of class `class_index` (a textured shape, 25–45% of the side in radius, on clutter) and the
    shape's mask (bool, `size` x `size`): where the pixels that decide the class are. """
    shape, texture = CLASSES[class_index]
    image = _clutter(rng, size)
    radius = size * rng.uniform(0.25, 0.45)
    cx, cy = rng.uniform(radius * 0.6, size - radius * 0.6, 2)
    mask = Image.new('L', (size, size), 0)
    ImageDraw.Draw(mask).polygon(SHAPES[shape](cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=255)
    pattern = TEXTURES[texture](rng, size)[..., None]
    fg, bg = _colour(rng), _colour(rng)
    while np.abs(fg - bg).sum() < 200:  # keep the texture visible
        bg = _colour(rng)
    filled = Image.fromarray((pattern * fg + (1 - pattern) * bg).astype(np.uint8))
    image.paste(filled, (0, 0), mask)
    return image, np.asarray(mask) > 127


def render_sample(class_index: int, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """ One RGB image of class `class_index` (see `render_sample_with_mask`). """
    return render_sample_with_mask(class_index, rng, size)[0]


SPLITS = ('train', 'val')
VAL_PER_CLASS, SIZE, SEED = 25, 64, 0  # `make_shapes_dataset`'s defaults, shared with `val_samples_with_masks`


def sample_rng(seed: int, split: str, class_index: int, n: int) -> np.random.Generator:
    """ The generator of image `n` of class `class_index` in `split`: the set's one seeding rule. """
    return np.random.default_rng([seed, SPLITS.index(split), class_index, n])


def class_folder_names() -> List[str]:
    """ The class folder names, in class-index order. """
    return [f'{i}_{shape}_{texture}' for i, (shape, texture) in enumerate(CLASSES)]


def val_samples_with_masks(
        per_class: int = VAL_PER_CLASS,
        size: int = SIZE,
        seed: int = SEED,
) -> List[Tuple[Image.Image, np.ndarray, int]]:
    """ `(image, object mask, class index)` of the first `per_class` validation images of each class, regenerated
    from the seed: the same pixels `make_shapes_dataset` wrote, with the masks it does not store. """
    return [(*render_sample_with_mask(c, sample_rng(seed, 'val', c, n), size), c)
            for c in range(len(CLASSES)) for n in range(per_class)]


def make_shapes_dataset(
        root: Path,
        train_per_class: int = 80,
        val_per_class: int = VAL_PER_CLASS,
        size: int = SIZE,
        seed: int = SEED,
) -> Path:
    """ Write `root/{train,val}/<class>/<n>.png` and return `root`; an existing complete set is reused. """
    root = Path(root)
    for split, count in zip(SPLITS, (train_per_class, val_per_class)):
        for class_index, name in enumerate(class_folder_names()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                path = folder / f'{n:05d}.png'
                if path.exists():
                    continue
                rng = sample_rng(seed, split, class_index, n)
                with atomic_path(path) as tmp:  # an interrupted run never leaves a half-written image
                    render_sample(class_index, rng, size).save(tmp, format='PNG')
    return root
