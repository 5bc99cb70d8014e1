"""Corruption families: recognised by their names, refused when unknown or mixed, summarised on their own."""
import pytest

from fan_stl.robustness.evaluate import baseline_from_results, evaluate_robustness
from fan_stl.robustness.families import IMAGENET_3DCC, IMAGENET_C, IMAGENET_C_BAR, identify_family, summarize_family
from fan_stl.robustness.layouts import LayoutError, discover_imagenet_c
from fan_stl.robustness.metrics import CorruptionBaseline

from .test_evaluate import COLOURS, SETTINGS, ColourClassifier, make_imagefolder


def test_each_family_is_recognised_by_its_names():
    assert identify_family(['sparkles', 'perlin_noise'], 'x') is IMAGENET_C_BAR
    assert identify_family(['fog_3d', 'near_focus'], 'x') is IMAGENET_3DCC
    assert identify_family(['fog', 'saturate'], 'x') is IMAGENET_C
    assert len(IMAGENET_C_BAR.corruptions) == 10 and len(IMAGENET_3DCC.corruptions) == 12
    assert len(IMAGENET_C.corruptions) == 15 and len(IMAGENET_C.extra) == 4


def test_unknown_and_mixed_names_are_one_error_naming_families_and_names():
    with pytest.raises(ValueError, match=r"no corruption of any known family: 'blurry'.*found: blurry, fog.*"
                                         r"ImageNet-C-bar \(blue_noise_sample"):
        identify_family(['blurry', 'fog'], 'folder x')
    with pytest.raises(ValueError, match='mixes corruption families .*ImageNet-C: fog; ImageNet-C-bar: sparkles'):
        identify_family(['fog', 'sparkles'], 'folder x')


def test_mixed_folder_is_refused_before_any_model_runs(tmp_path):
    for name in ('fog', 'sparkles'):
        make_imagefolder(tmp_path / 'mixed' / name / '1', {k: [k] for k in COLOURS})
    with pytest.raises(LayoutError, match='mixes corruption families'):
        discover_imagenet_c(tmp_path / 'mixed')


def test_family_summary_by_hand():
    grid = {c: {s: 0.0 for s in range(1, 6)} for c in IMAGENET_C_BAR.corruptions}
    grid['sparkles'] = {1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0, 5: 50.0}  # E = 30
    summary = summarize_family(grid, IMAGENET_C_BAR, clean_error=0.0, baseline=None)
    assert summary.mean_corruption_accuracy == pytest.approx(100 - 30 / 10)
    assert summary.mce is None and 'no mCE' in summary.notes[0]
    reference = CorruptionBaseline('ref', {c: 60.0 for c in IMAGENET_C_BAR.corruptions}, clean_error=10.0)
    summary = summarize_family(grid, IMAGENET_C_BAR, clean_error=0.0, baseline=reference)
    assert summary.mce == pytest.approx(100 * (30 / 60) / 10)
    assert summary.relative_mce == pytest.approx(100 * ((30 - 0) / (60 - 10)) / 10)


def test_a_c_bar_folder_is_its_own_block_normalised_by_a_baseline(tmp_path):
    root = tmp_path / 'cbar'
    for c in IMAGENET_C_BAR.corruptions:
        for s in range(1, 6):
            counts = {k: [k] for k in COLOURS}
            if c == 'sparkles' and s == 5:
                counts['a_red'].append('b_green')  # 3 of 4 right: 25 % error in one cell
            make_imagefolder(root / c / str(s), counts, size=8)
    results = evaluate_robustness(ColourClassifier(), 'colour', tmp_path / 'out.json', imagenet_c=root,
                                  settings=SETTINGS)
    assert 'imagenet_c' not in results
    summary = results['imagenet_c_bar']['summary']
    assert summary['mean_corruption_accuracy'] == pytest.approx(100 - (25 / 5) / 10)
    assert summary['mce'] is None
    baseline = baseline_from_results(results)
    assert baseline.corruption_errors['sparkles'] == pytest.approx(5.0)
