"""Corruption generation on a few real photographs: all 19 x 5 cells, determinism, resume, bad requests."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
from PIL import Image

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install "fan_stl[robustness]"')

from fan_stl.robustness.corrupt import corrupt_folder, corrupt_image  # noqa: E402
from fan_stl.robustness.evaluate import EvalSettings, evaluate_robustness  # noqa: E402
from fan_stl.robustness.layouts import discover_imagenet_c  # noqa: E402
from fan_stl.robustness.metrics import ALEXNET, ALL_CORRUPTIONS, SEVERITIES  # noqa: E402

SOME_CORRUPTIONS = ('gaussian_noise', 'impulse_noise', 'glass_blur', 'frost', 'spatter')


def few_images(imagenette_root: Path, dst: Path, classes: int = 2, per_class: int = 1) -> Path:
    """ Copy a handful of real validation images (per run, into the test's temporary folder). """
    for class_dir in sorted((imagenette_root / 'val').iterdir())[:classes]:
        (dst / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:per_class]:
            shutil.copy(image, dst / class_dir.name / image.name)
    return dst


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_all_19_x_5_cells_on_real_images_then_evaluated(imagenette_root, tmp_path):
    src = few_images(imagenette_root, tmp_path / 'src')
    run = corrupt_folder(src, tmp_path / 'c', progress=False)
    assert (run.images, run.written, run.skipped) == (2, 2 * 19 * 5, 0)
    layout = discover_imagenet_c(tmp_path / 'c')
    assert list(layout.cells) == list(ALL_CORRUPTIONS)
    assert all(sorted(sev) == list(SEVERITIES) for sev in layout.cells.values())
    assert layout.classes == sorted(p.name for p in src.iterdir())
    original = read(next(src.rglob('*.jpg')))
    for corruption in ALL_CORRUPTIONS:
        out = read(next((tmp_path / 'c' / corruption / '5').rglob('*.jpg')))
        assert out.shape == original.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - original).mean() > 1.0, f'{corruption} left the image unchanged'

    model = timm.create_model('test_vit', num_classes=2)
    settings = EvalSettings(batch_size=2, workers=0, device='cpu', img_size=64, progress=False)
    results = evaluate_robustness(model, 'test_vit', tmp_path / 'r.json', clean=src, imagenet_c=tmp_path / 'c',
                                  settings=settings)
    summary = results['imagenet_c']['summary']
    assert 0 <= summary['mean_corruption_accuracy'] <= 100 and summary['extra_mean_corruption_accuracy'] is not None
    # 2 classes of 128 px images are not ImageNet-C: no AlexNet-normalised mCE unless asked for explicitly
    assert summary['mce'] is None and 'is not recognisably ImageNet-C: it has 2 class folders' in summary['notes'][0]
    again = evaluate_robustness(model, 'test_vit', tmp_path / 'r.json', clean=src, imagenet_c=tmp_path / 'c',
                                settings=settings, baseline=ALEXNET)  # resumes: only the summary is recomputed
    assert again['imagenet_c']['summary']['mce'] > 0 and not again['imagenet_c']['summary']['notes']


def test_deterministic_per_image_and_seed_whatever_the_workers(imagenette_root, tmp_path):
    src = few_images(imagenette_root, tmp_path / 'src', classes=2, per_class=2)
    kwargs = dict(corruptions=SOME_CORRUPTIONS, severities=(2,), image_format='png', progress=False)
    corrupt_folder(src, tmp_path / 'one', workers=1, seed=7, **kwargs)
    corrupt_folder(src, tmp_path / 'two', workers=2, seed=7, **kwargs)
    corrupt_folder(src, tmp_path / 'other_seed', workers=1, seed=8, **kwargs)
    files = sorted(p.relative_to(tmp_path / 'one') for p in (tmp_path / 'one').rglob('*.png'))
    assert len(files) == 4 * len(SOME_CORRUPTIONS)
    for f in files:
        assert np.array_equal(read(tmp_path / 'one' / f), read(tmp_path / 'two' / f)), f
    noise = [f for f in files if f.parts[0] == 'gaussian_noise']
    assert not np.array_equal(read(tmp_path / 'one' / noise[0]), read(tmp_path / 'other_seed' / noise[0]))
    # two images of one class get different noise: the seed depends on the image
    a, b = (read(tmp_path / 'one' / f).astype(int) - read(src / f.relative_to(*f.parts[:2]).with_suffix('.jpg'))
            for f in noise[:2])
    assert not np.array_equal(a, b)


def test_resume_skips_finished_files_and_clears_partial_ones(imagenette_root, tmp_path):
    src = few_images(imagenette_root, tmp_path / 'src')
    dst = tmp_path / 'c'
    first = corrupt_folder(src, dst, corruptions=('fog', 'contrast'), severities=(1, 3), progress=False)
    assert first.written == 8
    outputs = sorted(dst.rglob('*.jpg'))
    removed = outputs[0]
    removed.unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in outputs[1:]}
    stale = removed.with_name('.fan_stl-corrupt-123-x.jpg.tmp')
    stale.write_bytes(b'half a file')
    second = corrupt_folder(src, dst, corruptions=('fog', 'contrast'), severities=(1, 3), progress=False)
    assert (second.written, second.skipped) == (1, 7)
    assert removed.exists() and not stale.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())


def test_bad_requests(imagenette_root, tmp_path, monkeypatch):
    src = few_images(imagenette_root, tmp_path / 'src', classes=1)
    with pytest.raises(ValueError, match='unknown corruption.*Gaussian_Noise'):
        corrupt_folder(src, tmp_path / 'c', corruptions=['Gaussian_Noise'])
    with pytest.raises(ValueError, match=r'severities must be in 1-5, got \[6\]'):
        corrupt_folder(src, tmp_path / 'c', severities=[6])
    with pytest.raises(ValueError, match='must not be inside the source'):
        corrupt_folder(src, src / 'c')
    small = tmp_path / 'small' / 'cls'
    small.mkdir(parents=True)
    Image.new('RGB', (20, 40)).save(small / 'x.png')
    with pytest.raises(ValueError, match='is 20x40 px; the corruptions need at least 32x32'):
        corrupt_folder(small.parent, tmp_path / 'c2', corruptions=['fog'], severities=[1], progress=False)
    monkeypatch.setitem(sys.modules, 'imagecorruptions', None)
    with pytest.raises(ImportError, match=r'imagecorruptions-imaug'):
        corrupt_image(np.zeros((32, 32, 3), np.uint8), 'fog', 1, 0)
