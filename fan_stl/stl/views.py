"""The paired "clean teacher" view of STL: one decoded image, two aligned views.

`PairedViewTransform` takes the train transform timm builds (`create_transform` / `create_loader`) and applies it to
the student view unchanged, while the teacher view shares the crop box, interpolation, flips and the geometric
RandAugment / AutoAugment ops (Rotate, ShearX/Y, TranslateX/Y[Rel]) with identical parameters, and skips colour ops,
colour jitter, grayscale, blur and random erasing. Shared steps are applied twice under the same saved random state,
so the student view is bit-identical to what timm's transform gives for the same seed.

Which steps are shared and which are the student's is the per-image step registry `VIEW_STEPS` (type -> `'shared'`,
`'student'`, or `'augment_ops'` for RandAugment / AutoAugment, whose ops are split by `GEOMETRIC_AUGMENT_OPS`);
`register_view_step(MyTransform, 'shared' | 'student')` adds a type, and an unregistered step is refused with that
call. `STUDENT_ADAPTERS` replace a step by its student-only stand-in: AugMix runs with its photometric ops only
(`fan_stl.stl.augment.augmix`). `PairedViewDataset(dataset, student_source)` can give the student view its own
source image (`--student-data-dir`, `fan_stl.stl.student_source`), with the crop and the flips still shared.

`PairedViewDataset` wraps a dataset so that `create_loader` can assign its transform as usual. A paired batch is
one 4-D tensor `(B, 2C, H, W)`: teacher channels, then student channels (`pair_views` / `split_views`), so that
timm's train.py counts `B` images per step and `--channels-last` applies. Without the prefetcher (normalised float
views) a sample is already `(2C, H, W)`. With it (uint8 views) a sample is `((teacher, student), target)`,
`fast_collate` lays the batch out split-major, `cat([teachers, students])`, so that the prefetcher normalises it and
its random erasing spares the first (teacher) split (`re_split=True`); `PairedViewLoader` then re-pairs the channels.
"""
import random
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import transforms as T

from timm.data.auto_augment import AugMixAugment, AutoAugment, RandAugment
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import (
    CenterCropOrPad, MaybePILToTensor, MaybeToTensor, RandomCropOrPad, RandomResizedCropAndInterpolation,
    ResizeKeepRatio, ToNumpy, ToTensor,
)

from .augment.augmix import GEOMETRIC_AUGMENT_OPS, photometric_augmix
from .wrapped_dataset import TransformWrappingDataset

__all__ = ['GEOMETRIC_AUGMENT_OPS', 'VIEW_STEPS', 'register_view_step', 'view_step_kind', 'PairedViewTransform',
           'PairedViewDataset', 'PairedViewLoader', 'pair_views', 'split_views']

SHARED, STUDENT, AUGMENT_OPS = 'shared', 'student', 'augment_ops'
# The per-image step registry: a step's type -> how the paired views take it. SHARED: geometric or format steps both
# views go through with the same random draws (crop, flips, resizes, tensor conversion, normalisation); STUDENT:
# photometric or occluding steps only the student gets; AUGMENT_OPS: RandAugment / AutoAugment, whose geometric ops are
# shared and the others student-only. `register_view_step` adds a type; an unregistered type is refused.
VIEW_STEPS: Dict[type, str] = {
    **{kind: SHARED for kind in (
        RandomResizedCropAndInterpolation, ResizeKeepRatio, CenterCropOrPad, RandomCropOrPad, T.RandomResizedCrop,
        T.RandomCrop, T.Resize, T.CenterCrop, T.RandomHorizontalFlip, T.RandomVerticalFlip,
        MaybeToTensor, MaybePILToTensor, ToNumpy, ToTensor, T.ToTensor, T.PILToTensor, T.Normalize)},
    **{kind: STUDENT for kind in (T.ColorJitter, T.RandomGrayscale, T.GaussianBlur, RandomErasing, AugMixAugment)},
    RandAugment: AUGMENT_OPS, AutoAugment: AUGMENT_OPS,
}
# a step type -> the student-only step that stands for it in the paired views (AugMix: its photometric ops only)
STUDENT_ADAPTERS: Dict[type, Callable[[Any], Callable]] = {AugMixAugment: photometric_augmix}


def register_view_step(step_type: type, kind: str) -> None:
    """ Declare how the paired teacher / student views take a per-image transform type: `'shared'` (geometric: both
    views, same random draws) or `'student'` (photometric: the student view only). """
    if kind not in (SHARED, STUDENT):
        raise ValueError(f'register_view_step kind must be {SHARED!r} or {STUDENT!r}; got {kind!r}.')
    VIEW_STEPS[step_type] = kind


def view_step_kind(step: Callable) -> str:
    """ How the paired views take `step` (see `VIEW_STEPS`); an unregistered step is refused with the call to make. """
    for kind in type(step).__mro__:
        if kind in VIEW_STEPS:
            return VIEW_STEPS[kind]
    if isinstance(step, T.RandomApply) and all(view_step_kind(inner) == STUDENT for inner in step.transforms):
        return STUDENT
    raise ValueError(
        f'{type(step).__name__} in the train transform: the clean teacher view cannot tell whether it is geometric '
        f'(shared with the teacher) or photometric (student only). Register it once: '
        f'fan_stl.stl.views.register_view_step({type(step).__name__}, "shared" or "student"). Registered: '
        f'{", ".join(sorted(t.__name__ for t in VIEW_STEPS))}.')


