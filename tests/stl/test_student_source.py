"""--student-data-dir: the student reads the same-named copy with the crop and flips shared; missing copies listed."""
import pytest
import torch
from PIL import Image
from timm.data import create_dataset, create_transform

from fan_stl.stl.student_source import StudentSource
from fan_stl.stl.views import PairedViewDataset
from tests.stl_helpers import random_blocks_image


def _tree(root, names=('a.jpg', 'b.png'), invert=False):
    for i, name in enumerate(names):
        (root / 'train' / f'c{i}').mkdir(parents=True, exist_ok=True)
        image = random_blocks_image(i, size=(64, 48))
        if invert:
            image = Image.eval(image, lambda v: 255 - v)
        image.save(root / 'train' / f'c{i}' / name)


def test_student_reads_its_copy_with_the_crop_shared(tmp_path):
    _tree(tmp_path / 'data', names=('a.png', 'b.png'))
    _tree(tmp_path / 'inverted', names=('a.bmp', 'b.png'), invert=True)  # re-encoded copies: any extension
    dataset = create_dataset('', root=str(tmp_path / 'data'), split='train', is_training=True)
    paired = PairedViewDataset(dataset, StudentSource(dataset, str(tmp_path / 'inverted')))
    paired.transform = create_transform(32, is_training=True, hflip=0.5, scale=(0.2, 1.0), interpolation='bilinear',
                                        color_jitter=0., use_prefetcher=True)  # no student-only step
    for seed in range(6):
        torch.manual_seed(seed)
        (teacher, student), _ = paired[seed % 2]
        # the same crop box and flip on the original and on its inverted copy
        assert (teacher.int() + student.int() - 255).abs().max() <= 1


def test_missing_copies_are_counted_and_listed(tmp_path):
    _tree(tmp_path / 'data', names=('a.jpg', 'b.png', 'c.png'))
    _tree(tmp_path / 'stylised', names=('a.jpg',))
    dataset = create_dataset('', root=str(tmp_path / 'data'), split='train', is_training=True)
    with pytest.raises(ValueError, match=r'2 of 3 training images have no same-named copy.*c1/b\.png'):
        StudentSource(dataset, str(tmp_path / 'stylised'))
    with pytest.raises(ValueError, match='needs stage stl'):
        from fan_stl.stl.config import STLConfig
        STLConfig(stage='tl', student_data_dir=str(tmp_path))
