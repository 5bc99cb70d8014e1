"""Confusion-matrix mIoU: hand-computed values, void ignored, absent classes left out of the mean."""
import math

import pytest
import torch

from fan_stl.segmentation.metrics import ConfusionMatrix


def test_iou_by_hand_with_void_ignored():
    target = torch.tensor([[0, 0, 1, 1, 2, 3]])
    prediction = torch.tensor([[0, 1, 1, 1, 0, 2]])  # the last pixel is void (3): its prediction does not count
    m = ConfusionMatrix(3, ignore_index=3)
    m.update(prediction, target)
    # class 0: TP 1, FP 1 (pixel 4), FN 1 (pixel 1) -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 0, FN 1 -> 0
    torch.testing.assert_close(m.iou(), torch.tensor([1 / 3, 2 / 3, 0.], dtype=torch.float64))
    assert m.miou() == pytest.approx(100 / 3)
    assert m.pixel_accuracy() == pytest.approx(60.)
    assert int(m.matrix.sum()) == 5


def test_classes_absent_everywhere_have_no_iou_and_leave_the_mean():
    m = ConfusionMatrix(4, ignore_index=255)
    m.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    iou = m.iou()
    assert iou[:2].tolist() == [1., 1.] and math.isnan(iou[2]) and math.isnan(iou[3])
    assert m.miou() == 100.
    summary = m.summary(['a', 'b', 'c', 'd'])
    assert summary['iou'] == {'a': 100., 'b': 100., 'c': None, 'd': None}


def test_accumulates_over_batches():
    one, two = ConfusionMatrix(3, 9), ConfusionMatrix(3, 9)
    p, t = torch.randint(0, 3, (4, 8, 8)), torch.randint(0, 3, (4, 8, 8))
    one.update(p, t)
    for i in range(4):
        two.update(p[i], t[i])
    assert torch.equal(one.matrix, two.matrix)


def test_bad_shapes_and_values():
    m = ConfusionMatrix(3, 9)
    with pytest.raises(ValueError, match='differ in shape'):
        m.update(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match='target values outside 0-2'):
        m.update(torch.zeros(2), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match='predicted classes outside'):
        m.update(torch.tensor([0, 3]), torch.zeros(2))
