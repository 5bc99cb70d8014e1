"""The four noise corruptions (ImageNet-C constants per severity 1-5); inputs and outputs (N, 3, H, W) in [0, 1]."""
import torch

from . import draws

GAUSSIAN_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_STD = (0.15, 0.2, 0.35, 0.45, 0.6)


def gaussian_noise(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ x + N(0, std) per pixel and channel. """
    return (x + draws.normal(generators, x.shape[1:], std=GAUSSIAN_STD[severity - 1])).clamp(0, 1)


def shot_noise(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Poisson(x * photons) / photons per pixel and channel. """
    photons = SHOT_PHOTONS[severity - 1]
    rates = x * photons
    counts = torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, generators)])
    return (counts / photons).clamp(0, 1)


def impulse_noise(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ Salt and pepper (scikit-image 's&p'): each pixel and channel is flipped with probability `amount`, to 1 or 0
    with equal chance. """
    amount = IMPULSE_AMOUNT[severity - 1]
    draw = draws.uniform(generators, x.shape[1:], 0.0, 1.0)
    salt = (draw <= amount / 2).to(x.dtype)  # given a flip (draw <= amount), salt or pepper with chance 1/2 each
    return torch.where(draw <= amount, salt, x)


def speckle_noise(x: torch.Tensor, severity: int, generators: draws.Generators) -> torch.Tensor:
    """ x + x * N(0, std) per pixel and channel. """
    return (x + x * draws.normal(generators, x.shape[1:], std=SPECKLE_STD[severity - 1])).clamp(0, 1)
