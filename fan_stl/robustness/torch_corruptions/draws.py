"""Random draws of a batch, one `torch.Generator` per image: an image's corruption depends only on its own seed,
never on the batch it is in, its position there or the device's other work."""
from typing import Callable, List, Sequence

import torch

Generators = Sequence[torch.Generator]


def make_generators(seeds: Sequence[int], device: torch.device) -> List[torch.Generator]:
    """ One generator per image on `device`, seeded with the image's seed. """
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def per_image(generators: Generators, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """ `draw(generator)` for every image, stacked on a new first dimension. """
    return torch.stack([draw(g) for g in generators])


def normal(generators: Generators, shape: Sequence[int], mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    device = generators[0].device
    return per_image(generators, lambda g: torch.randn(tuple(shape), generator=g, device=device)) * std + mean


def uniform(generators: Generators, shape: Sequence[int], low: float, high: float) -> torch.Tensor:
    device = generators[0].device
    return per_image(generators, lambda g: torch.rand(tuple(shape), generator=g, device=device)) * (high - low) + low


def integers(generators: Generators, shape: Sequence[int], low: int, high: int) -> torch.Tensor:
    """ Integers in [low, high) (high excluded, as numpy's `randint`). """
    device = generators[0].device
    return per_image(generators, lambda g: torch.randint(low, high, tuple(shape), generator=g, device=device))
