"""fan_stl: FAN backbones and Self-emerging Token Labeling (STL) as ordinary timm models.

`import fan_stl` registers every `fan_*` architecture in timm's registry, so `timm.create_model('fan_l_hybrid_stl')`
and `hf-hub:` names work afterwards.

One exception keeps the command line fast: when this package is imported only to start its own command line
(`python -m fan_stl ...`, `python -m fan_stl.train` / `.validate` or the `fan-stl` script), torch and timm are not
imported here; `fan_stl.cli` and the two launchers register the models before they run, so `--help` and argument
errors answer at once. `fan_stl.FAN` and
`fan_stl.checkpoint_filter_fn` resolve on first use in either case.
"""
import sys
from pathlib import PurePath
from typing import Any, Optional, Sequence

__version__ = '0.1.0'
__all__ = ['FAN', 'checkpoint_filter_fn', '__version__']

CLI_SCRIPT = 'fan-stl'  # the console script of pyproject.toml's [project.scripts]
# modules run with -m that register the models themselves, after reading their arguments
OWN_ENTRY_POINTS = (__name__, f'{__name__}.__main__', f'{__name__}.train', f'{__name__}.validate')


def _module_run_with_m(orig_argv: Sequence[str]) -> Optional[str]:
    """ The module named by `-m NAME` / `-mNAME` in the interpreter's own arguments, if any. """
    args = iter(orig_argv[1:])
    for arg in args:
        if arg == '-m':
            return next(args, None)
        if arg.startswith('-m'):
            return arg[2:]
        if arg in ('-X', '-W'):  # options whose value is the next argument
            next(args, None)
        elif not arg.startswith('-') or arg in ('--', '-') or arg.startswith('-c'):
            return None  # a script, stdin or `-c` code runs, not a module
    return None


def _starting_own_cli() -> bool:
    """ True while `python -m fan_stl` or the `fan-stl` script imports this package to reach the command line.

    During `python -m NAME`, Python imports the packages above NAME's main module while `sys.argv[0]` is still '-m';
    any other program importing fan_stl (`python -m pytest`, scripts, notebooks) sees its own argv[0] and gets the
    eager registration.
    """
    argv0 = sys.argv[0] if sys.argv else ''
    if argv0 == '-m':
        return _module_run_with_m(getattr(sys, 'orig_argv', ())) in OWN_ENTRY_POINTS
    return PurePath(argv0).name in (CLI_SCRIPT, f'{CLI_SCRIPT}.exe')


def __getattr__(name: str) -> Any:
    """ The model API on first use when the command line start skipped the eager import (PEP 562). """
    if name in ('FAN', 'checkpoint_filter_fn'):
        from . import models
        return getattr(models, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


if not _starting_own_cli():
    from .models import FAN, checkpoint_filter_fn  # noqa: E402  (registers the fan_* models in timm)
    from . import weights  # noqa: E402,F401  (installs how pretrained FAN weights are found and checked)
