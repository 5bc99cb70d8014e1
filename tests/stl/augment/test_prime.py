"""PRIME's primitives from the paper: identities at zero strength, the mixture, the diffeomorphism off in stage stl."""
import pytest
import torch

from fan_stl.stl.augment.prime import PRIME, colour, diffeomorphism, spectral
from fan_stl.stl.config import STLConfig


def test_primitives_are_identities_at_zero_strength_and_change_images_otherwise():
    images = torch.rand(2, 3, 24, 24)
    torch.testing.assert_close(colour(images, sigma=0.), images)
    torch.testing.assert_close(diffeomorphism(images, temperature=0.), images, atol=1e-5, rtol=0)
    lo, hi = images.flatten(1).min(1)[0].view(-1, 1, 1, 1), images.flatten(1).max(1)[0].view(-1, 1, 1, 1)
    torch.testing.assert_close(spectral(images, sigma=0.), (images - lo) / (hi - lo))
    for op in (colour, diffeomorphism, spectral):
        out = op(images)
        assert out.shape == images.shape and not torch.allclose(out, images, atol=1e-3)


def test_diffeomorphism_follows_petrinis_field():
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 33).view(1, 1, 1, 33).expand(1, 3, 33, 33).contiguous()
    out = diffeomorphism(ramp, cut=1, temperature=1e-2)
    torch.manual_seed(0)
    coeff = torch.randn(2, 1, 1, 1) * (1e-2 / 2) ** 0.5
    u = torch.linspace(0, 1, 33)
    expected_x = (u + coeff[0, 0, 0, 0] * torch.sin(torch.pi * u)[None] * torch.sin(torch.pi * u)[:, None])
    torch.testing.assert_close(out[0, 0], expected_x.clamp(0, 1), atol=1e-5, rtol=0)


def test_stage_stl_drops_the_diffeomorphism_by_default_and_refuses_it_explicitly():
    teacher = torch.nn.Identity()
    assert 'diffeo' not in PRIME.from_config(STLConfig(stage='stl', teacher=teacher, batch_augment='prime')).primitives
    assert 'diffeo' in PRIME.from_config(STLConfig(stage='tl', batch_augment='prime')).primitives
    with pytest.raises(ValueError, match='--prime-primitives spectral,color'):
        STLConfig(stage='stl', teacher=teacher, batch_augment='prime', prime_primitives='spectral,diffeo')
    with pytest.raises(ValueError, match='unknown'):
        PRIME(('blur',))


def test_mixture_stays_in_range():
    out = PRIME().transform(torch.rand(4, 3, 32, 32))
    assert out.min() >= 0 and out.max() <= 1
