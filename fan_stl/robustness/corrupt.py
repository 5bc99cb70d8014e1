"""Make the ImageNet-C style "-C" copy of any ImageFolder: `<dst>/<corruption>/<severity>/<class>/<image>`.

The 15 standard + 4 extra corruptions of Hendrycks & Dietterich (2019) at severities 1-5 come from the maintained
PyPI package `imagecorruptions-imaug` (the `robustness` extra: `pip install -e ".[robustness]"`). Each output is
deterministic given the image's relative path, the corruption, the severity and `seed` - whatever the worker count
or order. Files are written atomically (temporary name, then rename), so a finished file is always whole and an
interrupted run resumes by skipping the files that exist. Images are kept at their size; ImageNet-C itself was made
from 224 x 224 centre crops and stored as JPEG (quality 85), the default format here.
"""
import contextlib
import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..extras import install_hint
from .layouts import is_image, list_classes
from .metrics import ALL_CORRUPTIONS, SEVERITIES

IMAGE_FORMATS = {'jpg': ('JPEG', {'quality': 85}), 'png': ('PNG', {})}
MIN_IMAGE_SIZE = 32  # the corruption functions refuse anything smaller
_TMP_PREFIX = '.fan_stl-corrupt-'
# corruptions that draw from their own generator when given a `seed` instead of numpy's global one
_SEEDED_BY_ARGUMENT = ('glass_blur', 'impulse_noise')


def _imagecorruptions():
    try:
        import imagecorruptions
    except ImportError:
        raise ImportError(
            f'corruption generation needs the optional package imagecorruptions-imaug: {install_hint("robustness")}'
        ) from None
    return imagecorruptions


def cell_seed(seed: int, relative_path: str, corruption: str, severity: int) -> int:
    """ A 32-bit seed that depends only on the run seed, the image's relative path, the corruption and severity. """
    key = f'{seed}|{relative_path}|{corruption}|{severity}'.encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], 'little')


def corrupt_image(image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """ One corrupted copy of an RGB uint8 image (H, W, 3), reproducible for a given `seed`. """
    imagecorruptions = _imagecorruptions()
    np.random.seed(seed)  # most corruptions draw from numpy's global generator
    kwargs = {'seed': seed} if corruption in _SEEDED_BY_ARGUMENT else {}
    return imagecorruptions.corrupt(image, severity=severity, corruption_name=corruption, **kwargs)


def _write_atomic(image: np.ndarray, path: Path, image_format: str) -> None:
    pil_format, options = IMAGE_FORMATS[image_format]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{_TMP_PREFIX}{os.getpid()}-{path.name}.tmp')  # not an image name: never read as data
    try:
        Image.fromarray(image).save(tmp, format=pil_format, **options)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


Job = Tuple[Path, str, List[Tuple[str, int, Path]]]  # source image, relative path, cells (corruption, severity, out)


def _run_job(job: Job, seed: int, image_format: str) -> int:
    source, relative, cells = job
    try:
        with Image.open(source) as img:
            image = np.asarray(img.convert('RGB'))
    except OSError as e:
        raise OSError(f'cannot read image {source}: {e}') from None
    if min(image.shape[:2]) < MIN_IMAGE_SIZE:
        raise ValueError(
            f'image {source} is {image.shape[1]}x{image.shape[0]} px; the corruptions need at least '
            f'{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}: resize the dataset first or leave the image out.')
    for corruption, severity, out in cells:
        corrupted = corrupt_image(image, corruption, severity, cell_seed(seed, relative, corruption, severity))
        _write_atomic(np.ascontiguousarray(corrupted, dtype=np.uint8), out, image_format)
    return len(cells)


def _run_job_star(args: Tuple[Job, int, str]) -> int:
    return _run_job(*args)


@dataclass
class CorruptionRun:
    """ What `corrupt_folder` did: files written now, files that already existed, images in the source. """
    written: int
    skipped: int
    images: int


def _check_request(src: Path, dst: Path, corruptions: Sequence[str], severities: Sequence[int], image_format: str):
    unknown = [c for c in corruptions if c not in ALL_CORRUPTIONS]
    if unknown:
        raise ValueError(f'unknown corruption(s) {", ".join(unknown)}; choose from: {", ".join(ALL_CORRUPTIONS)}')
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f'severities must be in 1-5, got {bad}')
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f'image format must be one of {", ".join(IMAGE_FORMATS)}, not {image_format!r}')
    src, dst = src.resolve(), dst.resolve()
    if dst == src or src in dst.parents:
        raise ValueError(f'the output folder {dst} must not be inside the source folder {src}')


def corrupt_folder(
        src: Path,
        dst: Path,
        corruptions: Sequence[str] = ALL_CORRUPTIONS,
        severities: Sequence[int] = SEVERITIES,
        workers: int = 1,
        seed: int = 0,
        image_format: str = 'jpg',
        progress: bool = True,
) -> CorruptionRun:
    """ Write every (corruption, severity) copy of the ImageFolder `src` under `dst`, skipping existing files. """
    src, dst = Path(src), Path(dst)
    _check_request(src, dst, corruptions, severities, image_format)
    _imagecorruptions()  # fail before any work when the extra is missing
    suffix = '.' + image_format
    jobs: List[Job] = []
    seen: Dict[Path, Path] = {}
    images = skipped = 0
    for class_name in list_classes(src, what='source'):
        for source in sorted(p for p in (src / class_name).rglob('*') if is_image(p)):
            images += 1
            relative = source.relative_to(src).with_suffix(suffix)
            if relative in seen:
                raise ValueError(
                    f'{source} and {seen[relative]} would both be written as {relative}; rename one of them.')
            seen[relative] = source
            cells = [(c, s, dst / c / str(s) / relative) for c in corruptions for s in severities]
            todo = [cell for cell in cells if not cell[2].exists()]
            skipped += len(cells) - len(todo)
            if todo:
                jobs.append((source, relative.as_posix(), todo))
    for stale in dst.rglob(f'{_TMP_PREFIX}*.tmp') if dst.is_dir() else ():  # left by a killed run
        stale.unlink()
    args = [(job, seed, image_format) for job in jobs]
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=sum(len(job[2]) for job in jobs), desc='corrupting', unit='file',
                                       disable=not progress))
        if workers > 1:
            # fork: workers start at once, without re-importing torch; they only run numpy / OpenCV / numba code.
            # An executor (unlike multiprocessing.Pool) fails instead of hanging when a worker is killed.
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('fork')))
            counts = pool.map(_run_job_star, args)
        else:
            counts = map(_run_job_star, args)
        written = 0
        for count in counts:
            written += count
            bar.update(count)
    return CorruptionRun(written=written, skipped=skipped, images=images)
