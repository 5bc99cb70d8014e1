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

Two generators (`backend`): 'imagecorruptions' (the reference functions, one image at a time, optionally in worker
processes) and 'torch' (`torch_corruptions`: batches of same-size images on the CPU or a GPU; the same constants,
its own random draws, so its images are not the reference's and the manifest records which one made a folder).
`corrupt_tree` does the same for any tree of images (Cityscapes, COCO, CamVid...): relative paths are kept under
`<dst>/<corruption>/<severity>/`, and `lossless=True` writes PNG.
"""
import contextlib
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
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..utils.atomic import TEMP_GLOB, write_bytes_atomic, write_json_atomic
from ..utils.extras import install_hint
from ..utils.lock import locks_output_folder
from ..utils.run_identity import refuse_other_run
from .images import file_list_fingerprint, list_images, read_rgb
from .layouts import is_image, list_classes
from .names import ALL_CORRUPTIONS, SEVERITIES
from .seeds import cell_seed

if TYPE_CHECKING:
    import torch

IMAGE_FORMATS = {'jpg': ('JPEG', {'quality': 85}), 'png': ('PNG', {})}
MIN_IMAGE_SIZE = 32  # the corruption functions refuse anything smaller
MANIFEST_NAME = 'fan_stl_corruptions.json'
MANIFEST_VERSION = 1
# corruptions that draw from their own generator when given a `seed` instead of numpy's global one
_SEEDED_BY_ARGUMENT = ('glass_blur', 'impulse_noise')
# manifest entries that must agree for two runs to share a folder
_MUST_MATCH = ('seed', 'format', 'source_fingerprint', 'imagecorruptions_version', 'fan_stl_version', 'backend')
BACKENDS = ('imagecorruptions', 'torch')
LAYOUTS = ('imagefolder', 'tree')


def _imagecorruptions():
    try:
        import imagecorruptions
    except ImportError:
        raise ImportError(
            f'corruption generation needs the optional package imagecorruptions-imaug: {install_hint("robustness")}'
        ) from None
    return imagecorruptions


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
                       image_format: str, backend: str = 'imagecorruptions') -> bytes:
    """ The file `corrupt` writes for one image and cell with `backend`: corrupted, then encoded in `image_format`. """
    if backend == 'torch':
        import torch
        images = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
        return torch_encoded_corruptions(images, [relative_path], corruption, severity, seed, image_format)[0]
    corrupted = corrupt_image(np.asarray(image), corruption, severity, cell_seed(seed, relative_path, corruption,
                                                                                  severity))
    return encode_image(corrupted, image_format)


def torch_encoded_corruptions(images: 'torch.Tensor', relative_paths: Sequence[str], corruption: str, severity: int,
                              seed: int, image_format: str) -> List[bytes]:
    """ The files of the torch backend for a uint8 batch (N, 3, H, W) and one cell, each image seeded by its relative
    path (so the same bytes in any batch, `encoded_corruption(..., backend='torch')` included). """
    from .torch_corruptions import corrupt_batch, to_uint8
    corrupted = to_uint8(corrupt_batch(images, corruption, severity, seed, list(relative_paths)))
    return [encode_image(array, image_format) for array in corrupted.permute(0, 2, 3, 1).cpu().numpy()]


def encode_image(image: np.ndarray, image_format: str) -> bytes:
    """ An RGB uint8 array (H, W, 3) as the bytes of a file in `image_format` ('jpg': quality 85, 'png'). """
    pil_format, options = IMAGE_FORMATS[image_format]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def output_relative_path(source: Path, src_root: Path, image_format: str) -> str:
    """ Where `corrupt` writes an image's copies inside each cell (and the key of its seed): the format's suffix. """
    return Path(source).relative_to(src_root).with_suffix('.' + image_format).as_posix()


@dataclass(frozen=True)
class OnTheFlyCorruption:
    """ Makes in memory exactly the image `corrupt SRC DST --seed --format --corruption-backend` (or `corrupt_tree`)
    writes to DST/<corruption>/<severity>. """
    root: Path
    corruption: str
    severity: int
    seed: int = 0
    image_format: str = 'jpg'
    backend: str = 'imagecorruptions'

    def __post_init__(self):
        check_backend(self.backend)

    def __call__(self, image: Image.Image, source: Path) -> Image.Image:
        check_image_size(image, source)
        relative = output_relative_path(source, self.root, self.image_format)
        data = encoded_corruption(image, relative, self.corruption, self.severity, self.seed, self.image_format,
                                  self.backend)
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


def check_backend(backend: str, device: Optional[str] = None) -> None:
    """ A clear error for an unknown backend, or a CUDA device where there is none, before any work. """
    if backend not in BACKENDS:
        raise ValueError(f'unknown corruption backend {backend!r}; choose from: {", ".join(BACKENDS)}')
    if device is not None and backend != 'torch':
        raise ValueError('--device applies to the torch backend only; the imagecorruptions backend runs on the CPU')
    if device is not None:
        import torch
        try:
            kind = torch.device(device).type
        except RuntimeError:
            raise ValueError(f'unknown device {device!r}; use cpu, cuda or cuda:N') from None
        if kind == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'device {device!r} was asked for, but this machine has no usable CUDA GPU; use --device '
                             f'cpu')


def check_corruption_request(corruptions: Sequence[str], severities: Sequence[int], image_format: str) -> None:
    """ Refuse unknown corruption names, severities outside 1-5 and unknown image formats, naming the choices (the
    one check of a corruption request, for `corrupt` and for corruptions made during an evaluation). """
    unknown = [c for c in corruptions if c not in ALL_CORRUPTIONS]
    if unknown:
        raise ValueError(f'unknown corruption(s) {", ".join(unknown)}; choose from: {", ".join(ALL_CORRUPTIONS)}')
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f'severities must be in 1-5, got {bad}')
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f'image format must be one of {", ".join(IMAGE_FORMATS)}, not {image_format!r}')


def _check_request(src: Path, dst: Path, corruptions: Sequence[str], severities: Sequence[int], image_format: str):
    check_corruption_request(corruptions, severities, image_format)
    src, dst = src.resolve(), dst.resolve()
    if dst == src or src in dst.parents:
        raise ValueError(f'the output folder {dst} must not be inside the source folder {src}')


def _versions(backend: str) -> Dict[str, str]:
    from fan_stl import __version__
    try:
        generator = metadata.version('imagecorruptions-imaug')
    except metadata.PackageNotFoundError:  # the original `imagecorruptions` distribution, or a source checkout
        generator = getattr(_imagecorruptions(), '__version__', 'unknown')
    versions = {'imagecorruptions_version': generator, 'fan_stl_version': __version__, 'backend': backend}
    if backend == 'torch':
        import torch
        import torchvision
        versions.update(torch_version=torch.__version__, torchvision_version=torchvision.__version__)
    return versions


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
    existing.setdefault('backend', 'imagecorruptions')  # folders made before there was a choice
    refuse_other_run(existing, wanted, f'{dst} was made with other settings',
                     'mixing them would give cells of two kinds of images. Use a new output folder, or rerun with the '
                     'settings there.', keys=_MUST_MATCH)
    merged = dict(existing)
    merged['corruptions'] = [c for c in ALL_CORRUPTIONS if c in existing['corruptions'] or c in wanted['corruptions']]
    merged['severities'] = sorted(set(existing['severities']) | set(wanted['severities']))
    return merged


def _image_size(source: Path) -> Tuple[int, int]:
    """ (width, height) from the file header (no decoding), with the minimum size checked. """
    try:
        with Image.open(source) as image:
            check_image_size(image, source)
            return image.size
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise OSError(f'cannot read image {source}: {e}') from None


def _run_torch_jobs(jobs: Sequence[Job], seed: int, image_format: str, device: str, batch_size: int, bar) -> int:
    """ The jobs on the torch backend: same-size images in batches, one batched corruption per cell. """
    import torch

    by_size: Dict[Tuple[int, int], List[Job]] = {}
    for job in jobs:
        by_size.setdefault(_image_size(job[0]), []).append(job)
    written = 0
    for group in by_size.values():
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            images = torch.stack([torch.from_numpy(np.array(read_rgb(job[0]))).permute(2, 0, 1) for job in chunk])
            images = images.to(device)
            cells = list(dict.fromkeys((c, s) for job in chunk for c, s, _ in job[2]))
            for corruption, severity in cells:
                wanted = [(i, out) for i, job in enumerate(chunk) for c, s, out in job[2]
                          if (c, s) == (corruption, severity)]
                picked = [i for i, _ in wanted]
                files = torch_encoded_corruptions(images[picked], [chunk[i][1] for i in picked], corruption, severity,
                                                  seed, image_format)
                for data, (_, out) in zip(files, wanted):
                    write_bytes_atomic(out, data)
                written += len(wanted)
                bar.update(len(wanted))
    return written


def _list_tree_images(src: Path) -> List[Path]:
    """ Every image file under `src`, at any depth, sorted by relative path (hidden files and folders skipped). """
    return sorted((p for p in src.rglob('*') if is_image(p) and not any(
        part.startswith('.') for part in p.relative_to(src).parts)), key=lambda p: p.relative_to(src).as_posix())


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
        backend: str = 'imagecorruptions',
        device: Optional[str] = None,
        batch_size: int = 32,
        layout: str = 'imagefolder',
        limit: Optional[int] = None,
) -> CorruptionRun:
    """ Write every (corruption, severity) copy of the ImageFolder `src` under `dst`, skipping existing files.

    `layout='tree'` takes every image under `src` instead of `<src>/<class>/` (see `corrupt_tree`). `backend`
    'torch' corrupts batches of `batch_size` same-size images on `device` (default cpu); `workers` applies to the
    'imagecorruptions' backend. `limit` takes the first `limit` source images only (in the sorted listing order);
    the manifest's fingerprint covers just those, so a folder made with a limit is refused for another limit.
    """
    src, dst = Path(src), Path(dst)
    _check_request(src, dst, corruptions, severities, image_format)
    check_backend(backend, device)
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {", ".join(LAYOUTS)}, not {layout!r}')
    _imagecorruptions()  # fail before any work when the extra is missing (frost's textures come from it too)
    if layout == 'tree':
        if not src.is_dir():
            raise ValueError(f'the source folder {src} does not exist')
        sources = _list_tree_images(src)
        if not sources:
            raise ValueError(f'{src} holds no images (.jpg, .png, ...) at any depth')
    else:
        sources = [path for path, _ in list_images(src, list_classes(src, what='source'))]
    if limit is not None:
        if limit < 1:
            raise ValueError(f'limit must be a positive number of images, not {limit}')
        sources = sources[:limit]
    manifest = _merge_manifest(dst, {
        'manifest_version': MANIFEST_VERSION, 'corruptions': list(corruptions), 'severities': sorted(severities),
        'seed': seed, 'format': image_format, 'source': str(src.resolve()), 'layout': layout,
        'source_fingerprint': file_list_fingerprint(src, sources), 'source_images': len(sources),
        **_versions(backend)})
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
    for job in jobs:  # every image readable and large enough before anything is written
        _image_size(job[0])
    for stale in dst.rglob(TEMP_GLOB) if dst.is_dir() else ():  # left by a killed run
        stale.unlink()
    write_json_atomic(dst / MANIFEST_NAME, manifest)
    args = [(job, seed, image_format) for job in jobs]
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=sum(len(job[2]) for job in jobs), desc='corrupting', unit='file',
                                       disable=not progress))
        if backend == 'torch':
            written = _run_torch_jobs(jobs, seed, image_format, device or 'cpu', batch_size, bar)
            return CorruptionRun(written=written, skipped=skipped, images=len(sources))
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


def corrupt_tree(
        src: Path,
        dst: Path,
        corruptions: Sequence[str] = ALL_CORRUPTIONS,
        severities: Sequence[int] = SEVERITIES,
        lossless: bool = False,
        backend: str = 'torch',
        seed: int = 0,
        **kwargs: Any,
) -> CorruptionRun:
    """ The "-C" copy of any tree of images (e.g. Cityscapes' leftImg8bit/val, COCO's val2017, CamVid's test):
    `<dst>/<corruption>/<severity>/<relative path>`, with the suffix of the format (PNG when `lossless`, else JPEG
    quality 85). Images keep their size and pixel grid, so the clean set's dense labels (point `src` at the images,
    not at the labels) fit every corrupted copy. Other keyword arguments as `corrupt_folder` (workers, device,
    batch_size, progress, limit). `OnTheFlyCorruption(src, ..., backend=backend)` makes the same images in memory. """
    return corrupt_folder(src, dst, corruptions, severities, seed=seed, image_format='png' if lossless else 'jpg',
                          backend=backend, layout='tree', **kwargs)
