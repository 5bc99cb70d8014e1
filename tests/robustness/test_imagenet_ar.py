"""ImageNet-A / -R class lists and the mapping of dataset classes onto model logits."""
from pathlib import Path

import pytest
import timm.data
import torch

from fan_stl.robustness.class_maps import dataset_label_map, imagenet1k_wnids, imagenet_subset_label_map
from fan_stl.robustness.imagenet_ar_wnids import IMAGENET_A_WNIDS, IMAGENET_R_WNIDS

TIMM_INFO = Path(timm.data.__file__).parent / '_info'


@pytest.mark.parametrize('wnids, timm_file', [
    (IMAGENET_A_WNIDS, 'imagenet_a_synsets.txt'), (IMAGENET_R_WNIDS, 'imagenet_r_synsets.txt')])
def test_class_lists_agree_with_an_independent_copy(wnids, timm_file):
    assert len(wnids) == len(set(wnids)) == 200
    assert list(wnids) == sorted(wnids) and set(wnids) <= set(imagenet1k_wnids())
    assert list(wnids) == (TIMM_INFO / timm_file).read_text().split()


def test_imagenet_a_and_r_differ():
    assert len(set(IMAGENET_A_WNIDS) & set(IMAGENET_R_WNIDS)) < 200


def test_subset_restriction_scores_only_the_200_classes():
    in1k = imagenet1k_wnids()
    dataset_classes = [IMAGENET_R_WNIDS[3], IMAGENET_R_WNIDS[150]]  # a partial copy of the dataset
    label_map = imagenet_subset_label_map(dataset_classes, 'imagenet_r', 1000)
    logits = torch.zeros(2, 1000)
    outside = next(i for i, w in enumerate(in1k) if w not in IMAGENET_R_WNIDS)
    logits[:, outside] = 10.0  # the model's favourite class does not exist in ImageNet-R
    logits[0, in1k.index(IMAGENET_R_WNIDS[3])] = 5.0
    logits[1, in1k.index(IMAGENET_R_WNIDS[7])] = 5.0
    restricted, target = label_map.apply(logits, torch.tensor([0, 1]))
    assert restricted.shape == (2, 200)
    assert target.tolist() == [3, 150]  # positions among all 200, not among the 2 folders present
    assert restricted.argmax(1).tolist() == [3, 7]  # the outside class cannot win


def test_subset_restriction_rejects_wrong_heads_and_classes():
    with pytest.raises(ValueError, match='this model has 10 outputs'):
        imagenet_subset_label_map(IMAGENET_A_WNIDS[:2], 'imagenet_a', 10)
    not_in_a = next(w for w in imagenet1k_wnids() if w not in IMAGENET_A_WNIDS)
    with pytest.raises(ValueError, match=f'not among the 200 imagenet_a classes: {not_in_a}'):
        imagenet_subset_label_map([not_in_a], 'imagenet_a', 1000)
    with pytest.raises(ValueError, match='unknown ImageNet subset'):
        imagenet_subset_label_map([], 'imagenet_x', 1000)


def test_dataset_label_map():
    identity = dataset_label_map(['a', 'b', 'c'], 3)
    logits, target = identity.apply(torch.eye(3), torch.tensor([2, 0]))
    assert torch.equal(logits, torch.eye(3)) and target.tolist() == [2, 0]

    in1k = imagenet1k_wnids()
    imagenette = ['n01440764', 'n02102040', 'n03888257']
    _, target = dataset_label_map(imagenette, 1000).apply(torch.zeros(2, 1000), torch.tensor([1, 2]))
    assert target.tolist() == [in1k.index('n02102040'), in1k.index('n03888257')] == [217, 701]

    with pytest.raises(ValueError, match=r'3 classes \(a, b, c\) but the model head has 10 outputs'):
        dataset_label_map(['a', 'b', 'c'], 10)
