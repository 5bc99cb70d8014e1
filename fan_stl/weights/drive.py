"""The authors' Google Drive files (the STL weights), downloaded once and kept as checked safetensors copies.

A copy lives in `<torch hub dir>/checkpoints/fan_stl/` as `<name>.gdrive-<id>.sha256-<sha256 of the original>
.safetensors`, with the same id and sha256 in its metadata and its own sha256 recorded beside it (`<copy>.sha256`).
Before each use a copy is checked: one that cannot be read, whose name and metadata disagree or that has no
record is broken; it is moved aside (`<copy>.broken`) with a warning naming where, and the weight counts as not
cached. A copy whose sha256 differs from its record was changed after it was written: it is refused with one error
naming the file and how to fetch it again (it is never loaded or published).
"""
import os
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from fan_stl.models import fan as fan_models

from .checkpoint import filter_and_check
from .files import (
    SHA256_SUFFIX,
    PretrainedWeightsError,
    check_sha256_record,
    read_checkpoint,
    read_safetensors_metadata,
    record_sha256,
    save_safetensors_atomic,
    sha256_of,
)
from .network import offline, offline_switch
from .released import ReleasedWeight, weight_error

__all__ = ['DRIVE_TIMEOUT', 'authors_cache_dir', 'has_authors_copy', 'inspect_authors_cache', 'cached_authors_copy',
           'download_from_drive', 'fetch_authors_copy', 'BROKEN_SUFFIX']

DRIVE_TIMEOUT = (10.0, 60.0)  # gdown: seconds to connect, and between bytes
BROKEN_SUFFIX = '.broken'


def authors_cache_dir() -> Path:
    """ Where converted copies of the authors' Google Drive files are kept (next to timm's URL downloads). """
    return Path(torch.hub.get_dir()) / 'checkpoints' / 'fan_stl'


def _cache_file(weight: ReleasedWeight, sha256: str) -> Path:
    return authors_cache_dir() / f'{weight.name}.gdrive-{weight.drive_id}.sha256-{sha256}.safetensors'


def _broken(path: Path, weight: ReleasedWeight) -> Optional[str]:
    """ Why the cached copy `path` of `weight` cannot be used as it is, or None. """
    meta = read_safetensors_metadata(path)
    if not meta:
        return 'it is truncated, corrupt or not a safetensors file written by fan_stl'
    if meta.get('source_id') != weight.drive_id or path.name != _cache_file(weight, meta.get('sha256', '')).name:
        return (f"its name does not match its metadata (Drive id {meta.get('source_id')!r}, original sha256 "
                f"{meta.get('sha256')!r})")
    if not Path(f'{path}{SHA256_SUFFIX}').is_file():
        return f'it has no record of its own sha256 ({path.name}{SHA256_SUFFIX})'
    return None


def _set_aside(path: Path, why: str) -> str:
    aside = path.with_name(path.name + BROKEN_SUFFIX)
    os.replace(path, aside)
    record = Path(f'{path}{SHA256_SUFFIX}')
    if record.is_file():
        os.replace(record, Path(f'{aside}{SHA256_SUFFIX}'))
    note = f'a broken cached copy {path} ({why}) was ignored and moved aside to {aside}'
    warnings.warn(f'fan_stl: {note}.', stacklevel=3)
    return note


def _candidates(weight: ReleasedWeight) -> List[Path]:
    folder = authors_cache_dir()
    return [p for p in folder.glob(f'{weight.name}.gdrive-*.safetensors') if p.is_file()] if folder.is_dir() else []


def has_authors_copy(weight: ReleasedWeight) -> bool:
    """ Whether a converted copy of `weight` is in the cache, unchecked (checked when it is used). """
    return bool(_candidates(weight))


