"""STL mixing: students mixed as timm mixes them, token targets from the clean teacher view (or following the mix)."""
import numpy as np
import pytest
import torch
from timm.data.mixup import Mixup

from fan_stl.loss import TokenLabelTarget
from fan_stl.mixing import TokenLabelCollateMixup, TokenLabelMixup, attach_token_labels
from fan_stl.token_labels import TeacherTokenLabeler
from tests.stl_helpers import PixelTeacher

MIX = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=3)


def _labeler():
    return TeacherTokenLabeler(PixelTeacher(), mode='soft', smoothing=0.)


def _paired_batch(batch_size=4, size=64):
    """ Teacher views = clean images; student views = the same images after a colour change. """
    clean = torch.rand(batch_size, 3, size, size)
    return torch.stack([clean, clean * 0.5 + 0.25], dim=1), torch.arange(batch_size) % 3


@pytest.mark.parametrize('seed', range(4))
def test_callback_mixes_students_like_timm_and_labels_the_clean_view(seed):
    paired, labels = _paired_batch()
    np.random.seed(seed)
    student, target = TokenLabelMixup(labeler=_labeler(), **MIX)(paired.clone(), labels)
    np.random.seed(seed)
    timm_student, timm_target = Mixup(**MIX)(paired[:, 1].clone(), labels)
    assert isinstance(target, TokenLabelTarget)
    assert torch.equal(student, timm_student) and torch.allclose(target.cls, timm_target)
    clean_targets = _labeler()(paired[:, 0]).dense()
    assert torch.allclose(target.tokens.dense(), clean_targets)  # not the mixed, colour-changed student


@pytest.mark.parametrize('seed', range(6))
def test_follow_mixing_cutmix_box_on_token_grid(seed):
    clean = torch.rand(4, 3, 64, 64)
    np.random.seed(seed)
    mixer = TokenLabelMixup(labeler=_labeler(), follow_mixing=True, mixup_alpha=0., cutmix_alpha=1.0, num_classes=3)
    student, target = mixer(torch.stack([clean, clean], dim=1), torch.arange(4) % 3)
    # a pixel-local teacher on the mixed images gives the pasted token targets exactly: the box is on the grid
    assert torch.allclose(target.tokens.dense(), _labeler()(student).dense(), atol=1e-6)
    pasted_fraction = (student != clean).any(1).float().mean().item()
    lam = 1. - pasted_fraction
    expected_cls = (0.9 * torch.eye(3)[torch.arange(4) % 3] + 0.1 / 3)
    expected_cls = lam * expected_cls + (1 - lam) * expected_cls.flip(0)
    assert torch.allclose(target.cls, expected_cls, atol=1e-6)


def test_follow_mixing_mixup_lambda_on_tokens():
    paired, labels = _paired_batch()
    np.random.seed(0)
    mixer = TokenLabelMixup(labeler=_labeler(), follow_mixing=True, mixup_alpha=0.8, cutmix_alpha=0., num_classes=3)
    student, target = mixer(paired.clone(), labels)
    lam = ((student - paired[:, 1].flip(0)) / (paired[:, 1] - paired[:, 1].flip(0)))[0, 0, 0, 0].item()
    clean = _labeler()(paired[:, 0]).dense()
    assert 0 < lam < 1
    assert torch.allclose(target.tokens.dense(), lam * clean + (1 - lam) * clean.flip(0), atol=1e-4)


def _samples(batch_size=4, size=32):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 3, size, size), generator=g, dtype=torch.uint8)
    return [((img.clone(), img.clone()), i % 3) for i, img in enumerate(images)], images


@pytest.mark.parametrize('follow', [False, True])
def test_collate_variant(follow):
    samples, images = _samples()
    collate = TokenLabelCollateMixup(follow_mixing=follow, mixup_alpha=0., cutmix_alpha=1., num_classes=3)
    np.random.seed(0)  # Beta draw 0.56: a real box
    batch, packed = collate(samples)
    assert batch.dtype == torch.uint8 and batch.shape == (8, 3, 32, 32)
    assert torch.equal(batch[:4], images)  # teacher split first, never mixed
    assert not torch.equal(batch[4:], images)
    student, target = attach_token_labels(batch.float(), packed, _labeler())
    clean = _labeler()(images.float()).dense()
    expected_tokens = _labeler()(student).dense() if follow else clean
    assert torch.allclose(target.tokens.dense(), expected_tokens, atol=1e-5)
    collate.mixup_enabled = False  # as train.py's --mixup-off-epoch does
    batch, packed = collate(samples)
    assert torch.equal(batch[4:], images)
    assert torch.allclose(packed[:, :3], 0.9 * torch.eye(3)[torch.arange(4) % 3] + 0.1 / 3)


def test_unsupported_modes_are_clear_errors():
    with pytest.raises(ValueError, match='batch'):
        TokenLabelMixup(follow_mixing=True, mode='elem', **MIX)
    with pytest.raises(ValueError, match="'half'"):
        TokenLabelCollateMixup(mode='half', **MIX)
    with pytest.raises(ValueError, match='PairedViewDataset'):
        TokenLabelMixup(labeler=_labeler(), **MIX)(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
