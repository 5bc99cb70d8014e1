"""CamVid-C: the ImageNet-C corruptions applied to a CamVid split's images, labels untouched.

One code path with `fan_stl.robustness.corrupt`: `write_camvid_c` is `corrupt_tree` on `<root>/<split>` (so
`<dst>/<corruption>/<severity>/<stem>.<format>`, its manifest, folder lock and atomic writes), and `split_corruption`
is its `OnTheFlyCorruption`, which makes in memory exactly the file `write_camvid_c` writes. Masks stay those of the
clean `<root>/<split>annot/`. PNG (lossless, the default here) keeps the corruption alone; 'jpg' adds ImageNet-C's
JPEG quality 85.

The default backend is 'torch', as for `eval --corrupt-on-the-fly`: it is the faster generator (batched, CPU or GPU),
and each image is seeded by its relative path, so one image on the fly and the same image in a written batch are
the same bytes. 'imagecorruptions' (the reference functions) is the other choice; the two do not give the same images.
"""
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from fan_stl.robustness.corrupt import OnTheFlyCorruption, corrupt_tree

DEFAULT_BACKEND = 'torch'


def split_corruption(root: Path, split: str, corruption: str, severity: int, seed: int = 0,
                     image_format: str = 'png', backend: str = DEFAULT_BACKEND) -> OnTheFlyCorruption:
    """ The `CamVid(corruption=...)` of one cell: the image `write_camvid_c` writes for it, made in memory. """
    return OnTheFlyCorruption(Path(root) / split, corruption, severity, seed, image_format, backend)


def cell_folder(dst: Path, corruption: str, severity: int) -> Path:
    return Path(dst) / corruption / str(severity)


def write_camvid_c(
        root: Path,
        dst: Path,
        corruptions: Sequence[str],
        severities: Sequence[int],
        split: str = 'test',
        seed: int = 0,
        image_format: str = 'png',
        limit: Optional[int] = None,
        backend: str = DEFAULT_BACKEND,
        **kwargs: Any,
) -> Tuple[int, int]:
    """ Write the missing files of the CamVid-C tree of `split` (its first `limit` images) under `dst`;
    (written, already there). Other keyword arguments as `corrupt_folder` (progress, device, batch_size, workers). """
    if image_format not in ('png', 'jpg'):
        raise ValueError(f"CamVid-C images are 'png' (lossless) or 'jpg' (quality 85), not {image_format!r}")
    kwargs.setdefault('progress', False)
    run = corrupt_tree(Path(root) / split, dst, corruptions, severities, lossless=image_format == 'png',
                       backend=backend, seed=seed, limit=limit, **kwargs)
    return run.written, run.skipped
