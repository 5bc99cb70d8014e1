"""The procedural demo image set: layout, determinism, resumability, and class-relevant pixels."""
import numpy as np
from PIL import Image

from fan_stl.demo.synthetic import (
    CLASSES, class_folder_names, make_shapes_dataset, render_sample, val_samples_with_masks)
from fan_stl.utils.atomic import TEMP_GLOB


def test_layout_and_determinism(tmp_path):
    a = make_shapes_dataset(tmp_path / 'a', train_per_class=2, val_per_class=1, size=32, seed=3)
    b = make_shapes_dataset(tmp_path / 'b', train_per_class=2, val_per_class=1, size=32, seed=3)
    files_a = sorted(p.relative_to(a) for p in a.rglob('*.png'))
    assert len(files_a) == len(CLASSES) * 3
    assert len({p.parts[1] for p in files_a}) == len(CLASSES)
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    other = make_shapes_dataset(tmp_path / 'c', train_per_class=2, val_per_class=1, size=32, seed=4)
    assert (other / files_a[0]).read_bytes() != (a / files_a[0]).read_bytes()


def test_existing_images_are_kept_and_missing_ones_completed(tmp_path):
    root = make_shapes_dataset(tmp_path, train_per_class=2, val_per_class=1, size=32)
    kept = next(root.rglob('*.png'))
    stamp = kept.stat().st_mtime_ns
    removed = sorted(root.rglob('*.png'))[-1]
    removed.unlink()
    make_shapes_dataset(tmp_path, train_per_class=2, val_per_class=1, size=32)
    assert kept.stat().st_mtime_ns == stamp and removed.exists()
    assert not list(root.rglob(TEMP_GLOB))


def test_object_pixels_differ_between_classes_with_the_same_random_stream():
    """ Same rng seed (same clutter, position, colours) but another class: the image must change. """
    images = [np.asarray(render_sample(c, np.random.default_rng(0), 48), dtype=np.int16) for c in range(len(CLASSES))]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).sum() > 0, (CLASSES[i], CLASSES[j])
    assert Image.fromarray(images[0].astype(np.uint8)).size == (48, 48)


def test_validation_samples_are_regenerated_with_their_object_masks(tmp_path):
    root = make_shapes_dataset(tmp_path, train_per_class=1, val_per_class=2, size=32, seed=5)
    samples = val_samples_with_masks(2, size=32, seed=5)
    assert [label for _, _, label in samples] == [c for c in range(len(CLASSES)) for _ in range(2)]
    for (image, mask, label), n in zip(samples, [0, 1] * len(CLASSES)):
        written = Image.open(root / 'val' / class_folder_names()[label] / f'{n:05d}.png')
        assert np.array_equal(np.asarray(written), np.asarray(image))  # the very pixels on disk
        assert mask.shape == (32, 32) and 0 < mask.mean() < 1  # a shape, not the whole image
