"""The crop record: the box and flips timm's own train transform applied, and its columns through the mixers."""
import random

import pytest
import torch
import torchvision.transforms.functional as TF
from timm.data import create_transform

from fan_stl.stl.crop_record import (
    MARK, CropRecordDataset, CropRecordTransform, attach_crops, split_crop_target,
)
from fan_stl.stl.data import build_data
from fan_stl.stl.config import STLConfig
from tests.stl_helpers import random_blocks_image


def _timm_transform(hflip=0.5):
    return create_transform(32, is_training=True, hflip=hflip, interpolation='bilinear', auto_augment=None,
                            color_jitter=None, re_prob=0., mean=(0., 0., 0.), std=(1., 1., 1.))


@pytest.mark.parametrize('seed', range(6))
def test_recorded_box_and_flip_reproduce_the_image_of_timms_transform(seed):
    img = random_blocks_image(seed, size=(112, 96))
    transform = _timm_transform()
    random.seed(seed), torch.manual_seed(seed)
    expected = transform(img)
    random.seed(seed), torch.manual_seed(seed)
    image, (top, left, height, width, image_height, image_width, flips) = CropRecordTransform(transform)(img)
    assert torch.equal(image, expected)  # bit-identical to timm's transform with the same seed
    assert (image_height, image_width) == (96, 112)
    rebuilt = TF.to_tensor(TF.resized_crop(img, top, left, height, width, [32, 32],
                                           TF.InterpolationMode.BILINEAR))
    assert torch.equal(rebuilt.flip(-1) if flips & 1 else rebuilt, image)


def test_flips_are_recorded_when_drawn():
    transform = CropRecordTransform(_timm_transform(hflip=1.))
    assert all(transform(random_blocks_image(0))[1][-1] == 1 for _ in range(3))
    transform = CropRecordTransform(_timm_transform(hflip=0.))
    assert all(transform(random_blocks_image(0))[1][-1] == 0 for _ in range(3))


def test_transform_without_a_random_resized_crop_is_refused():
    plain = create_transform(32, is_training=False)
    with pytest.raises(ValueError, match='one random-resized crop'):
        CropRecordTransform(plain)


def test_dataset_yields_label_mark_row_and_record():
    class Images(torch.utils.data.Dataset):
        transform = None

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return random_blocks_image(i), 7 + i

    dataset = CropRecordDataset(Images(), map_rows=[5, 3])
    dataset.transform = _timm_transform()
    image, target = dataset[1]
    assert image.shape == (3, 32, 32) and target.dtype == torch.int64 and target.shape == (10,)
    assert target[:3].tolist() == [8, MARK, 3] and target[-3:-1].tolist() == [96, 112]


def test_split_and_attach_round_trip():
    crops = torch.tensor([[4, 0, 1, 10, 12, 64, 96, 1], [2, 3, 0, 20, 30, 64, 96, 0]])
    labels = torch.tensor([[1], [2]])
    rest, found = split_crop_target(torch.cat([labels, torch.full((2, 1), MARK), crops], 1))
    assert torch.equal(rest, torch.tensor([1, 2])) and torch.equal(found, crops.float())
    packed = torch.rand(2, 9)
    rest, found = split_crop_target(attach_crops(packed, crops))
    assert torch.equal(rest, packed) and torch.equal(found, crops.float())
    assert split_crop_target(labels[:, 0])[1] is None and split_crop_target(packed)[1] is None


def test_mixers_carry_the_record_unmixed():
    config = STLConfig(stage='stl', label_source='maps', label_maps='unused')
    data = build_data(config)
    assert not data.paired and not data.re_split  # no teacher view
    mixer = data.mixer(mixup_alpha=0., cutmix_alpha=1., label_smoothing=0.1, num_classes=3)
    crops = torch.tensor([[0, 0, 0, 64, 96, 64, 96, 0], [1, 8, 8, 32, 32, 64, 96, 1]])
    target = torch.cat([torch.tensor([[0], [2]]), torch.full((2, 1), MARK), crops], 1)
    images, packed = mixer(torch.rand(2, 3, 32, 32), target)
    rest, found = split_crop_target(packed)
    assert torch.equal(found, crops.float()) and rest.shape == (2, 3 + 2 + 2 * 4)


def test_prefetcher_collate_carries_the_record():
    import numpy as np
    data = build_data(STLConfig(stage='stl', label_source='maps', label_maps='unused'))
    collate = data.mixer(prefetcher=True, mixup_alpha=1., cutmix_alpha=0., label_smoothing=0.1, num_classes=3)
    crops = [[0, 0, 0, 64, 96, 64, 96, 0], [1, 8, 8, 32, 32, 64, 96, 1]]
    batch = [(np.full((3, 32, 32), 10 * i, dtype=np.uint8), torch.tensor([i, MARK, *crop]))
             for i, crop in enumerate(crops)]
    images, packed = collate(batch)
    rest, found = split_crop_target(packed)
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(found, torch.tensor(crops, dtype=torch.float32)) and rest.shape == (2, 3 + 2 + 2 * 4)
