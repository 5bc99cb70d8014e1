"""Top-k accuracy and the ImageNet-C summary metrics, each under its own unambiguous name.

Errors and accuracies are percentages throughout. A *grid* maps corruption name -> severity (1..5) -> top-1 error.

* corruption error `E_c`       mean top-1 error of a corruption over its 5 severities.
* CE_c / mCE                   `E_c / E_c^baseline`, averaged over the 15 standard corruptions (x100). Lower is better.
                               With the AlexNet baseline on ImageNet-C itself this is the mCE of Hendrycks & Dietterich
                               (ICLR 2019) and of the FAN / STL papers (e.g. 42.1 for FAN-L-Hybrid-STL); on other
                               corrupted data only a baseline model evaluated on the same images normalises honestly.
* relative CE / relative mCE   `(E_c - E_clean) / (E_c^baseline - E_clean^baseline)`, averaged likewise (x100): how
                               much accuracy a corruption *costs* relative to the baseline's loss.
* mean corruption accuracy     `100 - mean E_c` over the 15 standard corruptions. Higher is better; NOT an mCE. The
                               FAN / STL READMEs' "IN-C" column (e.g. 68.8 for FAN-L-Hybrid-STL) is a mean accuracy
                               too, but no official code says over which corruptions (15 or all 19) it was taken, so
                               this is not necessarily the same number.

The 4 extra corruptions (speckle_noise, gaussian_blur, spatter, saturate) have no AlexNet reference and never enter
the numbers above; they are reported apart. Missing standard corruptions make mCE undefined rather than silently
averaging fewer (the NVlabs/FAN#7 class of bug, where jpeg_compression was dropped).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .names import ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, STANDARD_CORRUPTIONS

ErrorGrid = Mapping[str, Mapping[int, float]]


@dataclass(frozen=True)
class CorruptionBaseline:
    """ Reference model for CE normalisation: severity-mean top-1 error (%) per corruption and its clean error (%). """
    name: str
    corruption_errors: Mapping[str, float]
    clean_error: Optional[float] = None

    @classmethod
    def from_grid(cls, name: str, grid: ErrorGrid, clean_error: Optional[float] = None) -> 'CorruptionBaseline':
        """ Baseline from another model's evaluated grid (for datasets without AlexNet numbers). """
        return cls(name, corruption_errors(grid), clean_error)


# AlexNet's severity-averaged ImageNet-C top-1 errors (fractions in the literature, here in %): the normalisers of
# the standard mCE, as used by Hendrycks & Dietterich (2019) and the FAN / STL evaluation code. Clean error: 100 - the
# 56.522 top-1 of torchvision's AlexNet_Weights.IMAGENET1K_V1 (the paper rounds it to 43.5).
ALEXNET = CorruptionBaseline(
    name='AlexNet',
    corruption_errors={
        'gaussian_noise': 88.6428, 'shot_noise': 89.4468, 'impulse_noise': 92.2640,
        'defocus_blur': 81.9880, 'glass_blur': 82.6268, 'motion_blur': 78.5948, 'zoom_blur': 79.8360,
        'snow': 86.6816, 'frost': 82.6572, 'fog': 81.9324, 'brightness': 56.4592,
        'contrast': 85.3204, 'elastic_transform': 64.6056, 'pixelate': 71.7840, 'jpeg_compression': 60.6500,
    },
    clean_error=43.478,
)


def topk_correct(logits: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1, 5)) -> Dict[int, int]:
    """ Number of samples whose target is among the top-k logits, for each k (k is capped at the class count). """
    max_k = min(max(topk), logits.shape[1])
    top = logits.topk(max_k, dim=1).indices
    hits = top.eq(target.unsqueeze(1))
    return {k: int(hits[:, :min(k, max_k)].any(dim=1).sum()) for k in topk}


def missing_cells(grid: ErrorGrid, corruptions: Sequence[str] = STANDARD_CORRUPTIONS) -> Tuple[str, ...]:
    """ `corruption/severity` cells of `corruptions` x 1..5 that `grid` lacks. """
    return tuple(f'{c}/{s}' for c in corruptions for s in SEVERITIES if s not in grid.get(c, {}))


