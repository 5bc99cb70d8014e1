"""CamVid-C: the written tree equals the on-the-fly images, reruns resume, masks are never touched."""
import numpy as np
import pytest
from PIL import Image

from fan_stl.robustness.images import read_rgb
from fan_stl.segmentation.corrupt import SplitCorruption, cell_folder, write_camvid_c
from tests.segmentation.camvid_helpers import make_camvid

pytest.importorskip('imagecorruptions', reason='corruptions need the robustness extra: pip install -e ".[robustness]"')


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_tree_equals_on_the_fly_and_resumes(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=2, size=(40, 56))
    masks = _tree(root / 'testannot')
    dst = tmp_path / 'camvid-c'
    assert write_camvid_c(root, dst, ['gaussian_noise', 'contrast'], [1, 4]) == (8, 0)
    assert write_camvid_c(root, dst, ['gaussian_noise', 'contrast'], [1, 4]) == (0, 8)
    assert _tree(root / 'testannot') == masks
    assert sorted(_tree(dst)) == [f'{c}/{s}/img_00{i}.png' for c in ('contrast', 'gaussian_noise') for s in (1, 4)
                                  for i in range(2)]
    clean = read_rgb(root / 'test' / 'img_001.jpg')
    made = SplitCorruption('gaussian_noise', 4)(clean, 'test/img_001.jpg')
    written = read_rgb(cell_folder(dst, 'gaussian_noise', 4) / 'img_001.png')
    assert np.array_equal(np.asarray(made), np.asarray(written))
    assert not np.array_equal(np.asarray(made), np.asarray(clean))


def test_seed_and_image_change_the_noise(tmp_path):
    image = Image.fromarray(np.full((40, 56, 3), 128, np.uint8))
    a = np.asarray(SplitCorruption('shot_noise', 3, seed=0)(image, 'test/a.jpg'))
    assert np.array_equal(a, np.asarray(SplitCorruption('shot_noise', 3, seed=0)(image, 'test/a.jpg')))
    assert not np.array_equal(a, np.asarray(SplitCorruption('shot_noise', 3, seed=1)(image, 'test/a.jpg')))
    assert not np.array_equal(a, np.asarray(SplitCorruption('shot_noise', 3, seed=0)(image, 'test/b.jpg')))


def test_too_small_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match='at least 32x32'):
        SplitCorruption('fog', 1)(Image.new('RGB', (20, 20)), 'test/x.jpg')
