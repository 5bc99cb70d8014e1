"""The crop record: which box of the decoded image a training sample shows, and whether it was flipped.

A stored-label source (`fan_stl.stl.label_maps`) needs, for every sample of a batch, the region of the full image
its random crop covers and the flips applied after the crop, so that the stored map of the full image can be cut
to the same region (RoI-align) and flipped with it. `CropRecordTransform` wraps the train transform timm builds and
learns both from the transform's own random draws: before the random-resized crop and each random flip it draws their
parameters under a saved random state, restores the state and runs timm's step as it is, so the images are
bit-identical to timm's transform with the same seed. The crop box is in pixels of the decoded image, which the
maps cover whole.

`CropRecordDataset` wraps an image dataset (assigning `transform`, as `create_loader` does, sets the recipe) and
yields `(image, target)` where `target` is one int64 row `[label, MARK, map_row, top, left, height, width,
image_height, image_width, flips]` (`flips`: 1 horizontal, 2 vertical, 3 both), which `default_collate` and timm's
`fast_collate` stack to `(B, 10)`. The mixers keep the record's columns at the end of the packed target
(`attach_crops`) and the task takes them off (`split_crop_target`) before it reads the image target. `MARK` (-1, a
value no class index, soft target, lam, partner or ownership can take) tells a target that carries a record.

Geometric RandAugment ops (rotate, shear, translate) act after the crop and are not followed by the record (LV-ViT
moves its maps with them); the crop-to-map alignment is exact for the crop and the flips only.
"""
import random
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import transforms as T

from timm.data.transforms import RandomResizedCropAndInterpolation

from .views import flatten_transform
from .wrapped_dataset import TransformWrappingDataset

__all__ = ['CROP_COLUMNS', 'MARK', 'CropRecordTransform', 'CropRecordDataset', 'attach_crops', 'split_crop_target']

MARK = -1
CROP_COLUMNS = ('map_row', 'top', 'left', 'height', 'width', 'image_height', 'image_width', 'flips')
HFLIP, VFLIP = 1, 2
_CROPS = (RandomResizedCropAndInterpolation, T.RandomResizedCrop)
_FLIPS = {T.RandomHorizontalFlip: HFLIP, T.RandomVerticalFlip: VFLIP}
# steps that move pixels other than the crop and the flips: the record could not follow them
_REFUSED = (T.RandomCrop, T.CenterCrop, T.Resize, T.RandomRotation, T.RandomAffine, T.RandomPerspective)


def _image_size(img: Any) -> Tuple[int, int]:
    """ `(height, width)` of a PIL image or a `(..., H, W)` tensor. """
    if isinstance(img, torch.Tensor):
        return tuple(img.shape[-2:])
    return img.size[1], img.size[0]


class _SavedRandomState:
    """ Draw a step's parameters, then put Python's, numpy's and torch's random states back. """

    def __enter__(self):
        self.state = random.getstate(), np.random.get_state(), torch.get_rng_state()

    def __exit__(self, *exc):
        random.setstate(self.state[0])
        np.random.set_state(self.state[1])
        torch.set_rng_state(self.state[2])


class CropRecordTransform:
    """ `img -> (image, (top, left, height, width, image_height, image_width, flips))` from a timm train transform
    (see the module docstring). """

    def __init__(self, transform: Callable):
        self.transform = transform
        self.steps = flatten_transform(transform)
        crops = [step for step in self.steps if isinstance(step, _CROPS)]
        refused = [type(step).__name__ for step in self.steps if isinstance(step, _REFUSED) and step not in crops]
        if len(crops) != 1 or refused:
            raise ValueError(
                f'Label maps follow one random-resized crop and the random flips of the train transform; this one has '
                f'{len(crops)} random-resized crop(s){" and " + ", ".join(refused) if refused else ""}. Use timm\'s '
                f'default train transform (--train-crop-mode rrc, the default) with the maps source.')

    def __call__(self, img: Any) -> Tuple[Any, Tuple[int, ...]]:
        image_height, image_width = _image_size(img)
        box, flips = None, 0
        for step in self.steps:
            if isinstance(step, _CROPS):
                with _SavedRandomState():
                    box = step.get_params(img, step.scale, step.ratio)
            elif type(step) in _FLIPS:
                with _SavedRandomState():
                    flips |= _FLIPS[type(step)] if torch.rand(1) < step.p else 0
            img = step(img)
        return img, (*box, image_height, image_width, flips)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.transform!r})'


class CropRecordDataset(TransformWrappingDataset):
    """ Wrap an image dataset to yield `(image, [label, MARK, map_row, crop record...])` (module docstring);
    `map_rows[i]` is the stored-map row of sample `i`. """

    def __init__(self, dataset: Dataset, map_rows: Sequence[int]):
        if len(map_rows) != len(dataset):
            raise ValueError(f'{len(map_rows)} map rows for a dataset of {len(dataset)} images.')
        self.map_rows = list(map_rows)
        super().__init__(dataset)

    def wrap(self, transform: Callable) -> CropRecordTransform:
        return CropRecordTransform(transform)

    def __getitem__(self, index: int):
        img, label = self.dataset[index]
        img, record = self.wrapped_transform()(img)
        return img, torch.tensor([int(label), MARK, self.map_rows[index], *record], dtype=torch.int64)


def _width() -> int:
    return 1 + len(CROP_COLUMNS)


def has_crops(target: torch.Tensor) -> bool:
    """ True when `target` ends in crop-record columns. """
    return target.ndim == 2 and target.shape[1] > _width() and bool((target[:, -_width()] == MARK).all())


def split_crop_target(target: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """ `(target, crops (B, 8) float)`: the target without its record (class indices `(B,)` when the rest is one
    integer column) and the record; `(target, None)` for a target without one. """
    if not has_crops(target):
        return target, None
    rest, crops = target[:, :-_width()], target[:, -len(CROP_COLUMNS):].float()
    if rest.shape[1] == 1 and not rest.is_floating_point():
        rest = rest[:, 0]
    return rest, crops


def attach_crops(target: torch.Tensor, crops: Optional[torch.Tensor]) -> torch.Tensor:
    """ `[target | MARK | crops]` as float (indices and pixel sizes stay exact below 2**24); `target` unchanged for
    `crops=None`. """
    if crops is None:
        return target
    mark = torch.full((target.shape[0], 1), float(MARK), device=target.device)
    return torch.cat([target.float(), mark, crops.to(target.device).float()], dim=1)
