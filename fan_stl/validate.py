"""`python -m fan_stl.validate` (also `python -m fan_stl validate`): timm's stock validate.py on the fan models (the
runner is `fan_stl.training.validate_launcher`). `--help` answers without importing torch once its text is cached
(`fan_stl.utils.help_cache`)."""
import sys
from typing import List, Optional

from .utils.help_cache import asks_for_help, cached_help

__all__ = ['main']


def _help() -> str:
    from .training.validate_launcher import build_parser
    return build_parser().format_help()


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if asks_for_help(argv):
        print(cached_help('validate', _help), end='')
        return 0
    from . import models  # noqa: F401  (registers the fan models for validate.py's create_model)
    from .training.validate_launcher import main as launch
    cached_help('validate', _help)  # the parser's modules are loaded now: keep its help for a fast `--help`
    return launch(argv)


if __name__ == '__main__':
    sys.exit(main())
