"""`TransformWrappingDataset`: takes over the transform timm assigns, hands the rest to the wrapped dataset."""
import pickle

import pytest

from fan_stl.stl.wrapped_dataset import TransformWrappingDataset


class _Images:
    def __init__(self):
        self.transform = None
        self.reader = 'the reader'

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return index * 10, index


class _Doubled(TransformWrappingDataset):
    def wrap(self, transform):
        return lambda image: 2 * transform(image)

    def __getitem__(self, index):
        image, target = self.dataset[index]
        return self.wrapped_transform()(image), target


def test_an_assigned_transform_is_wrapped_and_taken_from_the_wrapped_dataset():
    images = _Images()
    dataset = _Doubled(images)
    with pytest.raises(RuntimeError, match='_Doubled has no train transform; assign one'):
        dataset[1]
    dataset.transform = lambda image: image + 1
    assert dataset[2] == (42, 2) and images.transform is None
    assert len(dataset) == 3 and dataset.reader == 'the reader'


def test_it_unpickles_without_recursing():
    dataset = pickle.loads(pickle.dumps(_Doubled(_Images())))
    assert dataset.reader == 'the reader'
