"""`python -m fan_stl.train` (also `python -m fan_stl train`): timm's stock train.py with STL (the launcher is
`fan_stl.training.train_launcher`). `--help` answers without importing torch once its text is cached
(`fan_stl.utils.help_cache`)."""
import sys
from typing import List, Optional

from .utils.help_cache import asks_for_help, cached_help

__all__ = ['main']


def _help() -> str:
    from .training.train_launcher import build_parser
    return build_parser().format_help()


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if asks_for_help(argv):
        print(cached_help('train', _help), end='')
        return 0
    from . import models  # noqa: F401  (registers the fan models for train.py's create_model)
    from .training.train_launcher import main as launch
    cached_help('train', _help)  # the parser's modules are loaded now: keep its help for a fast `--help`
    return launch(argv)


if __name__ == '__main__':
    sys.exit(main())
