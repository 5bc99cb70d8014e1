"""ImageNet-P: flip rate and top-5 distance as the reference code defines them, on frame folders, by hand."""
import pytest
import torch

from fan_stl.robustness.evaluate import evaluate_robustness
from fan_stl.robustness.imagenet_p import normalised_means, sequence_metrics, top5_distance
from fan_stl.robustness.layouts import LayoutError
from fan_stl.robustness.sets import ExtraSets

from .evalsets_helpers import SETTINGS, ColourModel1k, make_folder


def test_top5_distance_by_hand():
    first = torch.tensor([9., 8., 7., 6., 5., 4., 3., 2., 1., 0.])  # order 0, 1, 2, 3, 4, ...
    swapped = torch.tensor([8., 9., 7., 6., 5., 4., 3., 2., 1., 0.])  # ranks of 0..4: 2, 1, 3, 4, 5
    assert top5_distance(first, swapped) == 2  # |0-1| + |1-0|
    sunk = torch.tensor([-1., 9., 8., 7., 6., 4., 3., 2., 1., 0.])  # 0 drops to rank 10 -> min(9, 5) = 5
    assert top5_distance(first, sunk) == 5 + 1 + 1 + 1 + 1
    assert top5_distance(first, first) == 0


def test_noise_sequences_compare_with_the_first_frame():
    a, b = torch.tensor([1., 0., 0., 0., 0., 0.]), torch.tensor([0., 1., 0., 0., 0., 0.])
    assert sequence_metrics([a, b, a], noise=False)[0] == 1.0  # consecutive: both pairs flip
    assert sequence_metrics([a, b, a], noise=True)[0] == 0.5  # to the first: only the middle frame differs


def test_frame_folders_by_hand_and_normalised_means(tmp_path):
    root = make_folder(tmp_path / 'p', {
        'brightness/n01440764/seq0/000.png': 'red', 'brightness/n01440764/seq0/001.png': 'green',
        'brightness/n01440764/seq0/002.png': 'green',
        'gaussian_noise/n01440764/seq0/000.png': 'red', 'gaussian_noise/n01440764/seq0/001.png': 'green',
        'gaussian_noise/n01440764/seq0/002.png': 'red'})
    results = evaluate_robustness(ColourModel1k(), 'm', tmp_path / 'out.json', settings=SETTINGS,
                                  extra=ExtraSets(imagenet_p=root))
    p = results['imagenet_p']['perturbations']
    # red frame ranks 0, 2, 1, 3, 4; green frame 1, 2, 0, 3, 4: a red<->green pair is 1 flip and top-5 distance 4
    assert p['brightness']['flip_rate'] == 0.5 and p['brightness']['top5_distance'] == 2.0
    assert p['gaussian_noise']['flip_rate'] == 0.5 and p['gaussian_noise']['top5_distance'] == 2.0
    assert results['imagenet_p']['summary'] == {'mean_flip_rate': 0.5, 'mean_top5_distance': 2.0}
    base = {'brightness': {'flip_rate': 0.25, 'top5_distance': 4.0},
            'gaussian_noise': {'flip_rate': 1.0, 'top5_distance': 1.0}}
    assert normalised_means(p, base) == pytest.approx({'mfr': 100 * (2 + 0.5) / 2, 'mt5d': 100 * (0.5 + 2) / 2})


@pytest.mark.parametrize('files, message', [
    ({'wobble/n0/s/0.png': 'red'}, 'perturbations from'),
    ({'rotate/n0/s/0.png': 'red'}, 'at least 2 frames'),
])
def test_bad_imagenet_p_layouts(tmp_path, files, message):
    with pytest.raises(LayoutError, match=message):
        evaluate_robustness(ColourModel1k(), 'm', tmp_path / 'out.json', settings=SETTINGS,
                            extra=ExtraSets(imagenet_p=make_folder(tmp_path / 'p', files)))


def test_videos_are_refused_with_advice(tmp_path):
    (tmp_path / 'p' / 'rotate' / 'n0').mkdir(parents=True)
    (tmp_path / 'p' / 'rotate' / 'n0' / 'v.mp4').write_bytes(b'')
    with pytest.raises(LayoutError, match='decode each ImageNet-P video'):
        evaluate_robustness(ColourModel1k(), 'm', tmp_path / 'out.json', settings=SETTINGS,
                            extra=ExtraSets(imagenet_p=tmp_path / 'p'))
