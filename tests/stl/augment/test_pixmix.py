"""PixMix: the authors' add / multiply and get_ab, the mixing-set checks, fractals from the generator."""
import pytest
import torch
from PIL import Image

from fan_stl.stl.augment.fractals import fractal_images
from fan_stl.stl.augment.pixmix import PixMix, draw_ab, mix_add, mix_multiply


def test_mixings_match_the_authors_formulas_on_known_values():
    x, y = torch.tensor([0.25, 0.5, 1.0]), torch.tensor([0.75, 0.1, 0.0])
    a, b = torch.tensor(0.8), torch.tensor(0.3)
    # pixmix_utils.add: a*(2x-1) + b*(2y-1), then (out + 1) / 2
    torch.testing.assert_close(mix_add(x, y, a, b), torch.tensor([(0.8 * -0.5 + 0.3 * 0.5 + 1) / 2,
                                                                  (0.8 * 0. + 0.3 * -0.8 + 1) / 2,
                                                                  (0.8 * 1. + 0.3 * -1. + 1) / 2]))
    # pixmix_utils.multiply: (2x)^a * clip(2y, 1e-37)^b / 2
    torch.testing.assert_close(mix_multiply(x, y, a, b), torch.tensor([0.5 ** 0.8 * 1.5 ** 0.3 / 2,
                                                                       1. * 0.2 ** 0.3 / 2,
                                                                       2 ** 0.8 * 1e-37 ** 0.3 / 2]))


def test_get_ab_branches():
    torch.manual_seed(0)
    a, b = draw_ab(4., 4000, torch.device('cpu'))
    first = a < 1
    assert 0.4 < first.float().mean() < 0.6
    assert (b[first] > 0).all() and (b[~first] < 0).all() and (a[~first] <= 2).all()
    assert abs(a[first].mean().item() - 4 / 5) < 0.02  # Beta(4, 1) mean
    assert abs(b[first].mean().item() - 1 / 5) < 0.02  # Beta(1, 4) mean


def test_pixmix_stays_in_range_and_changes_images():
    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32)
    out = PixMix(fractals=4).transform(images)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, images)
    torch.manual_seed(0)
    kept = PixMix(k=0, fractals=4).transform(images)  # k = 0: the image or one augmented copy, no mixing
    assert sum(torch.equal(kept[i], images[i]) for i in range(8)) >= 1


def test_mixing_set_folder_checks(tmp_path):
    with pytest.raises(ValueError, match='no such folder'):
        PixMix(mixing_dir=str(tmp_path / 'absent'))
    with pytest.raises(ValueError, match='holds no images'):
        PixMix(mixing_dir=str(tmp_path))
    Image.new('RGB', (20, 20), (10, 200, 30)).save(tmp_path / 'good.png')
    (tmp_path / 'broken.jpg').write_bytes(b'not an image')
    with pytest.raises(ValueError, match=r'1 of 2 files cannot be read.*broken\.jpg'):
        PixMix(mixing_dir=str(tmp_path))
    (tmp_path / 'broken.jpg').unlink()
    mixing = PixMix(mixing_dir=str(tmp_path)).mixing_set(16, 16, torch.device('cpu'))
    assert mixing.shape == (1, 3, 16, 16) and abs(mixing[0, 1].mean().item() - 200 / 255) < 0.01


def test_fractals_are_deterministic_varied_and_in_range():
    a, b = fractal_images(3, 32, seed=1, points=3000), fractal_images(3, 32, seed=1, points=3000)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, fractal_images(3, 32, seed=2, points=3000))
    assert a.flatten(1).std(1).min() > 0.02  # structure, not flat colour