def inspect_authors_cache(weight: ReleasedWeight) -> Tuple[Optional[Path], List[str]]:
    """ The newest usable converted copy of `weight` (or None), and a note on each broken copy moved aside.

    Raises:
        PretrainedWeightsError: the copy was changed after it was written (its sha256 differs from its record).
    """
    notes = []
    for path in sorted(_candidates(weight), key=lambda p: p.stat().st_mtime, reverse=True):
        why = _broken(path, weight)
        if why is not None:
            notes.append(_set_aside(path, why))
            continue
        changed = check_sha256_record(path)
        if changed is not None:
            raise PretrainedWeightsError(
                f'The cached copy {path} of the weights of {weight.name} was changed after fan_stl wrote it: '
                f'{changed}. It is not loaded. Delete it and {path.name}{SHA256_SUFFIX}, then load the weights '
                f'again while online to fetch the authors\' file ({weight.original}) anew.')
        return path, notes
    return None, notes


def cached_authors_copy(weight: ReleasedWeight) -> Optional[Path]:
    """ The checked converted copy of `weight`'s Drive file, or None (broken copies are moved aside). """
    return inspect_authors_cache(weight)[0]


def download_from_drive(drive_id: str, output: Path) -> None:
    """ Download one Google Drive file with `gdown` (progress bar on stderr). Tests replace this function. """
    import gdown
    gdown.download(id=drive_id, output=str(output), quiet=False, timeout=DRIVE_TIMEOUT)


def _refuse_web_page(path: Path, weight: ReleasedWeight) -> None:
    with path.open('rb') as f:
        head = f.read(4096)
    if b'<html' not in head.lower() and b'<!doctype' not in head.lower():
        return
    quota = b'too many users' in head.lower() or b'quota' in head.lower()
    what = ("its 'too many users have viewed or downloaded this file' quota page" if quota else
            'a web page (the Drive page may have changed)')
    raise weight_error(f"Google Drive sent {what} instead of the weights of {weight.name}.", weight.name)


def _meta_model(name: str) -> torch.nn.Module:
    from timm import create_model  # the registry entrypoint, built on the meta device (no memory, no init)
    return create_model(name, device='meta')


def fetch_authors_copy(weight: ReleasedWeight) -> Path:
    """ The converted safetensors copy of an STL weight: cached, or downloaded from Drive and converted now.

    The original is read without executing pickled code, mapped to this package's layout, checked against the
    architecture (strict keys and shapes, finite values), written atomically with its sha256 record; the original
    is then deleted. Offline (`network.offline()`), nothing is downloaded: one error says what was looked for.
    """
    cached, notes = inspect_authors_cache(weight)
    if cached is not None:
        return cached
    if offline():
        found = f'; {"; ".join(notes)}' if notes else ''
        raise weight_error(
            f'Weights for {weight.name} are not cached ({authors_cache_dir()}{found}) and {offline_switch()} '
            f"forbids downloading them from the authors' Google Drive. Unset it while online.", weight.name)
    folder = authors_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.download-', dir=folder) as tmp:
        original = Path(tmp) / f'{weight.drive_id}.pth.tar'
        try:
            download_from_drive(weight.drive_id, original)
        except Exception as e:  # gdown raises its own, requests' and OS errors; all mean the same to the user
            raise weight_error(f"Downloading {weight.name} from the authors' Google Drive ({weight.original}) "
                               f'failed ({type(e).__name__}: {str(e).strip()[:300]}).', weight.name) from None
        if not original.is_file():
            raise weight_error(f'Google Drive returned no file for {weight.name}.', weight.name)
        _refuse_web_page(original, weight)
        sha256 = sha256_of(original)
        state_dict, _ = read_checkpoint(original)
        model = _meta_model(weight.architecture)
        converted = filter_and_check(state_dict, model, fan_models.checkpoint_filter_fn)
        metadata = {'source': weight.original, 'source_id': weight.drive_id, 'sha256': sha256, 'format': 'pt'}
        staged = save_safetensors_atomic(converted, Path(tmp) / 'converted.safetensors', metadata)
        path = _cache_file(weight, sha256)
        record_sha256(path, sha256_of(staged))  # the record first: a copy is never visible without it
        os.replace(staged, path)
        return path
