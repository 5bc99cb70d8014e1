"""Load one of timm's stock scripts (train.py, validate.py) as a module, unmodified, for the launchers.

The scripts are not in the timm wheel: they come from timm's repository at the tag of the installed timm. Loading one
runs only its top level (imports and definitions); the launcher then patches names and calls its `main()`.
"""
import importlib.util
import os
import sys
from types import ModuleType
from typing import List, Optional, Sequence, Tuple, Type

import timm

__all__ = ['ScriptError', 'load_timm_script', 'split_command_line']


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
    spec = importlib.util.spec_from_file_location(f'timm_{os.path.splitext(script)[0]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
