"""Patch drop: fixed nested masks, and an accuracy curve and its area worked out by hand."""
import pytest
import torch

from fan_stl.robustness.evaluate import evaluate_robustness
from fan_stl.robustness.occlusion import PatchDrop, area_under_curve, check_ratios
from fan_stl.robustness.sets import ExtraSets

from .evalsets_helpers import SETTINGS, make_folder


def test_patch_drop_is_seeded_and_nested():
    image = torch.ones(3, 64, 64)
    dropped = {r: PatchDrop(r, seed=3)(image, 7) for r in (0.0, 0.25, 0.5)}
    assert torch.equal(dropped[0.0], image)
    for ratio, out in dropped.items():
        assert (out[0] == 0).float().mean() == pytest.approx(ratio)  # 16 patches of 16 px
    assert bool(((dropped[0.25] == 0) <= (dropped[0.5] == 0)).all())  # the larger ratio drops a superset
    assert torch.equal(PatchDrop(0.5, seed=3)(image, 7), dropped[0.5])
    assert not torch.equal(PatchDrop(0.5, seed=3)(image, 8), dropped[0.5])


class ZeroShare(torch.nn.Module):
    """ Class 0 ("occluded") scores the share of exactly-zero input values; class 1 a constant 0.45. """
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        share = (x == 0).float().mean(dim=(1, 2, 3))
        return torch.stack([share * self.w, torch.full_like(share, 0.45)], dim=1)


def test_accuracy_curve_and_area_by_hand(tmp_path):
    clean = make_folder(tmp_path / 'val', {'a/0.png': 'red', 'b/0.png': 'red', 'b/1.png': 'green', 'b/2.png': 'blue'})
    results = evaluate_robustness(ZeroShare(), 'm', tmp_path / 'out.json', clean=clean, settings=SETTINGS,
                                  extra=ExtraSets(occlusion=[0, 0.25, 0.5, 0.75]))
    # 32 px input = 4 patches; 0 or 1 dropped: only the 3 'b' images right; 2 or 3 dropped: only 'a'
    summary = results['occlusion']['summary']
    assert summary['ratios'] == [0.0, 0.25, 0.5, 0.75] and summary['accuracy'] == [75.0, 75.0, 25.0, 25.0]
    assert summary['area'] == pytest.approx((0.25 * 75 + 0.25 * 50 + 0.25 * 25) / 0.75)
    assert area_under_curve({0.0: 80.0}) == 80.0
    with pytest.raises(ValueError, match=r'distinct values in \[0, 1\)'):
        check_ratios([0.5, 1.0])
