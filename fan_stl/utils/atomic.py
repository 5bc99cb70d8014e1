"""Atomic file writes: a reader sees the old file or the whole new one, never part of one.

Everything is written to a temporary file in the target's folder (so `os.replace` is a rename on one file system),
flushed to disk (`fsync`) and then renamed over the target. Temporary files are named `.<name>.<pid>-<random>.tmp`
(hidden, never an image or JSON name: a folder scan never reads one as data; `TEMP_GLOB` finds those a killed run
left) and created with the usual permissions (0o666 less the umask), like any other file the package writes.
"""
import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator, Union

TEMP_GLOB = '.*.tmp'  # what a killed writer can leave behind


def _temp_path(path: Path) -> Path:
    return path.with_name(f'.{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp')


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """ Yield a temporary path for a writer that needs a file name (matplotlib, safetensors); when the block ends
    without an error the file is synced and renamed to `path`, else removed. The temp name does not end in the
    target's suffix: give the writer the format explicitly (e.g. `savefig(tmp, format='png')`). """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as for open(path, 'w')
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def give_usual_mode(path: Union[str, Path]) -> Path:
    """ Give the file `path` the permissions `open(path, 'w')` would (0o666 less the umask), for files another
    library created owner-only (safetensors' `save_file` writes 0o600); returns `path`. """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return Path(path)


def write_bytes_atomic(path: Union[str, Path], data: bytes) -> Path:
    """ Write `data` to `path` atomically; returns `path`. """
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
    return Path(path)


def write_text_atomic(path: Union[str, Path], text: str) -> Path:
    """ Write `text` (UTF-8) to `path` atomically; returns `path`. """
    return write_bytes_atomic(path, text.encode('utf-8'))


def write_json_atomic(path: Union[str, Path], data: Any) -> Path:
    """ Write `data` as indented JSON to `path` atomically; returns `path`. """
    return write_text_atomic(path, json.dumps(data, indent=1))


def append_text_atomic(path: Union[str, Path], text: str) -> Path:
    """ Append `text` to `path` (e.g. a results log) by rewriting the file whole: an interrupted append leaves the
    previous file intact, never half an entry. """
    path = Path(path)
    return write_text_atomic(path, (path.read_text(encoding='utf-8') if path.exists() else '') + text)
