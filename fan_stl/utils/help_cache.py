"""`--help` of an entry point whose parser needs torch (the launchers of timm's scripts), answered without it.

The launchers' options are generated from `STLConfig` and its registries, which import torch and timm: building
that parser takes seconds. The help text depends only on the package's source, the installed timm and the
terminal width, so it is kept in a cache file keyed by all of them (`~/.cache/fan_stl/help`, or under
`$XDG_CACHE_HOME`): the first `--help` after an install or an edit builds the parser and stores its text, every later
one prints the stored text at once. A cache folder that cannot be written only costs the speed.
"""
import hashlib
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from .atomic import write_text_atomic

__all__ = ['asks_for_help', 'cached_help', 'help_cache_dir']

PACKAGE = Path(__file__).resolve().parents[1]  # the fan_stl source whose options the help lists


def asks_for_help(argv: Sequence[str]) -> bool:
    """ `-h` / `--help` among a launcher's own arguments (those before `--`, which go to timm's script). """
    own = argv[:list(argv).index('--')] if '--' in argv else argv
    return '-h' in own or '--help' in own


def help_cache_dir() -> Path:
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'fan_stl' / 'help'


def _key(name: str) -> str:
    """ What the help text depends on: the package source, timm's and Python's versions, the terminal width. """
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob('*.py')):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b'\0' + path.read_bytes() + b'\0')
    try:
        timm_version = importlib.metadata.version('timm')
    except importlib.metadata.PackageNotFoundError:
        timm_version = 'none'
    width = shutil.get_terminal_size().columns  # what argparse wraps the text to
    digest.update(f'{name}|{timm_version}|{sys.version_info[:2]}|{width}'.encode())
    return digest.hexdigest()[:32]


def cached_help(name: str, build_help: Callable[[], str]) -> str:
    """ The help text of entry point `name`: from the cache when current, else `build_help()` (stored for next time).
    """
    path = help_cache_dir() / f'{name}-{_key(name)}.txt'
    if path.is_file():
        return path.read_text(encoding='utf-8')
    text = build_help()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f'{name}-*.txt'):  # the text of earlier source or settings
            stale.unlink()
        write_text_atomic(path, text)
    except OSError:
        pass
    return text
