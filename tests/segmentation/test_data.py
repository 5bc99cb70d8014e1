"""CamVid loader: pairing, the mask checks (one clear error each), resizing, flips, and the real data when present."""
import numpy as np
import pytest
import torch
from PIL import Image

from fan_stl.segmentation.data import VOID, CamVid, check_size, list_pairs, read_mask
from tests.segmentation.camvid_helpers import make_camvid, real_camvid


def test_pairs_images_with_their_masks(tmp_path):
    make_camvid(tmp_path, count=3)
    pairs = list_pairs(tmp_path, 'test')
    assert [(i.name, m.name) for i, m in pairs] == [(f'img_{k:03d}.jpg', f'img_{k:03d}.png') for k in range(3)]


def test_images_without_masks_are_listed(tmp_path):
    make_camvid(tmp_path, count=4)
    for k in (1, 3):
        (tmp_path / 'testannot' / f'img_{k:03d}.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'2 of 4 images .* no mask .*img_001\.jpg, img_003\.jpg'):
        list_pairs(tmp_path, 'test')


def test_missing_split_folder_and_unknown_split(tmp_path):
    make_camvid(tmp_path, split='test')
    with pytest.raises(FileNotFoundError, match='trainannot'):
        list_pairs(tmp_path, 'train')
    with pytest.raises(ValueError, match='split must be one of'):
        list_pairs(tmp_path, 'testing')


def test_mask_values_outside_the_classes_name_file_and_values(tmp_path):
    make_camvid(tmp_path, count=1)
    path = tmp_path / 'testannot' / 'img_000.png'
    mask = np.asarray(Image.open(path)).copy()
    mask[0, :3] = [12, 255, 40]
    Image.fromarray(mask).save(path)
    with pytest.raises(ValueError, match=r'img_000\.png has values \[12, 40, 255\] outside the classes 0-10'):
        read_mask(path)
    with pytest.raises(ValueError, match='img_000.png has values'):
        CamVid(tmp_path, 'test', (32, 64))[0]


def test_void_is_a_valid_mask_value_and_rgb_masks_are_refused(tmp_path):
    path = tmp_path / 'm.png'
    Image.fromarray(np.full((4, 4), VOID, np.uint8)).save(path)
    assert (read_mask(path) == VOID).all()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match='mode RGB; masks are single-channel'):
        read_mask(path)


def test_image_and_mask_of_different_sizes(tmp_path):
    make_camvid(tmp_path, count=1, size=(40, 56))
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / 'testannot' / 'img_000.png')
    with pytest.raises(ValueError, match=r'img_000\.jpg is 56x40 but its mask .*img_000\.png is 50x40'):
        CamVid(tmp_path, 'test', (32, 64))[0]


@pytest.mark.parametrize('size,nearest', [((360, 480), '352x480'), ((64, 90), '64x96'), ((10, 64), '32x64')])
def test_sizes_the_decoder_cannot_take_name_the_nearest_valid_size(size, nearest):
    with pytest.raises(ValueError, match=f'not divisible by 32, which the model needs; the nearest valid size is '
                                         f'{nearest}'):
        check_size(size, 32)
    assert check_size((352, 480), 32) == (352, 480)


def test_items_are_resized_normalised_and_masks_keep_their_values(tmp_path):
    make_camvid(tmp_path, count=2, size=(40, 56))
    x, y = CamVid(tmp_path, 'test', (32, 64))[1]
    assert x.shape == (3, 32, 64) and x.dtype == torch.float32 and y.shape == (32, 64) and y.dtype == torch.int64
    assert set(y.unique().tolist()) <= set(range(12)) and abs(float(x.mean())) < 1.5


def test_flip_moves_image_and_mask_together(tmp_path):
    make_camvid(tmp_path, count=1)
    plain = CamVid(tmp_path, 'test', (32, 64))[0]
    flipping = CamVid(tmp_path, 'test', (32, 64), flip=True)
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        x, y = flipping[0]
        flipped = torch.equal(x, plain[0].flip(-1)) and torch.equal(y, plain[1].flip(-1))
        assert flipped or (torch.equal(x, plain[0]) and torch.equal(y, plain[1]))
        seen.add(flipped)
    assert seen == {True, False}


def test_corruption_changes_the_image_only(tmp_path):
    make_camvid(tmp_path, count=1)
    keys = []

    def black(image, key):
        keys.append(key)
        return Image.new('RGB', image.size)

    plain = CamVid(tmp_path, 'test', (32, 64))[0]
    x, y = CamVid(tmp_path, 'test', (32, 64), corruption=black)[0]
    assert keys == [tmp_path / 'test' / 'img_000.jpg'] and torch.equal(y, plain[1]) and not torch.equal(x, plain[0])


def test_real_camvid_test_split():
    root = real_camvid()
    dataset = CamVid(root, 'test', (64, 96), limit=2)
    assert len(list_pairs(root, 'test')) == 233 and len(dataset) == 2
    x, y = dataset[0]
    assert x.shape == (3, 64, 96) and set(y.unique().tolist()) <= set(range(12))
