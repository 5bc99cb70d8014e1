"""The torch corruptions against imagecorruptions at small size (real photographs, 64 px), per-seed determinism,
any image size, and the bad inputs."""
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install "fan_stl[robustness]"')

from fan_stl.robustness.corruption_agreement import (  # noqa: E402
    EXACT, RANDOM, frost_with_texture, measure, motion_blur_at_angle, spatter_with_noise, within,
)
from fan_stl.robustness.names import ALL_CORRUPTIONS  # noqa: E402
from fan_stl.robustness.torch_corruptions import CORRUPTIONS, corrupt_batch  # noqa: E402
from fan_stl.robustness.torch_corruptions.blur import sources_after_moves  # noqa: E402

SIZE = 64
# (relative, absolute grey levels) tolerance on the perturbation's std and mean |.| at 8 images of 64 px: the noises,
# glass blur, elastic transform and snow agree to a few percent; frost (6 textures of very different brightness),
# fog (a few large plasma blobs per image), motion blur (one angle per image) and spatter vary more per draw.
LOOSE = {'frost': (0.3, 2.0), 'fog': (0.15, 2.0), 'motion_blur': (0.1, 1.0), 'spatter': (0.15, 1.0)}
TIGHT = (0.06, 1.0)


@pytest.fixture
def photos(imagenette_root) -> np.ndarray:
    """ 8 validation photographs of different classes, resized to 64 x 64, (8, 64, 64, 3) uint8. """
    files = sorted((imagenette_root / 'val').rglob('*.jpg'))[::150][:8]
    return np.stack([np.asarray(Image.open(f).convert('RGB').resize((SIZE, SIZE), Image.BICUBIC)) for f in files])


@pytest.mark.parametrize('corruption', EXACT)
def test_deterministic_corruptions_match_the_reference_within_one_grey_level(photos, corruption):
    for severity in range(1, 6):
        agreement = measure(photos[:4], corruption, severity)
        assert agreement.mean_abs_diff <= 1.0, (severity, agreement)


@pytest.mark.parametrize('corruption', RANDOM)
def test_random_corruptions_match_the_reference_in_distribution(photos, corruption):
    relative, absolute = LOOSE.get(corruption, TIGHT)
    for severity in (1, 3, 5):
        agreement = measure(photos, corruption, severity)
        assert within(agreement.reference_stats, agreement.torch_stats, relative, absolute), (severity, agreement)
        high = agreement.reference_stats['high_freq_share'], agreement.torch_stats['high_freq_share']
        assert abs(high[0] - high[1]) <= 0.05, (severity, high)


def test_given_the_reference_s_draw_motion_frost_and_spatter_are_the_reference_s(photos):
    for severity in (1, 2, 3, 4, 5):
        for angle in (-44.0, -7.5, 30.0):
            assert motion_blur_at_angle(photos[:2], severity, angle) <= 0.1
        assert frost_with_texture(photos[:2], severity, seed=severity) <= 0.1
        assert spatter_with_noise(photos[:2], severity, seed=severity) <= 0.1  # Canny, chamfer distance, ...


def test_glass_moves_equal_the_reference_s_sequential_loop():
    """ The reference's loop `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on pixel views copies (h', w') into (h, w). """
    height, width, delta = 15, 17, 2
    g = torch.Generator().manual_seed(0)
    count = (height - 2 * delta) * (width - 2 * delta)
    shifts = [torch.randint(-delta, delta, (1, 2, count), generator=g) for _ in range(3)]
    pixels = list(range(height * width))
    visited = [(h, w) for h in range(delta + 1, height - delta + 1) for w in range(delta + 1, width - delta + 1)]
    for shift in shifts:
        moves = {position: (int(shift[0, 0, i]), int(shift[0, 1, i])) for i, position in enumerate(visited)}
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dy, dx = moves[(h, w)]
                pixels[h * width + w] = pixels[(h + dy) * width + w + dx]
    assert sources_after_moves(shifts, height, width, delta)[0].tolist() == pixels


@pytest.mark.parametrize('corruption', ALL_CORRUPTIONS)
def test_deterministic_per_seed_and_key_whatever_the_batch(corruption):
    images = torch.rand(3, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    together = corrupt_batch(images, corruption, 4, seed=5, keys=['a', 'b', 'c'])
    alone = corrupt_batch(images[1:2], corruption, 4, seed=5, keys=['b'])
    assert together.shape == images.shape and together.dtype == torch.float32
    assert torch.equal(together[1:2], alone)
    assert 0 <= float(together.min()) and float(together.max()) <= 1
    if corruption in RANDOM:
        assert not torch.equal(corrupt_batch(images[1:2], corruption, 4, seed=6, keys=['b']), alone)


@pytest.mark.parametrize('size', [(32, 32), (45, 97), (130, 61)])
def test_any_size_and_uint8_input(size):
    images = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    for corruption in CORRUPTIONS:
        out = corrupt_batch(images, corruption, 5)
        assert out.shape == (2, 3, *size) and torch.isfinite(out).all(), corruption


def test_bad_inputs_are_one_clear_error():
    images = torch.rand(2, 3, 40, 40)
    with pytest.raises(ValueError, match='unknown corruption .*choose from'):
        corrupt_batch(images, 'rain', 1)
    with pytest.raises(ValueError, match='severity must be one of 1-5'):
        corrupt_batch(images, 'fog', 6)
    with pytest.raises(ValueError, match='one size, got 2 sizes'):
        corrupt_batch([torch.rand(3, 40, 40), torch.rand(3, 40, 44)], 'fog', 1)
    with pytest.raises(ValueError, match='RGB images'):
        corrupt_batch(torch.rand(2, 1, 40, 40), 'fog', 1)
    with pytest.raises(ValueError, match='16-bit'):
        corrupt_batch(torch.zeros(2, 3, 40, 40, dtype=torch.int16), 'fog', 1)
    with pytest.raises(ValueError, match='glass_blur needs images of at least 32x32 px, got 40x31'):
        corrupt_batch(torch.rand(1, 3, 31, 40), 'glass_blur', 1)
    with pytest.raises(ValueError, match='2 keys for 1 images'):
        corrupt_batch(torch.rand(1, 3, 40, 40), 'fog', 1, keys=['a', 'b'])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_gives_the_same_deterministic_corruptions():
    images = torch.rand(2, 3, 64, 64)
    for corruption in EXACT:
        cpu = corrupt_batch(images, corruption, 3)
        gpu = corrupt_batch(images.cuda(), corruption, 3).cpu()
        assert (cpu - gpu).abs().mean() < 1 / 255, corruption
    for corruption in RANDOM:
        assert corrupt_batch(images.cuda(), corruption, 3).is_cuda


def test_frost_without_imagecorruptions_names_the_install(monkeypatch):
    from fan_stl.robustness.torch_corruptions import weather

    def absent(package):
        raise ModuleNotFoundError(f"No module named '{package}'")
    weather.frost_texture.cache_clear()
    weather.scaled_frost.cache_clear()
    monkeypatch.setattr(weather.importlib.resources, 'files', absent)
    try:
        with pytest.raises(ImportError, match='textures from the package imagecorruptions-imaug.*pip install'):
            corrupt_batch(torch.rand(1, 3, 40, 40), 'frost', 1)
    finally:
        weather.frost_texture.cache_clear()
        weather.scaled_frost.cache_clear()