def corruption_errors(grid: ErrorGrid, corruptions: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """ Severity-mean error per corruption (default: every corruption of `grid`); needs all 5 severities. """
    corruptions = tuple(grid) if corruptions is None else tuple(corruptions)
    missing = missing_cells(grid, corruptions)
    if missing:
        raise ValueError(
            f'corruption errors need all 5 severities of each corruption; missing {len(missing)} cell(s): '
            f'{", ".join(missing[:8])}{" ..." if len(missing) > 8 else ""}. Evaluate (or generate) those cells first.')
    return {c: sum(grid[c][s] for s in SEVERITIES) / len(SEVERITIES) for c in corruptions}


def _baseline_errors(baseline: CorruptionBaseline, corruptions: Sequence[str]) -> Dict[str, float]:
    absent = [c for c in corruptions if c not in baseline.corruption_errors]
    if absent:
        raise ValueError(f'baseline {baseline.name!r} has no error for {", ".join(absent)}; it cannot normalise them.')
    return {c: baseline.corruption_errors[c] for c in corruptions}


def mce(
        grid: ErrorGrid,
        baseline: CorruptionBaseline = ALEXNET,
        corruptions: Sequence[str] = STANDARD_CORRUPTIONS,
) -> float:
    """ Mean Corruption Error (%): mean over `corruptions` of `E_c / E_c^baseline` x 100 (lower is better). """
    errors, reference = corruption_errors(grid, corruptions), _baseline_errors(baseline, corruptions)
    return 100 * sum(errors[c] / reference[c] for c in corruptions) / len(corruptions)


def relative_mce(
        grid: ErrorGrid,
        clean_error: float,
        baseline: CorruptionBaseline = ALEXNET,
        corruptions: Sequence[str] = STANDARD_CORRUPTIONS,
) -> float:
    """ Relative mCE (%): mean over `corruptions` of `(E_c - E_clean) / (E_c^base - E_clean^base)` x 100. """
    if baseline.clean_error is None:
        raise ValueError(f'relative mCE needs the clean error of baseline {baseline.name!r}; its results have none.')
    errors, reference = corruption_errors(grid, corruptions), _baseline_errors(baseline, corruptions)
    ratios = []
    for c in corruptions:
        reference_drop = reference[c] - baseline.clean_error
        if reference_drop <= 0:
            raise ValueError(
                f'baseline {baseline.name!r} is not hurt by {c} (corruption error {reference[c]:.2f} <= clean error '
                f'{baseline.clean_error:.2f}), so relative CE is undefined; use mCE or another baseline.')
        ratios.append((errors[c] - clean_error) / reference_drop)
    return 100 * sum(ratios) / len(ratios)


def mean_corruption_accuracy(grid: ErrorGrid, corruptions: Sequence[str] = STANDARD_CORRUPTIONS) -> float:
    """ Mean top-1 accuracy (%) over `corruptions` x 5 severities (not an mCE; see the module docstring). """
    errors = corruption_errors(grid, corruptions)
    return 100 - sum(errors.values()) / len(errors)


@dataclass
class CorruptionSummary:
    """ Everything reported for one model's corruption grid; a metric left None has its reason in `notes`.

    `corruption_errors` is the mean error over the severities present (`severities` lists them); mCE and the mean
    accuracies need every standard cell. `baseline` names the mCE normaliser (None: no mCE was computed).
    """
    baseline: Optional[str]
    corruption_errors: Dict[str, float]
    severities: Dict[str, List[int]] = field(default_factory=dict)
    mce: Optional[float] = None
    relative_mce: Optional[float] = None
    mean_corruption_accuracy: Optional[float] = None
    extra_mean_corruption_accuracy: Optional[float] = None
    notes: List[str] = field(default_factory=list)


def summarize_corruptions(
        grid: ErrorGrid,
        clean_error: Optional[float] = None,
        baseline: Optional[CorruptionBaseline] = ALEXNET,
) -> CorruptionSummary:
    """ All corruption metrics that `grid` supports, with a note for each one it does not.

    Per-corruption errors are reported for any severities present; mCE and relative mCE (normalised by `baseline`,
    none when it is None) and the mean accuracies only for complete sets.
    """
    present = [c for c in ALL_CORRUPTIONS if grid.get(c)] + [c for c in grid if c not in ALL_CORRUPTIONS and grid[c]]
    summary = CorruptionSummary(
        baseline.name if baseline is not None else None,
        {c: sum(grid[c].values()) / len(grid[c]) for c in present},
        {c: sorted(int(s) for s in grid[c]) for c in present})
    missing = missing_cells(grid)
    if missing:
        summary.notes.append(
            f'mCE, relative mCE and mean corruption accuracy need all 15 standard corruptions x 5 severities; '
            f'{len(missing)} cell(s) missing ({", ".join(missing[:4])}{" ..." if len(missing) > 4 else ""})')
    else:
        summary.mean_corruption_accuracy = mean_corruption_accuracy(grid)
        if baseline is not None:
            try:
                summary.mce = mce(grid, baseline)
                if clean_error is None:
                    summary.notes.append('relative mCE needs the clean error: evaluate the clean set too')
                else:
                    summary.relative_mce = relative_mce(grid, clean_error, baseline)
            except ValueError as e:  # a baseline without some corruption or clean error
                summary.notes.append(str(e))
    if not missing_cells(grid, EXTRA_CORRUPTIONS):
        summary.extra_mean_corruption_accuracy = mean_corruption_accuracy(grid, EXTRA_CORRUPTIONS)
    return summary
