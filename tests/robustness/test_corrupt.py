"""Corruption generation on a few real photographs: all 19 x 5 cells, determinism, resume, bad requests."""
import multiprocessing
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install "fan_stl[robustness]"')

from fan_stl.robustness.corrupt import (  # noqa: E402
    OnTheFlyCorruption, corrupt_folder, corrupt_image, read_manifest,
)
from fan_stl.robustness.evaluate import EvalSettings, OnTheFlySpec, evaluate_robustness  # noqa: E402
from fan_stl.robustness.images import read_rgb  # noqa: E402
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
    stale = removed.with_name(f'.{removed.name}.123-abcd.tmp')  # as `fan_stl.utils.atomic` names them
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


def noise_folder(root: Path, classes: int = 2, per_class: int = 2, size: int = 48) -> Path:
    """ A synthetic ImageFolder of random RGB images (seeded). """
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f'class{c}').mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f'class{c}' / f'{i}.png')
    return root


def test_a_folder_refuses_other_settings_and_names_the_difference(tmp_path):
    """ another --format or --seed into the same folder would mix two kinds of images in its cells. """
    src, dst = noise_folder(tmp_path / 'src'), tmp_path / 'c'
    corrupt_folder(src, dst, corruptions=['fog'], severities=[1], progress=False)
    manifest = read_manifest(dst)
    assert (manifest['seed'], manifest['format'], manifest['corruptions'], manifest['source_images']) == (
        0, 'jpg', ['fog'], 4)
    assert manifest['imagecorruptions_version'] and len(manifest['source_fingerprint']) == 64
    with pytest.raises(ValueError, match='other settings: format differs \\(format: jpg there, png now\\)'):
        corrupt_folder(src, dst, corruptions=['fog'], severities=[1], image_format='png', progress=False)
    with pytest.raises(ValueError, match='seed: 0 there, 1 now'):
        corrupt_folder(src, dst, corruptions=['fog'], severities=[1], seed=1, progress=False)
    assert not list(dst.rglob('*.png'))
    more = corrupt_folder(src, dst, corruptions=['fog', 'snow'], severities=[1, 2], progress=False)  # extends
    assert (more.written, more.skipped) == (12, 4)
    assert read_manifest(dst)['corruptions'] == ['snow', 'fog'] and read_manifest(dst)['severities'] == [1, 2]
    Image.new('RGB', (48, 48)).save(src / 'class0' / 'new.png')
    with pytest.raises(ValueError, match='source_fingerprint'):
        corrupt_folder(src, dst, corruptions=['fog'], severities=[1], progress=False)


def test_16_bit_sources_are_scaled_not_clipped(tmp_path):
    """ Pillow's convert('RGB') turns an I;16 grey image white; it is scaled by 1/257 instead. """
    (tmp_path / 'src' / 'grey').mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / 'src' / 'grey' / 'ramp.png')
    assert Image.open(tmp_path / 'src' / 'grey' / 'ramp.png').mode == 'I;16'
    expected = ramp / 257.0
    assert np.abs(np.asarray(read_rgb(tmp_path / 'src' / 'grey' / 'ramp.png'))[..., 0] - expected).max() <= 0.5
    for backend in ('imagecorruptions', 'torch'):
        corrupt_folder(tmp_path / 'src', tmp_path / backend, corruptions=['pixelate'], severities=[1],
                       image_format='png', progress=False, backend=backend)
        out = read(tmp_path / backend / 'pixelate' / '1' / 'grey' / 'ramp.png').astype(float)
        assert abs(out.mean() - expected.mean()) < 3 and (out == 255).mean() < 0.05


def _children(pid: int) -> list:
    children = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads the process table from /proc (Linux)')
def test_workers_end_when_the_parent_is_killed(tmp_path):
    """ SIGKILL of `corrupt` must not leave workers running (and writing) behind. """
    src, dst = noise_folder(tmp_path / 'src', classes=2, per_class=20, size=64), tmp_path / 'c'
    parent = multiprocessing.get_context('fork').Process(  # a forked `corrupt` run: no interpreter start-up
        target=corrupt_folder, args=(src, dst), kwargs=dict(corruptions=['zoom_blur'], workers=2, progress=False))
    parent.start()
    workers = []
    try:
        deadline = time.monotonic() + 60
        while not list(dst.rglob('*.jpg')) and time.monotonic() < deadline and parent.is_alive():
            time.sleep(0.05)
        workers[:] = _children(parent.pid)
        assert workers and parent.is_alive(), 'the run ended before it could be killed'
        os.kill(parent.pid, signal.SIGKILL)
        parent.join()
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), 'workers outlived their parent'
        files = len(list(dst.rglob('*.jpg')))
        time.sleep(0.5)
        assert len(list(dst.rglob('*.jpg'))) == files < 40 * 5
    finally:
        parent.kill()
        for w in (w for w in workers if _alive(w)):
            os.kill(w, signal.SIGKILL)


