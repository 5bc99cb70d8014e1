"""The images of an ImageFolder as `corrupt` and `eval` both see them: one listing, one RGB conversion, one fingerprint.

* `list_images`: (path, class index) in timm's class order, files sorted within each class.
* `read_rgb`: an 8-bit RGB image; 16-bit and float sources (`I;16`, `I`, `F`) are scaled to 0-255, not clipped
  (Pillow's own `convert('RGB')` clips a 16-bit grey image to white).
* `file_list_fingerprint`: sha256 over the relative paths and sizes, so that results and corruption folders can
  tell when the files they were made from changed.
"""
import hashlib
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .layouts import is_image, list_classes

HIGH_BIT_DEPTH_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F')


def list_images(root: Path, classes: Optional[Sequence[str]] = None) -> List[Tuple[Path, int]]:
    """ Every image under `root/<class>/` with its class index (position in `classes`, default: the folders). """
    root = Path(root)
    classes = list_classes(root) if classes is None else classes
    return [(path, index) for index, name in enumerate(classes)
            for path in sorted(p for p in (root / name).rglob('*') if is_image(p))]


def to_rgb(image: Image.Image) -> Image.Image:
    """ An 8-bit RGB copy of `image`; high-bit-depth grey levels are scaled into 0-255 (16-bit: / 257). """
    if image.mode not in HIGH_BIT_DEPTH_MODES:
        return image.convert('RGB')
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max(initial=0))
    if image.mode.startswith('I;16') or peak > 255:
        full_scale = 65535.0
    elif image.mode == 'F' and peak <= 1.0:
        full_scale = 1.0
    else:
        full_scale = 255.0
    grey = np.clip(np.rint(values * (255.0 / full_scale)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert('RGB')


def read_rgb(path: Path) -> Image.Image:
    """ The image at `path` as 8-bit RGB (fully decoded, so a truncated file fails here, not later). """
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


def file_list_fingerprint(root: Path, paths: Sequence[Path]) -> str:
    """ sha256 of the relative paths and byte sizes of `paths` (which lie under `root`), in order. """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f'{Path(path).relative_to(root).as_posix()}\0{Path(path).stat().st_size}\n'.encode())
    return digest.hexdigest()


def duplicate_stems(paths: Sequence[Path]) -> List[Path]:
    """ Images that share folder and name but not extension (e.g. `x.jpg` and `x.png`): the same picture twice. """
    counts = Counter(Path(p).with_suffix('') for p in paths)
    return sorted(stem for stem, count in counts.items() if count > 1)
