"""Load one of timm's stock scripts (train.py, validate.py) as a module, unmodified, for the launchers.

The scripts are not in the timm wheel: they come from timm's repository at the tag of the installed timm. Loading one
runs only its top level (imports and definitions); the launcher then patches names and calls its `main()`.

Version cue: the scripts carry no version string, so a script is recognised by its content, the git blob id of the
file (`git hash-object`), in `KNOWN_SCRIPTS`: the stock files of the timm releases fan_stl was checked against, each
with the first and last release known to ship it unchanged. A script of another timm than the installed one (or, when
the installed release's file is known, a script that differs from it: modified or from another release) gets one
warning naming both versions; it still runs. A script importing a name the installed timm lacks is refused.
"""
import hashlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple, Type

import timm

__all__ = ['KNOWN_SCRIPTS', 'ScriptError', 'load_timm_script', 'script_releases', 'split_command_line',
           'version_warning']

# script -> {git blob id: (first, last) timm release shipping that exact file}: the tags v1.0.23 ... v1.0.28 and the
# development snapshot 1.0.29.dev0 of timm's repository, and the scripts of 1.0.31 the project is tested with
KNOWN_SCRIPTS: Dict[str, Dict[str, Tuple[str, str]]] = {
    'train.py': {
        'efa77255060f4c019cfd2163a5c080d2e47bb840': ('1.0.23', '1.0.24'),
        '8bf62da1da8a784aa72ec8d27efd0c59f97c1739': ('1.0.25', '1.0.26'),
        '74acfd6d2b3df10907c388b4fa1f0277bc373043': ('1.0.27', '1.0.28'),
        '4b9f3082f4e89339e0cce7b030ff084f8886c90d': ('1.0.29.dev0', '1.0.31'),
    },
    'validate.py': {
        '03c572929dc8e219f175f579eff8bafeccffc175': ('1.0.23', '1.0.27'),
        '9c1f81656b2fd517b1e4ebf45b10d4fddb3ddf20': ('1.0.28', '1.0.31'),
    },
}


def _blob_id(path: str) -> str:
    """ The git blob id of a file (what `git hash-object` prints). """
    with open(path, 'rb') as f:
        data = f.read()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def _release(version: str) -> Tuple[int, ...]:
    """ A sortable key of a timm version: `1.0.29.dev0` < `1.0.29` < `1.0.31`. """
    numbers = re.match(r'\d+(?:\.\d+)*', version)
    if numbers is None:
        return ()
    return tuple(int(n) for n in numbers.group(0).split('.')) + ((-1,) if 'dev' in version[numbers.end():] else (0,))


def _within(version: str, span: Tuple[str, str]) -> bool:
    return _release(span[0]) <= _release(version) <= _release(span[1])


def script_releases(path: str, script: str) -> Optional[Tuple[str, str]]:
    """ `(first, last)` timm release known to ship the file at `path` as its `script`; None when it is not known. """
    return KNOWN_SCRIPTS.get(script, {}).get(_blob_id(path))


def version_warning(path: str, script: str, installed: Optional[str] = None) -> Optional[str]:
    """ A one-line warning when the `script` at `path` is not the installed timm's (see the module docstring); None
    when it is, or when neither the script nor the installed release's file is known. """
    installed = installed or timm.__version__
    span = script_releases(path, script)
    fix = f'take {script} from tag v{installed} of github.com/huggingface/pytorch-image-models'
    if span is not None:
        if _within(installed, span):
            return None
        versions = span[0] if span[0] == span[1] else f'{span[0]} to {span[1]}'
        return (f'warning: {path} is the {script} of timm {versions}, but timm {installed} is installed; {fix} '
                f'(running it anyway).')
    if any(_within(installed, known) for known in KNOWN_SCRIPTS.get(script, {}).values()):
        return (f'warning: {path} is not the {script} of the installed timm {installed} (a modified copy, or the '
                f'script of another timm release); {fix} unless you changed it on purpose (running it anyway).')
    return None


class ScriptError(RuntimeError):
    """ A stock script that is missing or lacks the names a launcher needs. """


def load_timm_script(
        path: str,
        script: str,
        required: Sequence[str],
        fix: str = '',
        error: Type[Exception] = ScriptError,
) -> ModuleType:
    """ timm's `script` (e.g. 'train.py') at `path` as a module, checked to define every name in `required`.

    Args:
        path: Where the script is.
        script: Its name in timm's repository, for the messages.
        required: Names the launcher patches or calls.
        fix: What to do when a name is missing (appended to the message).
        error: Exception type raised (a launcher's own error class).
    """
    if not os.path.isfile(path):
        raise error(
            f'timm {script} not found at {path!r}. It is not in the timm wheel: take {script} from '
            f'https://github.com/huggingface/pytorch-image-models at tag v{timm.__version__}.')
    warning = version_warning(path, script)
    if warning:
        print(warning, file=sys.stderr)
    spec = importlib.util.spec_from_file_location(f'timm_{os.path.splitext(script)[0]}', path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        if not (e.name or '').startswith('timm'):
            raise
        raise error(f'{path} needs {e} from timm, which the installed timm {timm.__version__} lacks: it is the '
                    f'{script} of another timm release. Take {script} from tag v{timm.__version__} of '
                    f'github.com/huggingface/pytorch-image-models (or install the timm it was written for).') from e
    missing = [name for name in required if not hasattr(module, name)]
    if missing:
        raise error(f'{path} is not a supported {script}: it lacks {", ".join(missing)}. {fix}'.rstrip())
    return module


def split_command_line(argv: Optional[List[str]] = None) -> Tuple[List[str], List[str]]:
    """ `(launcher options, script options)` of a `launcher-options -- script-options` command line (default:
    `sys.argv[1:]`). """
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index('--') if '--' in argv else len(argv)
    return argv[:split], argv[split + 1:]
