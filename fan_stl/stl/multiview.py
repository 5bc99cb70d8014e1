"""k views of every training image for a consistency loss (timm's `--aug-splits k`), in every stage.

`SplitViewDataset` is the wing's `AugMixDataset`: `create_loader(num_aug_splits=k)` assigns it timm's three-part
train transform `(primary, secondary, final)`; a sample is `((clean, aug_1, ..., aug_{k-1}), target)`: the primary
steps (crop, flips) are drawn once and shared by every view, split 0 is the clean view (primary + final, never
randomly erased), the others each draw their own secondary steps. timm's `fast_collate` lays a batch out split-major,
`cat([clean, aug_1, ...])`, `(k B, C, H, W)`, and its prefetcher's random erasing spares split 0 (`re_split`);
without the prefetcher `SplitViewLoader` does the same concatenation.

In stage stl the clean split IS the teacher view (same crop and flips, no photometric step), so no separate teacher
view is carried: the teacher labels split 0 and every split keeps the teacher's geometry. For that, every secondary
step must be student-only in the per-image step registry (`fan_stl.stl.views.VIEW_STEPS`); AugMix runs as its
photometric form (`fan_stl.stl.augment.augmix`); a geometric secondary step (RandAugment's rotate / shear /
translate, drawn per split) is refused with the fix.
"""
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset
from torchvision import transforms as T

from timm.data.random_erasing import RandomErasing

from .views import STUDENT, _adapt, flatten_transform, view_step_kind

__all__ = ['SplitViewDataset', 'SplitViewLoader', 'check_num_splits']


def check_num_splits(batch: int, num_splits: int) -> int:
    """ The images per split of a split-major batch of `batch` rows, or a clear error. """
    if num_splits < 2 or batch % num_splits:
        raise ValueError(
            f'a batch of {batch} rows cannot hold {num_splits} augmentation splits of equal size: with --aug-splits '
            f'{num_splits} the batch is split-major, {num_splits} views of each image (timm\'s fast_collate and '
            f'fan_stl\'s SplitViewLoader lay it out so). Use a batch whose size is a multiple of {num_splits}.')
    return batch // num_splits


class SplitViewDataset(Dataset):
    """ `((clean, aug_1, ..., aug_{k-1}), target)` samples (see the module docstring). """

    def __init__(self, dataset: Dataset, num_splits: int, student_only: bool = False):
        if num_splits < 2:
            raise ValueError(f'--aug-splits must be at least 2 (the clean view and one augmented view); '
                             f'got {num_splits}.')
        self.dataset = dataset
        self.num_splits = num_splits
        self.student_only = student_only
        self.primary = self.secondary = self.final = self.clean_final = None
        transform = getattr(dataset, 'transform', None)
        if transform is not None:
            self.transform = transform

    @property
    def transform(self):
        return self.primary

    @transform.setter
    def transform(self, transform: Sequence[Callable]) -> None:
        if not isinstance(transform, (tuple, list)) or len(transform) != 3:
            raise ValueError(
                f'augmentation splits need timm\'s separate train transform (primary, secondary, final): build the '
                f'loader with create_loader(..., num_aug_splits={self.num_splits}); got {type(transform).__name__}.')
        primary, secondary, final = transform
        steps = [_adapt(step) for step in flatten_transform(secondary)]
        if self.student_only:
            for step in steps:
                if view_step_kind(step) != STUDENT:
                    raise ValueError(
                        f'{type(step).__name__} in the augmented splits of stage stl: each split draws it anew, so '
                        f'the splits would not keep the teacher view\'s geometry (the token labels would not line '
                        f'up). Use photometric augmentation for the splits (e.g. --aa augmix-m3-w3, run as '
                        f'photometric AugMix) or drop --aug-splits.')
        self.primary, self.secondary, self.final = primary, T.Compose(steps), final
        self.clean_final = T.Compose([s for s in flatten_transform(final) if not isinstance(s, RandomErasing)])
        self.dataset.transform = primary

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if self.primary is None:
            raise RuntimeError('SplitViewDataset has no train transform; assign one (create_loader does).')
        image, target = self.dataset[index]
        views = [self.clean_final(image)] + [self.final(self.secondary(image)) for _ in range(self.num_splits - 1)]
        return tuple(views), target

    def __getattr__(self, name: str) -> Any:
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


class SplitViewLoader:
    """ A loader without the prefetcher over a `SplitViewDataset`: `(k B, C, H, W)` split-major input and the target
    repeated per split, as timm's `fast_collate` gives the prefetcher. """

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        for views, target in self.loader:
            yield torch.cat(list(views)), target.repeat(len(views))

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        if name == 'loader':
            raise AttributeError(name)
        return getattr(self.loader, name)
