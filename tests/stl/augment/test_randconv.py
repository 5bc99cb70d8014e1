"""RandConv from the paper: a random conv per image (std 1/sqrt(k*k*C)), geometry kept, RC_mix / RC_img."""
import pytest
import torch

from fan_stl.stl.augment.randconv import RandConv


def test_1x1_kernel_is_a_per_pixel_colour_map_and_weights_have_the_papers_scale():
    torch.manual_seed(0)
    method = RandConv(kernel_sizes=(1,), mix=False, p_keep=0.)
    images = torch.rand(3, 3, 8, 8)
    torch.manual_seed(1)
    out = method.transform(images)
    torch.manual_seed(1)
    torch.randint(1, ())  # the kernel-size draw
    weight = method.weights(3, 3, 1, images.device)[:, :, 0, 0].reshape(3, 3, 3)
    torch.testing.assert_close(out, torch.einsum('boc,bchw->bohw', weight, images))
    big = RandConv().weights(64, 3, 5, torch.device('cpu'))
    assert abs(big.std().item() - 1 / (5 * 5 * 3) ** 0.5) < 0.01


def test_translation_equivariant_and_mixing_keeps_alpha_in_range():
    method = RandConv(kernel_sizes=(7,), mix=False, p_keep=0.)
    images = torch.rand(2, 3, 32, 32)
    shifted = torch.roll(images, 4, dims=-1)
    torch.manual_seed(3)
    a = method.transform(images)
    torch.manual_seed(3)
    b = method.transform(shifted)
    torch.testing.assert_close(torch.roll(a, 4, dims=-1)[..., 10:-10], b[..., 10:-10])  # away from the borders
    mixed = RandConv(kernel_sizes=(3,), mix=True)
    torch.manual_seed(5)
    out = mixed.transform(images)
    torch.manual_seed(5)
    torch.randint(1, ())
    conv_weight = mixed.weights(2, 3, 3, images.device)
    alpha = torch.rand(2, 1, 1, 1)
    conv = torch.nn.functional.conv2d(images.reshape(1, 6, 32, 32), conv_weight, padding=1, groups=2).reshape(
        2, 3, 32, 32)
    torch.testing.assert_close(out, alpha * images + (1 - alpha) * conv)


def test_settings_are_checked():
    with pytest.raises(ValueError, match='odd'):
        RandConv(kernel_sizes=(2,))
