"""CamVid-C: the written tree equals the on-the-fly images for both backends, reruns resume, masks never change."""
import numpy as np
import pytest
from PIL import Image

from fan_stl.robustness.corrupt import MANIFEST_NAME, read_manifest
from fan_stl.robustness.images import read_rgb
from fan_stl.segmentation.corrupt import cell_folder, split_corruption, write_camvid_c
from tests.segmentation.camvid_helpers import make_camvid

pytest.importorskip('imagecorruptions', reason='corruptions need the robustness extra: pip install -e ".[robustness]"')


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.mark.parametrize('backend', ['torch', 'imagecorruptions'])
def test_tree_equals_on_the_fly_and_resumes(tmp_path, backend):
    root = make_camvid(tmp_path / 'camvid', count=3, size=(40, 56))
    masks = _tree(root / 'testannot')
    dst = tmp_path / 'camvid-c'
    cells = ['gaussian_noise', 'defocus_blur'], [1, 4]
    assert write_camvid_c(root, dst, *cells, backend=backend) == (12, 0)  # the torch backend: one batch of 3
    assert write_camvid_c(root, dst, *cells, backend=backend) == (0, 12)
    assert _tree(root / 'testannot') == masks
    assert read_manifest(dst)['backend'] == backend
    assert sorted(_tree(dst)) == sorted([MANIFEST_NAME] + [f'{c}/{s}/img_00{i}.png' for c in cells[0]
                                                           for s in cells[1] for i in range(3)])
    for corruption in cells[0]:
        clean_path = root / 'test' / 'img_001.jpg'
        clean = read_rgb(clean_path)
        made = split_corruption(root, 'test', corruption, 4, backend=backend)(clean, clean_path)
        written = read_rgb(cell_folder(dst, corruption, 4) / 'img_001.png')
        assert np.array_equal(np.asarray(made), np.asarray(written))
        assert not np.array_equal(np.asarray(made), np.asarray(clean))


def test_backends_make_different_images_and_one_folder_holds_one(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=1, size=(40, 56))
    path = root / 'test' / 'img_000.jpg'
    image = read_rgb(path)
    by_torch = split_corruption(root, 'test', 'gaussian_noise', 3)(image, path)
    by_reference = split_corruption(root, 'test', 'gaussian_noise', 3, backend='imagecorruptions')(image, path)
    assert not np.array_equal(np.asarray(by_torch), np.asarray(by_reference))
    write_camvid_c(root, tmp_path / 'c', ['contrast'], [1])
    with pytest.raises(ValueError, match='other settings.*backend'):
        write_camvid_c(root, tmp_path / 'c', ['contrast'], [1], backend='imagecorruptions')


def test_limit_writes_the_first_images_only(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=3, size=(40, 56))
    dst = tmp_path / 'camvid-c'
    assert write_camvid_c(root, dst, ['fog'], [2], limit=2) == (2, 0)
    assert sorted(_tree(cell_folder(dst, 'fog', 2))) == ['img_000.png', 'img_001.png']
    with pytest.raises(ValueError, match='other settings.*source_fingerprint'):
        write_camvid_c(root, dst, ['fog'], [2])  # a limited tree is another tree


@pytest.mark.parametrize('backend', ['torch', 'imagecorruptions'])
def test_seed_and_image_change_the_noise(tmp_path, backend):
    image = Image.fromarray(np.full((40, 56, 3), 128, np.uint8))

    def made(seed, name):
        corruption = split_corruption(tmp_path, 'test', 'shot_noise', 3, seed=seed, backend=backend)
        return np.asarray(corruption(image, tmp_path / 'test' / name))
    a = made(0, 'a.jpg')
    assert np.array_equal(a, made(0, 'a.jpg'))
    assert not np.array_equal(a, made(1, 'a.jpg'))
    assert not np.array_equal(a, made(0, 'b.jpg'))


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match='at least 32x32'):
        split_corruption(tmp_path, 'test', 'fog', 1)(Image.new('RGB', (20, 20)), tmp_path / 'test' / 'x.jpg')
    with pytest.raises(ValueError, match='unknown corruption backend'):
        split_corruption(tmp_path, 'test', 'fog', 1, backend='numpy')
    root = make_camvid(tmp_path / 'camvid', count=1)
    with pytest.raises(ValueError, match="'png' \\(lossless\\) or 'jpg'"):
        write_camvid_c(root, tmp_path / 'c', ['fog'], [1], image_format='bmp')
