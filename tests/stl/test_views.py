"""Clean teacher view: proof that it follows the student's crop / flip / geometric ops exactly and nothing else."""
import copy
import random

import numpy as np
import pytest
import torch
from timm.data import create_loader, create_transform
from timm.data.auto_augment import RandAugment
from timm.data.random_erasing import RandomErasing

from fan_stl.stl.mixing import STLCollateMixup
from torchvision import transforms as T

from fan_stl.stl.views import (
    GEOMETRIC_AUGMENT_OPS, VIEW_STEPS, PairedViewDataset, PairedViewLoader, PairedViewTransform, pair_views,
    register_view_step, split_views,
)
from tests.stl_helpers import ColourDataset, random_blocks_image

# mmax9: timm's PosterizeIncreasing at magnitude 10 asks Pillow >= 13 for 0 bits, which it rejects
RECIPE = dict(is_training=True, auto_augment='rand-m9-mstd0.5-inc1-mmax9', re_prob=0.5, re_mode='pixel', hflip=0.5,
              interpolation='random')


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _without_colour_and_erasing(transform):
    """ Same recipe and random draws, but colour ops do nothing and erasing never fires. """
    transform = copy.deepcopy(transform)
    for step in transform.transforms:
        if isinstance(step, RandAugment):
            for op in step.ops:
                if op.name not in GEOMETRIC_AUGMENT_OPS:
                    op.aug_fn = lambda img, *args, **kwargs: img
        if isinstance(step, RandomErasing):
            step.probability = 0.
    return transform


def test_teacher_view_is_student_geometry_without_colour_or_erasing():
    transform = create_transform(64, **RECIPE)
    paired = PairedViewTransform(transform)
    reference = PairedViewTransform(_without_colour_and_erasing(transform))
    img = random_blocks_image(0)
    student_differs = 0
    for seed in range(30):
        _seed(seed)
        teacher, student = paired(img)
        _seed(seed)
        timm_student = transform(img)
        _seed(seed)
        ref_teacher, ref_student = reference(img)
        assert torch.equal(student, timm_student)  # the student gets timm's recipe, bit for bit
        assert torch.equal(teacher, ref_teacher)  # colour ops and erasing never reach the teacher...
        assert torch.equal(teacher, ref_student)  # ...which sees exactly the student's crop, flip and warps
        student_differs += not torch.equal(teacher, student)
    assert student_differs > 10


class _Posterise:
    def __call__(self, img):
        return img.point(lambda v: v & 0xC0)


def test_unregistered_step_is_refused_with_the_registration_call(monkeypatch):
    transform = T.Compose([T.RandomResizedCrop(64), _Posterise(), T.ToTensor()])
    with pytest.raises(ValueError, match=r'register_view_step\(_Posterise, "shared" or "student"\)'):
        PairedViewTransform(transform)
    monkeypatch.setitem(VIEW_STEPS, _Posterise, 'student')
    teacher, student = PairedViewTransform(transform)(random_blocks_image(0))
    assert not torch.equal(teacher, student) and torch.equal(teacher, (teacher * 255).round() / 255)
    with pytest.raises(ValueError, match="'shared' or 'student'"):
        register_view_step(_Posterise, 'teacher')


@pytest.mark.parametrize('prefetcher', [True, False])
def test_loader_spares_teacher_from_erasing_jitter_and_mixing(prefetcher):
    dataset = PairedViewDataset(ColourDataset([(255, 255, 255), (0, 0, 0)], length=8))
    collate = STLCollateMixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=2) if prefetcher else None
    loader = create_loader(
        dataset, input_size=(3, 64, 64), batch_size=4, is_training=True, re_prob=1.0, re_split=True,
        color_jitter=0.4, use_prefetcher=prefetcher, device=torch.device('cpu'), num_workers=0,
        collate_fn=collate)
    input, target = next(iter(PairedViewLoader(loader) if prefetcher else loader))
    assert input.shape == (4, 6, 64, 64) and target.shape[0] == 4
    teacher, student = split_views(input)
    assert teacher.shape == student.shape == (4, 3, 64, 64)
    for view in teacher:  # a constant image stays constant: no erasing, no jitter, no mixing
        assert torch.equal(view, view[:, :1, :1].expand_as(view))
    assert not all(torch.equal(v, v[:, :1, :1].expand_as(v)) for v in student)


def test_split_views_round_trip_and_clear_error():
    teacher, student = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    t, s = split_views(pair_views(teacher, student))
    assert torch.equal(t, teacher) and torch.equal(s, student)
    with pytest.raises(ValueError, match='PairedViewDataset'):
        split_views(torch.rand(2, 3, 8, 8))


def test_paired_loader_keeps_the_student_targets_of_an_unmixed_prefetcher_batch():
    dataset = PairedViewDataset(ColourDataset([(255, 0, 0), (0, 255, 0)], length=4))
    loader = create_loader(dataset, input_size=(3, 32, 32), batch_size=4, is_training=True, use_prefetcher=True,
                           device=torch.device('cpu'), num_workers=0)
    paired = PairedViewLoader(loader)
    input, target = next(iter(paired))
    assert input.shape == (4, 6, 32, 32) and target.shape == (4,)
    _, student = split_views(input)
    red = student[:, 0].mean((1, 2)) > student[:, 1].mean((1, 2))
    assert torch.equal(target, (~red).long())  # each student's own label (red = class 0, green = class 1)
    assert len(paired) == len(loader) and paired.sampler is loader.sampler
