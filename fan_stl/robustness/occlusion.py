"""Occlusion robustness (Naseer et al., "Intriguing Properties of Vision Transformers", NeurIPS 2021): accuracy as a
growing share of the input's 16 px patches is dropped.

For each drop ratio (default 0, 0.1, ..., 0.9) every image loses `round(ratio x patches)` patches of its 16 px grid
(on the model input, after the eval transform); a dropped patch is set to 0 in the normalised input, i.e. the
dataset's mean colour. The patches are a fixed random permutation per image (seeded by `seed` and the image's
position), so larger ratios drop supersets of the smaller ones and reruns drop the same patches. Works for any timm
model: only the input changes. The curve's area is the trapezoid area over the ratios divided by their span: a mean
accuracy in %.
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch

PATCH = 16
DEFAULT_RATIOS: Tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass(frozen=True)
class PatchDrop:
    """ `post_transform` for the evaluator: zero `ratio` of the `patch` px patches of an input tensor (C, H, W). """
    ratio: float
    seed: int = 0
    patch: int = PATCH

    def __call__(self, image: torch.Tensor, index: int) -> torch.Tensor:
        rows, cols = image.shape[1] // self.patch, image.shape[2] // self.patch
        if not rows or not cols:
            raise ValueError(f'occlusion needs inputs of at least {self.patch} px; got {tuple(image.shape[1:])}')
        count = round(self.ratio * rows * cols)
        if not count:
            return image
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        dropped = torch.randperm(rows * cols, generator=generator)[:count]
        mask = torch.ones(rows * cols)
        mask[dropped] = 0
        mask = mask.view(rows, cols).repeat_interleave(self.patch, 0).repeat_interleave(self.patch, 1)
        out = image.clone()
        out[:, :rows * self.patch, :cols * self.patch] *= mask
        return out


def check_ratios(ratios: Sequence[float]) -> Tuple[float, ...]:
    ratios = tuple(sorted(float(r) for r in ratios))
    if not ratios or ratios[0] < 0 or ratios[-1] >= 1 or len(set(ratios)) != len(ratios):
        raise ValueError(f'occlusion ratios must be distinct values in [0, 1); got {list(ratios)}')
    return ratios


def area_under_curve(accuracy: Dict[float, float]) -> float:
    """ Trapezoid area under accuracy-vs-ratio divided by the ratio span (a single ratio: its accuracy). """
    points = sorted(accuracy.items())
    if len(points) == 1:
        return points[0][1]
    area = sum((r1 - r0) * (a0 + a1) / 2 for (r0, a0), (r1, a1) in zip(points, points[1:]))
    return area / (points[-1][0] - points[0][0])
