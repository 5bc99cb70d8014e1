"""CamVid as distributed with the SegNet tutorial: `<root>/<split>/*.jpg|png` and `<root>/<split>annot/<stem>.png`.

One single-channel PNG per image with the same stem; values 0-10 are the classes (`CLASSES`), 11 is void
(`VOID`: ignored by the loss and mIoU). Every problem of the data is one clear error: images without masks (listed),
an image and mask of different sizes, mask values outside the classes (named with the file). Images are resized to
the requested `(height, width)` (bilinear; masks nearest) and normalised with the ImageNet mean / std; a
`corruption` callable (see `fan_stl.segmentation.corrupt`) changes the image before that, the mask never.
"""
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import Dataset

from fan_stl.robustness.images import read_rgb
from fan_stl.robustness.layouts import is_image

CLASSES = ('sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign/symbol', 'fence', 'car', 'pedestrian',
           'bicyclist')
NUM_CLASSES = len(CLASSES)
VOID = 11
SPLITS = ('train', 'val', 'test')
Corruption = Callable[[Image.Image, Path], Image.Image]  # (image, its path) -> corrupted image


def nearest_multiple(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def check_size(size: Sequence[int], multiple: int, what: str = 'the model') -> Tuple[int, int]:
    """ `size` (height, width) when both are positive multiples of `multiple`, else a ValueError naming the nearest
    valid size. """
    height, width = (int(v) for v in size)
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ValueError(
            f'input size {height}x{width} (height x width) is not divisible by {multiple}, which {what} needs; the '
            f'nearest valid size is {nearest_multiple(height, multiple)}x{nearest_multiple(width, multiple)}')
    return height, width


def _preview(items: Sequence[str], count: int = 10) -> str:
    return ', '.join(items[:count]) + (f' and {len(items) - count} more' if len(items) > count else '')


def list_pairs(root: Path, split: str, images: Optional[Path] = None) -> List[Tuple[Path, Path]]:
    """ (image, mask) pairs of `split`, sorted by name; `images` replaces `<root>/<split>` (e.g. a CamVid-C cell). """
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f'split must be one of {", ".join(SPLITS)}, not {split!r}')
    image_dir, mask_dir = Path(images) if images is not None else root / split, root / f'{split}annot'
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f'{folder} is not a folder; CamVid needs <root>/{split}/ (images) and <root>/{split}annot/ (masks)')
    image_paths = sorted(p for p in image_dir.iterdir() if is_image(p))
    if not image_paths:
        raise FileNotFoundError(f'no images in {image_dir}')
    pairs = [(p, mask_dir / f'{p.stem}.png') for p in image_paths]
    missing = [p.name for p, m in pairs if not m.is_file()]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(pairs)} images in {image_dir} have no mask <stem>.png in {mask_dir}: '
            f'{_preview(missing)}; add the masks or remove those images')
    return pairs


def read_mask(path: Path, num_classes: int = NUM_CLASSES, ignore_index: int = VOID) -> np.ndarray:
    """ A class-index mask (H, W) uint8, checked: single channel, values in 0..num_classes-1 or `ignore_index`. """
    with Image.open(path) as image:
        if image.mode not in ('L', 'P', 'I', 'I;16'):
            raise ValueError(f'mask {path} has mode {image.mode}; masks are single-channel class-index PNGs')
        mask = np.asarray(image)
    bad = np.setdiff1d(np.unique(mask), np.append(np.arange(num_classes), ignore_index))
    if bad.size:
        raise ValueError(
            f'mask {path} has values {bad.tolist()} outside the classes 0-{num_classes - 1} and void {ignore_index}; '
            f'fix the mask or map those values to {ignore_index}')
    return mask.astype(np.uint8)


def _normalise(image: Image.Image) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.).permute(2, 0, 1)
    mean, std = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    return (x - mean) / std


class CamVid(Dataset):
    """ A CamVid split as `(image (3, H, W) float, mask (H, W) long)` at `size` (height, width). """

    def __init__(
            self,
            root: Path,
            split: str,
            size: Sequence[int],
            multiple: int = 32,
            flip: bool = False,
            corruption: Optional[Corruption] = None,
            images: Optional[Path] = None,
            limit: Optional[int] = None,
    ):
        """
        Args:
            root: The CamVid folder (`train/`, `trainannot/`, ...).
            split: 'train', 'val' or 'test'.
            size: Height and width the images are resized to; multiples of `multiple`.
            multiple: What the model needs the sides divisible by (`models.input_multiple`).
            flip: Random horizontal flips (training).
            corruption: Applied to each image at its stored size before resizing; masks untouched.
            images: A folder holding the split's images under the same stems (e.g. a CamVid-C cell).
            limit: Use the first `limit` pairs only (quick runs).
        """
        self.root, self.split = Path(root), split
        self.size = check_size(size, multiple)
        self.pairs = list_pairs(root, split, images)[:limit]
        self.flip = flip
        self.corruption = corruption

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        image, mask = read_rgb(image_path), read_mask(mask_path)
        if (image.height, image.width) != mask.shape:
            raise ValueError(
                f'image {image_path} is {image.width}x{image.height} but its mask {mask_path} is '
                f'{mask.shape[1]}x{mask.shape[0]}; an image and its mask must have the same size')
        if self.corruption is not None:
            image = self.corruption(image, image_path)
        height, width = self.size
        image = image.resize((width, height), Image.BILINEAR)
        mask = Image.fromarray(mask).resize((width, height), Image.NEAREST)
        x, y = _normalise(image), torch.from_numpy(np.asarray(mask, dtype=np.int64).copy())
        if self.flip and torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y
