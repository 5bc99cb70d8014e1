"""AugMix for the STL student view: timm's AugMix without its geometric ops; the teacher keeps the shared crop/flip."""
import random

import numpy as np
import torch
from timm.data import create_transform
from timm.data.auto_augment import AugMixAugment, augment_and_mix_transform

from fan_stl.stl.augment.augmix import GEOMETRIC_AUGMENT_OPS, photometric_augmix
from fan_stl.stl.views import PairedViewTransform
from tests.stl_helpers import random_blocks_image


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_photometric_augmix_is_timms_augmix_without_geometric_ops():
    step = augment_and_mix_transform('augmix-m5-w4-d2', {})
    kept = photometric_augmix(step)
    assert isinstance(kept, AugMixAugment) and (kept.width, kept.depth, kept.alpha) == (4, 2, step.alpha)
    assert [op.name for op in kept.ops] == [op.name for op in step.ops if op.name not in GEOMETRIC_AUGMENT_OPS]
    assert {op.name for op in step.ops} & GEOMETRIC_AUGMENT_OPS  # timm's list had geometric ops to remove
    img = random_blocks_image(3, size=(64, 64))
    _seed(1)
    ours = np.asarray(kept(img))
    _seed(1)
    timms = np.asarray(AugMixAugment(kept.ops, alpha=step.alpha, width=4, depth=2)(img))
    assert np.array_equal(ours, timms)  # the same AugMix, op list aside


def test_paired_views_with_augmix_keep_the_teacher_on_the_shared_crop():
    transform = create_transform(64, is_training=True, auto_augment='augmix-m5-w4-d2', hflip=0.5)
    reference = PairedViewTransform(create_transform(64, is_training=True, hflip=0.5))
    paired = PairedViewTransform(transform)
    img = random_blocks_image(0)
    differs = 0
    for seed in range(8):
        _seed(seed)
        teacher, student = paired(img)
        _seed(seed)
        ref_teacher, _ = reference(img)
        assert torch.equal(teacher, ref_teacher)  # AugMix never reaches the teacher, and draws nothing shared
        differs += not torch.equal(teacher, student)
    assert differs >= 6
