"""Make the ImageNet-C style "-C" copy of any ImageFolder: `<dst>/<corruption>/<severity>/<class>/<image>`.

The 15 standard + 4 extra corruptions of Hendrycks & Dietterich (2019) at severities 1-5 come from the maintained
PyPI package `imagecorruptions-imaug` (an optional extra: `pip install -e ".[robustness]"` from a checkout, or
`pip install imagecorruptions-imaug`). Each output is deterministic given the image's relative path, the corruption,
the severity and `seed` - whatever the worker count or order - so `eval --corrupt-on-the-fly` can make the very same
images in its data loader (`OnTheFlyCorruption`). Files are written atomically (temporary name, then rename), so a
finished file is always whole and an interrupted run resumes by skipping the files that exist.

Every output folder carries a manifest (`MANIFEST_NAME`: corruptions, severities, seed, format, the source's file
list fingerprint, package versions). A later run into the same folder with another seed, format, source or
generator version is refused with the difference named, so one folder never mixes two kinds of images. Images are
kept at their size; ImageNet-C itself was made from 224 x 224 centre crops and stored as JPEG (quality 85), the
default format here.
"""
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..utils.atomic import TEMP_GLOB, write_bytes_atomic, write_json_atomic
from ..utils.extras import install_hint
from ..utils.lock import locks_output_folder
from ..utils.run_identity import refuse_other_run
from .images import file_list_fingerprint, list_images, read_rgb
from .layouts import list_classes
from .names import ALL_CORRUPTIONS, SEVERITIES

IMAGE_FORMATS = {'jpg': ('JPEG', {'quality': 85}), 'png': ('PNG', {})}
MIN_IMAGE_SIZE = 32  # the corruption functions refuse anything smaller
MANIFEST_NAME = 'fan_stl_corruptions.json'
MANIFEST_VERSION = 1
# corruptions that draw from their own generator when given a `seed` instead of numpy's global one
_SEEDED_BY_ARGUMENT = ('glass_blur', 'impulse_noise')
# manifest entries that must agree for two runs to share a folder
_MUST_MATCH = ('seed', 'format', 'source_fingerprint', 'imagecorruptions_version', 'fan_stl_version')


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


def check_image_size(image: Image.Image, source: Path) -> None:
    if min(image.size) < MIN_IMAGE_SIZE:
        raise ValueError(
            f'image {source} is {image.size[0]}x{image.size[1]} px; the corruptions need at least '
            f'{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}: resize the dataset first or leave the image out.')


def encoded_corruption(image: Image.Image, relative_path: str, corruption: str, severity: int, seed: int,
                       image_format: str) -> bytes:
    """ The file `corrupt` writes for one image and cell: corrupted, then encoded in `image_format`. """
    corrupted = corrupt_image(np.asarray(image), corruption, severity, cell_seed(seed, relative_path, corruption,
                                                                                  severity))
    pil_format, options = IMAGE_FORMATS[image_format]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(corrupted, dtype=np.uint8)).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def output_relative_path(source: Path, src_root: Path, image_format: str) -> str:
    """ Where `corrupt` writes an image's copies inside each cell (and the key of its seed): the format's suffix. """
    return Path(source).relative_to(src_root).with_suffix('.' + image_format).as_posix()


@dataclass(frozen=True)
class OnTheFlyCorruption:
    """ Makes in memory exactly the image `corrupt SRC DST --seed --format` writes to DST/<corruption>/<severity>. """
    root: Path
    corruption: str
    severity: int
    seed: int = 0
    image_format: str = 'jpg'

    def __call__(self, image: Image.Image, source: Path) -> Image.Image:
        check_image_size(image, source)
        relative = output_relative_path(source, self.root, self.image_format)
        data = encoded_corruption(image, relative, self.corruption, self.severity, self.seed, self.image_format)
        with Image.open(io.BytesIO(data)) as decoded:
            return decoded.convert('RGB')


Job = Tuple[Path, str, List[Tuple[str, int, Path]]]  # source image, relative path, cells (corruption, severity, out)


def _run_job(job: Job, seed: int, image_format: str) -> int:
    source, relative, cells = job
    try:
        image = read_rgb(source)
    except OSError as e:
        raise OSError(f'cannot read image {source}: {e}') from None
    check_image_size(image, source)
    for corruption, severity, out in cells:
        write_bytes_atomic(out, encoded_corruption(image, relative, corruption, severity, seed, image_format))
    return len(cells)


