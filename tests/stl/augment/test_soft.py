"""Soft augmentation per token: the paper's curve; token targets move with their tokens and soften with visibility."""
import pytest
import torch

from fan_stl.stl.augment.soft import SoftAugment, confidence, shift_maps
from fan_stl.stl.targets import TokenTargets
from tests.stl_helpers import PixelTeacher


def test_confidence_curve_known_values():
    v = torch.tensor([1., 0.5, 0.])
    torch.testing.assert_close(confidence(v, 2., 0.), torch.tensor([1., 0.75, 0.]))
    torch.testing.assert_close(confidence(v, 4., 0.2), torch.tensor([1., 1 - 0.8 / 16, 0.2]))


def test_shift_maps_moves_and_fills():
    maps = torch.arange(9.).view(1, 1, 3, 3)
    out = shift_maps(maps, torch.tensor([1]), torch.tensor([-1]), fill=-1.)
    assert out[0, 0].tolist() == [[-1, -1, -1], [1, 2, -1], [4, 5, -1]]


def test_token_targets_follow_the_moved_pixels_and_soften_with_visibility():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 4, 4).repeat_interleave(16, -1).repeat_interleave(16, -2)  # one colour per token
    teacher = PixelTeacher()
    before = TokenTargets(3, probs=teacher.forward_dense(images)[1].softmax(-1))
    moved, softening = SoftAugment(sigma=0.5, p_occlude=0.).augment(images)
    assert (softening.token_shift != 0).any()
    after = softening.token_targets(before).dense()
    truth = teacher.forward_dense(moved)[1].softmax(-1)
    visible = softening.token_visibility == 1
    torch.testing.assert_close(after[visible], truth[visible])  # whole-token moves: labels follow exactly
    torch.testing.assert_close(after[~visible], torch.full_like(after[~visible], 1 / 3))  # from outside: uniform
    share = visible.float().mean(1)
    torch.testing.assert_close(softening.image_visibility, share)
    onehot = torch.eye(3)[[0, 1, 2, 0]]
    p = confidence(share)[:, None]
    torch.testing.assert_close(softening.class_target(onehot), p * onehot + (1 - p) / 3)


def test_occlusion_softens_the_tokens_it_covers():
    torch.manual_seed(1)
    moved, softening = SoftAugment(sigma=0., p_occlude=1.).augment(torch.rand(3, 3, 32, 32))
    assert (softening.token_shift == 0).all() and (softening.token_visibility < 1).any()
    assert (softening.image_visibility < 1).all()
    torch.testing.assert_close(softening.image_visibility, softening.token_visibility.mean(1))


def test_image_size_must_be_whole_tokens():
    with pytest.raises(ValueError, match='multiple of the token stride'):
        SoftAugment().augment(torch.rand(1, 3, 40, 40))