def _adapt(step: Callable) -> Callable:
    """ The step the paired views run for `step` (a registered adapter's student-only stand-in, else itself). """
    for kind in type(step).__mro__:
        if kind in STUDENT_ADAPTERS:
            return STUDENT_ADAPTERS[kind](step)
    return step


def _rng_state() -> tuple:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_state(state: tuple) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def _apply_shared(step: Callable, teacher: Any, student: Any) -> Tuple[Any, Any]:
    """ Apply `step` to both views with identical random draws; the random state ends as after one call. """
    state = _rng_state()
    student = step(student)
    _set_rng_state(state)
    return step(teacher), student


def flatten_transform(transform: Callable) -> List[Callable]:
    """ The steps of a transform: nested `Compose`s and tuples of transforms (timm's split ones) flattened. """
    if isinstance(transform, (tuple, list)):
        return [s for t in transform for s in flatten_transform(t)]
    if isinstance(transform, T.Compose):
        return flatten_transform(transform.transforms)
    return [transform]


class PairedViewTransform:
    """ `img -> (teacher_view, student_view)` from a timm train transform (see the module docstring). """

    def __init__(self, student_transform: Callable):
        self.student_transform = student_transform
        self.steps = [_adapt(step) for step in flatten_transform(student_transform)]
        self.kinds = [view_step_kind(step) for step in self.steps]

    @property
    def normalizes(self) -> bool:
        """ True when the views come out normalised (no prefetcher), False for uint8 prefetcher input. """
        return any(isinstance(step, T.Normalize) for step in self.steps)

    def _augment_ops(self, step: Callable) -> list:
        if isinstance(step, RandAugment):
            return np.random.choice(
                step.ops, step.num_layers, replace=step.choice_weights is None, p=step.choice_weights)
        return random.choice(step.policy)

    def __call__(self, img: Any, student_img: Any = None) -> Tuple[Any, Any]:
        """ The two views of `img`; `student_img` (another copy of it, e.g. stylised, same size): the student's
        source, with the crop and the flips shared. """
        teacher, student = img, img if student_img is None else student_img
        for step, kind in zip(self.steps, self.kinds):
            if kind == AUGMENT_OPS:
                for op in self._augment_ops(step):
                    if op.name in GEOMETRIC_AUGMENT_OPS:
                        teacher, student = _apply_shared(op, teacher, student)
                    else:
                        student = op(student)
            elif kind == SHARED:
                teacher, student = _apply_shared(step, teacher, student)
            else:
                student = step(student)
        return teacher, student

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.student_transform!r})'


class PairedViewDataset(TransformWrappingDataset):
    """ Wrap an image dataset (e.g. from `timm.data.create_dataset`) to yield `((teacher, student), target)` for uint8
    views, or `(cat([teacher, student]), target)` (`(2C, H, W)`) for normalised views. Assigning `transform` (as
    `create_loader` does) sets the student recipe. """

    def __init__(self, dataset: Dataset, student_source: Optional[Callable[[int, Any], Any]] = None):
        self.student_source = student_source  # (index, image) -> the student's copy (`--student-data-dir`)
        super().__init__(dataset)

    def wrap(self, transform: Callable) -> 'PairedViewTransform':
        return PairedViewTransform(transform)

    def __getitem__(self, index: int):
        img, target = self.dataset[index]
        paired = self.wrapped_transform()
        copy = None if self.student_source is None else self.student_source(index, img)
        teacher, student = paired(img, copy)
        if paired.normalizes:
            return torch.cat([teacher, student]), target
        return (teacher, student), target


def pair_views(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """ `(B, 2C, H, W)`: the teacher's channels, then the student's. """
    return torch.cat([teacher, student], dim=1)


def split_views(batch: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """ `(teacher, student)` views `(B, C, H, W)` of a paired batch `(B, 2C, H, W)`. """
    if batch.ndim != 4 or batch.shape[1] % 2:
        raise ValueError(
            f'Expected a paired teacher/student batch (B, 2C, H, W); got {tuple(batch.shape)}. Stage stl needs the '
            f'training set wrapped in fan_stl.stl.views.PairedViewDataset (and, with the prefetcher, the loader in '
            f'PairedViewLoader); the launcher and build_task set this up.')
    return batch.chunk(2, dim=1)


class PairedViewLoader:
    """ Wrap timm's prefetching train loader of a `PairedViewDataset`: each split-major `(2B, C, H, W)` batch (and
    its target, which `fast_collate` repeats per view when there is no mixing) becomes `(B, 2C, H, W)`. Everything
    else (`len`, `sampler`, `mixup_enabled`, ...) is the wrapped loader's. """

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        for input, target in self.loader:
            teacher, student = input.chunk(2)
            if target.shape[0] == input.shape[0]:
                target = target[teacher.shape[0]:]
            yield pair_views(teacher, student), target

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        if name == 'loader':
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __setattr__(self, name: str, value) -> None:
        if name == 'loader':
            object.__setattr__(self, name, value)
        else:
            setattr(self.loader, name, value)