def _run_job_star(args: Tuple[Job, int, str]) -> int:
    return _run_job(*args)


def _exit_with_parent(parent_pid: int, interval: float = 0.2) -> None:
    """ Worker initialiser: a daemon thread ends this process as soon as its parent is gone (even after SIGKILL). """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name='fan_stl-parent-watch').start()


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


def _versions() -> Dict[str, str]:
    from fan_stl import __version__
    try:
        generator = metadata.version('imagecorruptions-imaug')
    except metadata.PackageNotFoundError:  # the original `imagecorruptions` distribution, or a source checkout
        generator = getattr(_imagecorruptions(), '__version__', 'unknown')
    return {'imagecorruptions_version': generator, 'fan_stl_version': __version__}


def read_manifest(dst: Path) -> Optional[Dict[str, Any]]:
    """ The manifest of a corruption folder made by `corrupt_folder`, or None when it has none. """
    path = Path(dst) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f'the corruption manifest {path} is not valid JSON ({e}); delete the folder and run again'
                         ) from None
    if not isinstance(manifest, dict) or manifest.get('manifest_version') != MANIFEST_VERSION:
        raise ValueError(f'{path} is not a manifest this fan_stl version writes; make the copy in a new folder')
    return manifest


def _merge_manifest(dst: Path, wanted: Dict[str, Any]) -> Dict[str, Any]:
    """ The manifest after this run: refuses other settings; adds the requested corruptions and severities. """
    existing = read_manifest(dst)
    if existing is None:
        made = [p.name for p in dst.iterdir() if p.name in ALL_CORRUPTIONS] if dst.is_dir() else []
        if made:
            raise ValueError(
                f'{dst} already holds corruption folders ({", ".join(sorted(made)[:4])}) but no {MANIFEST_NAME}, so '
                f'their seed, format and source are unknown: write into a new folder (or delete this one).')
        return wanted
    refuse_other_run(existing, wanted, f'{dst} was made with other settings',
                     'mixing them would give cells of two kinds of images. Use a new output folder, or rerun with the '
                     'settings there.', keys=_MUST_MATCH)
    merged = dict(existing)
    merged['corruptions'] = [c for c in ALL_CORRUPTIONS if c in existing['corruptions'] or c in wanted['corruptions']]
    merged['severities'] = sorted(set(existing['severities']) | set(wanted['severities']))
    return merged


@locks_output_folder('dst')
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
    sources = [path for path, _ in list_images(src, list_classes(src, what='source'))]
    manifest = _merge_manifest(dst, {
        'manifest_version': MANIFEST_VERSION, 'corruptions': list(corruptions), 'severities': sorted(severities),
        'seed': seed, 'format': image_format, 'source': str(src.resolve()),
        'source_fingerprint': file_list_fingerprint(src, sources), 'source_images': len(sources), **_versions()})
    jobs: List[Job] = []
    seen: Dict[str, Path] = {}
    skipped = 0
    for source in sources:
        relative = output_relative_path(source, src, image_format)
        if relative in seen:
            raise ValueError(f'{source} and {seen[relative]} would both be written as {relative}; rename one of them.')
        seen[relative] = source
        cells = [(c, s, dst / c / str(s) / relative) for c in corruptions for s in severities]
        todo = [cell for cell in cells if not cell[2].exists()]
        skipped += len(cells) - len(todo)
        if todo:
            jobs.append((source, relative, todo))
    for stale in dst.rglob(TEMP_GLOB) if dst.is_dir() else ():  # left by a killed run
        stale.unlink()
    write_json_atomic(dst / MANIFEST_NAME, manifest)
    args = [(job, seed, image_format) for job in jobs]
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=sum(len(job[2]) for job in jobs), desc='corrupting', unit='file',
                                       disable=not progress))
        if workers > 1:
            # fork: workers start at once, without re-importing torch; they only run numpy / OpenCV / numba code.
            # An executor (unlike multiprocessing.Pool) fails instead of hanging when a worker is killed; each
            # worker watches its parent and exits when it dies, so a killed run leaves nothing writing behind.
            pool = stack.enter_context(ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context('fork'), initializer=_exit_with_parent,
                initargs=(os.getpid(),)))
            counts = pool.map(_run_job_star, args)
        else:
            counts = map(_run_job_star, args)
        written = 0
        for count in counts:
            written += count
            bar.update(count)
    return CorruptionRun(written=written, skipped=skipped, images=len(sources))
