"""Augmentation splits: split 0 clean (never erased), shared crop, per-split photometric draws, split-major batches."""
import pytest
import torch
from timm.data import create_loader

from fan_stl.stl.multiview import SplitViewDataset, SplitViewLoader
from tests.stl_helpers import ColourDataset


def _loader(dataset, prefetcher, **kwargs):
    return create_loader(dataset, input_size=(3, 32, 32), batch_size=4, is_training=True, num_aug_splits=3,
                         use_prefetcher=prefetcher, device=torch.device('cpu'), num_workers=0, **kwargs)


@pytest.mark.parametrize('prefetcher', [True, False])
def test_split_major_batches_with_a_clean_unerased_first_split(prefetcher):
    dataset = SplitViewDataset(ColourDataset([(200, 30, 30), (30, 30, 200)], length=8), 3)
    loader = _loader(dataset, prefetcher, re_prob=1.0, re_split=True, color_jitter=0.8)
    if not prefetcher:
        loader = SplitViewLoader(loader)
    input, target = next(iter(loader))
    assert input.shape == (12, 3, 32, 32) and torch.equal(target, target[:4].repeat(3))
    clean, *augmented = input.chunk(3)
    flat = clean.flatten(2)
    assert torch.allclose(flat, flat[..., :1], atol=1e-5)  # constant images: clean split neither erased nor jittered
    assert any(not torch.allclose(a, clean, atol=1e-3) for a in augmented)


def test_stage_stl_refuses_geometric_steps_in_the_splits():
    dataset = SplitViewDataset(ColourDataset([(200, 30, 30)], length=4), 2, student_only=True)
    with pytest.raises(ValueError, match='geometry'):
        _loader(dataset, True, auto_augment='rand-m9-mstd0.5-inc1-mmax9')
    _loader(SplitViewDataset(ColourDataset([(200, 30, 30)], length=4), 2, student_only=True), True,
            auto_augment='augmix-m3-w3')  # AugMix runs as its photometric form


def test_transform_without_separate_parts_is_refused():
    dataset = SplitViewDataset(ColourDataset([(0, 0, 0)], length=4), 2)
    with pytest.raises(ValueError, match='num_aug_splits=2'):
        dataset.transform = lambda img: img