def test_on_the_fly_corruptions_equal_corrupt_then_eval(tmp_path):
    """ the loader makes the very images `corrupt` writes, so the numbers are the same (2 loader workers). """
    src = noise_folder(tmp_path / 'src', classes=3, per_class=4)
    corruptions, severities = ('gaussian_noise', 'impulse_noise'), (5,)  # both kinds of seeding
    corrupt_folder(src, tmp_path / 'c', corruptions=corruptions, severities=severities, seed=3, progress=False)
    for path in src.rglob('*.png'):
        for corruption in ('gaussian_noise', 'impulse_noise'):
            made = OnTheFlyCorruption(src, corruption, 5, seed=3)(read_rgb(path), path)
            written = tmp_path / 'c' / corruption / '5' / path.relative_to(src).with_suffix('.jpg')
            assert np.array_equal(np.asarray(made), read(written))

    torch.manual_seed(0)
    model = timm.create_model('test_vit', num_classes=3, img_size=32)
    settings = EvalSettings(batch_size=5, workers=0, device='cpu', img_size=32, progress=False)
    from_folder = evaluate_robustness(model, 'm', tmp_path / 'folder.json', clean=src, imagenet_c=tmp_path / 'c',
                                      settings=settings)
    settings.workers = 2  # the loader's worker processes make the images
    spec = OnTheFlySpec(corruptions, severities, seed=3, backend='imagecorruptions')
    on_the_fly = evaluate_robustness(model, 'm', tmp_path / 'fly.json', clean=src, settings=settings, on_the_fly=spec)
    assert not list((tmp_path / 'src').rglob('*.jpg'))  # nothing written

    def scores(results):  # everything but the file-list fingerprint (of the cell folder, or of src on the fly)
        return {c: {s: {k: v for k, v in cell.items() if k != 'files'} for s, cell in by_s.items()}
                for c, by_s in results['imagenet_c']['cells'].items()}
    assert scores(on_the_fly) == scores(from_folder)
    assert len({cell['top1'] for by_s in scores(on_the_fly).values() for cell in by_s.values()}) > 1


def test_any_tree_keeps_its_relative_paths_with_the_torch_backend(tmp_path):
    """ A Cityscapes / COCO / CamVid style tree, images of mixed sizes, lossless PNG, batched torch. """
    from fan_stl.robustness.corrupt import corrupt_tree
    from fan_stl.robustness.torch_corruptions import corrupt_batch, to_uint8
    src, rng = tmp_path / 'src', np.random.default_rng(0)
    for relative, size in (('city/a/x.png', (40, 56)), ('city/a/y.jpg', (40, 56)), ('b/z.png', (48, 48))):
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(src / relative)
    run = corrupt_tree(src, tmp_path / 'c', ('fog', 'pixelate'), (1, 4), lossless=True, progress=False, batch_size=8)
    assert (run.images, run.written, run.skipped) == (3, 12, 0)
    files = sorted(p.relative_to(tmp_path / 'c').as_posix() for p in (tmp_path / 'c').rglob('*.png'))
    assert len(files) == 12 and {'fog/4/city/a/x.png', 'fog/4/city/a/y.png', 'pixelate/1/b/z.png'} <= set(files)
    assert read(tmp_path / 'c' / 'pixelate' / '4' / 'city' / 'a' / 'x.png').shape == (40, 56, 3)
    clean = torch.from_numpy(np.array(read(src / 'b' / 'z.png'))).permute(2, 0, 1)[None]
    expected = to_uint8(corrupt_batch(clean, 'fog', 1, seed=0, keys=['b/z.png']))[0].permute(1, 2, 0).numpy()
    assert np.array_equal(read(tmp_path / 'c' / 'fog' / '1' / 'b' / 'z.png'), expected)  # lossless, keyed by path
    assert read_manifest(tmp_path / 'c')['backend'] == 'torch'
    with pytest.raises(ValueError, match='backend: torch there, imagecorruptions now'):
        corrupt_tree(src, tmp_path / 'c', ('fog',), (1,), lossless=True, backend='imagecorruptions', progress=False)


def test_tree_torch_on_the_fly_equals_the_batch_and_limit_takes_the_first_images(tmp_path):
    from fan_stl.robustness.corrupt import corrupt_tree
    src, rng = tmp_path / 'src', np.random.default_rng(1)
    src.mkdir()
    for name in ('a.jpg', 'b.jpg', 'c.jpg'):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(src / name)
    run = corrupt_tree(src, tmp_path / 'c', ('shot_noise', 'motion_blur'), (3,), progress=False)  # one batch, jpg
    assert (run.images, run.written) == (3, 6)
    for corruption in ('shot_noise', 'motion_blur'):
        made = OnTheFlyCorruption(src, corruption, 3, backend='torch')(read_rgb(src / 'b.jpg'), src / 'b.jpg')
        assert np.array_equal(np.asarray(made), read(tmp_path / 'c' / corruption / '3' / 'b.jpg'))
    run = corrupt_tree(src, tmp_path / 'l', ('fog',), (1,), limit=2, progress=False)
    assert (run.images, run.written) == (2, 2) and not (tmp_path / 'l' / 'fog' / '1' / 'c.jpg').exists()
    with pytest.raises(ValueError, match='limit must be a positive'):
        corrupt_tree(src, tmp_path / 'm', ('fog',), (1,), limit=0, progress=False)


def test_tree_bad_requests_write_nothing(tmp_path):
    from fan_stl.robustness.corrupt import corrupt_tree
    src = tmp_path / 'src'
    (src / 'deep').mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(src / 'ok.png')
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(src / 'deep' / 'small.png')
    with pytest.raises(ValueError, match=r'small.png is 40x20 px; the corruptions need at least 32x32'):
        corrupt_tree(src, tmp_path / 'c', ('fog',), (1,), progress=False)
    assert not (tmp_path / 'c').exists()
    with pytest.raises(ValueError, match='unknown corruption backend'):
        corrupt_tree(src, tmp_path / 'c', ('fog',), (1,), backend='numpy', progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no usable CUDA GPU'):
            corrupt_tree(src, tmp_path / 'c', ('fog',), (1,), device='cuda', progress=False)
    assert not (tmp_path / 'c').exists()
