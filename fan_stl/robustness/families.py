"""Corruption families as a registry: names, severities, normaliser and citation of each corrupted ImageNet variant.

A corrupted folder (`<root>/<corruption>/<severity 1-5>/<class>/<image>`) is recognised by its corruption folder
names; each family is reported as its own block and normalised by its own reference:

* ImageNet-C (Hendrycks & Dietterich, ICLR 2019): 15 standard + 4 extra corruptions; AlexNet's published errors
  (`metrics.ALEXNET`, the numbers of the FAN / STL evaluation code) normalise the 15.
* ImageNet-C-bar (Mintun, Kirillov & Xie, NeurIPS 2021; facebookresearch/augmentation-corruption, MIT): 10
  corruptions dissimilar to ImageNet-C, in ImageNet-C's folder layout. No AlexNet errors that could be verified here:
  normalised relative to `--baseline` only.
* ImageNet-3DCC (Kar et al., CVPR 2022), the 12 corruptions RobustBench evaluates (`robustbench.data.CORRUPTIONS_3DCC`,
  robustbench 1.1.1). RobustBench's AlexNet normalisers live in its repository's `model_info` CSV files, which its
  wheel does not carry: normalised relative to `--baseline` only.

Unknown or mixed names are one error that lists the families and the names found.
"""
import difflib
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from .metrics import (
    ALEXNET, CorruptionBaseline, CorruptionSummary, ErrorGrid, mce, mean_corruption_accuracy, missing_cells,
    relative_mce, summarize_corruptions,
)
from .names import EXTRA_CORRUPTIONS, SEVERITIES, STANDARD_CORRUPTIONS


@dataclass(frozen=True)
class CorruptionFamily:
    """ One corrupted-ImageNet family: `corruptions` enter its summary (mCE / mean accuracy), `extra` are reported
    apart; `normaliser` is the published reference for its mCE (None: only a `--baseline` model normalises). """
    key: str
    title: str
    corruptions: Tuple[str, ...]
    extra: Tuple[str, ...] = ()
    severities: Tuple[int, ...] = SEVERITIES
    normaliser: Optional[CorruptionBaseline] = None
    normaliser_source: str = 'none published that could be verified: mCE only relative to --baseline'
    citation: str = ''

    @property
    def names(self) -> Tuple[str, ...]:
        return self.corruptions + self.extra


IMAGENET_C = CorruptionFamily(
    'imagenet_c', 'ImageNet-C', STANDARD_CORRUPTIONS, EXTRA_CORRUPTIONS, normaliser=ALEXNET,
    normaliser_source='AlexNet top-1 errors of Hendrycks & Dietterich (2019), as in the FAN / STL evaluation code',
    citation='Hendrycks & Dietterich, Benchmarking Neural Network Robustness to Common Corruptions, ICLR 2019')
IMAGENET_C_BAR = CorruptionFamily(
    'imagenet_c_bar', 'ImageNet-C-bar', (
        'blue_noise_sample', 'brownish_noise', 'caustic_refraction', 'checkerboard_cutout', 'cocentric_sine_waves',
        'inverse_sparkles', 'perlin_noise', 'plasma_noise', 'single_frequency_greyscale', 'sparkles'),
    citation='Mintun, Kirillov & Xie, On Interaction Between Augmentations and Corruptions in Natural Corruption '
             'Robustness, NeurIPS 2021 (facebookresearch/augmentation-corruption, MIT)')
IMAGENET_3DCC = CorruptionFamily(
    'imagenet_3dcc', 'ImageNet-3DCC', (
        'near_focus', 'far_focus', 'bit_error', 'color_quant', 'flash', 'fog_3d', 'h265_abr', 'h265_crf', 'iso_noise',
        'low_light', 'xy_motion_blur', 'z_motion_blur'),
    normaliser_source='RobustBench measures AlexNet on it, but those numbers are not in the robustbench wheel: '
                      'mCE only relative to --baseline',
    citation='Kar et al., 3D Common Corruptions and Data Augmentation, CVPR 2022 (the 12 corruptions RobustBench '
             'evaluates)')
FAMILIES: Dict[str, CorruptionFamily] = {f.key: f for f in (IMAGENET_C, IMAGENET_C_BAR, IMAGENET_3DCC)}


def _family_list() -> str:
    return '; '.join(f'{f.title} ({", ".join(f.names)})' for f in FAMILIES.values())


def family_of_name(name: str) -> Optional[CorruptionFamily]:
    return next((f for f in FAMILIES.values() if name in f.names), None)


def identify_family(names: Sequence[str], where: str) -> CorruptionFamily:
    """ The one family all corruption folder `names` of `where` belong to; one `ValueError` naming the families and
    the names found when some names are unknown or the names mix families. """
    unknown = [n for n in names if family_of_name(n) is None]
    if unknown:
        known = [n for f in FAMILIES.values() for n in f.names]
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
            hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}? names are lower case)' if close else ''))
        raise ValueError(
            f'{where} has folder(s) that are no corruption of any known family: {", ".join(hints)} (found: '
            f'{", ".join(names)}). Known families: {_family_list()}. Rename or move those folders.')
    found: Dict[str, list] = {}
    for name in names:
        found.setdefault(family_of_name(name).key, []).append(name)
    if len(found) > 1:
        parts = '; '.join(f'{FAMILIES[k].title}: {", ".join(v)}' for k, v in found.items())
        raise ValueError(
            f'{where} mixes corruption families ({parts}); each family is reported and normalised on its own: put '
            f'each family in its own folder and pass each one.')
    if not found:
        raise ValueError(f'{where} holds no corruption folders. Known families: {_family_list()}.')
    return FAMILIES[next(iter(found))]


def summarize_family(
        grid: ErrorGrid,
        family: CorruptionFamily,
        clean_error: Optional[float],
        baseline: Optional[CorruptionBaseline],
) -> CorruptionSummary:
    """ The corruption metrics of one family's grid: ImageNet-C's own summary (15 + 4 extra) for ImageNet-C, else
    mean accuracy over the family's corruptions and, with a `baseline` that has them, mCE / relative mCE. """
    if family.key == IMAGENET_C.key:
        return summarize_corruptions(grid, clean_error, baseline)
    summary = summarize_corruptions({}, None, None)
    summary.baseline = baseline.name if baseline is not None else None
    summary.corruption_errors = {c: sum(grid[c].values()) / len(grid[c]) for c in family.names if grid.get(c)}
    summary.severities = {c: sorted(int(s) for s in grid[c]) for c in summary.corruption_errors}
    summary.notes = []
    missing = missing_cells(grid, family.corruptions)
    if missing:
        summary.notes.append(
            f'{family.title}: mCE and mean accuracy need all {len(family.corruptions)} corruptions x 5 severities; '
            f'{len(missing)} cell(s) missing ({", ".join(missing[:4])}{" ..." if len(missing) > 4 else ""})')
        return summary
    summary.mean_corruption_accuracy = mean_corruption_accuracy(grid, family.corruptions)
    if baseline is None:
        summary.notes.append(f'{family.title}: no mCE ({family.normaliser_source})')
        return summary
    try:
        summary.mce = mce(grid, baseline, family.corruptions)
        if clean_error is not None:
            summary.relative_mce = relative_mce(grid, clean_error, baseline, family.corruptions)
    except ValueError as e:
        summary.notes.append(f'{family.title}: {e}')
    return summary
