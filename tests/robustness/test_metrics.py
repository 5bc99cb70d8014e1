"""ImageNet-C metrics on constructed grids whose answers are worked out by hand from the AlexNet constants."""
import math

import pytest
import torch

from fan_stl.robustness.metrics import (
    ALEXNET, EXTRA_CORRUPTIONS, STANDARD_CORRUPTIONS, CorruptionBaseline, corruption_errors, mce,
    mean_corruption_accuracy, relative_mce, summarize_corruptions, topk_correct,
)

# Severity-averaged AlexNet errors as fractions, typed in again from the spec (official_fan_stl.md section 4.4) so a
# transcription slip in the package constants fails here.
ALEXNET_FRACTIONS = {
    'gaussian_noise': 0.886428, 'shot_noise': 0.894468, 'impulse_noise': 0.922640, 'defocus_blur': 0.819880,
    'glass_blur': 0.826268, 'motion_blur': 0.785948, 'zoom_blur': 0.798360, 'snow': 0.866816, 'frost': 0.826572,
    'fog': 0.819324, 'brightness': 0.564592, 'contrast': 0.853204, 'elastic_transform': 0.646056,
    'pixelate': 0.717840, 'jpeg_compression': 0.606500,
}


def make_grid(error_of, corruptions=STANDARD_CORRUPTIONS + EXTRA_CORRUPTIONS):
    return {c: {s: float(error_of(i, c, s)) for s in range(1, 6)} for i, c in enumerate(corruptions)}


def test_alexnet_constants_match_the_spec():
    assert set(ALEXNET.corruption_errors) == set(STANDARD_CORRUPTIONS) == set(ALEXNET_FRACTIONS)
    for c, fraction in ALEXNET_FRACTIONS.items():
        assert ALEXNET.corruption_errors[c] == pytest.approx(100 * fraction, abs=1e-9)


def test_mce_by_hand():
    # severity errors 10+i, 12+i, ..., 18+i: the severity mean is 14+i for the i-th corruption
    grid = make_grid(lambda i, c, s: 8 + i + 2 * s)
    expected = 100 * sum((14 + i) / (100 * ALEXNET_FRACTIONS[c]) for i, c in enumerate(STANDARD_CORRUPTIONS)) / 15
    assert mce(grid) == pytest.approx(expected, rel=1e-12)
    # and a round number: half of AlexNet's error everywhere is an mCE of exactly 50
    half = make_grid(lambda i, c, s: 50 * ALEXNET_FRACTIONS[c], STANDARD_CORRUPTIONS)
    assert mce(half) == pytest.approx(50.0)


def test_mce_ignores_the_extra_corruptions():
    grid = make_grid(lambda i, c, s: 30 + s)
    worse_extras = {c: ({s: 99.0 for s in range(1, 6)} if c in EXTRA_CORRUPTIONS else v) for c, v in grid.items()}
    assert mce(worse_extras) == pytest.approx(mce(grid))
    assert mean_corruption_accuracy(worse_extras) == pytest.approx(mean_corruption_accuracy(grid))


def test_relative_mce_by_hand():
    clean_error = 20.0
    # the model loses half of what AlexNet loses from its clean error (43.478) on every corruption -> 50
    grid = make_grid(lambda i, c, s: clean_error + 0.5 * (100 * ALEXNET_FRACTIONS[c] - 43.478), STANDARD_CORRUPTIONS)
    assert relative_mce(grid, clean_error) == pytest.approx(50.0)
    # and with severity-dependent errors, computed term by term
    grid = make_grid(lambda i, c, s: 25 + s + i)
    expected = 100 * sum(
        ((28 + i) - clean_error) / (100 * ALEXNET_FRACTIONS[c] - 43.478)
        for i, c in enumerate(STANDARD_CORRUPTIONS)) / 15
    assert relative_mce(grid, clean_error) == pytest.approx(expected, rel=1e-12)


def test_mean_corruption_accuracy_is_not_mce():
    grid = make_grid(lambda i, c, s: 10 * s)  # every corruption: errors 10..50, mean error 30
    assert mean_corruption_accuracy(grid) == pytest.approx(70.0)
    assert mean_corruption_accuracy(grid, EXTRA_CORRUPTIONS) == pytest.approx(70.0)
    assert not math.isclose(mce(grid), 100 - mean_corruption_accuracy(grid))


def test_missing_standard_corruption_is_an_error_not_a_smaller_mean():
    grid = make_grid(lambda i, c, s: 40.0)
    del grid['jpeg_compression']
    with pytest.raises(ValueError, match='jpeg_compression/1'):
        mce(grid)
    summary = summarize_corruptions(grid, clean_error=20.0)
    assert summary.mce is None and summary.mean_corruption_accuracy is None and summary.relative_mce is None
    assert 'jpeg_compression/1' in summary.notes[0]
    assert summary.extra_mean_corruption_accuracy == pytest.approx(60.0)
    grid['fog'].pop(3)
    with pytest.raises(ValueError, match='fog/3'):
        corruption_errors(grid, ['fog'])


def test_summary_of_a_complete_grid():
    grid = make_grid(lambda i, c, s: 50 * ALEXNET_FRACTIONS.get(c, 0.6))
    summary = summarize_corruptions(grid, clean_error=10.0)
    assert summary.mce == pytest.approx(50.0)
    assert summary.extra_mean_corruption_accuracy == pytest.approx(70.0)
    assert summary.relative_mce == pytest.approx(relative_mce(grid, 10.0))
    assert set(summary.corruption_errors) == set(grid) and not summary.notes
    assert 'clean error' in summarize_corruptions(grid).notes[0]


def test_mce_relative_to_a_model_baseline():
    grid = make_grid(lambda i, c, s: 5 + i + s)
    baseline = CorruptionBaseline.from_grid('baseline', make_grid(lambda i, c, s: 2 * (5 + i + s)), clean_error=10.0)
    assert mce(grid, baseline) == pytest.approx(50.0)
    assert mce(grid, baseline, corruptions=['fog', 'saturate']) == pytest.approx(50.0)
    # relative: model clean 4, baseline clean 10 -> term (E - 4) / (2E - 10) with E the model's severity mean 8 + i
    expected = 100 * sum((8 + i - 4) / (2 * (8 + i) - 10) for i in range(15)) / 15
    assert relative_mce(grid, 4.0, baseline) == pytest.approx(expected)


def test_relative_mce_refuses_a_baseline_that_corruption_does_not_hurt():
    baseline = CorruptionBaseline.from_grid('odd', make_grid(lambda i, c, s: 10.0), clean_error=15.0)
    with pytest.raises(ValueError, match='not hurt by gaussian_noise'):
        relative_mce(make_grid(lambda i, c, s: 20.0), 5.0, baseline)
    assert 'not hurt' in summarize_corruptions(make_grid(lambda i, c, s: 20.0), 5.0, baseline).notes[0]


def test_topk_correct():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5]])
    target = torch.tensor([1, 2, 0])
    assert topk_correct(logits, target, (1, 2, 5)) == {1: 1, 2: 2, 5: 3}
